"""What a plan's policy-check results allow (PURE: no I/O, no engine).

A plan record's `policy_checks` (tfreview.trust.checks) were signed with the record. Decisions:
- a plan whose checks blocked it (a deny/violation message, or checks that failed to run) is not applied, unless
  break-glass is used by someone the policy allows (checked by review.policy.check_break_glass), with a reason;
- a plan judged by other checks than the active policy version's for its environment (a policy change added,
  removed or edited a module since the plan was made, or a plan made before its environment had checks) is
  refused with a pointer to re-plan: the rules in force judge every applied plan. A policy change that keeps the
  environment's modules (same names, same sha256) keeps the plan's result.
"""
from __future__ import annotations

from typing import Any, Mapping

from tfreview.errors import PolicyRefusal


def blocking_lines(checks: Mapping[str, Any] | None) -> list[str]:
    """The lines that block a plan, from its record's `policy_checks` ([] when nothing blocks)."""
    if not checks:
        return []
    out = [f"{r.get('namespace')}.{r.get('rule')}: {r.get('msg')}" for r in checks.get("results", [])
           if r.get("level") == "deny"]
    if checks.get("error"):
        out.insert(0, str(checks["error"]))
    if checks.get("blocked") and not out:
        out.append("blocked by policy")
    return out


def warning_lines(checks: Mapping[str, Any] | None) -> list[str]:
    return [f"{r.get('namespace')}.{r.get('rule')}: {r.get('msg')}" for r in (checks or {}).get("results", [])
            if r.get("level") == "warn"]


def is_blocked(record: Mapping[str, Any]) -> bool:
    return bool(blocking_lines(record.get("policy_checks")))


def check_policy_checks(record: Mapping[str, Any], active_version: int, active_modules: list[dict[str, str]],
                        *, break_glass: bool) -> None:
    """Refuse (PolicyRefusal, exit 3) to apply a plan its checks block, or one judged by other checks than
    `active_modules` (the active version's modules for the plan's environment: [{"name", "sha256"}])."""
    plan_id, app, env, version = record.get("id"), record.get("app"), record.get("env"), record.get("version")
    replan = f"make a new plan: tfreview plan --app {app} --version {version} --env {env}"
    checks = record.get("policy_checks")
    judged = list((checks or {}).get("modules") or [])
    if judged != list(active_modules):
        under = f"policy version {checks.get('policy_version')}'s checks" if checks else "no policy checks"
        raise PolicyRefusal(f"plan {plan_id} was judged by {under}; the active policy version {active_version} "
                            f"checks {env} with other rules", replan)
    lines = blocking_lines(checks)
    if lines and not break_glass:
        more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
        raise PolicyRefusal(f"plan {plan_id} is blocked by policy: {lines[0]}{more}",
                            "change the configuration and re-plan; or someone break_glass allows applies with "
                            "--break-glass --reason")
