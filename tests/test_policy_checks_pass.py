"""The policy checks' one engine pass (issue 22 item 7): the engine process takes the plan as input while
`tfreview plan` builds its review (`rego.start` ... `finish(facts)`), the `approvals` rules are asked for in the
same query, and `plan` scrubs the messages with the secrets its redaction found (no second parse of the plan).

Real regorus engine processes throughout; the one stand-in is `FakeActive`, a policy version without a store.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tfreview.review.policy import EnvPolicy
from tfreview.trust import rego, rego_approvals
from tfreview.trust.checks import PlanChecks, plan_facts

REPO = Path(__file__).resolve().parent.parent
PLANS = REPO / "fixtures" / "plans"
PLAN = json.dumps({"format_version": "1.2", "resource_changes": [
    {"address": "aws_iam_role.app", "type": "aws_iam_role", "change": {"actions": ["create"], "after": {}}}]})
FACTS_RULE = """package main

import rego.v1

deny contains sprintf("%s: IAM in %s", [rc.address, data.tfreview.env]) if {
	data.tfreview.env == "prod"
	some rc in input.resource_changes
	startswith(rc.type, "aws_iam_")
}

warn contains sprintf("%d ECS stories", [count(data.tfreview.ecs)]) if count(data.tfreview.ecs) > 0
"""
APPROVALS = """package main

import rego.v1

approvals contains {"required": 2, "from": ["erin@example.com"], "msg": sprintf("%s is IAM", [rc.address])} if {
	some rc in input.resource_changes
	startswith(rc.type, "aws_iam_")
}
"""


def _gone(pid: int, within: float = 30.0) -> bool:
    """Whether process `pid` (our child) has ended and been reaped within `within` seconds."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True  # reaped already
        if done:
            return True
        time.sleep(0.05)
    return False


def test_the_rules_see_the_facts_sent_after_the_plan_was_taken_as_input():
    started = rego.start({"policy/f.rego": FACTS_RULE}, PLAN.encode())
    run = started.finish({"env": "prod", "ecs": []})
    assert run.error is None and [f.msg for f in run.findings] == ["aws_iam_role.app: IAM in prod"]
    assert run.engine_cpu_s is not None and all(s >= 0 for s in run.engine_cpu_s)
    assert not rego.start({"policy/f.rego": FACTS_RULE}, PLAN.encode()).finish({"env": "qa"}).findings


def test_facts_bigger_than_a_pipe_buffer_reach_the_rules():
    """`plan`'s facts carry the ECS story of every task family: megabytes on a big plan, sent while the engine
    may still be reading the plan (the parent writes only what the pipe takes, and reads the answer meanwhile)."""
    ecs = [{"family": f"app{i}", "story": "x" * 200} for i in range(5000)]  # about 1.1 MB of JSON
    run = rego.start({"policy/f.rego": FACTS_RULE}, PLAN.encode()).finish({"env": "qa", "ecs": ecs})
    assert run.error is None and [f.msg for f in run.findings] == ["5000 ECS stories"]


def test_facts_that_are_not_json_block_and_leave_no_engine_process():
    started = rego.start({"policy/f.rego": FACTS_RULE}, PLAN.encode())
    pid = started._child.pid if started._child else None
    run = started.finish({"env": float("nan")})
    assert run.blocked and run.error and "facts are not JSON" in run.error
    assert pid is not None and _gone(pid)


def test_a_cancelled_start_leaves_no_engine_process_and_cannot_pass_afterwards():
    """`plan` cancels the checks when its review fails: the waiting engine process is ended, not left behind."""
    started = rego.start({"policy/f.rego": FACTS_RULE}, PLAN.encode())
    assert started._child is not None
    pid = started._child.pid
    assert pid is not None
    started.cancel()
    assert _gone(pid)
    run = started.finish({"env": "prod"})  # a finish after cancel fails closed
    assert run.blocked and run.error and "already used" in run.error


def test_an_engine_process_whose_caller_gave_up_ends_by_itself():
    """The parent's end of the facts pipe closed without facts (the parent died, say): the engine process
    answers nothing and exits instead of waiting forever."""
    started = rego.start({"policy/f.rego": FACTS_RULE}, PLAN.encode())
    child = started._child
    assert child is not None and child.pid is not None
    os.close(child._send_fd)
    child._send_fd = -1
    assert _gone(child.pid)
    child.pid = None


def test_the_time_limit_counts_from_finish_and_a_rule_that_runs_too_long_still_blocks():
    loop = "package main\nimport rego.v1\ndeny contains x if { some x in numbers.range(1, 2000000000); x < 0 }\n"
    started = rego.start({"slow.rego": loop}, b"{}", timeout=1)
    time.sleep(1.5)  # the engine waits for the facts: nothing of the rule has run yet
    run = started.finish({})
    assert run.blocked and run.error and "did not finish within 1 s" in run.error and "slow.rego" in run.error


def test_the_approvals_rules_come_from_the_checks_own_engine_pass(monkeypatch):
    """deny/warn and `approvals` in one engine process, which takes the plan as input once (it was two)."""
    made: list[object] = []
    real = rego._Child

    class Counting(real):
        def __init__(self, work):  # noqa: ANN001
            made.append(work)
            super().__init__(work)

    monkeypatch.setattr(rego, "_Child", Counting)
    modules = {"policy/a.rego": APPROVALS, "policy/f.rego": FACTS_RULE}
    run = rego.evaluate(modules, PLAN, {"env": "prod"}, extra_rules=rego_approvals.extra_rules(modules))
    demands, error = rego_approvals.demands_of_run(modules, run)
    assert len(made) == 1
    assert [f.msg for f in run.findings] == ["aws_iam_role.app: IAM in prod"] and error is None
    assert [(d.required, d.from_, d.msg) for d in demands] == [(2, ("erin@example.com",), "aws_iam_role.app is IAM")]
    # without a module that names the rule, it is not asked for
    assert rego_approvals.extra_rules({"policy/f.rego": FACTS_RULE}) == ()


def test_an_approvals_rule_that_fails_blocks_and_the_checks_messages_stay():
    bad = 'package main\n\nimport rego.v1\n\napprovals := {"required": 1 / 0}\n'
    modules = {"policy/bad.rego": bad, "policy/f.rego": FACTS_RULE}
    run = rego.evaluate(modules, PLAN, {"env": "prod"}, extra_rules=("approvals",))
    demands, error = rego_approvals.demands_of_run(modules, run)
    assert [f.msg for f in run.findings] == ["aws_iam_role.app: IAM in prod"]
    assert demands == [] and error and "data.main.approvals" in error and "\n" not in error


def FakeActive(modules: dict[str, str]) -> SimpleNamespace:  # noqa: N802 - a stand-in for a policy version
    """A fake active policy version (no store): what PlanChecks reads of one."""
    return SimpleNamespace(version=3, sha256="a" * 64, document=SimpleNamespace(rego_modules=modules))


def test_plan_scrubs_with_the_secrets_of_its_redaction_without_parsing_the_plan_again(monkeypatch):
    from tfreview.plan import parse
    from tfreview.plan.redact import redact_plan, redact_plan_with_secrets

    raw = (PLANS / "secret_env_rotated.json").read_bytes()
    redacted, secrets = redact_plan_with_secrets(raw)
    # Terraform's sensitive strings, and the value the review hides by its name (SESSION_SECRET, not marked)
    assert redacted == redact_plan(raw)
    assert secrets == parse.parse_plan(json.loads(raw)).sensitive_strings | {"fixture-env-secret-5e1d0b7a"}
    leak = ("package main\nimport rego.v1\nwarn contains msg if {\n  some rc in input.resource_changes\n"
            "  rc.type == \"aws_ecs_task_definition\"\n"
            "  some c in json.unmarshal(rc.change.after.container_definitions)\n  some e in c.environment\n"
            "  msg := sprintf(\"%s=%s\", [e.name, e.value])\n}\n")
    checks = PlanChecks(FakeActive({"policy/leak.rego": leak}), EnvPolicy(checks=("policy/*.rego",)), raw)
    monkeypatch.setattr(parse, "sensitive_strings", lambda *_: pytest.fail("the plan was parsed again"))
    monkeypatch.setattr(parse, "parse_plan", lambda *_: pytest.fail("the plan was parsed again"))
    out = checks.finish({"env": "prod"}, secrets)
    text = "\n".join(r["msg"] for r in out["results"])
    assert "API_TOKEN=(sensitive value)" in text and out["approvals"] == []
    assert "SESSION_SECRET=(sensitive value)" in text and "APP_ENV=prod" in text
    assert not any(s in text for s in secrets if len(s) >= 4)
    assert out["policy_version"] == 3 and out["modules"][0]["name"] == "policy/leak.rego"


def test_plan_facts_reach_the_rules_through_plan_checks():
    record = {"app": "shop", "env": "prod", "summary": {"ecs": [{"family": "shop"}]}}
    checks = PlanChecks(FakeActive({"policy/f.rego": FACTS_RULE, "policy/a.rego": APPROVALS}),
                        EnvPolicy(checks=("policy/*.rego",)), PLAN.encode())
    out = checks.finish(record)
    assert plan_facts(record)["ecs"] == [{"family": "shop"}]
    assert [r["msg"] for r in out["results"]] == ["aws_iam_role.app: IAM in prod", "1 ECS stories"]
    assert out["blocked"] and [a["required"] for a in out["approvals"]] == [2]


def test_an_interrupt_while_a_rule_runs_ends_the_engine_process(monkeypatch):
    """Ctrl-C while `plan` waits for a rule that runs for minutes: the engine process is killed and reaped, not
    waited for."""
    import select

    loop = "package main\nimport rego.v1\ndeny contains x if { some x in numbers.range(1, 2000000000); x < 0 }\n"
    started = rego.start({"slow.rego": loop}, b"{}", timeout=600)
    assert started._child is not None
    pid = started._child.pid
    real = select.select

    def interrupted(readers, writers, errors, timeout):  # noqa: ANN001
        if not writers:  # the facts are sent: the rule runs, and the user presses Ctrl-C
            raise KeyboardInterrupt
        return real(readers, writers, errors, timeout)

    monkeypatch.setattr(select, "select", interrupted)
    with pytest.raises(KeyboardInterrupt):
        started.finish({})
    assert pid is not None and _gone(pid, within=5)
