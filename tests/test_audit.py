"""The hash-chained audit log: tamper evidence, crash window, concurrent writers."""
from __future__ import annotations

import json
import multiprocessing
import threading
from collections import Counter
from datetime import datetime

import pytest

from tfreview.errors import StoreError
from tfreview.store.audit import (
    GENESIS_HASH,
    HEAD_KEY,
    append_event,
    entry_hash,
    entry_key,
    iter_entries,
    verify_chain,
)
from tfreview.store.base import dumps
from tfreview.store.local import LocalStore


@pytest.fixture(params=[1, 4], ids=["reads-one-by-one", "reads-in-parallel"])
def store(tmp_path, request):
    """A local store; verify and listing read entries one by one (as on disk) or 4 at a time (as on S3)."""
    local = LocalStore(tmp_path / "store")
    local.read_workers = request.param
    return local


def small_log(store, n: int = 5) -> list[dict]:
    events = ["package", "plan", "approve", "apply-start", "apply-end", "rollout", "unlock", "break-glass"]
    return [
        append_event(store, events[i % len(events)], f"user{i}@example.com", app="shop", env="qa",
                     version=f"1.{i}.0", plan_id=f"p-{i}", details={"step": i, "comment": "ünïcode ok"})
        for i in range(n)
    ]


def test_appended_events_form_a_verified_chain(store):
    entries = small_log(store, 4)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert entries[0]["prev_hash"] == GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(entries, entries[1:], strict=False))
    assert list(iter_entries(store)) == entries
    assert verify_chain(store).ok and verify_chain(store).count == 4
    assert entries[2]["event"] == "approve" and entries[2]["actor"] == "user2@example.com"
    assert entries[2]["app"] == "shop" and entries[2]["details"] == {"step": 2, "comment": "ünïcode ok"}


def test_empty_log_verifies(store):
    result = verify_chain(store)
    assert result.ok and result.count == 0


def test_secrets_never_reach_the_audit_log(store):
    entry = append_event(store, "apply-end", "ci", details={"db_password": "hunter2", "nested": {"api_token": "x"},
                                                            "outcome": "ok"})
    raw = store.read(entry_key(entry["seq"])).decode()
    assert "hunter2" not in raw and '"x"' not in raw
    assert entry["details"]["outcome"] == "ok"


def test_every_one_byte_change_of_every_entry_is_found(store):
    small_log(store, 4)
    for seq in range(1, 5):
        key = entry_key(seq)
        original = store.read(key)
        for pos in range(len(original)):
            for flip in (0x01, 0x20):
                mutated = bytearray(original)
                mutated[pos] ^= flip
                store.write(key, bytes(mutated))
                result = verify_chain(store)
                assert not result.ok, f"byte {pos} of entry {seq} changed (^{flip:#x}) and verify said ok"
                assert result.first_bad_seq == seq, result
        store.write(key, original)
    assert verify_chain(store).ok


def test_rewriting_an_entry_with_a_fresh_hash_breaks_the_chain_after_it(store):
    small_log(store, 4)
    forged = dict(store_json(store, 2), actor="mallory")
    forged["hash"] = entry_hash(forged)
    store.write(entry_key(2), dumps(forged))
    result = verify_chain(store)
    assert not result.ok and result.first_bad_seq == 3 and "does not chain" in result.reason


def test_deleting_any_entry_is_found(store):
    small_log(store, 5)
    for seq in range(1, 6):
        key = entry_key(seq)
        original = store.read(key)
        store.delete(key)
        result = verify_chain(store)
        assert not result.ok and result.first_bad_seq == seq, result
        assert f"entry {seq} is missing" in result.reason
        store.create(key, original)
    assert verify_chain(store).ok


def test_swapping_any_two_entries_is_found(store):
    small_log(store, 5)
    for a in range(1, 6):
        for b in range(a + 1, 6):
            ka, kb = entry_key(a), entry_key(b)
            da, db = store.read(ka), store.read(kb)
            store.write(ka, db)
            store.write(kb, da)
            result = verify_chain(store)
            assert not result.ok and result.first_bad_seq == a, (a, b, result)
            store.write(ka, da)
            store.write(kb, db)
    assert verify_chain(store).ok


def test_a_head_that_does_not_match_its_entry_is_found(store):
    small_log(store, 3)
    store.write(HEAD_KEY, dumps({"seq": 3, "hash": "f" * 64}))
    result = verify_chain(store)
    assert not result.ok and result.first_bad_seq == 3


def store_json(store, seq):
    return json.loads(store.read(entry_key(seq)))


def crash_after_creating_entry(store, event: str) -> dict:
    """What a writer killed between `create(entry)` and advancing the head leaves behind."""
    head: dict = json.loads(store.read(HEAD_KEY)) if store.exists(HEAD_KEY) else {"seq": 0, "hash": GENESIS_HASH}
    entry = {"seq": head["seq"] + 1, "time": "2026-11-26T10:00:00Z", "event": event, "actor": "ghost",
             "prev_hash": head["hash"]}
    entry["hash"] = entry_hash(entry)
    store.create(entry_key(entry["seq"]), dumps(entry))
    return entry


def test_entry_written_before_a_crash_is_adopted_by_the_next_writer(store):
    small_log(store, 2)
    orphan = crash_after_creating_entry(store, "apply-start")
    assert verify_chain(store).ok and verify_chain(store).count == 3  # the head lags, the chain holds
    nxt = append_event(store, "apply-end", "alice")
    assert nxt["seq"] == 4 and nxt["prev_hash"] == orphan["hash"]
    assert [e["event"] for e in iter_entries(store)][-2:] == ["apply-start", "apply-end"]
    assert verify_chain(store).ok and verify_chain(store).count == 4


def test_crash_before_the_very_first_head_is_adopted(store):
    crash_after_creating_entry(store, "package")
    assert append_event(store, "plan", "alice")["seq"] == 2
    assert verify_chain(store).ok


def test_append_refuses_to_extend_a_log_whose_next_entry_is_forged(store):
    small_log(store, 2)
    store.create(entry_key(3), dumps({"seq": 3, "prev_hash": "0" * 64, "hash": "1" * 64}))
    with pytest.raises(StoreError) as info:
        append_event(store, "plan", "alice")
    assert "audit verify" in info.value.hint


def _append_many(root: str, writer: str, n: int) -> None:
    store = LocalStore(root)
    for i in range(n):
        append_event(store, "plan", writer, plan_id=f"{writer}-{i}")


def _assert_nothing_lost(store, writers: list[str], n: int) -> None:
    seen = Counter(e["plan_id"] for e in iter_entries(store))
    assert seen == Counter({f"{w}-{i}": 1 for w in writers for i in range(n)})
    result = verify_chain(store)
    assert result.ok and result.count == len(writers) * n, result


def test_ten_concurrent_threads_lose_nothing(store):
    writers = [f"t{i}" for i in range(10)]
    threads = [threading.Thread(target=_append_many, args=(str(store.root), w, 5)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _assert_nothing_lost(store, writers, 5)


def test_ten_concurrent_processes_lose_nothing(store):
    ctx = multiprocessing.get_context("fork")
    writers = [f"p{i}" for i in range(10)]
    procs = [ctx.Process(target=_append_many, args=(str(store.root), w, 5)) for w in writers]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 10
    _assert_nothing_lost(store, writers, 5)


def test_audit_log_on_the_s3_store_survives_concurrent_writers_and_finds_tampering(mock_s3_store):
    writers = [f"s{i}" for i in range(5)]
    threads = [threading.Thread(target=lambda w=w: [append_event(mock_s3_store, "plan", w, plan_id=f"{w}-{i}")
                                                         for i in range(3)]) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _assert_nothing_lost(mock_s3_store, writers, 3)
    original = mock_s3_store.read(entry_key(7))
    mock_s3_store.write(entry_key(7), original.replace(b'"plan"', b'"PLAN"'))
    result = verify_chain(mock_s3_store)
    assert not result.ok and result.first_bad_seq == 7


def test_entries_can_be_filtered_by_app_env_person_event_plan_and_time(store):
    from datetime import timedelta

    from tfreview.store.audit import filter_entries

    entries = small_log(store, 6)
    assert [e["seq"] for e in filter_entries(entries, event="approve")] == [3]
    assert [e["seq"] for e in filter_entries(entries, person=" USER4@example.com")] == [5]
    assert [e["seq"] for e in filter_entries(entries, version="1.1.0", app="shop", env="qa")] == [2]
    assert filter_entries(entries, env="prod") == [] and filter_entries(entries, plan_id="p-0") == [entries[0]]
    first = datetime.fromisoformat(entries[0]["time"].replace("Z", "+00:00"))
    assert len(filter_entries(entries, since=first, until=first + timedelta(days=1))) == 6
    assert filter_entries(entries, until=first - timedelta(seconds=1)) == []
