"""Concurrent writers: packagers of one version with the same content all succeed, and the latest-plan pointer
moves only forward (so "superseded by a newer plan" is true to creation order)."""
from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

from tfreview.store.local import LocalStore
from tfreview.usecases.plan import _advance_latest_plan


def test_concurrent_packagers_of_the_same_content_all_succeed(cli_factory):
    cli = cli_factory("races")
    cli.ensure_policy()
    procs = [cli.popen("package", "--app", "webapp", "--version", "7.0.0", "--format", "json",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(6)]
    results = [(p.wait(120), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [rc for rc, _out, _err in results] == [0] * 6, results
    statuses = sorted(json.loads(out)["status"] for _rc, out, _err in results)
    assert statuses.count("created") >= 1 and set(statuses) <= {"created", "unchanged"}, statuses
    assert len(list((cli.store / "packages" / "webapp" / "7.0.0").glob("manifest.json"))) == 1
    assert cli("audit", "verify").returncode == 0


def test_the_latest_plan_pointer_only_moves_forward(tmp_path):
    store = LocalStore(tmp_path / "store")
    base = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)
    plans = [(f"web-qa-{i:03d}", base + timedelta(microseconds=i)) for i in range(40)]
    random.Random(7).shuffle(plans)  # finishing order is not creation order
    threads = [threading.Thread(target=_advance_latest_plan, args=(store, "web", "qa", pid, at)) for pid, at in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latest = json.loads(store.read("heads/web/qa/latest-plan.json"))
    assert latest["plan_id"] == "web-qa-039"
    # An older plan finishing late does not move it back.
    _advance_latest_plan(store, "web", "qa", "web-qa-old", base - timedelta(hours=1))
    assert json.loads(store.read("heads/web/qa/latest-plan.json"))["plan_id"] == "web-qa-039"


def test_a_second_approval_by_one_person_while_the_first_is_logging_is_refused_and_logged_once(tmp_path,
                                                                                                monkeypatch):
    """The first run has created its decision file and is writing the audit entry (slowed here) when the same
    person's second run reads the file: the second waits for the entry and is refused; the first succeeds; the log
    holds one approval. (Completing the "dead" first run's decision used to log it twice and fail the first.)"""
    from tests import helpers
    from tests.test_s3_audit import stored_plan
    from tfreview.errors import PolicyRefusal
    from tfreview.store.audit import verify_chain
    from tfreview.usecases.context import Context
    from tfreview.usecases.decide import decide
    from tfreview.usecases.records import approvals_of

    store = LocalStore(tmp_path / "store")
    plan = stored_plan(store)
    decisions = tmp_path / "store" / "approvals" / plan["id"]
    real_audit = Context.audit
    slowed = threading.Event()

    def slow_audit(self, event, **fields):
        if threading.current_thread().name == "first" and not slowed.is_set():
            slowed.set()
            deadline = time.monotonic() + 30
            while not second_started.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.5)  # the second run is reading the file now
        return real_audit(self, event, **fields)

    monkeypatch.setattr(Context, "audit", slow_audit)
    second_started = threading.Event()
    results: dict[str, object] = {}

    def run(name: str) -> None:
        try:
            results[name] = decide(helpers.context_for(store, "alice@example.com"), plan["id"], "approve", name)
        except Exception as exc:  # noqa: BLE001 - the test asserts which
            results[name] = exc

    first = threading.Thread(target=run, args=("first",), name="first")
    first.start()
    assert slowed.wait(30) and len(list(decisions.glob("*.json"))) == 1
    second_started.set()
    run("second")
    first.join(60)
    assert isinstance(results["first"], dict), results
    assert isinstance(results["second"], PolicyRefusal) and "already" in results["second"].message, results
    assert [a.approver for a in approvals_of(store, plan["id"])] == ["alice@example.com"]
    verdict = verify_chain(store)
    assert verdict.ok and verdict.count == 2, verdict  # the policy's installation, then the one approval
