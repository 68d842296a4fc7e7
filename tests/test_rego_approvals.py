"""Approval rules in Rego (issue 22, item 4), the pure core: the shape of an `approvals` rule, and how its demands
combine with the built-in rules (the stricter wins, never the looser). Through the CLI: test_policy_approval_rules.py."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.test_policy import BOB, CAROL, FACTS, NOW, RISKY, approve, current, refusal
from tfreview.review.policy import EnvPolicy, PlanFacts, Policy, check_apply, policy_from_dict, required_approvals
from tfreview.review.rego_approvals import RuleApproval, demand_lines, demands_of, parse_demands, shortfall_lines
from tfreview.trust.rego_approvals import evaluate

ERIN = "erin@example.com"
SECURITY = RuleApproval("main", required=2, from_=(ERIN,), from_required=1, msg="IAM changes need security")


def with_rules(facts: PlanFacts, *demands: RuleApproval) -> PlanFacts:
    return replace(facts, rule_approvals=demands)


# -- the shape ----------------------------------------------------------------------------------------------------
def test_an_object_or_a_set_of_objects_is_read():
    one = parse_demands("main", {"required": 2, "from": [ERIN], "msg": "why"})
    assert one == [RuleApproval("main", 2, (ERIN,), 1, "why")]
    several = parse_demands("main", [{"required": 3}, {"from": [ERIN, BOB], "from_required": 2}])
    assert [d.count for d in several] == [3, 2]


@pytest.mark.parametrize("value, says", [
    ("two", "is a str, not an object"),
    (["two"], "each demand must be an object"),
    ({"required": "2"}, "required must be a whole number"),
    ({"required": True}, "required must be a whole number"),
    ({"required": -1}, "required must be a whole number"),
    ({"requried": 2}, "unknown key 'requried'"),  # a typo never loosens a rule
    ({"from": "security@example.com"}, "from must be a list"),
    ({"from": []}, "from must be a list"),
    ({"from": [ERIN], "from_required": 2}, "from_required must be a whole number from 1 to 1"),
    ({"from_required": 1}, "from_required needs from"),
    ({"msg": "nothing asked"}, "a demand needs required >= 1 or from"),
    ({"required": 2, "msg": 3}, "msg must be a string"),
])
def test_a_wrong_shape_is_refused_naming_the_rule_and_module(value, says):
    with pytest.raises(ValueError) as info:
        parse_demands("main", value, ["policy/approvals.rego"])
    assert str(info.value).startswith("data.main.approvals (policy/approvals.rego)")
    assert says in str(info.value)


def test_the_demands_are_read_back_from_the_signed_record():
    checks = {"approvals": [SECURITY.to_json()]}
    assert demands_of(checks) == (SECURITY,)
    assert demands_of(None) == () and demands_of({"results": []}) == ()
    record = {k: v for k, v in FACTS.to_dict().items() if k != "rule_approvals"}  # a plan record has no such key
    facts = PlanFacts.from_dict({**record, "policy_checks": checks})
    assert facts.rule_approvals == (SECURITY,)
    assert PlanFacts.from_dict(with_rules(FACTS, SECURITY).to_dict()).rule_approvals == (SECURITY,)
    assert demand_lines([SECURITY]) == ["2 approvals incl. an approval from erin@example.com (required by "
                                        "main.approvals: IAM changes need security)"]


# -- the combination --------------------------------------------------------------------------------------------
def test_the_count_is_the_stricter_of_the_built_in_and_the_rules():
    assert required_approvals(EnvPolicy(), with_rules(FACTS, RuleApproval("main", required=3))) == 3
    # a rule asking for fewer never lowers the built-in count (2: one more for a risky plan)
    assert required_approvals(EnvPolicy(), with_rules(RISKY, RuleApproval("main", required=1))) == 2
    assert required_approvals(EnvPolicy(required_approvals=0), with_rules(FACTS, RuleApproval("main", required=0,
                                                                                               from_=(ERIN,),
                                                                                               from_required=1))) == 1


def test_a_rule_asking_for_fewer_does_not_lower_the_count():
    facts = with_rules(RISKY, RuleApproval("main", required=1, msg="one is enough"))
    reason = refusal(check_apply, Policy(), facts, [approve(BOB, facts)], NOW, current(facts))
    assert "has 1 of 2 required approvals, 1 more because destroys aws_lb_listener.prod" in reason


def test_a_rule_asking_for_more_raises_the_count_and_says_why():
    facts = with_rules(FACTS, RuleApproval("main", required=3, msg="three pairs of eyes"))
    reason = refusal(check_apply, Policy(), facts, [approve(BOB, facts), approve(CAROL, facts)], NOW, current(facts))
    assert "has 2 of 3 required approvals; 1 more approver(s) needed because main.approvals: three pairs of eyes" \
        in reason
    check_apply(Policy(), facts, [approve(w, facts) for w in (BOB, CAROL, "dave@example.com")], NOW, current(facts))


def test_enough_approvals_without_the_named_person_are_refused_naming_who():
    facts = with_rules(RISKY, SECURITY)
    reason = refusal(check_apply, Policy(), facts, [approve(BOB, facts), approve(CAROL, facts)], NOW, current(facts))
    assert "an approval from erin@example.com needed because main.approvals: IAM changes need security" in reason
    assert "ask erin@example.com to run: tfreview approve p-0001" in reason
    check_apply(Policy(), facts, [approve(BOB, facts), approve(ERIN, facts)], NOW, current(facts))


def test_the_named_persons_approval_counts_only_when_it_counts_for_the_built_in_rules():
    facts = with_rules(RISKY, SECURITY)
    # erin is not among the environment's approvers: her approval is not counted, so the demand is not met
    policy = policy_from_dict({"qa": {"approvers": [BOB, CAROL]}})
    reason = refusal(check_apply, policy, facts, [approve(BOB, facts), approve(CAROL, facts), approve(ERIN, facts)],
                     NOW, current(facts))
    assert "an approval from erin@example.com needed" in reason
    # the same key under erin's name as bob's counts once, and not as erin's
    reason = refusal(check_apply, Policy(), facts, [approve(BOB, facts, key="k"), approve(ERIN, facts, key="k"),
                                                   approve(CAROL, facts)], NOW, current(facts))
    assert "an approval from erin@example.com needed" in reason


def test_an_unapproved_plan_names_the_rule():
    facts = with_rules(FACTS, SECURITY)
    reason = refusal(check_apply, Policy(), facts, [], NOW, current(facts))
    assert "is not approved (2 approvals required; 2 approvals incl. an approval from erin@example.com" in reason


def test_shortfall_lines_are_empty_when_met():
    assert shortfall_lines(2, [SECURITY], [BOB, ERIN]) == []
    assert shortfall_lines(2, [SECURITY], [BOB]) == ["an approval from erin@example.com needed because "
                                                     "main.approvals: IAM changes need security"]


# -- evaluation (the real engine, no terraform) -----------------------------------------------------------------
PLAN = json.dumps({"format_version": "1.2", "resource_changes": [
    {"address": "aws_iam_role.app", "type": "aws_iam_role", "change": {"actions": ["create"]}}]})
V1 = """package main

import rego.v1

approvals contains {"required": 2, "from": ["erin@example.com"], "msg": sprintf("%s is IAM", [rc.address])} if {
	some rc in input.resource_changes
	startswith(rc.type, "aws_iam_")
}
"""


def test_a_v1_set_rule_is_evaluated_over_the_plan_and_the_facts():
    demands, error = evaluate({"policy/a.rego": V1}, PLAN, {"env": "prod"}, ("main",), 30)
    assert error is None
    assert demands == [RuleApproval("main", 2, (ERIN,), 1, "aws_iam_role.app is IAM")]


def test_a_v0_object_rule_and_other_namespaces():
    v0 = ('package team.rules\n\napprovals = {"required": 3, "msg": "prod"} {\n\tdata.tfreview.env == "prod"\n}\n')
    demands, error = evaluate({"policy/b.rego": v0}, PLAN, {"env": "prod"}, ("main", "team.rules"), 30)
    assert error is None and demands == [RuleApproval("team.rules", 3, (), 0, "prod")]
    assert evaluate({"policy/b.rego": v0}, PLAN, {"env": "qa"}, ("team.rules",), 30) == ([], None)  # undefined
    assert evaluate({"policy/b.rego": v0}, PLAN, {"env": "prod"}, ("main",), 30) == ([], None)  # not its namespace


def test_a_wrong_shape_or_an_error_is_one_line_naming_module_and_rule():
    bad = 'package main\n\nimport rego.v1\n\napprovals := {"required": "two"}\n'
    demands, error = evaluate({"policy/bad.rego": bad, "policy/a.rego": V1}, PLAN, {}, ("main",), 30)
    assert demands == [] and error is not None and "\n" not in error
    assert "data.main.approvals" in error and "policy/bad.rego" in error
    boom = 'package main\n\nimport rego.v1\n\napprovals := {"required": 1 / 0}\n'
    demands, error = evaluate({"policy/boom.rego": boom}, PLAN, {}, ("main",), 30)
    assert demands == [] and error and "data.main.approvals" in error


def test_modules_that_never_name_the_rule_cost_nothing(monkeypatch):
    from tfreview.trust import rego

    monkeypatch.setattr(rego, "_in_child", lambda *a, **k: pytest.fail("the engine ran"))
    assert evaluate({"policy/d.rego": "package main\n\ndeny[m] { m := \"x\"; false }\n"}, PLAN, {}, ("main",),
                    30) == ([], None)


def test_policy_check_shows_the_demands_and_refuses_a_wrong_shape(tmp_path):
    from tests.test_policy_checks import PLANS, tfreview

    plan = PLANS / "sg_opened.json"
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.rego").write_text('package main\n\nimport rego.v1\n\napprovals contains {"required": 2, '
                                            '"from": ["erin@example.com"], "msg": "security group"} if {\n'
                                            '\tsome rc in input.resource_changes\n'
                                            '\tstartswith(rc.type, "aws_security_group")\n}\n')
    proc = tfreview("policy", "check", str(plan), "--policy", str(tmp_path / "ok"))
    assert proc.returncode == 0, proc.stderr
    assert "approvals: 2 approvals incl. an approval from erin@example.com (required by main.approvals: security " \
           "group)" in proc.stdout
    doc = json.loads(tfreview("policy", "check", str(plan), "--policy", str(tmp_path / "ok"), "--format",
                              "json").stdout)
    assert doc["approvals"] == [{"namespace": "main", "rule": "approvals", "required": 2, "from": [ERIN],
                                 "from_required": 1, "msg": "security group"}]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.rego").write_text('package main\n\napprovals := ["two"]\n')
    proc = tfreview("policy", "check", str(plan), "--policy", str(tmp_path / "bad"))
    assert proc.returncode == 1 and "data.main.approvals (a.rego)" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_approve_states_the_demands_and_what_is_still_missing():
    from tfreview.render.checks import approve_lines, still_needed

    checks = {"approvals": [SECURITY.to_json(), {**SECURITY.to_json(), "from": ["x\x1b[31m@example.com"],
                                                 "msg": "evil \x1b]8;;"}]}
    lines = approve_lines(checks, [BOB])
    assert "  approvals: 2 approvals incl. an approval from erin@example.com (required by main.approvals: IAM " \
           "changes need security)" in lines
    assert "  still needed: an approval from erin@example.com (main.approvals: IAM changes need security)" in lines
    assert not any("\x1b" in line for line in lines)  # rule output is untrusted: no terminal control sequences
    assert still_needed(checks, "p-1", [BOB, ERIN, "x\x1b[31m@example.com"]) == []
    assert still_needed({"approvals": [SECURITY.to_json()]}, "p-1", [BOB]) == [
        "plan p-1 still needs an approval from erin@example.com (main.approvals: IAM changes need security)"]


def test_show_json_with_checks_is_schema_version_2_and_carries_the_demands():
    from tfreview.render.checks import with_checks

    review = json.dumps({"schema_version": 1, "counts": {}})
    checks = {"policy_version": 2, "modules": [], "results": [], "blocked": False, "error": None,
              "approvals": [SECURITY.to_json()]}
    doc = json.loads(with_checks(review, "json", checks))
    assert doc["schema_version"] == 2 and doc["policy_checks"]["approvals"] == [SECURITY.to_json()]
    assert json.loads(with_checks(review, "json", None))["schema_version"] == 1  # no checks: the review as it was
