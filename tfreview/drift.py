"""`tfreview drift`: a refresh-only plan of what is deployed, for scheduled CI (exit 0 none, 2 drift).

The environment is planned with the package and release variables of its last successful apply, in refresh-only
mode: terraform compares the state with the real resources and changes nothing. Nothing is stored but an audit
entry (a drift check must not supersede a pending plan).
"""
from __future__ import annotations

from typing import Any

from tfreview import workflow
from tfreview.errors import NotFound

SCHEMA_VERSION = 1


def drift(ctx: workflow.Context, app: str, env: str) -> dict[str, Any]:
    """{schema_version, app, env, version, plan_id (the apply it checks), drifted, resources [{address, action}]}."""
    from tfreview.plan import review_plan
    from tfreview.plan.options import TerraformOptions
    from tfreview.release import last_applied

    workflow.check_name("app", app)
    workflow.check_name("env", env)
    applied = last_applied(ctx.store, app, env, with_outputs=False)
    if applied is None:
        raise NotFound(f"{app} has never been applied to {env}: nothing to check for drift",
                       f"release it first: tfreview plan --app {app} --version V --env {env}")
    record = workflow.load_plan(ctx.store, applied["plan_id"])
    zip_bytes, _manifest = workflow.fetch_package(ctx.store, app, record["version"])
    ws = workflow.open_workspace(ctx, app, env, zip_bytes, "drift")
    try:
        workflow.write_release_vars(ctx, ws, app, dict(record["release_vars"]))
        ws.tf.plan("drift.tfplan", on_event=ctx.on_event, options=TerraformOptions(refresh_only=True))
        review = review_plan(ws.tf.show_json("drift.tfplan"), roles=ctx.settings.roles_for(app))
    finally:
        ws.close()
    changed = [rc for rc in review.plan.resource_drift if rc.action != "no-op"]
    result = {"schema_version": SCHEMA_VERSION, "app": app, "env": env, "version": record["version"],
              "plan_id": record["id"], "drifted": bool(changed),
              "resources": [{"address": rc.address, "action": rc.action} for rc in changed]}
    ctx.audit("drift-check", app=app, env=env, version=record["version"], plan_id=record["id"],
              details={"drifted": len(changed)})
    return result
