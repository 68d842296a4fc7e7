"""Evaluate the Rego `approvals` rules of a plan's check modules (the shape and what it means:
tfreview.review.rego_approvals).

Guarantees:
- the rule sees what `deny`/`warn` see: the plan JSON as `terraform show -json` wrote it and `data.tfreview`;
- bounded and fail closed as the other checks (tfreview.trust.rego's forked, time-limited engine process): an
  evaluation error, the time limit or a value of the wrong shape is an error line that blocks the plan;
- one engine pass: the rule is asked for in the checks' own query (`rego.evaluate(..., extra_rules=(RULE,))`,
  `demands_of_run`), never in a second process that would take the plan as input again;
- cheap when unused: when no module's text names the rule, it is not asked for.
"""
from __future__ import annotations

from typing import Any, Mapping

from tfreview.review.rego_approvals import RULE, RuleApproval, defining_modules, mentions_rule, parse_demands
from tfreview.trust import rego


def extra_rules(modules: Mapping[str, str]) -> tuple[str, ...]:
    """What to ask for beside deny/violation/warn: the rule, when a check module could define it."""
    return (RULE,) if mentions_rule({n: s for n, s in modules.items() if not rego.is_test_module(n)}) else ()


def demands_of_run(modules: Mapping[str, str], run: rego.CheckRun) -> tuple[list[RuleApproval], str | None]:
    """(demands, error) of the `approvals` values of a CheckRun asked for with `extra_rules(modules)` (pure);
    error is one line that blocks. A run that failed as a whole has its error already: no demands here."""
    if run.error is not None:
        return [], None
    if run.extra.get("error"):
        return [], f"policy approval rules failed: {run.extra['error']}"
    checks = {n: s for n, s in sorted(modules.items()) if not rego.is_test_module(n)}
    demands: list[RuleApproval] = []
    try:
        for ns, value in sorted((run.extra.get(RULE) or {}).items()):
            demands += parse_demands(ns, value, defining_modules(checks, ns))
    except ValueError as exc:
        return [], f"policy approval rules failed: {exc}"
    return demands, None


def evaluate(modules: Mapping[str, str], plan_json: bytes | str, facts: Mapping[str, Any] | None,
             namespaces: tuple[str, ...], timeout: float) -> tuple[list[RuleApproval], str | None]:
    """(demands, error) of the `approvals` rules of `namespaces` over `plan_json`; error is one line that blocks.
    (The rules alone: `plan` and `policy check` ask for them in the checks' query instead.)"""
    asked = extra_rules(modules)
    if not asked:
        return [], None
    run = rego.evaluate(modules, plan_json, facts, namespaces, timeout, extra_rules=asked)
    if run.error is not None:
        return [], run.error.replace("policy checks", "policy approval rules", 1)
    return demands_of_run(modules, run)
