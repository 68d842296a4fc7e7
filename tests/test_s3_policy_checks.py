"""Policy as code on the S3 store (issue 22, done-when): with TFREVIEW_STORE=s3://... on the local AWS, through
the real CLI, a policy with Rego checks is installed, a plan it denies is blocked, `apply` refuses it (exit 3),
a policy version without the rule does not let it apply, break-glass by someone the policy allows applies it
(recorded), and a module swapped in the bucket is refused by every command and named by `audit verify` (exit 1)."""
from __future__ import annotations

import json
import uuid

import pytest

from tests.helpers import assert_one_line_error
from tests.test_policy_checks_plan import DENY_IAM, WARN_LOGS

pytestmark = pytest.mark.integration

APP = "rules3"
ENV = "sandbox"
RULES = '[policy.default]\nchecks = ["policy/*.rego"]\nbreak_glass = ["dave@example.com"]\n'
WARN_ONLY = '[policy.default]\nchecks = ["policy/logs.rego"]\nbreak_glass = ["dave@example.com"]\n'


@pytest.fixture(scope="module")
def s3_blocked(aws_sandbox, cli_factory):
    s3 = aws_sandbox.client("s3")
    bucket = f"tfr-rules-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    cli = cli_factory("policy-checks-s3")
    (cli.cwd / "tfreview.toml").write_text(f'[backend.{ENV}]\ntype = "s3"\n')
    cli.env.update({"TFREVIEW_STORE": f"s3://{bucket}/team", "TFREVIEW_CONFIG": str(cli.cwd / "tfreview.toml")})
    (cli.cwd / "policy").mkdir()
    (cli.cwd / "policy" / "iam.rego").write_text(DENY_IAM)
    (cli.cwd / "policy" / "logs.rego").write_text(WARN_LOGS)
    cli.set_rules(RULES)  # installs the test policy in the bucket, then this version with the checks
    cli.ok("package", "--app", APP, "--version", "1.0.0")
    proc = cli.ok("plan", "--app", APP, "--version", "1.0.0", "--env", ENV, "--format", "json")
    return cli, s3, bucket, json.loads(proc.stdout)


def refused(proc, contains: str) -> str:
    """The one-line error contract (exit 3), after the warning that the tfreview.toml of this test pins no root."""
    import subprocess

    kept = "".join(ln + "\n" for ln in proc.stderr.splitlines() if not ln.startswith("warning: tfreview.toml pins no"))
    return assert_one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout, kept), 3, contains)


def _get(s3, bucket: str, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_the_checks_are_stored_in_the_bucket_and_the_plan_is_blocked(s3_blocked):
    cli, s3, bucket, plan = s3_blocked
    shown = json.loads(cli.ok("policy", "show", "--format", "json").stdout)["active"]
    assert [m["name"] for m in shown["checks"]] == ["policy/iam.rego", "policy/logs.rego"]
    stored = _get(s3, bucket, f"team/policy/{shown['version']:06d}/policy.json")
    assert stored["document"]["rego_modules"]["policy/iam.rego"] == DENY_IAM
    record = _get(s3, bucket, f"team/plans/{plan['id']}/record.json")
    assert record["policy_checks"]["blocked"] is True and "signature" in record
    assert plan["policy_checks"]["blocked"] is True
    text = cli.ok("show", plan["id"]).stdout
    assert text.splitlines()[1] == "Blocked by policy" and "IAM roles are created by the platform team" in text


def test_apply_refuses_the_blocked_plan_exit_3(s3_blocked):
    cli, _s3, _bucket, plan = s3_blocked
    line = refused(cli("apply", plan["id"], "--no-wait"), "is blocked by policy")
    assert "IAM roles are created by the platform team" in line
    # break-glass by someone the policy does not list is refused
    refused(cli("apply", plan["id"], "--no-wait", "--break-glass", "--reason", "outage",
                  user="carol@example.com"), "may not break glass")


def test_a_version_without_the_rule_does_not_let_the_plan_apply(s3_blocked):
    cli, _s3, _bucket, plan = s3_blocked
    cli.set_rules(WARN_ONLY)
    line = refused(cli("apply", plan["id"], "--no-wait", "--break-glass", "--reason", "outage",
                   user="dave@example.com"), "other rules")
    assert "make a new plan" in line
    cli.set_rules(RULES)  # the same modules again: the plan's result stands


def test_break_glass_by_an_allowed_person_applies_and_is_recorded(s3_blocked):
    cli, s3, bucket, plan = s3_blocked
    applied = cli.ok("apply", plan["id"], "--no-wait", "--break-glass", "--reason", "database outage",
                     "--format", "json", user="dave@example.com")
    assert json.loads(applied.stdout)["outcome"] == "applied"
    start = _get(s3, bucket, f"team/applies/{plan['id']}/start.json")
    assert start["break_glass"] == "database outage" and start["by"] == "dave@example.com"
    rows = json.loads(cli.ok("history", "--app", APP, "--format", "json").stdout)
    row = next(r for r in rows if r["id"] == plan["id"])
    assert row["policy_blocked"] is True and row["break_glass"]
    report = cli.ok("report", plan["id"]).stdout
    assert "BREAK-GLASS apply** by dave@example.com: database outage" in report
    assert "## Blocked by policy" in report and "IAM roles are created by the platform team" in report


def test_a_module_swapped_in_the_bucket_is_refused_and_found_by_audit_verify(s3_blocked):
    cli, s3, bucket, _plan = s3_blocked
    version = json.loads(cli.ok("policy", "show", "--format", "json").stdout)["active"]["version"]
    key = f"team/policy/{version:06d}/policy.json"
    stored = _get(s3, bucket, key)
    stored["document"]["rego_modules"]["policy/iam.rego"] = "package main\n"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(stored).encode())
    refused = cli("policy", "show", "--format", "json")
    assert refused.returncode == 3 and f"policy version {version}" in refused.stderr, refused.stderr
    assert cli("plan", "--app", APP, "--version", "1.0.0", "--env", ENV).returncode == 3
    verify = cli("audit", "verify")
    assert verify.returncode == 1 and f"policy version {version}" in verify.stderr, verify.stderr
