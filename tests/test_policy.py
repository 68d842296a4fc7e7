"""Approval policy and apply preconditions: every refusal, with its exit code (3) and its reason."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from tfreview.errors import EXIT_POLICY, EXIT_USAGE, BadInput, PolicyRefusal
from tfreview.review.policy import (
    Approval,
    CurrentFacts,
    EnvPolicy,
    PlanFacts,
    Policy,
    check_apply,
    check_break_glass,
    check_can_approve,
    escalation_reasons,
    make_approval,
    policy_from_dict,
    required_approvals,
)

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"

FACTS = PlanFacts(
    plan_id="p-0001", plan_sha256="a" * 64, package_sha256="b" * 64, app="shop", env="qa", version="1.1.0",
    state_lineage="lin-1", state_serial=7, terraform_version="1.11.4", planner=ALICE, created_at=T0,
)
RISKY = replace(FACTS, risky=True, risk_reasons=("destroys aws_lb_listener.prod",))
NOW = T0 + timedelta(hours=1)


def current(facts: PlanFacts = FACTS, **changes) -> CurrentFacts:
    base = CurrentFacts(plan_sha256=facts.plan_sha256, package_sha256=facts.package_sha256,
                        state_lineage=facts.state_lineage, state_serial=facts.state_serial,
                        latest_plan_id=facts.plan_id, succeeded_in=frozenset({"sandbox"}))
    return replace(base, **changes)


def approve(who: str, facts: PlanFacts = FACTS, at: datetime = T0 + timedelta(minutes=10), **changes) -> Approval:
    return replace(make_approval(facts, who, "looks good", at), **changes)


def refusal(fn, *args, **kwargs) -> str:
    with pytest.raises(PolicyRefusal) as info:
        fn(*args, **kwargs)
    assert info.value.exit_code == EXIT_POLICY == 3
    assert info.value.hint, "every refusal says what to do"
    return info.value.one_line()


# -- who may approve -----------------------------------------------------------------------------------------
def test_planner_cannot_approve_own_plan():
    reason = refusal(check_can_approve, Policy(), FACTS, [], ALICE, NOW)
    assert "alice@example.com made plan p-0001 and may not approve it" in reason
    assert "tfreview approve p-0001" in reason


def test_self_approval_is_caught_by_the_key_whatever_the_name():
    signed = replace(FACTS, planner_key="SHA256:alice")
    assert "signed with the planner's key" in refusal(check_can_approve, Policy(), signed, [], "Alice@Example.com",
                                                      NOW, key="SHA256:alice")
    # ...and an approval carrying the planner's key does not count at apply, whatever name it gives.
    assert "0 of 1 required" in refusal(check_apply, Policy(), signed, [approve("Alice@Example.com", signed,
                                                                                key="SHA256:alice")],
                                        NOW, current(signed))


def test_identities_compare_exactly():
    """A case variant or a look-alike is another principal (which has no key in the policy), never the planner."""
    check_can_approve(Policy(), FACTS, [], "Alice@example.com", NOW)
    check_can_approve(Policy(), FACTS, [], "\u0430lice@example.com", NOW)  # Cyrillic a


def test_two_approvals_from_one_key_or_one_aws_principal_count_once():
    policy = policy_from_dict({"qa": {"required_approvals": 2}})
    same_key = [approve(BOB, key="SHA256:k"), approve(CAROL, key="SHA256:k")]
    assert "1 of 2 required" in refusal(check_apply, policy, FACTS, same_key, NOW, current())
    role = "arn:aws:sts::1:assumed-role/dev/x"
    same_arn = [approve(BOB, key="SHA256:b", aws_arn=role), approve(CAROL, key="SHA256:c", aws_arn=role)]
    assert "1 of 2 required" in refusal(check_apply, policy, FACTS, same_arn, NOW, current())
    check_apply(policy, FACTS, [approve(BOB, key="SHA256:b", aws_arn=role),
                                approve(CAROL, key="SHA256:c", aws_arn=role + "2")], NOW, current())


def test_second_person_can_approve():
    check_can_approve(Policy(), FACTS, [], BOB, NOW)


def test_self_approval_allowed_when_policy_says_so():
    policy = policy_from_dict({"sandbox": {"allow_self_approval": True}})
    check_can_approve(policy, replace(FACTS, env="sandbox"), [], ALICE, NOW)


def test_only_listed_approvers_may_approve():
    policy = policy_from_dict({"qa": {"approvers": [BOB]}})
    reason = refusal(check_can_approve, policy, FACTS, [], CAROL, NOW)
    assert "carol@example.com is not an approver for qa" in reason and BOB in reason
    check_can_approve(policy, FACTS, [], BOB, NOW)


def test_same_person_cannot_approve_twice():
    reason = refusal(check_can_approve, Policy(), FACTS, [approve(BOB)], BOB, NOW)
    assert "bob@example.com already approved plan p-0001" in reason
    assert "different person" in reason


def test_nobody_can_approve_a_rejected_plan():
    rejected = approve(CAROL, kind="reject", comment="opens port 22 to the world")
    reason = refusal(check_can_approve, Policy(), FACTS, [rejected], BOB, NOW)
    assert "rejected by carol@example.com: opens port 22 to the world" in reason
    assert "tfreview plan --app shop --version 1.1.0 --env qa" in reason


def test_anonymous_approver_is_refused():
    assert "cannot tell who" in refusal(check_can_approve, Policy(), FACTS, [], "  ", NOW)


# -- apply preconditions -------------------------------------------------------------------------------------
def test_apply_allowed_with_one_bound_approval():
    check_apply(Policy(), FACTS, [approve(BOB)], NOW, current())


def test_apply_refuses_unapproved_plan():
    reason = refusal(check_apply, Policy(), FACTS, [], NOW, current())
    assert "plan p-0001 is not approved (1 approval required)" in reason
    assert "tfreview approve p-0001" in reason


def test_apply_refuses_plan_changed_after_approval():
    changed = replace(FACTS, plan_sha256="c" * 64)  # the stored record now names other bytes
    reason = refusal(check_apply, Policy(), changed, [approve(BOB)], NOW, current(changed))
    assert "plan p-0001 changed after bob@example.com approved it (sha256 aaaaaaaaaaaa approved, cccccccccccc now)" in reason


def test_apply_refuses_plan_bytes_changed_on_disk():
    reason = refusal(check_apply, Policy(), FACTS, [approve(BOB)], NOW, current(plan_sha256="d" * 64))
    assert "plan p-0001 changed since it was made" in reason and "do not apply it" in reason


def test_apply_refuses_package_changed():
    reason = refusal(check_apply, Policy(), FACTS, [approve(BOB)], NOW, current(package_sha256="e" * 64))
    assert "package shop 1.1.0 changed since plan p-0001" in reason


def test_apply_refuses_when_state_serial_moved():
    reason = refusal(check_apply, Policy(), FACTS, [approve(BOB)], NOW, current(state_serial=8))
    assert "state of shop/qa moved since plan p-0001 (serial: serial 7 planned, 8 now)" in reason
    assert "tfreview plan --app shop --version 1.1.0 --env qa" in reason


def test_apply_refuses_when_state_lineage_differs():
    reason = refusal(check_apply, Policy(), FACTS, [approve(BOB)], NOW, current(state_lineage="lin-2"))
    assert "moved since plan p-0001 (lineage" in reason


def test_apply_refuses_superseded_plan():
    reason = refusal(check_apply, Policy(), FACTS, [approve(BOB)], NOW, current(latest_plan_id="p-0002"))
    assert "plan p-0001 is superseded by a newer plan p-0002 for shop/qa" in reason
    assert "tfreview show p-0002" in reason


def test_apply_refuses_rejected_plan_even_if_approved():
    decisions = [approve(BOB), approve(CAROL, kind="reject", comment="wrong image")]
    reason = refusal(check_apply, Policy(), FACTS, decisions, NOW, current())
    assert "plan p-0001 was rejected by carol@example.com: wrong image" in reason


def test_apply_refuses_expired_approval():
    late = T0 + timedelta(minutes=10) + timedelta(hours=24, minutes=5)
    reason = refusal(check_apply, Policy(), FACTS, [approve(BOB)], late, current())
    assert "approval of plan p-0001 by bob@example.com expired at 2026-11-27T09:10:00Z (5 min ago" in reason
    assert "approvals last 24 h in qa" in reason


def test_approvals_never_expire_when_ttl_is_zero():
    policy = policy_from_dict({"default": {"approval_ttl_hours": 0}})
    check_apply(policy, FACTS, [approve(BOB)], T0 + timedelta(days=400), current())


def test_two_required_approvers_need_two_distinct_people():
    policy = policy_from_dict({"qa": {"required_approvals": 2}})
    reason = refusal(check_apply, policy, FACTS, [approve(BOB)], NOW, current())
    assert "plan p-0001 has 1 of 2 required approvals (approved by: bob@example.com)" in reason
    assert "not alice@example.com, bob@example.com" in reason
    # The same key approving twice (under whatever name) still counts once.
    refusal(check_apply, policy, FACTS, [approve(BOB, key="k-bob"), approve("BOB@example.com", key="k-bob")], NOW,
            current())
    check_apply(policy, FACTS, [approve(BOB), approve(CAROL)], NOW, current())


def test_self_approval_does_not_count_towards_the_required_approvals():
    policy = policy_from_dict({"qa": {"required_approvals": 2}})
    refusal(check_apply, policy, FACTS, [approve(BOB), approve(ALICE)], NOW, current())


def test_risky_plan_needs_one_more_approver():
    assert required_approvals(EnvPolicy(), RISKY) == 2
    reason = refusal(check_apply, Policy(), RISKY, [approve(BOB, RISKY)], NOW, current(RISKY))
    assert "has 1 of 2 required approvals, 1 more because destroys aws_lb_listener.prod" in reason
    check_apply(Policy(), RISKY, [approve(BOB, RISKY), approve(CAROL, RISKY)], NOW, current(RISKY))


def test_escalation_can_be_switched_off():
    policy = policy_from_dict({"qa": {"escalate_on_risk": 0}})
    check_apply(policy, RISKY, [approve(BOB, RISKY)], NOW, current(RISKY))


def test_approval_from_someone_no_longer_an_approver_does_not_count():
    policy = policy_from_dict({"qa": {"approvers": [CAROL]}})
    refusal(check_apply, policy, FACTS, [approve(BOB)], NOW, current())


def test_approval_for_other_state_does_not_count():
    reason = refusal(check_apply, Policy(), FACTS, [approve(BOB, state_serial=6)], NOW, current())
    assert "approvals of plan p-0001 were given for other plan facts" in reason


def test_promotion_gate_requires_success_in_qa():
    policy = policy_from_dict({"prod": {"requires_success_in": "qa"}})
    prod = replace(FACTS, env="prod")
    reason = refusal(check_apply, policy, prod, [approve(BOB, prod)], NOW, current(prod))
    assert "shop 1.1.0 has not been applied successfully in qa (prod requires it)" in reason
    assert "--env qa" in reason
    check_apply(policy, prod, [approve(BOB, prod)], NOW, current(prod, succeeded_in=frozenset({"qa"})))


# -- break-glass ---------------------------------------------------------------------------------------------
def test_break_glass_allowed_for_listed_identity_and_skips_approvals():
    policy = policy_from_dict({"prod": {"break_glass": [CAROL], "requires_success_in": "qa"}})
    check_break_glass(policy, "prod", CAROL, "site down, hotfix")
    prod = replace(FACTS, env="prod")
    check_apply(policy, prod, [], NOW, current(prod), break_glass=True)


def test_break_glass_refused_for_unlisted_identity():
    policy = policy_from_dict({"prod": {"break_glass": [CAROL]}})
    reason = refusal(check_break_glass, policy, "prod", BOB, "I want to")
    assert "bob@example.com may not break glass in prod" in reason


def test_break_glass_needs_a_reason():
    policy = policy_from_dict({"prod": {"break_glass": [CAROL]}})
    with pytest.raises(BadInput) as info:
        check_break_glass(policy, "prod", CAROL, " ")
    assert info.value.exit_code == EXIT_USAGE


def test_break_glass_still_refuses_changed_plan_bytes():
    reason = refusal(check_apply, Policy(), FACTS, [], NOW, current(plan_sha256="f" * 64), break_glass=True)
    assert "changed since it was made" in reason


# -- config --------------------------------------------------------------------------------------------------
def test_policy_tables_inherit_the_default():
    policy = policy_from_dict({"default": {"required_approvals": 2, "approval_ttl_hours": 8},
                               "prod": {"approvers": [BOB, CAROL], "break_glass": [CAROL]}})
    assert policy.for_env("prod") == EnvPolicy(required_approvals=2, approval_ttl_hours=8.0,
                                               approvers=(BOB, CAROL), break_glass=(CAROL,))
    assert policy.for_env("qa") == EnvPolicy(required_approvals=2, approval_ttl_hours=8.0)
    assert policy_from_dict(None) == Policy()


@pytest.mark.parametrize("table, words", [
    ({"qa": {"required_approval": 2}}, "did you mean required_approvals"),
    ({"qa": {"required_approvals": "two"}}, "required_approvals must be a whole number"),
    ({"qa": {"required_approvals": True}}, "required_approvals must be a whole number"),
    ({"qa": {"approvers": "bob"}}, "approvers must be a list of identities"),
    ({"qa": {"approval_ttl_hours": -1}}, "approval_ttl_hours must be a number"),
    ({"qa": {"allow_self_approval": "yes"}}, "allow_self_approval must be true or false"),
    ({"prod": {"requires_success_in": "prod"}}, "requires_success_in must be another environment"),
    ({"qa": 3}, "policy.qa must be a table"),
])
def test_bad_policy_config_is_bad_input_with_a_hint(table, words):
    with pytest.raises(BadInput) as info:
        policy_from_dict(table)
    assert info.value.exit_code == EXIT_USAGE
    assert words in info.value.message + " " + info.value.hint
    assert info.value.hint


def test_facts_and_approvals_round_trip_through_json_dicts():
    assert PlanFacts.from_dict(RISKY.to_dict()) == RISKY
    a = approve(BOB)
    assert Approval.from_dict(a.to_dict()) == a
    assert a.to_dict()["approved_at"] == "2026-11-26T09:10:00Z"


# -- what escalates --------------------------------------------------------------------------------------------
def test_a_routine_deploy_does_not_escalate():
    changes = [{"address": 'module.app.aws_ecs_task_definition.app["green"]', "type": "aws_ecs_task_definition",
                "action": "replace"},
               {"address": 'module.app.aws_ecs_service.app["green"]', "type": "aws_ecs_service", "action": "update"}]
    assert escalation_reasons(changes) == ()


def test_a_first_deploy_creating_iam_and_security_groups_escalates():
    changes = [{"address": "aws_iam_role.exec", "type": "aws_iam_role", "action": "create"},
               {"address": "aws_security_group.alb", "type": "aws_security_group", "action": "create"},
               {"address": "aws_ecs_cluster.this", "type": "aws_ecs_cluster", "action": "create"}]
    assert escalation_reasons(changes) == ("creates IAM aws_iam_role.exec", "creates security group aws_security_group.alb")


def test_destroy_replace_and_changes_to_existing_iam_or_security_groups_escalate():
    changes = [{"address": "aws_lb_listener.prod", "type": "aws_lb_listener", "action": "delete"},
               {"address": "aws_lb_target_group.blue", "type": "aws_lb_target_group", "action": "replace"},
               {"address": "aws_iam_role_policy.exec", "type": "aws_iam_role_policy", "action": "update"},
               {"address": "aws_security_group.alb", "type": "aws_security_group", "action": "update"},
               {"address": "aws_ecs_task_definition.old", "type": "aws_ecs_task_definition", "action": "delete",
                "deposed": "abc123"},
               {"address": "data.aws_iam_policy_document.x", "type": "aws_iam_policy_document", "action": "read",
                "mode": "data"}]
    assert escalation_reasons(changes) == (
        "destroys aws_lb_listener.prod", "replaces aws_lb_target_group.blue",
        "changes IAM aws_iam_role_policy.exec", "changes security group aws_security_group.alb")


def test_an_env_may_need_no_approval_at_all():
    policy = policy_from_dict({"sandbox": {"required_approvals": 0, "escalate_on_risk": 0}})
    sandbox = replace(FACTS, env="sandbox")
    check_apply(policy, sandbox, [], NOW, current(sandbox))
    # ...but a rejection still stops it.
    refusal(check_apply, policy, sandbox, [approve(BOB, sandbox, kind="reject")], NOW, current(sandbox))


# -- invariant: no apply with fewer valid approvers than required --------------------------------------------------
from hypothesis import given, settings, strategies as st  # noqa: E402

PEOPLE = [ALICE, BOB, CAROL, "dave@example.com", "BOB@example.com"]
KEYS = {ALICE: "k-alice", BOB: "k-bob", CAROL: "k-carol", "dave@example.com": "k-dave", "BOB@example.com": "k-bob"}


@settings(max_examples=150, deadline=None)
@given(
    required=st.integers(0, 3), escalate=st.integers(0, 2), self_ok=st.booleans(), risky=st.booleans(),
    ttl=st.sampled_from([None, 1.0, 24.0]),
    listed=st.one_of(st.none(), st.lists(st.sampled_from(PEOPLE[:4]), max_size=3).map(tuple)),
    decisions=st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from(["approve", "reject"]),
                                 st.integers(0, 30), st.booleans()), max_size=5),
)
def test_apply_never_passes_without_enough_valid_distinct_approvers(required, escalate, self_ok, risky, ttl, listed,
                                                                     decisions):
    ep = EnvPolicy(required_approvals=required, escalate_on_risk=escalate, allow_self_approval=self_ok,
                   approval_ttl_hours=ttl, approvers=listed)
    policy = Policy(envs={"qa": ep})
    facts = replace(FACTS, risky=risky, risk_reasons=("x",) if risky else (), planner_key=KEYS[ALICE])
    now = T0 + timedelta(hours=2)
    approvals = [approve(who, facts, at=T0 + timedelta(minutes=m), kind=kind, key=KEYS[who],
                         **({} if bound else {"state_serial": 99}))
                 for who, kind, m, bound in decisions]
    try:
        check_apply(policy, facts, approvals, now, current(facts))
    except PolicyRefusal:
        return
    assert not any(a.kind == "reject" for a in approvals)
    valid = {a.key for a in approvals  # distinct keys: one holder under two names counts once
             if a.kind == "approve" and a.state_serial == facts.state_serial
             and (self_ok or a.key != facts.planner_key)
             and (listed is None or a.approver in listed)
             and (ttl is None or now < a.approved_at + timedelta(hours=ttl))}
    assert len(valid) >= required + (escalate if risky else 0)


def test_planner_may_withdraw_own_plan_by_rejecting_it():
    policy = policy_from_dict({"qa": {"approvers": [BOB]}})
    check_can_approve(policy, FACTS, [], ALICE, NOW, kind="reject")
    refusal(check_can_approve, policy, FACTS, [], ALICE, NOW)  # ...but not approve it
    refusal(check_can_approve, policy, FACTS, [], CAROL, NOW, kind="reject")  # others follow the approvers list
    withdrawn = approve(ALICE, kind="reject", comment="withdrawn")
    assert "already rejected" in refusal(check_can_approve, policy, FACTS, [withdrawn], ALICE, NOW, kind="reject")
