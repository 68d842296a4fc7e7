"""The apply lock per app/env: one holder, a clear reason for everybody else, release and force-unlock."""
from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta, timezone

import pytest

from tfreview.errors import EXIT_POLICY, BadInput, NotFound, PolicyRefusal
from tfreview.store.locks import acquire_lock, force_unlock, holder_alive, read_lock, release_lock
from tfreview.store.local import LocalStore

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


def test_second_acquirer_is_refused_with_owner_and_age(store):
    acquire_lock(store, "shop", "qa", "alice", "p-1", now=T0)
    with pytest.raises(PolicyRefusal) as info:
        acquire_lock(store, "shop", "qa", "bob", "p-2", now=T0 + timedelta(minutes=7))
    assert info.value.exit_code == EXIT_POLICY
    assert info.value.message.startswith("apply in progress for shop/qa by alice since 2026-11-26 10:00:00Z (7 min ago")
    assert "plan p-1" in info.value.message
    assert info.value.hint == "wait, or `tfreview unlock --app shop --env qa` if it is stuck"


def test_locks_are_per_app_and_env(store):
    acquire_lock(store, "shop", "qa", "alice", "p-1")
    acquire_lock(store, "shop", "prod", "alice", "p-2")
    acquire_lock(store, "blog", "qa", "alice", "p-3")


def test_released_lock_can_be_taken_again(store):
    lock = acquire_lock(store, "shop", "qa", "alice", "p-1")
    assert read_lock(store, "shop", "qa") == lock
    assert release_lock(store, lock)
    assert read_lock(store, "shop", "qa") is None
    acquire_lock(store, "shop", "qa", "bob", "p-2")


def test_force_unlock_returns_the_previous_lock_and_old_holder_cannot_release_the_new_one(store):
    stuck = acquire_lock(store, "shop", "qa", "alice", "p-1")
    previous = force_unlock(store, "shop", "qa", "carol")
    assert previous.owner == "alice" and previous.plan_id == "p-1"
    fresh = acquire_lock(store, "shop", "qa", "bob", "p-2")
    assert release_lock(store, stuck) is False  # the old holder wakes up: bob's lock stays
    assert read_lock(store, "shop", "qa") == fresh


def test_force_unlock_without_a_lock_says_so(store):
    with pytest.raises(NotFound) as info:
        force_unlock(store, "shop", "qa", "carol")
    assert "no apply lock is held for shop/qa" in info.value.message


def test_lock_of_a_dead_process_on_this_host_is_reported_as_interrupted(store):
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_take, args=(str(store.root), "ghost", None))
    proc.start()
    proc.join(30)
    lock = read_lock(store, "shop", "qa")
    assert lock is not None and lock.pid == proc.pid and holder_alive(lock) is False
    with pytest.raises(PolicyRefusal) as info:
        acquire_lock(store, "shop", "qa", "bob", "p-2")
    assert "its process is gone: the apply was interrupted" in info.value.message
    assert holder_alive(acquire_lock(store, "blog", "qa", "bob", "p-3")) is True


def test_bad_names_cannot_escape_the_lock_folder(store):
    with pytest.raises(BadInput):
        acquire_lock(store, "../etc", "qa", "alice", "p-1")


def _take(root: str, owner: str, results) -> None:
    try:
        acquire_lock(LocalStore(root), "shop", "qa", owner, f"plan-of-{owner}")
        outcome = "won"
    except PolicyRefusal as exc:
        outcome = exc.message
    if results is not None:
        results.put((owner, outcome))


def test_twenty_concurrent_acquirers_exactly_one_wins(store):
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_take, args=(str(store.root), f"u{i}", results)) for i in range(20)]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    winners = [o for o, r in outcomes.items() if r == "won"]
    assert len(winners) == 1
    assert read_lock(store, "shop", "qa").owner == winners[0]
    for owner, reason in outcomes.items():
        if owner != winners[0]:
            assert reason.startswith(f"apply in progress for shop/qa by {winners[0]} since "), reason


def test_lock_on_the_s3_store_has_exactly_one_winner(mock_s3_store):
    import threading

    outcomes: dict[str, str] = {}

    def take(owner: str) -> None:
        try:
            acquire_lock(mock_s3_store, "shop", "qa", owner, "p")
            outcomes[owner] = "won"
        except PolicyRefusal as exc:
            outcomes[owner] = exc.message

    threads = [threading.Thread(target=take, args=(f"u{i}",)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r == "won" for r in outcomes.values()) == 1
    lock = read_lock(mock_s3_store, "shop", "qa")
    assert outcomes[lock.owner] == "won" and release_lock(mock_s3_store, lock)
    assert read_lock(mock_s3_store, "shop", "qa") is None
