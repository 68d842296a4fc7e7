"""`tfreview history` answers from an append-only index in the store, kept current through the audit log and
rebuilt from the records when it is missing or no longer matches the log."""
from __future__ import annotations

import pytest

from tfreview.usecases.history import INDEX_PREFIX, history, load_rows
from tfreview.store.audit import append_event
from tfreview.store.base import dumps
from tfreview.store.local import LocalStore


def _plan(store: LocalStore, n: int, *, kind: str = "deploy", release_id: str | None = None,
          app: str = "shop", env: str = "qa") -> str:
    """A plan record as `tfreview plan` stores it (the fields history reads) and its audit entry."""
    pid = f"{app}-{env}-20261101-0000{n:02d}-{n:04x}"
    store.create(f"plans/{pid}/record.json", dumps({
        "kind": "plan", "id": pid, "plan_kind": kind, "release_id": release_id, "app": app, "env": env,
        "version": f"1.{n}.0", "created_at": f"2026-11-01T00:00:{n:02d}Z", "planner": "alice@example.com",
        "summary": {"summary_line": "Plan: 0 to add, 1 to change, 0 to destroy."}}))
    append_event(store, "plan", "alice@example.com", app=app, env=env, plan_id=pid)
    return pid


def _apply(store: LocalStore, pid: str, outcome: str = "applied") -> None:
    store.create(f"applies/{pid}/start.json", dumps({"by": "carol@example.com", "break_glass": None}))
    append_event(store, "apply-start", "carol@example.com", plan_id=pid)
    store.create(f"applies/{pid}/result.json", dumps({"outcome": outcome}))
    append_event(store, "apply-end", "carol@example.com", plan_id=pid)


def _segments(store: LocalStore) -> list[str]:
    return [k.rsplit("/", 1)[1] for k in store.list(INDEX_PREFIX)]


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def test_history_builds_the_index_once_then_appends_what_the_audit_log_says_changed(store):
    first = _plan(store, 1)
    assert [r["outcome"] for r in history(store)] == ["planned"]
    assert _segments(store) == ["000000000001-full.jsonl"]
    _apply(store, first)
    second = _plan(store, 2)
    rows = history(store)
    assert [(r["id"], r["outcome"]) for r in rows] == [(second, "planned"), (first, "applied")]
    assert _segments(store) == ["000000000001-full.jsonl", "000000000004-delta.jsonl"]
    full = store.read(f"{INDEX_PREFIX}000000000001-full.jsonl")
    history(store)  # current: nothing written
    assert len(_segments(store)) == 2 and store.read(f"{INDEX_PREFIX}000000000001-full.jsonl") == full


def test_a_missing_or_unreadable_index_is_rebuilt_from_the_records(store):
    pid = _plan(store, 1)
    history(store)
    for key in store.list(INDEX_PREFIX):
        store.delete(key)
    _apply(store, pid)
    assert history(store)[0]["outcome"] == "applied"
    store.write(f"{INDEX_PREFIX}{99:012d}-full.jsonl", b"not json\n")
    assert history(store)[0]["outcome"] == "applied"


def test_an_index_the_audit_log_no_longer_matches_is_not_trusted(store):
    """The index is never the source of truth: a log rewritten under it (another hash at the index's position)
    makes the reader rebuild from the records instead of serving the old rows."""
    pid = _plan(store, 1)
    history(store)
    key = f"{INDEX_PREFIX}000000000001-full.jsonl"
    header, row = store.read(key).splitlines()
    store.write(key, header + b"\n" + row.replace(b'"planned"', b'"applied"') + b"\n")
    assert history(store)[0]["outcome"] == "applied"  # same log: the cache is what it is...
    for k in store.list("audit/"):  # a log started afresh: entry 1 is another entry
        store.delete(k)
    append_event(store, "plan", "alice@example.com", plan_id=pid)
    assert history(store)[0]["outcome"] == "planned"  # ...but a log that moved under it means a rebuild
    assert history(store)[0]["id"] == pid


def test_limit_and_offset_page_newest_first(store):
    ids = [_plan(store, n) for n in range(1, 8)]
    assert [r["id"] for r in history(store, limit=3)] == ids[::-1][:3]
    assert [r["id"] for r in history(store, limit=3, offset=3)] == ids[::-1][3:6]
    assert [r["id"] for r in history(store, limit=3, offset=6)] == ids[:1]


def test_a_release_is_one_row_with_its_traffic_steps_under_it(store):
    deploy = _plan(store, 1)
    _apply(store, deploy)
    steps = [_plan(store, n, kind="shift", release_id=deploy) for n in (2, 3)]
    store.create(f"rollouts/shop/qa/{deploy}.json", dumps({"outcome": "succeeded", "finished_at": "x"}))
    append_event(store, "rollout", "carol@example.com", plan_id=deploy)
    alone = _plan(store, 4, kind="rollback")
    rows = history(store, releases=True)
    assert [r["id"] for r in rows] == [alone, deploy]
    assert [s["id"] for s in rows[1]["steps"]] == steps and rows[1]["release"]["outcome"] == "succeeded"
    (one,) = history(store, release=deploy)
    assert one["id"] == deploy and len(one["steps"]) == 2
    assert len(load_rows(store)) == 4


def test_history_of_an_unknown_release_says_so(store):
    from tfreview.errors import NotFound

    _plan(store, 1)
    with pytest.raises(NotFound, match="no release 'nope'"):
        history(store, release="nope")



def test_audit_log_pages_from_a_time_and_a_cursor_without_reading_the_whole_log(store, monkeypatch):
    from datetime import datetime

    import tfreview.store.audit as audit
    from tfreview.store.audit_page import page

    for n in range(1, 41):
        append_event(store, "plan" if n % 2 else "approve", "alice@example.com", plan_id=f"p{n}")
    at_25 = datetime.fromisoformat(audit.load_entry(store, 25)["time"].replace("Z", "+00:00"))
    reads: list[int] = []
    load = audit.load_entry
    monkeypatch.setattr(audit, "load_entry", lambda s, seq: reads.append(seq) or load(s, seq))
    first = page(store, since=at_25, limit=3, event="plan")
    assert [e["seq"] for e in first.entries] == [25, 27, 29] and first.next_after == 29
    assert min(reads[6:]) >= 25  # after the binary search (a few probes) nothing before the page is read
    last = page(store, since=at_25, after=first.next_after, limit=10, event="plan")
    assert [e["seq"] for e in last.entries] == [31, 33, 35, 37, 39] and last.next_after is None


def test_a_plan_whose_record_lands_after_its_audit_entry_is_not_lost_and_a_late_outcome_is_seen(store):
    """`plan` appends its audit entry before the record, `apply` its apply-end entry before the result: a reader
    in between must neither drop the plan for good nor keep it without an outcome."""
    first = _plan(store, 1)
    history(store)
    pid = "shop-qa-20261101-000002-0002"
    append_event(store, "plan", "alice@example.com", app="shop", env="qa", plan_id=pid)
    assert [r["id"] for r in history(store)] == [first]  # its record is not there yet
    store.create(f"plans/{pid}/record.json", dumps({
        "kind": "plan", "id": pid, "plan_kind": "deploy", "app": "shop", "env": "qa", "version": "1.2.0",
        "created_at": "2026-11-01T00:00:02Z", "planner": "alice@example.com", "summary": {}}))
    assert [r["id"] for r in history(store)] == [pid, first]
    store.create(f"applies/{pid}/start.json", dumps({"by": "carol@example.com", "break_glass": None}))
    append_event(store, "apply-start", "carol@example.com", plan_id=pid)
    append_event(store, "apply-end", "carol@example.com", plan_id=pid)
    assert history(store)[0]["outcome"] == "interrupted"  # no result yet, no lock
    store.create(f"applies/{pid}/result.json", dumps({"outcome": "applied"}))
    assert history(store)[0]["outcome"] == "applied"
