"""The release report: the whole story of a deploy (approvals with their signature fields, the watched rollout,
each traffic step with its bake and verify result, the outcome, a rollback after it) in JSON, Markdown and HTML,
the HTML with inline SVG charts that headless Chromium draws without console errors."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests import helpers

from tfreview.render.charts import Series, step_chart
from tfreview.usecases.report import build_report, render_report
from tfreview.usecases.timeline import release_timeline
from tfreview.store.audit import append_event
from tfreview.store.base import dumps
from tfreview.store.local import LocalStore

DEPLOY = "shop-qa-20261126-100000-abcd"
ROLLBACK = "shop-qa-20261126-110000-ef01"
EVIL = "<script>alert(1)</script>"


def _record(store: LocalStore, plan_id: str, kind: str, created: str, release_id: str | None = None) -> None:
    store.create(f"plans/{plan_id}/record.json", dumps({
        "kind": "plan", "id": plan_id, "plan_kind": kind, "release_id": release_id, "app": "shop", "env": "qa",
        "version": "1.1.0", "planner": "alice@example.com", "created_at": created, "plan_sha256": "a" * 64,
        "package_sha256": "b" * 64, "state_lineage": "lin", "state_serial": 3, "terraform_version": "1.11.4",
        "risky": False, "risk_reasons": [], "summary": {"summary_line": "Plan: 0 to add, 2 to change, 0 to destroy."}}))
    append_event(store, "plan", "alice@example.com", app="shop", env="qa", plan_id=plan_id)


def _sample(at: str, desired: int, running: int, healthy: int, state: str) -> dict:
    return {"at": at, "desired": desired, "running": running, "healthy": healthy, "state": state,
            "verdict": "in_progress"}


ROLLOUT = {
    "kind": "release", "plan_id": DEPLOY, "app": "shop", "env": "qa", "version": "1.1.0", "by": "carol@example.com",
    "outcome": "succeeded", "reason": "", "started_at": "2026-11-26T10:05:00.000Z",
    "finished_at": "2026-11-26T10:06:40Z", "weights_before": {"blue": 100, "green": 0}, "live_color": "green",
    "watched": ["green"],
    "steps": [
        {"step": "watch", "colour": "green", "at": "2026-11-26T10:05:10.000Z", "ok": True, "state": "succeeded",
         "reason": "shop-qa-green:2 is live", "service": "shop-qa-green", "duration_s": 30.0, "log": [],
         "samples": [_sample("2026-11-26T10:05:10.000Z", 2, 0, 0, "IN_PROGRESS"),
                     _sample("2026-11-26T10:05:20.000Z", 2, 2, 0, "IN_PROGRESS"),
                     _sample("2026-11-26T10:05:40.000Z", 2, 2, 2, "COMPLETED")]},
        {"step": "verify", "at": "2026-11-26T10:05:41.000Z", "command": f"./smoke.sh {EVIL}", "exit_code": 0},
        {"step": "shift", "at": "2026-11-26T10:05:50.000Z", "plan_id": "shop-qa-s1", "what": "traffic 50% -> green",
         "outcome": "applied", "weights": {"blue": 50, "green": 50}},
        {"step": "bake", "at": "2026-11-26T10:06:20.000Z", "colour": "green", "percent": 50, "bake_s": 30,
         "healthy": True},
        {"step": "shift", "at": "2026-11-26T10:06:30.000Z", "plan_id": "shop-qa-s2",
         "what": "traffic 100% -> green", "outcome": "applied", "weights": {"blue": 0, "green": 100}},
        {"step": "bake", "at": "2026-11-26T10:06:39.000Z", "colour": "green", "percent": 100, "bake_s": 0,
         "healthy": True},
    ],
}


@pytest.fixture
def store(tmp_path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    helpers.install_test_policy(store)  # first: a log without a policy is a damaged store, which `report` refuses
    _record(store, DEPLOY, "deploy", "2026-11-26T10:00:00Z")
    store.create(f"approvals/{DEPLOY}/x.json", dumps({
        "kind": "approve", "approver": "bob@example.com", "approved_at": "2026-11-26T10:01:00Z", "comment": EVIL,
        "plan_sha256": "a" * 64, "plan_id": DEPLOY, "package_sha256": "b" * 64, "app": "shop", "env": "qa",
        "version": "1.1.0", "terraform_version": "1.11.4", "planner": "alice@example.com",
        "signature": "-----BEGIN SSH SIGNATURE-----abc", "signer_key": "SHA256:xyz"}))
    store.create(f"applies/{DEPLOY}/start.json", dumps({"by": "carol@example.com",
                                                        "started_at": "2026-11-26T10:05:00Z", "break_glass": None}))
    store.create(f"applies/{DEPLOY}/result.json", dumps({"outcome": "applied", "finished_at": "2026-11-26T10:06:41Z"}))
    store.create(f"rollouts/shop/qa/{DEPLOY}.json", dumps(ROLLOUT))
    append_event(store, "rollout", "carol@example.com", plan_id=DEPLOY)
    _record(store, ROLLBACK, "rollback", "2026-11-26T11:00:00Z")
    return store


def test_release_report_json_tells_the_whole_story(store):
    doc = build_report(store, DEPLOY)
    (approval,) = doc["approvals"]
    assert approval["signature"] == {"signature": "-----BEGIN SSH SIGNATURE-----abc", "signer_key": "SHA256:xyz"}
    release = doc["release"]
    assert release["outcome"] == "succeeded" and release["rollback_after"]["plan_id"] == ROLLBACK
    kinds = [r["kind"] for r in release["timeline"]]
    assert kinds == ["watch", "watch", "watch", "verify", "shift", "bake", "shift", "bake", "outcome"]
    assert release["timeline"][4]["weights"] == {"blue": 50, "green": 50}
    assert release["timeline"][2]["tasks"] == {"green": {"desired": 2, "running": 2, "healthy": 2}}
    assert release["timeline"][-1]["t"] == 100.0


def test_release_report_markdown_has_the_steps_and_the_timeline_table(store):
    md = render_report(store, DEPLOY, "markdown")
    assert md.startswith("# Release shop ") and f"(plan {DEPLOY})" in md.splitlines()[0]
    assert "## Release" in md and "**succeeded**" in md
    assert "shift: traffic 50% -&gt; green (plan shop-qa-s1: applied; blue 50%, green 50%)" in md  # Markdown-escaped
    assert "bake 30 s at 50% on green: healthy" in md
    assert f"Rolled back afterwards: plan {ROLLBACK}" in md
    table = md.split("### Timeline", 1)[1]
    assert "| +s | event | blue % | green % | green tasks d/r/h |" in table
    assert "| 50.0 | traffic 50% -&gt; green | 50 | 50 | 2/2/2 |" in table
    assert "| Signature |" in md and "signer_key: SHA256:xyz" in md
    assert EVIL not in md


def test_release_report_html_escapes_untrusted_text(store):
    page = render_report(store, DEPLOY, "html")
    assert EVIL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<svg") == 2  # traffic, and the one watched colour's tasks


def test_a_plan_that_is_not_a_release_has_no_release_section(store):
    assert build_report(store, ROLLBACK)["release"] is None
    assert "## Release" not in render_report(store, ROLLBACK, "markdown")
    assert render_report(store, ROLLBACK, "markdown").startswith(f"# Plan {ROLLBACK}")


def test_step_chart_draws_one_horizontal_run_per_value():
    svg = step_chart("t <x>", [Series("green", "#0a0", ((0, 0), (10, 50), (20, 100)))], end=30, y_max=100)
    (d,) = re.findall(r'data-series="green" data-steps="3" d="([^"]+)"', svg)
    assert d.startswith("M") and d.count("H") == 3 and "t &lt;x&gt;" in svg and "<x>" not in svg


def test_timeline_of_a_failed_release_marks_the_failure():
    doc = {**ROLLOUT, "outcome": "failed", "reason": "green did not deploy",
           "steps": [{**ROLLOUT["steps"][0], "ok": False, "state": "failed", "reason": "circuit breaker"}]}
    rows = release_timeline(doc)
    assert [r["kind"] for r in rows][-2:] == ["failure", "outcome"]
    assert rows[-1]["event"] == "release failed: green did not deploy"


# -- in a browser ----------------------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium missing: apt-get install -y chromium")
def test_release_report_charts_are_drawn_in_chromium_without_console_errors(store, tmp_path):
    from tests.test_render_html_browser import chromium, console_errors

    page = tmp_path / "release.html"
    page.write_text(render_report(store, DEPLOY, "html"))
    result = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_errors(result.stderr) == []
    paths = re.findall(r'<path class="series" data-series="([^"]+)" data-steps="(\d+)" d="([^"]+)"', result.stdout)
    by_chart = {name: int(steps) for name, steps, d in paths[:2] if d.count("H") == int(steps)}
    assert by_chart == {"blue": 3, "green": 3}  # 100 -> 50 -> 0 and 0 -> 50 -> 100: two shifts
    assert {name for name, _s, _d in paths[2:]} == {"desired", "running", "healthy"}
    assert result.stdout.count('class="mark shift"') == 4  # two shifts, marked on both charts
    shot = tmp_path / "release.png"
    result = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1000,1400", page.as_uri())
    assert result.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_report_cli_takes_a_release_by_any_of_its_plans_and_history_shows_it_as_one_line(store):
    from tests.conftest import Cli

    cli = Cli(store=store.root, cwd=store.root.parent, install_policy=False)  # a log already: no policy init
    _record(store, "shop-qa-s1", "shift", "2026-11-26T10:05:50Z", release_id=DEPLOY)
    doc = json.loads(cli.ok("report", "--release", "shop-qa-s1", "--format", "json").stdout)
    assert doc["plan"]["id"] == DEPLOY and doc["release"]["outcome"] == "succeeded"
    both = cli("report", DEPLOY, "--release", DEPLOY)
    assert both.returncode == 2 and "report needs one id" in both.stderr
    rows = json.loads(cli.ok("history", "--format", "json").stdout)
    assert [(r["id"], [s["id"] for s in r["steps"]]) for r in rows] == [(ROLLBACK, []), (DEPLOY, ["shop-qa-s1"])]
    text = cli.ok("history").stdout
    assert "release succeeded +1 steps" in text and "shop-qa-s1" not in text
    assert "shop-qa-s1" in cli.ok("history", "--expand").stdout


def test_the_report_reviews_the_plan_with_the_roles_its_record_holds(tmp_path):
    """An app with its own module ([apps.<app>] roles, kept in the plan record): the report's review classifies the
    plan as `show` does, not with the bundled module's names."""
    import hashlib

    from tests.test_roles import team_doc
    from tfreview.plan.redact import redact_plan

    store = LocalStore(tmp_path / "store")
    pid = "shop-qa-20261126-120000-beef"
    plan_json = redact_plan(team_doc("ecs_image_bump"))
    store.create(f"plans/{pid}/plan.json", plan_json)
    from tests.helpers import sign_record

    # Signed by its planner under the store's policy: readers refuse a record that does not verify (issue 20).
    store.create(f"plans/{pid}/record.json", dumps(sign_record(store, {
        "kind": "plan", "id": pid, "plan_kind": "deploy", "app": "shop", "env": "qa", "version": "1.1.0",
        "planner": "alice@example.com", "created_at": "2026-11-26T12:00:00Z", "plan_sha256": "a" * 64,
        "json_sha256": hashlib.sha256(plan_json).hexdigest(), "package_sha256": "b" * 64, "risky": False,
        "risk_reasons": [], "summary": {},
        "roles": {"colours": ["stable", "canary"], "service": "aws_ecs_service.web_{colour}",
                  "task_definition": "aws_ecs_task_definition.web_{colour}",
                  "target_group": "aws_lb_target_group.web_{colour}", "production_listener": "aws_lb_listener.https",
                  "test_listener": "aws_lb_listener.preview"}})))
    diff = json.loads(render_report(store, pid, "json"))["diff"]
    assert (diff["classification"]["kind"], diff["classification"]["target_colour"]) == ("deploy-to-idle", "canary")


CHECKS = {"policy_version": 3, "policy_sha256": "c" * 64, "modules": [{"name": "policy/tags.rego", "sha256": "d" * 64}],
          "namespaces": ["main"], "rego_version": "v1", "blocked": False, "error": None,
          "results": [{"namespace": "main", "rule": "warn", "level": "warn", "msg": f"aws_lb.app: no owner tag {EVIL}"}],
          "approvals": [{"namespace": "main", "rule": "approvals", "required": 2, "from": ["erin@example.com"],
                         "from_required": 1, "msg": "prod needs security"}]}


def test_release_report_has_the_policy_checks_of_the_deploy_and_of_its_traffic_plans(store):
    """Issue 22: the release report carries the "Policy checks" section (module, rule, message, deny/warn) of the
    deploy plan and of each traffic plan the release applied, in JSON, Markdown and HTML, escaped."""
    for plan_id, release_id in ((DEPLOY, None), ("shop-qa-s1", DEPLOY)):
        key = f"plans/{plan_id}/record.json"
        record = json.loads(store.read(key)) if store.exists(key) else None
        if record is None:
            _record(store, plan_id, "shift", "2026-11-26T10:05:45Z", release_id)
            record = json.loads(store.read(key))
        shift = plan_id != DEPLOY
        checks = {**CHECKS, "results": [{**CHECKS["results"][0], "msg": "weights move in one step"}]} if shift else CHECKS
        store.replace(key, dumps({**record, "policy_checks": checks}), store.read_versioned(key)[1])
    doc = build_report(store, DEPLOY)
    assert doc["schema_version"] == doc["report_version"] == 2
    assert doc["plan"]["policy_checks"]["results"][0]["rule"] == "warn"
    assert [t["plan_id"] for t in doc["release"]["traffic_checks"]] == ["shop-qa-s1"]
    md = render_report(store, DEPLOY, "markdown")
    assert "### Policy checks" in md and "Modules: policy/tags.rego \\(sha256 dddddddddddd\\)" in md
    assert "- warn main.warn: aws\\_lb.app: no owner tag \\<script\\>alert\\(1\\)\\</script\\>" in md
    assert "- approvals: 2 approvals incl. an approval from erin@example.com \\(required by main.approvals: prod " \
           "needs security\\)" in md
    assert "Traffic plan shop-qa-s1 (traffic 50% -&gt; green):" in md and "weights move in one step" in md
    page = render_report(store, DEPLOY, "html")
    assert "<h3>Policy checks</h3>" in page and "policy/tags.rego (sha256 dddddddddddd)" in page
    assert EVIL not in page and "&lt;script&gt;" in page
    assert "Traffic plan shop-qa-s1" in page and "weights move in one step" in page
