"""Evaluate the Rego `approvals` rules of a plan's check modules (the shape and what it means:
tfreview.review.rego_approvals).

Guarantees:
- the rule sees what `deny`/`warn` see: the plan JSON as `terraform show -json` wrote it and `data.tfreview`;
- bounded and fail closed as the other checks (tfreview.trust.rego's forked, time-limited engine process): an
  evaluation error, the time limit or a value of the wrong shape is an error line that blocks the plan;
- cheap when unused: modules whose text never names the rule are not evaluated again.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from tfreview.review.rego_approvals import RULE, RuleApproval, defining_modules, mentions_rule, parse_demands
from tfreview.trust import rego


def evaluate(modules: Mapping[str, str], plan_json: bytes | str, facts: Mapping[str, Any] | None,
             namespaces: tuple[str, ...], timeout: float) -> tuple[list[RuleApproval], str | None]:
    """(demands, error) of the `approvals` rules of `namespaces` over `plan_json`; error is one line that blocks."""
    checks = {n: s for n, s in sorted(modules.items()) if not rego.is_test_module(n)}
    if not mentions_rule(checks):
        return [], None
    text = plan_json.decode() if isinstance(plan_json, bytes) else plan_json

    def work() -> dict[str, Any]:
        engine, _v0 = rego._engine(checks)
        engine.add_data({"tfreview": dict(facts or {})})
        engine.set_input_json(text)
        packages = set(engine.get_packages())
        values: dict[str, Any] = {}
        for ns in namespaces:
            if f"data.{ns}" not in packages:
                continue
            path = f"data.{ns}.{RULE}"
            try:
                found = json.loads(engine.eval_query_as_json(path))
            except Exception as exc:  # noqa: BLE001 - every engine failure blocks: fail closed
                return {"error": f"{path}: {rego._first_error(str(exc))}"}
            got = [e["value"] for r in found.get("result", []) for e in r.get("expressions", [])]
            if got:
                values[ns] = got[0]
        return {"values": values}

    answer = rego._in_child(work, timeout)
    if answer.get("timeout"):
        return [], f"policy approval rules did not finish within {timeout:g} s; a rule that runs this long blocks"
    if answer.get("parse_error") or answer.get("error"):
        return [], f"policy approval rules failed: {answer.get('parse_error') or answer.get('error')}"
    demands: list[RuleApproval] = []
    try:
        for ns, value in sorted((answer.get("values") or {}).items()):
            demands += parse_demands(ns, value, defining_modules(checks, ns))
    except ValueError as exc:
        return [], f"policy approval rules failed: {exc}"
    return demands, None
