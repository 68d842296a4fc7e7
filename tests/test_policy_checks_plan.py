"""Policy checks through `tfreview plan` on real terraform against the local AWS: the result is in the signed
plan record, a deny blocks (review opens with "Blocked by policy" in every format, approve warns, apply refuses
with exit 3, --fail-on policy exits 4), and only the store's signed rules count."""
from __future__ import annotations

import json

import pytest

from tests.helpers import assert_one_line_error

pytestmark = pytest.mark.integration

APP = "rules"
ENV = "sandbox"

DENY_IAM = """package main

import rego.v1

# A first deploy creates the app's IAM roles: in this test that is forbidden.
deny contains msg if {
	data.tfreview.env == "sandbox"
	data.tfreview.plan_kind == "deploy"
	some rc in input.resource_changes
	rc.type == "aws_iam_role"
	"create" in rc.change.actions
	msg := sprintf("%s: IAM roles are created by the platform team (planner %s)", [rc.address, data.tfreview.planner])
}
"""
WARN_LOGS = """package main

warn[msg] {
	rc := input.resource_changes[_]
	rc.type == "aws_cloudwatch_log_group"
	msg := sprintf("%s: check the retention", [rc.address])
}
"""
RULES = '[policy.default]\nchecks = ["policy/*.rego"]\nbreak_glass = ["dave@example.com"]\n'


@pytest.fixture(scope="module")
def blocked(aws_sandbox, cli_factory):
    cli = cli_factory("policy-checks-plan")
    (cli.cwd / "policy").mkdir()
    (cli.cwd / "policy" / "iam.rego").write_text(DENY_IAM)
    (cli.cwd / "policy" / "logs.rego").write_text(WARN_LOGS)
    cli.set_rules(RULES)
    # Editing the local file after the policy was stored changes nothing: plans are judged by the store's copy.
    (cli.cwd / "policy" / "iam.rego").write_text("package main\n")
    cli.ok("package", "--app", APP, "--version", "1.0.0")
    proc = cli.ok("plan", "--app", APP, "--version", "1.0.0", "--env", ENV)
    plan_id = next(ln.split()[2] for ln in proc.stdout.splitlines() if ln.startswith("plan id:"))
    yield cli, plan_id, proc


def test_plan_review_opens_with_blocked_by_policy(blocked):
    _cli, _plan_id, proc = blocked
    assert proc.stdout.startswith("Blocked by policy\n"), proc.stdout[:300]
    assert "deny  main.deny: module.webapp.aws_iam_role.execution: IAM roles are created by the platform team " \
           "(planner alice@example.com)" in proc.stdout
    assert "warn  main.warn: module.webapp.aws_cloudwatch_log_group.app: check the retention" in proc.stdout


def test_results_are_in_the_signed_plan_record(blocked):
    cli, plan_id, _proc = blocked
    record = json.loads((cli.store / "plans" / plan_id / "record.json").read_text())
    checks = record["policy_checks"]
    assert checks["blocked"] is True and checks["error"] is None
    assert [m["name"] for m in checks["modules"]] == ["policy/iam.rego", "policy/logs.rego"]
    assert {r["level"] for r in checks["results"]} == {"deny", "warn"}
    assert "signature" in record
    from tfreview.trust.verify import statement_sha256  # the signature covers the checks: drop them, it breaks
    assert statement_sha256({k: v for k, v in record.items() if k != "policy_checks"}) != statement_sha256(record)


@pytest.mark.parametrize("fmt, marker", [("markdown", "## Blocked by policy"), ("html", "<h2>Blocked by policy</h2>"),
                                         ("json", '"policy_checks"')])
def test_show_carries_the_block_in_every_format(blocked, fmt, marker):
    cli, plan_id, _proc = blocked
    out = cli.ok("show", plan_id, "--format", fmt).stdout
    assert marker in out and "IAM roles are created by the platform team" in out
    if fmt == "json":
        assert json.loads(out)["policy_checks"]["blocked"] is True


def test_fail_on_policy_exits_4(blocked):
    cli, plan_id, _proc = blocked
    proc = cli("show", plan_id, "--fail-on", "policy")
    assert proc.returncode == 4 and "blocked by policy" in proc.stderr


def test_approve_warns_and_apply_refuses_exit_3(blocked):
    cli, plan_id, _proc = blocked
    warned = cli.ok("approve", plan_id, "--yes", user="bob@example.com")
    assert "blocked by policy" in warned.stderr
    cli.ok("approve", plan_id, "--yes", user="carol@example.com")  # approvals are complete: only the policy blocks
    line = assert_one_line_error(cli("apply", plan_id, "--no-wait"), 3, "is blocked by policy")
    assert "IAM roles are created by the platform team" in line
    # break-glass by someone the policy does not allow is refused too
    assert_one_line_error(cli("apply", plan_id, "--no-wait", "--break-glass", "--reason", "outage",
                              user="carol@example.com"), 3)


def test_a_policy_change_of_the_checks_makes_old_plans_replan(blocked):
    cli, plan_id, _proc = blocked
    (cli.cwd / "policy" / "iam.rego").write_text(DENY_IAM.replace("platform team", "platform team!"))
    cli.set_rules(RULES)
    line = assert_one_line_error(cli("apply", plan_id, "--no-wait", "--break-glass", "--reason", "outage",
                                     user="dave@example.com"), 3, "other rules")
    assert "make a new plan" in line


def test_history_marks_the_blocked_plan(blocked):
    cli, plan_id, _proc = blocked
    rows = json.loads(cli.ok("history", "--app", APP, "--format", "json").stdout)
    row = next(r for r in rows if r["id"] == plan_id)
    assert row["policy_blocked"] is True
    assert "BLOCKED BY POLICY" in cli.ok("history", "--app", APP).stdout


@pytest.mark.parametrize("fmt, marker", [("markdown", "## Blocked by policy"), ("html", "<h2>Blocked by policy</h2>")])
def test_report_carries_the_policy_checks(blocked, fmt, marker):
    cli, plan_id, _proc = blocked
    out = cli.ok("report", plan_id, "--format", fmt).stdout
    assert marker in out and "check the retention" in out
    doc = json.loads(cli.ok("report", plan_id, "--format", "json").stdout)
    assert doc["plan"]["policy_checks"]["blocked"] is True
