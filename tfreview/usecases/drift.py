"""`tfreview drift`: a refresh-only plan of what is deployed, for scheduled CI (exit 0 none, 2 drift).

The environment is planned with the package and release variables of its last successful apply, in refresh-only
mode: terraform compares the state with the real resources and changes nothing. Nothing is stored but an audit
entry (a drift check must not supersede a pending plan).
"""
from __future__ import annotations

from typing import Any

from tfreview.errors import NotFound
from tfreview.usecases.context import Context
from tfreview.usecases.package import fetch_package
from tfreview.usecases.records import load_plan
from tfreview.usecases.workspace import open_workspace, write_release_vars


def drift(ctx: Context, app: str, env: str) -> dict[str, Any]:
    """{app, env, version, plan_id (the apply it checks), drifted,
    resources [{address, action, attributes (names of the top-level attributes that changed)}]}."""
    from tfreview.plan.options import TerraformOptions
    from tfreview.plan.parse import parse_plan
    from tfreview.usecases.status import last_applied

    applied = last_applied(ctx.store, app, env, with_outputs=False)
    if applied is None:
        raise NotFound(f"{app} has never been applied to {env}: nothing to check for drift",
                       f"release it first: tfreview plan --app {app} --version V --env {env}")
    record = load_plan(ctx.store, applied["plan_id"])
    zip_bytes, _manifest = fetch_package(ctx.store, app, record["version"])
    ws = open_workspace(ctx, app, env, zip_bytes, "drift")
    try:
        write_release_vars(ctx, ws, app, dict(record["release_vars"]))
        ws.tf.plan("drift.tfplan", on_event=ctx.on_event, options=TerraformOptions(refresh_only=True))
        plan = parse_plan(ws.tf.show_json("drift.tfplan"))  # only its drift is read: no review to build
    finally:
        ws.close()
    changed = [{"address": rc.address, "action": rc.action, "attributes": attributes}
               for rc in plan.resource_drift if rc.action != "no-op" and (attributes := changed_attributes(rc))]
    result = {"app": app, "env": env, "version": record["version"], "plan_id": record["id"],
              "drifted": bool(changed), "resources": changed}
    ctx.audit("drift-check", app=app, env=env, version=record["version"], plan_id=record["id"],
              details={"drifted": len(changed)})
    return result


def changed_attributes(rc: Any) -> list[str]:
    """Names (never values) of the top-level attributes a drifted resource changed. An attribute read back as
    empty where the state had null (`tags = null` -> `{}`) is a provider's normalisation, not a change; a deleted
    or a new resource changes every attribute."""
    if not isinstance(rc.before, dict) or not isinstance(rc.after, dict):
        return sorted(set(rc.before or {}) | set(rc.after or {})) or ["(whole resource)"]
    from tfreview.plan.risk import empty_value

    return sorted(k for k in set(rc.before) | set(rc.after) if rc.before.get(k) != rc.after.get(k)
                  and not (empty_value(rc.before.get(k)) and empty_value(rc.after.get(k))))
