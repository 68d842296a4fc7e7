"""Approval rules in Rego through the CLI (issue 22, item 4), real terraform against the local AWS: a policy
module says how many approvals a plan needs and from whom; the demand is judged at plan time, kept in the signed
plan record, shown by `show`, and `apply` refuses (exit 3) naming what is missing, never looser than the built-in
rules; a rule of the wrong shape blocks the plan."""
from __future__ import annotations

import json

import pytest

from tests.helpers import assert_one_line_error

pytestmark = pytest.mark.integration

ENV = "sandbox"
ERIN = "erin@example.com"  # the security team in these tests

# One module, one demand per app (the rules see data.tfreview.app), so one store holds every case.
APPROVALS = """package main

import rego.v1

creates_iam if {
	some rc in input.resource_changes
	startswith(rc.type, "aws_iam_")
	"create" in rc.change.actions
}

approvals contains {"required": 2, "from": ["erin@example.com"], "msg": "IAM changes need the security team"} if {
	data.tfreview.app == "ruleiam"
	creates_iam
}

approvals contains {"required": 1, "msg": "one reviewer is enough"} if data.tfreview.app == "rulelow"

approvals contains {"required": 3, "msg": "three pairs of eyes"} if data.tfreview.app == "rulethree"

approvals contains {"required": "two"} if data.tfreview.app == "rulebad"
"""
RULES = '[policy.default]\nchecks = ["policy/*.rego"]\nbreak_glass = ["dave@example.com"]\n'


@pytest.fixture(scope="module")
def store(aws_sandbox, cli_factory):
    cli = cli_factory("policy-approval-rules")
    (cli.cwd / "policy").mkdir()
    (cli.cwd / "policy" / "approvals.rego").write_text(APPROVALS)
    cli.set_rules(RULES)
    plans = {}
    for app in ("ruleiam", "rulelow", "rulethree", "rulebad"):
        cli.ok("package", "--app", app, "--version", "1.0.0")
        proc = cli("plan", "--app", app, "--version", "1.0.0", "--env", ENV)
        assert proc.returncode == 0, proc.stderr
        plan_id = next(ln.split()[2] for ln in proc.stdout.splitlines() if ln.startswith("plan id:"))
        plans[app] = (plan_id, proc)
    return cli, plans


def test_the_demand_is_in_the_signed_record_and_shown(store):
    cli, plans = store
    plan_id, proc = plans["ruleiam"]
    line = "approvals: 2 approvals incl. an approval from erin@example.com (required by main.approvals: IAM " \
           "changes need the security team)"
    assert line in proc.stdout
    assert line in cli.ok("show", plan_id).stdout
    record = json.loads((cli.store / "plans" / plan_id / "record.json").read_text())
    assert record["policy_checks"]["approvals"] == [{"namespace": "main", "rule": "approvals", "required": 2,
                                                     "from": [ERIN], "from_required": 1,
                                                     "msg": "IAM changes need the security team"}]
    shown = json.loads(cli.ok("show", plan_id, "--format", "json").stdout)
    assert shown["policy_checks"]["approvals"] == record["policy_checks"]["approvals"]
    assert "an approval from erin@example.com" in cli.ok("show", plan_id, "--format", "markdown").stdout


def test_two_approvals_without_security_are_refused_then_security_lets_it_apply(store):
    cli, plans = store
    plan_id, _ = plans["ruleiam"]
    bob = cli.ok("approve", plan_id, "--yes", user="bob@example.com")
    assert f"plan {plan_id} still needs an approval from erin@example.com (main.approvals: IAM changes need the " \
           "security team)" in bob.stderr
    line = assert_one_line_error(cli("apply", plan_id, "--no-wait"), 3, "has 1 of 2 required approvals")
    assert "an approval from erin@example.com needed because main.approvals: IAM changes need the security team" in line
    cli.ok("approve", plan_id, "--yes", user="carol@example.com")
    line = assert_one_line_error(cli("apply", plan_id, "--no-wait"), 3, "has 2 of 2 required approvals")
    assert "an approval from erin@example.com needed" in line and "ask erin@example.com" in line
    erin = cli.ok("approve", plan_id, "--yes", user=ERIN)
    assert "still needs" not in erin.stderr
    applied = cli.ok("apply", plan_id, "--no-wait", "--format", "json")
    assert json.loads(applied.stdout)["outcome"] == "applied"


def test_a_rule_asking_for_fewer_does_not_lower_the_built_in_count(store):
    cli, plans = store
    plan_id, _ = plans["rulelow"]  # a first deploy creates IAM roles: the built-in rules want 2
    cli.ok("approve", plan_id, "--yes", user="bob@example.com")
    line = assert_one_line_error(cli("apply", plan_id, "--no-wait"), 3, "has 1 of 2 required approvals, 1 more "
                                                                        "because")
    assert "one reviewer is enough" not in line


def test_a_rule_asking_for_more_raises_the_count(store):
    cli, plans = store
    plan_id, _ = plans["rulethree"]
    cli.ok("approve", plan_id, "--yes", user="bob@example.com")
    cli.ok("approve", plan_id, "--yes", user="carol@example.com")
    line = assert_one_line_error(cli("apply", plan_id, "--no-wait"), 3, "has 2 of 3 required approvals")
    assert "1 more approver(s) needed because main.approvals: three pairs of eyes" in line


def test_a_rule_of_the_wrong_shape_blocks_naming_module_and_rule(store):
    cli, plans = store
    plan_id, proc = plans["rulebad"]
    assert proc.stdout.startswith("Blocked by policy\n"), proc.stdout[:300]
    assert "data.main.approvals (policy/approvals.rego): required must be a whole number" in proc.stdout
    record = json.loads((cli.store / "plans" / plan_id / "record.json").read_text())
    assert record["policy_checks"]["blocked"] is True and record["policy_checks"]["approvals"] == []
    cli.ok("approve", plan_id, "--yes", user="bob@example.com")
    cli.ok("approve", plan_id, "--yes", user="carol@example.com")
    line = assert_one_line_error(cli("apply", plan_id, "--no-wait"), 3, "is blocked by policy")
    assert "data.main.approvals" in line
