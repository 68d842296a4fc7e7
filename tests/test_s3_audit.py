"""Team mode under contention, on S3 (moto on loopback): audit appends and approvals from many writers at once.

Nothing may be lost: every writer's entry is in the chain, the chain verifies, every reviewer's approval is stored.
"""
from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests import helpers

from tfreview.config import Settings
from tfreview.errors import PolicyRefusal
from tfreview.store.audit import append_event, verify_chain
from tfreview.store.base import dumps
from tfreview.store.s3 import S3Store

N = 10

pytestmark = pytest.mark.usefixtures("fake_aws_env")  # fake credentials, nothing from the outside


def run_at_once(fn: Any, n: int = N) -> list[Any]:
    """Run fn(i) for i in range(n) on n threads released together; results (or raised exceptions) in order."""
    barrier = threading.Barrier(n)

    def call(i: int) -> Any:
        barrier.wait()
        try:
            return fn(i)
        except Exception as exc:  # collected: the test decides which failures are expected
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(call, range(n)))


def test_ten_parallel_audit_appends_on_s3_are_all_in_an_intact_chain(s3_store: S3Store) -> None:
    append_event(s3_store, "package", "ci@example.com", app="web", version="1.0.0")
    results = run_at_once(lambda i: append_event(s3_store, "approve", f"reviewer{i}@example.com", plan_id="p1"))

    assert not [r for r in results if isinstance(r, Exception)]
    assert sorted(r["seq"] for r in results) == list(range(2, N + 2))
    verdict = verify_chain(s3_store)
    assert verdict.ok, verdict.reason
    assert verdict.count == N + 1
    actors = {s3_store_entry(s3_store, seq)["actor"] for seq in range(2, N + 2)}
    assert actors == {f"reviewer{i}@example.com" for i in range(N)}


def s3_store_entry(store: S3Store, seq: int) -> dict[str, Any]:
    import json

    from tfreview.store.audit import entry_key

    return json.loads(store.read(entry_key(seq)))


def test_audit_chain_on_s3_detects_an_edited_entry(s3_store: S3Store) -> None:
    for i in range(3):
        append_event(s3_store, "plan", "ci@example.com", plan_id=f"p{i}")
    from tfreview.store.audit import entry_key

    entry = s3_store_entry(s3_store, 2)
    s3_store.write(entry_key(2), dumps({**entry, "actor": "mallory@example.com"}))
    verdict = verify_chain(s3_store)
    assert not verdict.ok and verdict.first_bad_seq == 2


# -- approvals through the workflow ------------------------------------------------------------------------------


def stored_plan(store: S3Store, plan_id: str = "web-qa-20260101-000000-abcd") -> dict[str, Any]:
    """A plan record, binary and review JSON as `usecases.plan.plan` stores them (no terraform needed to approve one)."""
    from tfreview.plan.redact import redact_plan
    from tfreview.usecases.plan import plan_keys

    binary = b"terraform plan binary"
    plan_json = redact_plan({"format_version": "1.2", "resource_changes": []})
    record = {
        "kind": "plan", "id": plan_id, "plan_kind": "deploy", "app": "web", "env": "qa", "version": "1.0.0",
        "plan_sha256": hashlib.sha256(binary).hexdigest(), "json_sha256": hashlib.sha256(plan_json).hexdigest(),
        "json_redaction": 1, "package_sha256": "a" * 64, "state_lineage": "",
        "state_serial": 0, "terraform_version": "1.11.0", "planner": "ci@example.com",
        "created_at": "2099-01-01T00:00:00Z", "risky": False, "risk_reasons": [],
        "summary": {"summary_line": "No changes.", "counts": {}, "risk_reasons": []},
    }
    helpers.install_test_policy(store, REVIEWERS)
    record = helpers.sign_record(store, record)
    keys = plan_keys(plan_id)
    store.create(keys["binary"], binary, private=True)
    store.create(keys["json"], plan_json)
    store.create(keys["record"], dumps(record))
    return record


context_for = helpers.context_for
REVIEWERS = (*helpers.TEST_PRINCIPALS, *(f"reviewer{i}@example.com" for i in range(N)))


def test_ten_parallel_approvals_of_one_plan_by_different_people_on_s3_are_all_kept(s3_store: S3Store) -> None:
    from tfreview.usecases.decide import decide
    from tfreview.usecases.records import approvals_of

    plan = stored_plan(s3_store)
    results = run_at_once(lambda i: decide(context_for(s3_store, f"reviewer{i}@example.com"), plan["id"],
                                           "approve", f"lgtm from {i}"))

    assert not [r for r in results if isinstance(r, Exception)]
    approvers = sorted(a.approver for a in approvals_of(s3_store, plan["id"]))
    assert approvers == sorted(f"reviewer{i}@example.com" for i in range(N))
    verdict = verify_chain(s3_store)
    assert verdict.ok and verdict.count == N + 1, verdict  # the policy's installation, then the N approvals


def test_ten_parallel_approvals_by_one_person_on_s3_record_exactly_one(s3_store: S3Store) -> None:
    from tfreview.usecases.decide import decide
    from tfreview.usecases.records import approvals_of

    plan = stored_plan(s3_store)
    results = run_at_once(lambda i: decide(context_for(s3_store, "alice@example.com"), plan["id"], "approve", "ok"))

    refused = [r for r in results if isinstance(r, PolicyRefusal)]
    assert len(refused) == N - 1, results
    assert [a.approver for a in approvals_of(s3_store, plan["id"])] == ["alice@example.com"]
    verdict = verify_chain(s3_store)
    assert verdict.ok and verdict.count == 2, verdict  # the policy's installation, then the one approval


def test_s3_mode_records_the_aws_caller_arn_beside_the_user(s3_store: S3Store, s3_endpoint: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from tfreview.usecases.context import Context

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("TFREVIEW_USER", "bob@example.com")
    monkeypatch.setenv("TFREVIEW_SIGNING_KEY", str(helpers.signing_key("bob@example.com")))
    helpers.install_test_policy(s3_store)
    ctx = Context.create(Settings(store=s3_store.url))
    assert ctx.identity["user"] == "bob@example.com"
    assert ctx.identity["aws_arn"].startswith("arn:aws:")


def test_audit_entries_in_s3_mode_carry_the_aws_principal(s3_store: S3Store) -> None:
    from tfreview.usecases.decide import decide

    plan = stored_plan(s3_store)
    arn = "arn:aws:sts::123456789012:assumed-role/reviewers/bob"
    ctx = context_for(s3_store, "bob@example.com", aws_arn=arn)
    decide(ctx, plan["id"], "approve", "ok")
    entry = s3_store_entry(s3_store, 2)
    assert (entry["actor"], entry["aws_arn"]) == ("bob@example.com", arn)
    assert verify_chain(s3_store).ok


def test_ten_ci_jobs_taking_the_apply_lock_on_s3_have_exactly_one_holder(s3_store: S3Store) -> None:
    from tfreview.store.locks import acquire_lock, read_lock, release_lock

    results = run_at_once(lambda i: acquire_lock(s3_store, "web", "prod", f"ci-job-{i}", f"plan-{i}"))

    holders = [r for r in results if not isinstance(r, Exception)]
    assert len(holders) == 1
    assert all(isinstance(r, PolicyRefusal) for r in results if r is not holders[0])
    held = read_lock(s3_store, "web", "prod")
    assert held is not None and held.owner == holders[0].owner
    release_lock(s3_store, holders[0])
    assert read_lock(s3_store, "web", "prod") is None
