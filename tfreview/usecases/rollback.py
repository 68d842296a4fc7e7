"""`tfreview rollback`: all production traffic back to the previous colour (a weight-only plan, applied)."""
from __future__ import annotations

from typing import Any

from tfreview.errors import NotFound, PolicyRefusal
from tfreview.text import check_name
from tfreview.rollout.traffic import rollback_vars, target_of
from tfreview.usecases.apply import apply
from tfreview.usecases.context import Context
from tfreview.usecases.plan import plan
from tfreview.usecases.records import load_policy
from tfreview.usecases.release import Log, refuse_unless_weight_only
from tfreview.usecases.status import last_applied


def rollback(ctx: Context, app: str, env: str, log: Log) -> dict[str, Any]:
    """Move 100 % of production traffic back to the previous colour (which still runs the previous version):
    a weight-only plan, applied at once by an approver (unless policy wants approvals for rollbacks)."""
    check_name("app", app)
    check_name("env", env)
    applied = last_applied(ctx.store, app, env)
    if applied is None:
        raise NotFound(f"{app} has never been applied to {env}", "nothing to roll back")
    outputs = applied["outputs"]
    roles = ctx.settings.roles_for(app)
    variables = rollback_vars({**outputs, "app": app}, roles=roles)
    target = target_of(variables, roles)
    env_policy = load_policy(ctx).for_env(env)
    if env_policy.approvers is not None and ctx.user not in env_policy.approvers:
        raise PolicyRefusal(f"{ctx.user} may not roll back {app} in {env}", "ask one of the environment's approvers")
    back_to = roles.version_of((outputs.get("versions") or {}).get(target))
    log(f"planning rollback of {app} in {env}: 100% -> {target} ({back_to})")
    record = plan(ctx, app, applied["version"], env, kind="rollback", release_vars=variables).record
    refuse_unless_weight_only(record, "rollback plan")
    if env_policy.rollback_requires_approval:
        return {"plan_id": record["id"], "outcome": "planned", "needs_approval": True, "target": target}
    result = apply(ctx, record["id"], rollback=True)
    ctx.audit("rollback", app=app, env=env, version=applied["version"], plan_id=record["id"],
              details={"to": target})
    return {"plan_id": record["id"], "outcome": result["outcome"], "target": target, "version": back_to}
