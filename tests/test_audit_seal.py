"""Sealed segments of the audit log: `audit verify` reads one object and checks one signature per 1,000 entries,
and still finds every one-byte change, deletion, reordering and truncation, and every forged seal.

Most tests shrink the segment to 4 entries (the code reads tfreview.store.audit.SEGMENT_SIZE at call time); the CLI
test at the end seals real 1,000-entry segments. Signatures are made by ssh-keygen with throw-away keys.
"""
from __future__ import annotations

import json
from typing import Any

import pytest

from tests import helpers

from tfreview.errors import StoreError
from tfreview.store import audit
from tfreview.store.audit import append_event, entry_key, read_log, segment_key
from tfreview.store.base import dumps
from tfreview.store.local import LocalStore
from tfreview.trust.verify import seal_log, verify_log

SIZE = 4


@pytest.fixture
def small_segments(monkeypatch):
    monkeypatch.setattr(audit, "SEGMENT_SIZE", SIZE)


@pytest.fixture
def store(tmp_path, small_segments) -> LocalStore:
    return LocalStore(tmp_path / "store")


def fill(ctx: Any, n: int) -> None:
    for i in range(n):
        ctx.audit("approve", app="shop", env="qa", plan_id=f"p-{i}")


def verdict(store: Any, *, full: bool = False) -> tuple[bool, int | None, str]:
    """(ok, first bad seq, why) of the whole `audit verify`: the chain, then the signatures."""
    entries, result = read_log(store, full=full)
    if not result.ok:
        return False, result.first_bad_seq, result.reason
    seq, why = verify_log(store, entries, result.seals, full=full)
    return not why, seq, why


def sealed_log(store: Any, n: int = 11) -> Any:
    """A log of `n` entries written by bob through the use-case Context (which seals each segment it completes)."""
    ctx = helpers.context_for(store, "bob@example.com")
    fill(ctx, n - len(list(audit.iter_entries(store))))
    return ctx


def segment_lines(store: Any, first: int) -> list[bytes]:
    return store.read(segment_key(first)).splitlines(keepends=True)


def test_the_writer_who_completes_a_segment_seals_it(store):
    sealed_log(store, 11)  # the policy's own entry, then 10: segments 1-4 and 5-8 complete, 9-11 the tail
    assert store.list("audit/segments/") == [segment_key(1), segment_key(5)]
    seal = json.loads(segment_lines(store, 5)[0])
    assert (seal["kind"], seal["first"], seal["last"], seal["sealer"]) == ("audit-seal", 5, 8, "bob@example.com")
    assert seal["signature"].startswith("-----BEGIN SSH SIGNATURE-----")
    # The segment holds exactly the entry files' bytes, in order.
    assert b"".join(segment_lines(store, 5)[1:]) == b"".join(store.read(entry_key(s)) for s in range(5, 9))
    entries, result = read_log(store)
    assert result.ok and result.count == 11 and [s["first"] for s in result.seals] == [1, 5]
    assert [e["seq"] for e in entries] == list(range(1, 12))
    assert verdict(store) == (True, None, "")


def test_verify_checks_one_signature_per_segment_and_each_entry_of_the_tail(store, monkeypatch):
    sealed_log(store, 11)
    import tfreview.trust.verify as trust_verify

    checked: list[str] = []
    real = trust_verify._signed_by
    monkeypatch.setattr(trust_verify, "_signed_by",
                        lambda doc, *a: checked.append(doc.get("kind") or f"entry {doc['seq']}") or real(doc, *a))
    assert verdict(store)[0]
    assert checked == ["audit-seal", "audit-seal", "entry 9", "entry 10", "entry 11"]
    checked.clear()
    assert verdict(store, full=True)[0]
    assert checked == ["audit-seal", "audit-seal", *(f"entry {s}" for s in range(1, 12))]


def test_every_one_byte_change_of_a_segment_is_found(store):
    sealed_log(store, 8)
    path = store.path(segment_key(5))
    original = path.read_bytes()
    for at in range(0, len(original), 7):  # every 7th byte: seal line and entries alike
        changed = bytearray(original)
        changed[at] = ord("A") if changed[at] != ord("A") else ord("B")
        path.write_bytes(bytes(changed))
        ok, seq, why = verdict(store)
        assert not ok, f"byte {at} changed and verify passed"
        assert seq == 5 or "seal" in why, why
    path.write_bytes(original)
    assert verdict(store)[0]


def test_reordered_or_removed_lines_of_a_segment_are_found(store):
    sealed_log(store, 8)
    path = store.path(segment_key(5))
    seal, *lines = segment_lines(store, 5)
    for body in ([lines[1], lines[0], *lines[2:]], lines[:-1], [*lines, lines[-1]]):
        path.write_bytes(seal + b"".join(body))
        ok, seq, why = verdict(store)
        assert not ok and seq == 5 and "not the bytes its seal names" in why


def test_a_segment_whose_entry_nests_too_deep_is_refused_not_a_crash(small_segments):
    """The segment's bytes are parsed before its seal's signature is checked: an entry nesting deeper than
    jsontext.MAX_NESTING is 'not JSON' there, never a recursion error later (canonical JSON, the signature check)."""
    from tfreview.jsontext import MAX_NESTING

    assert audit.parse_segment(b"{}\n" + b'{"a":' * (MAX_NESTING - 2) + b"1" + b"}" * (MAX_NESTING - 2) + b"\n")[1] \
        != audit._UNPARSABLE  # as deep as it may be (inside the list of entries)
    deep = b'{"a":' * MAX_NESTING + b"1" + b"}" * MAX_NESTING + b"\n"
    assert audit.parse_segment(b"{}\n" + deep)[1] is audit._UNPARSABLE
    import hashlib

    seal = {"kind": "audit-seal", "first": 1, "last": SIZE, "prev_hash": audit.GENESIS_HASH,
            "entries_sha256": hashlib.sha256(deep).hexdigest()}  # bytes as its (forged) seal names them
    assert audit.check_segment(dumps(seal) + deep, 1, audit.GENESIS_HASH) == "its entries are not JSON"


def test_a_forged_seal_over_rewritten_entries_is_found(store):
    """Whoever can write the store but holds no policy key rewrites an entry inside a segment and recomputes
    everything a hash protects: the seal's signature no longer matches."""
    sealed_log(store, 8)
    seal_line, *lines = segment_lines(store, 5)
    seal = json.loads(seal_line)
    forged = json.loads(lines[0])
    forged["plan_id"] = "someone-elses-plan"
    forged["hash"] = audit.entry_hash(forged)
    entries = [forged]
    for line in lines[1:]:
        entry = json.loads(line)
        entry["prev_hash"] = entries[-1]["hash"]
        entry["hash"] = audit.entry_hash(entry)
        entries.append(entry)
    body = b"".join(dumps(e) for e in entries)
    seal.update(audit.seal_statement(5, seal["prev_hash"], body, entries[-1]["hash"]))
    store.write(segment_key(5), dumps(seal) + body)
    for seq, entry in enumerate(entries, start=5):  # the entry files too, and the head
        store.write(entry_key(seq), dumps(entry))
    store.write(audit.HEAD_KEY, dumps({"seq": 8, "hash": entries[-1]["hash"]}))
    ok, seq, why = verdict(store)
    assert not ok and seq == 5 and "the seal of entries 5-8" in why and "signature" in why


def test_a_seal_signed_by_a_key_outside_the_policy_is_refused(store):
    ctx = sealed_log(store, 8)
    store.delete(segment_key(5))
    from tfreview.usecases.context import Context

    stranger = Context(ctx.settings, store, "bob@example.com", identity=ctx.identity,
                       signer=helpers.signer("mallory@example.com"), policy=ctx.policy)
    assert [s["first"] for s in seal_log(stranger)] == [5]
    ok, seq, why = verdict(store)
    assert not ok and seq == 5 and "not bob@example.com" in why


def test_a_changed_or_deleted_entry_file_under_a_seal_is_found_on_the_local_store(store):
    sealed_log(store, 8)
    path = store.path(entry_key(6))
    original = path.read_bytes()
    path.write_bytes(original.replace(b'"p-', b'"q-'))
    ok, seq, why = verdict(store)
    assert (ok, seq) == (False, 6) and "differs from its sealed copy" in why
    path.unlink()
    ok, seq, why = verdict(store)
    assert (ok, seq) == (False, 6) and "entry 6 is missing" in why
    path.write_bytes(original)
    assert verdict(store)[0]


def test_where_reads_are_round_trips_sealed_entry_files_are_read_only_by_a_full_verify(store, monkeypatch):
    """As on S3: the segments and the tail are read, not the 1,000 entry objects a seal covers; `--full` reads
    (and compares) those too."""
    sealed_log(store, 11)
    store.read_workers = 4
    reads: list[str] = []
    real_read = store.read
    monkeypatch.setattr(store, "read", lambda key: reads.append(key) or real_read(key))
    assert verdict(store)[0]
    entry_reads = sorted(k for k in reads if k.startswith("audit/entries/"))
    assert entry_reads == [entry_key(s) for s in (9, 10, 11)]
    store.path(entry_key(6)).write_bytes(store.path(entry_key(6)).read_bytes().replace(b'"p-', b'"q-'))
    assert verdict(store)[0]  # not read: on S3 the bucket policy keeps entry objects create-only
    ok, seq, why = verdict(store, full=True)
    assert (ok, seq) == (False, 6) and "differs from its sealed copy" in why


def test_a_deleted_segment_only_costs_speed(store):
    sealed_log(store, 11)
    store.delete(segment_key(1))
    entries, result = read_log(store)
    assert result.ok and result.count == 11 and [s["first"] for s in result.seals] == [5]
    assert verdict(store)[0]
    store.read_workers = 4  # gaps between segments are read by key where the listing starts after the last one
    assert verdict(store)[0]


def test_truncation_is_found_with_seals(store):
    sealed_log(store, 11)
    for seq in (9, 10, 11):
        store.delete(entry_key(seq))
    ok, seq, why = verdict(store)
    assert (ok, seq) == (False, 9) and "the head says the log has 11 entries" in why
    store.delete(segment_key(5))
    for seq in (5, 6, 7, 8):
        store.delete(entry_key(seq))
    ok, seq, why = verdict(store)
    assert (ok, seq) == (False, 5) and "missing" in why


def test_a_misplaced_or_stray_segment_object_is_found(store):
    sealed_log(store, 8)
    store.write("audit/segments/000000000005.jsonl.bak", store.read(segment_key(5)))
    assert verdict(store)[:2] == (False, 1)
    store.delete("audit/segments/000000000005.jsonl.bak")
    store.write(segment_key(9), store.read(segment_key(5)))  # a copy under the next segment's name
    ok, seq, why = verdict(store)
    assert (ok, seq) == (False, 9) and "covers entries 5-8, not 9-12" in why


def test_sealing_refuses_a_segment_whose_entries_do_not_verify(store):
    ctx = helpers.context_for(store, "bob@example.com")
    fill(ctx, 2)
    append_event(store, "approve", "carol@example.com", policy_version=1, plan_id="unsigned")  # seq 4, no signature
    fill(ctx, 1)  # seq 5 is not a segment end: nothing sealed yet, so entry 4 is in segment 1-4
    assert store.list("audit/segments/") == []
    with pytest.raises(StoreError) as info:
        seal_log(ctx)
    assert "entry 4 (approve by carol@example.com) is not signed: segment 1 is not sealed" in info.value.message
    assert store.list("audit/segments/") == []
    ok, seq, why = verdict(store)
    assert (ok, seq) == (False, 4) and "is not signed" in why


def test_the_s3_store_reads_segments_and_lists_only_the_tail(mock_s3_store, small_segments):
    sealed_log(mock_s3_store, 11)
    assert mock_s3_store.list("audit/segments/") == [segment_key(1), segment_key(5)]
    assert mock_s3_store.list("audit/entries/", start_after=entry_key(8)) == [entry_key(s) for s in (9, 10, 11)]
    assert verdict(mock_s3_store) == (True, None, "")
    mock_s3_store.write(segment_key(5), mock_s3_store.read(segment_key(5)).replace(b'"p-', b'"q-'))
    ok, seq, why = verdict(mock_s3_store)
    assert (ok, seq) == (False, 5) and "not the bytes its seal names" in why


# -- the CLI, real 1,000-entry segments ------------------------------------------------------------------------
def test_audit_seal_and_verify_on_a_log_of_two_thousand_entries(cli_factory):
    cli = cli_factory("seal")
    cli.ensure_policy()
    store = LocalStore(cli.store)
    bob = helpers.InProcessSigner(helpers.signing_key("bob@example.com"))  # 2,000 ssh-keygen runs took 15 s
    for i in range(2010 - len(list(audit.iter_entries(store)))):  # written as an older tfreview did: no seals
        append_event(store, "approve", "bob@example.com", signer=bob, policy_version=1, app="shop", env="qa",
                     plan_id=f"p-{i}")
    before = json.loads(cli.ok("audit", "verify", "--format", "json").stdout)
    assert (before["ok"], before["entries"], before["sealed"]) == (True, 2010, 0)

    out = cli.ok("audit", "seal", user="carol@example.com").stdout
    assert "sealed 2 segment(s), entries 1-2000; the last 10 of 2010 entries" in out
    assert "nothing to seal" in cli.ok("audit", "seal").stdout
    after = json.loads(cli.ok("audit", "verify", "--format", "json").stdout)
    assert (after["ok"], after["entries"], after["sealed"]) == (True, 2010, 2000)
    assert "2000 of them in 2 sealed segment(s)" in cli.ok("audit", "verify").stdout
    assert "and every entry" in cli.ok("audit", "verify", "--full").stdout

    entry = store.path(entry_key(1234))
    original = entry.read_bytes()
    entry.write_bytes(original.replace(b"bob@", b"bo8@"))
    proc = cli("audit", "verify")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "audit log broken at entry 1234" in proc.stderr
    assert "differs from its sealed copy" in proc.stderr
    entry.write_bytes(original)
    segment = store.path(segment_key(1001))
    segment.write_bytes(segment.read_bytes().replace(b'"p-1500"', b'"p-1501"'))
    proc = cli("audit", "verify", "--format", "json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["first_bad_seq"] == 1001
