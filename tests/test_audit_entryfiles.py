"""The entry files of sealed segments, compared with their segments in a forked child (tfreview.store.entryfiles)
while `audit verify` checks the rest: every change, deletion and extra file is still found, with or without the
child, and a child that dies or meets an error changes nothing but the time.

Segments shrink to 4 entries (the code reads tfreview.store.audit.SEGMENT_SIZE at call time); keys are throw-away
ssh-keygen keys (tests/helpers.py).
"""
from __future__ import annotations

import json
import os
import signal
from typing import Any, Iterator

import pytest

from tests import helpers

from tfreview.errors import StoreError
from tfreview.store import audit, entryfiles
from tfreview.store.audit import VerifyResult, entry_key, open_log, read_log, segment_key
from tfreview.store.local import LocalStore

SIZE = 4


@pytest.fixture(params=["forked", "in-process"])
def store(request, tmp_path, monkeypatch) -> Iterator[LocalStore]:
    """A local store with 4-entry segments; the entry files compared in a child, or (as where `fork` is missing or
    other threads run) in this process. Fails the test if the child was not used when it should be."""
    monkeypatch.setattr(audit, "SEGMENT_SIZE", SIZE)
    forked: list[bool] = []
    real = entryfiles.Child.__init__

    def spy(self: Any, work: Any, *, fork: bool = True) -> None:
        real(self, work, fork=fork and request.param == "forked")
        forked.append(self.forked)

    monkeypatch.setattr(entryfiles, "can_fork", lambda: True)  # pytest may run helper threads: fork all the same
    monkeypatch.setattr(entryfiles.Child, "__init__", spy)
    yield LocalStore(tmp_path / "store")
    assert all(forked) if request.param == "forked" else not any(forked)


def sealed_log(store: LocalStore, n: int = 11) -> None:
    """`n` entries by bob, each complete segment sealed by the writer who completed it (1-4, 5-8; 9-11 the tail)."""
    ctx = helpers.context_for(store, "bob@example.com")
    while len(list(audit.iter_entries(store))) < n:
        ctx.audit("approve", app="shop", env="qa", plan_id="p-1")


def chain(store: LocalStore) -> tuple[bool, int | None, str]:
    _entries, result = read_log(store)
    return result.ok, result.first_bad_seq, result.reason


def test_an_intact_sealed_log_verifies_and_its_entries_come_from_the_segments(store):
    sealed_log(store)
    entries, result = read_log(store)
    assert result.ok and result.count == 11 and [s["first"] for s in result.seals] == [1, 5]
    assert [e["seq"] for e in entries] == list(range(1, 12))


def test_a_changed_missing_or_extra_entry_file_under_a_seal_is_found(store):
    sealed_log(store)
    path = store.path(entry_key(6))
    original = path.read_bytes()
    path.write_bytes(original.replace(b'"p-1"', b'"p-2"'))
    assert chain(store) == (False, 6, f"entry 6 differs from its sealed copy (modified) (sealed in {segment_key(5)})")
    path.write_bytes(original[:-1])  # one byte shorter: the newline
    assert chain(store)[:2] == (False, 6)
    path.write_bytes(original + original)  # its bytes, then one more line: the lines of the files shift
    assert chain(store)[:2] == (False, 6)
    path.unlink()
    assert chain(store) == (False, 6, f"entry 6 is missing (sealed in {segment_key(5)})")
    path.write_bytes(original)
    assert chain(store) == (True, None, "")
    store.write("audit/entries/000000000006.json.orig", original)  # an extra object among the entries
    assert chain(store) == (False, 1, "unexpected object audit/entries/000000000006.json.orig among the audit entries")


def test_two_entry_files_trading_bytes_are_found(store):
    """The files of a segment, concatenated, are still its bytes, but not each its own line."""
    sealed_log(store)
    five, six = store.path(entry_key(5)), store.path(entry_key(6))
    a, b = five.read_bytes(), six.read_bytes()
    five.write_bytes(a + b[:10])
    six.write_bytes(b[10:])
    assert chain(store)[:2] == (False, 5)


def test_the_first_finding_in_the_log_wins_whoever_finds_it(store):
    """A sealed entry file (the child's finding) comes before a broken tail entry (this process's), as the walk of
    the log meets them; a broken segment before the entry files it covers."""
    sealed_log(store)
    store.path(entry_key(10)).write_bytes(b"{}\n")  # the tail: found by this process's walk
    assert chain(store)[:2] == (False, 10)
    store.path(entry_key(6)).write_bytes(b"{}\n")  # in segment 5-8: found by the child, and earlier
    entries, result = read_log(store)
    assert (result.ok, result.first_bad_seq, result.count) == (False, 6, 4) and "differs" in result.reason
    assert [e["seq"] for e in entries] == [1, 2, 3, 4] and [s["first"] for s in result.seals] == [1]
    segment = store.path(segment_key(5))
    segment.write_bytes(segment.read_bytes().replace(b'"p-1"', b'"p-3"'))
    ok, seq, why = chain(store)
    assert (ok, seq) == (False, 5) and "not the bytes its seal names" in why


def test_open_log_gives_the_walk_at_once_and_the_entry_files_at_finish(store):
    sealed_log(store)
    store.path(entry_key(2)).write_bytes(b"{}\n")
    with open_log(store) as log:
        assert log.result.ok and len(log.entries) == 11  # the segments say so; their entry files are still read
        final = log.finish()
        assert (final.ok, final.first_bad_seq) == (False, 2)
        assert log.finish() is final


def test_an_unreadable_entry_folder_is_one_error_not_a_crash(store, monkeypatch):
    """Whichever process reads it, the store's own error is what the command reports."""
    sealed_log(store)

    def refuse(self: Any, found: list[Any], prefix: str = "") -> list[bytes | None]:
        raise StoreError("cannot read audit/entries: Permission denied", "check the store directory's permissions")

    monkeypatch.setattr(LocalStore, "_read_found", refuse)
    with pytest.raises(StoreError) as info:
        read_log(store)
    assert info.value.message == "cannot read audit/entries: Permission denied"


# -- the child itself ---------------------------------------------------------------------------------------------
def messages(parent: int, die_after: int | None = None, fail: bool = False) -> Iterator[Any]:
    for n in range(3):
        if die_after == n and os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)  # the child dies; the same work runs here
        if fail and n == 1:
            raise StoreError("cannot read x", "hint")
        yield {"n": n, "pid": os.getpid()}


@pytest.fixture
def forks(monkeypatch):
    monkeypatch.setattr(entryfiles, "can_fork", lambda: True)


def test_a_child_sends_its_messages_in_order(forks):
    parent = os.getpid()
    with entryfiles.Child(lambda: messages(parent)) as child:
        got = [child.next() for _ in range(3)]
    assert [m["n"] for m in got] == [0, 1, 2] and all(m["pid"] != parent for m in got)


def test_a_child_that_dies_leaves_the_rest_to_this_process(forks):
    parent = os.getpid()
    with entryfiles.Child(lambda: messages(parent, die_after=1)) as child:
        got = [child.next() for _ in range(3)]
    assert [m["n"] for m in got] == [0, 1, 2]
    assert got[0]["pid"] != parent and got[1]["pid"] == got[2]["pid"] == parent


def test_an_error_in_the_child_is_raised_here(forks):
    parent = os.getpid()
    with entryfiles.Child(lambda: messages(parent, fail=True)) as child:
        assert child.forked and child.next()["n"] == 0
        with pytest.raises(StoreError) as info:
            child.next()
    assert (info.value.message, info.value.hint) == ("cannot read x", "hint")


def test_without_fork_the_work_runs_here(monkeypatch):
    monkeypatch.setattr(entryfiles, "can_fork", lambda: False)
    parent = os.getpid()
    with entryfiles.Child(lambda: messages(parent)) as child:
        assert not child.forked and child.next()["pid"] == parent


def test_leaving_early_reaps_the_child(forks):
    """A child blocked writing a big message is reaped when the reader stops listening."""
    def big() -> Iterator[bytes]:
        yield b"x" * (8 << 20)

    child = entryfiles.Child(big)
    pid = child._pid
    child.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# -- pure parts ---------------------------------------------------------------------------------------------------
def test_sealed_names_others_and_mismatches():
    lines = {1: [b"a\n", b"b\n", b"c\n", b"d\n"]}
    sealed = entryfiles.sealed_names({first: len(got) for first, got in lines.items()})
    assert [audit.ENTRIES_PREFIX + name for name in sealed] == [entry_key(s) for s in (1, 2, 3, 4)]
    keys = [entry_key(s) for s in (9, 1, 2, 3, 4, 5)] + ["audit/entries/x.json", "audit/entries/sub/000000000001.json"]
    assert entryfiles.others(keys, audit.ENTRIES_PREFIX, set(sealed)) == (
        [(5, entry_key(5)), (9, entry_key(9))], ["audit/entries/sub/000000000001.json", "audit/entries/x.json"])
    assert entryfiles.mismatches(lines, [b"a\n", b"b\n", b"c\n", b"d\n"]) == {}
    assert entryfiles.mismatches(lines, [b"a\n", None, b"c\n", b"d\n"]) == {1: (2, True)}
    assert entryfiles.mismatches(lines, [b"a\n", b"b\n", b"C\n", b"d\n"]) == {1: (3, False)}
    two = {1: lines[1], 5: [b"e\n", b"f\n", b"g\n", b"h\n"]}
    assert entryfiles.mismatches(two, [*lines[1], b"e\n", b"f\n", b"g\n", b"H\n"]) == {5: (8, False)}


def test_settle_reports_only_segments_the_walk_vouched_for():
    seals = ({"first": 1}, {"first": 5})
    entries = [{"seq": s} for s in range(1, 10)]
    walked = VerifyResult(True, 9, seals=seals)
    assert audit._settle(entries, walked, {}, {}) == (entries, walked)
    got, result = audit._settle(entries, walked, {5: (7, True), 9: (9, False)}, {5: "k5", 9: "k9"})
    assert got == entries[:4] and result == VerifyResult(False, 4, 7, "entry 7 is missing (sealed in k5)", seals[:1])
    broken = VerifyResult(False, 4, 5, "sealed segment k5: its first line is not a seal", seals[:1])
    assert audit._settle(entries[:4], broken, {5: (6, False)}, {5: "k5"}) == (entries[:4], broken)


def test_read_keys_reads_what_read_reads_and_refuses_what_read_refuses(tmp_path):
    store = LocalStore(tmp_path / "s")
    store.write("a/b.json", b"1\n")
    store.write("c.json", b"2" * 40000)  # bigger than one read
    assert store.read_keys(["a/b.json", "c.json", "a/none.json", "nowhere/x.json"]) == [b"1\n", b"2" * 40000,
                                                                                         None, None]
    for bad in ("a/../c.json", "../x", "a/.."):
        with pytest.raises(StoreError, match="invalid store key"):
            store.read_keys([bad])
    store.write("a/d/e.json", b"3\n")
    with pytest.raises(StoreError, match="store object a/d is a folder"):
        store.read_keys(["a/d"])
    assert store.read_in("a/", ["b.json", "none.json"]) == [b"1\n", None]
    assert store.read_in("nowhere/", ["x.json"]) == [None]
    with pytest.raises(StoreError, match="store object a/d is a folder"):
        store.read_in("a/", ["d"])
    for bad in ("../c.json", "..", "d/e.json", ""):
        with pytest.raises(StoreError, match="invalid name"):
            store.read_in("a/", [bad])


def test_the_cli_reports_a_missing_sealed_entry_file_in_one_line(cli_factory):
    cli = cli_factory("entryfiles")
    store = helpers.sealed_log(cli, 1005)
    assert json.loads(cli.ok("audit", "verify", "--format", "json").stdout)["sealed"] == 1000
    store.write("approvals/p-x/bob.json", b'{"kind": "approve", "approver": "bob@example.com", "plan_id": "p-x"}\n')
    proc = cli("audit", "verify")  # a decision no one signed: found by the checks that run beside the child
    assert proc.returncode == 1 and "decision approvals/p-x/bob.json" in proc.stderr
    store.path(entry_key(777)).unlink()
    store.path(entry_key(1003)).write_bytes(b"{}\n")  # later in the log: not the finding
    proc = cli("audit", "verify")
    assert proc.returncode == 1 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert f"audit log broken at entry 777: entry 777 is missing (sealed in {segment_key(1)})" in proc.stderr
    out = json.loads(cli("audit", "verify", "--format", "json").stdout)
    assert (out["ok"], out["first_bad_seq"], out["entries"], out["sealed"]) == (False, 777, 0, 0)


def test_keys_besides_is_list_without_the_named_files(tmp_path):
    """What `audit verify`'s child lists: the keys `list` names, except the sealed entries' files."""
    store = LocalStore(tmp_path / "s")
    for key in ("e/1.json", "e/2.json", "e/x.txt", "e/sub/3.json", "e/.tmp-1.part", "other/4.json"):
        store.write(key, b"{}\n")
    (tmp_path / "s" / "e" / "linked").symlink_to(tmp_path / "s" / "other")  # a link to a folder: not followed
    (tmp_path / "s" / "e" / "file-link.json").symlink_to(tmp_path / "s" / "other" / "4.json")
    assert sorted(store.keys_besides("e/", set())) == store.list("e/")
    assert sorted(store.keys_besides("e/", {"1.json", "2.json", "none.json"})) == [
        "e/file-link.json", "e/sub/3.json", "e/x.txt"]
    assert store.keys_besides("nowhere/", {"1.json"}) == []
    for n in range(300):  # many others (a log not sealed): listed by scandir, the same keys
        store.write(f"e/many-{n:03d}.json", b"{}\n")
    assert sorted(store.keys_besides("e/", {"1.json"})) == [k for k in store.list("e/") if k != "e/1.json"]
    with pytest.raises(StoreError, match="is a file"):
        store.keys_besides("e/x.txt/", set())


def test_a_sealed_entry_replaced_by_a_folder_is_found(store):
    sealed_log(store)
    path = store.path(entry_key(6))
    path.unlink()
    path.mkdir()
    with pytest.raises(StoreError, match="store object audit/entries/000000000006.json is a folder"):
        read_log(store)


# -- the sealed entry files shared out between the child and this process ------------------------------------------
def test_a_child_that_dies_holding_a_share_leaves_it_to_this_process(store, monkeypatch):
    """The child takes a group of segments, then dies before reporting: this process compares that group too, so
    a changed sealed entry file in it is still found (it went unchecked when the child's work was redone here after
    the walk had emptied the segments it read)."""
    sealed_log(store, 13)  # segments 1-4, 5-8, 9-12: three groups
    parent = os.getpid()
    real = entryfiles.mismatches

    def dies_in_child(lines_of: Any, files: Any) -> Any:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(lines_of, files)

    monkeypatch.setattr(entryfiles, "mismatches", dies_in_child)
    for seq in (2, 6, 10):  # whichever group the child took when it died
        path = store.path(entry_key(seq))
        original = path.read_bytes()
        path.write_bytes(original.replace(b'"p-1"', b'"p-2"'))
        assert chain(store)[:2] == (False, seq)
        path.write_bytes(original)
    assert chain(store) == (True, None, "")


def test_shares_go_to_one_taker_each_and_settle_compares_every_group(forks):
    """Two processes taking tokens at once get disjoint groups that cover every segment; `settle` compares here
    what the child did not report."""
    shares = entryfiles.Shares(list(range(1, 3001)))  # more segments than tokens: groups of 6
    assert len(shares.groups) == 500 and shares.groups[0] == [1, 2, 3, 4, 5, 6]

    def take() -> Iterator[list[list[int]]]:
        yield list(shares.take())

    with entryfiles.Child(take) as child:
        here = list(shares.take(helper=True))
        there = child.next()
    assert sorted(first for group in here + there for first in group) == list(range(1, 3001))
    shares.close()

    lines = {first: [f"{first}\n".encode()] for first in (1, 2, 3)}
    files = {"000000000001.json": b"1\n", "000000000002.json": b"x\n", "000000000003.json": None}
    read: list[list[str]] = []

    def reader(names: list[str]) -> list[bytes | None]:
        read.append(names)
        return [files[name] for name in names]

    shares = entryfiles.Shares([1, 2, 3])
    assert shares.groups == [[1], [2], [3]] and list(shares.take()) == [[1], [2], [3]]  # the child took all three
    dead = type("Died", (), {"next": lambda self: ({1}, {})})()  # and reported group [1] only
    assert shares.settle(dead, lines.__getitem__, reader) == {2: (2, False), 3: (3, True)}
    assert read == [["000000000002.json"], ["000000000003.json"]]  # the two it did not report, compared here


def test_line_count_is_the_number_of_segment_lines():
    for raw in (b"", b"seal", b"seal\n", b"seal\na\n", b"seal\na\nb", b"seal\na\r\nb\n", b"seal\na\rb\n\n",
                b"seal\n\n\n", b"seal\r\na\n"):
        assert entryfiles.line_count(raw) == len(entryfiles.segment_lines(raw)), raw
