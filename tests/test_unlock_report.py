"""Stuck applies, unlock, and the auditor's report, at the store level (no terraform)."""
from __future__ import annotations

import json
import multiprocessing
from dataclasses import dataclass

import pytest

from tfreview.errors import NotFound, PolicyRefusal
from tfreview.usecases.report import build_report, render_report
from tfreview.store.audit import append_event, iter_entries, verify_chain
from tfreview.store.base import dumps
from tfreview.store.local import LocalStore
from tfreview.store.locks import acquire_lock, read_lock
from tfreview.usecases.unlock import interrupted_applies, stale_warnings, unlock


@dataclass
class Ctx:
    store: LocalStore
    user: str

    def audit(self, event, **fields):
        append_event(self.store, event, self.user, **fields)


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


PLAN = "shop-qa-20261126-100000-abcd"


def record_plan(store, plan_id=PLAN, planner="alice"):
    store.create(f"plans/{plan_id}/record.json", dumps({
        "kind": "plan", "id": plan_id, "app": "shop", "env": "qa", "version": "1.1.0", "planner": planner,
        "created_at": "2026-11-26T10:00:00Z", "plan_sha256": "a" * 64, "package_sha256": "b" * 64,
        "state_lineage": "lin", "state_serial": 3, "terraform_version": "1.11.4", "risky": True,
        "risk_reasons": ["aws_security_group.web: opens 0.0.0.0/0"],
        "summary": {"summary_line": "1 to change"}}))
    append_event(store, "plan", planner, app="shop", env="qa", version="1.1.0", plan_id=plan_id)


def start_apply(store, plan_id=PLAN, by="bob", break_glass=None):
    store.create(f"applies/{plan_id}/start.json", dumps({
        "kind": "apply-start", "app": "shop", "env": "qa", "version": "1.1.0", "plan_id": plan_id, "by": by,
        "started_at": "2026-11-26T10:05:00Z", "break_glass": break_glass}))


def _die_holding_the_lock(root):
    acquire_lock(LocalStore(root), "shop", "qa", "bob", PLAN)


def killed_apply(store):
    """What `kill -9` during apply leaves: a start record, no result, a lock whose process is gone."""
    record_plan(store)
    start_apply(store)
    proc = multiprocessing.get_context("fork").Process(target=_die_holding_the_lock, args=(str(store.root),))
    proc.start()
    proc.join(30)


def test_killed_apply_is_reported_with_its_lock(store):
    killed_apply(store)
    [stuck] = interrupted_applies(store)
    assert stuck.plan_id == PLAN and not stuck.in_progress
    [warning] = stale_warnings(store, "shop", "qa")
    assert f"apply of plan {PLAN} (shop/qa 1.1.0) by bob started at 2026-11-26T10:05:00Z recorded no outcome" in warning
    assert "lock shop/qa still held by bob" in warning and "its process is gone" in warning
    assert warning.endswith("tfreview unlock --app shop --env qa")
    assert stale_warnings(store, "shop", "prod") == []


def test_unlock_records_the_interrupted_outcome_and_who_unlocked(store):
    killed_apply(store)
    done = unlock(Ctx(store, "carol"), "shop", "qa")
    assert done["interrupted"] == PLAN and done["previous"]["owner"] == "bob"
    assert read_lock(store, "shop", "qa") is None
    assert interrupted_applies(store) == []
    result = json.loads(store.read(f"applies/{PLAN}/result.json"))
    assert result["outcome"] == "interrupted" and result["unlocked_by"] == "carol"
    events = [(e["event"], e["actor"]) for e in iter_entries(store)]
    assert events[-2:] == [("apply-end", "carol"), ("unlock", "carol")]
    assert verify_chain(store).ok
    assert "interrupted" in build_report(store, PLAN)["outcome"]


def test_unlock_refuses_a_lock_whose_process_is_alive_unless_forced(store):
    acquire_lock(store, "shop", "qa", "bob", PLAN)  # held by this (live) test process
    with pytest.raises(PolicyRefusal) as info:
        unlock(Ctx(store, "carol"), "shop", "qa")
    assert "its process is still running" in info.value.message and "--force" in info.value.hint
    assert unlock(Ctx(store, "carol"), "shop", "qa", force=True)["previous"]["owner"] == "bob"


def test_unlock_without_lock_says_so(store):
    with pytest.raises(NotFound):
        unlock(Ctx(store, "carol"), "shop", "qa")


def test_report_tells_who_planned_approved_applied_and_the_outcome(store):
    record_plan(store)
    store.create(f"approvals/{PLAN}/x.json", dumps({
        "kind": "approve", "approver": "dave", "approved_at": "2026-11-26T10:02:00Z",
        "comment": "ok <script>alert(1)</script> | pipes", "plan_sha256": "a" * 64}))
    start_apply(store, by="erin")
    store.create(f"applies/{PLAN}/result.json", dumps({"outcome": "applied", "finished_at": "2026-11-26T10:06:00Z"}))
    md = render_report(store, PLAN, "markdown")
    assert f"# Plan {PLAN}" in md and "alice at 2026-11-26T10:00:00Z" in md
    assert "| approve | dave | 2026-11-26T10:02:00Z | ok &lt;script&gt;alert(1)&lt;/script&gt; \\| pipes | yes |" in md
    assert "<script>" not in md
    assert "Started by erin at 2026-11-26T10:05:00Z; finished 2026-11-26T10:06:00Z: **applied**." in md
    assert "opens 0.0.0.0/0" in md and "Audit chain: intact" in md
    page = render_report(store, PLAN, "html")
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    doc = json.loads(render_report(store, PLAN, "json"))
    assert doc["outcome"] == "applied" and doc["approvals"][0]["by"] == "dave" and doc["break_glass"] is False


def test_report_marks_break_glass(store):
    record_plan(store)
    start_apply(store, by="oncall", break_glass="site down")
    md = render_report(store, PLAN, "markdown")
    assert "**BREAK-GLASS apply** by oncall: site down" in md
    assert "BREAK-GLASS" in render_report(store, PLAN, "html")


def test_report_of_unknown_plan_is_not_found(store):
    with pytest.raises(NotFound):
        render_report(store, "nope", "markdown")
