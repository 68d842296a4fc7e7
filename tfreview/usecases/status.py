"""`tfreview status`: the live colour, the version per colour, traffic weights and the last deploy of an
environment; and the last apply and release that `rollback`, `drift` and `status` start from.
"""
from __future__ import annotations

from typing import Any

from tfreview.errors import NotFound, StoreError
from tfreview.text import check_name
from tfreview.store import get_json
from tfreview.usecases.context import Context
from tfreview.usecases.records import load_plan
from tfreview.usecases.release import record_roles


# -- the last apply and release of an environment ------------------------------------------------------------------
def last_applied(store: Any, app: str, env: str, with_outputs: bool = True) -> dict[str, Any] | None:
    """The newest apply result of app/env that changed it (it carries the outputs after that apply); `with_outputs`
    False also finds applies of stacks without outputs."""
    best = None
    for key in store.list("applies/"):
        if not key.endswith("/result.json"):
            continue
        doc = get_json(store, key)
        # An apply whose release failed afterwards still changed the environment: its outputs count.
        if doc.get("app") == app and doc.get("env") == env and (
                doc.get("outputs") or (not with_outputs and doc.get("outcome") == "applied")):
            if best is None or doc["finished_at"] > best["finished_at"]:
                best = doc
    return best


def last_release(store: Any, app: str, env: str) -> dict[str, Any] | None:
    keys = store.list(f"rollouts/{app}/{env}/")
    docs = [get_json(store, k) for k in keys]
    return max(docs, key=lambda d: d["finished_at"]) if docs else None


def status(ctx: Context, app: str, env: str) -> dict[str, Any]:
    """Live colour, version per colour as the state records it and as each service actually runs it (its PRIMARY
    deployment's task definition, read from ECS), the colours where they differ, weights (read from the listener
    when AWS answers), last release."""
    check_name("app", app)
    check_name("env", env)
    applied = last_applied(ctx.store, app, env)
    if applied is None:
        raise NotFound(f"{app} has never been applied to {env}", f"release it: tfreview plan --app {app} --env {env} ...")
    outputs = applied["outputs"]
    try:
        record = load_plan(ctx.store, applied["plan_id"])
    except NotFound:  # the apply result outlived its plan record: the app's roles as configured now
        record = {"roles": ctx.settings.roles_for(app).to_json(), "release_vars": {}}
    roles = record_roles(record)
    if not roles.image and ctx.settings.roles_for(app).image:  # an `image` set since that plan was made
        from dataclasses import replace

        roles = replace(roles, image=ctx.settings.roles_for(app).image)
    # The versions the state records (a module taking whole image URIs outputs them: the app's `image` says how).
    recorded = {c: roles.version_of(v) for c, v in (outputs.get("versions") or {}).items()}
    weights = dict(outputs.get("weights") or {})
    source = "recorded"
    try:
        from tfreview import aws
        from tfreview.rollout.status import colour_weights

        weights = colour_weights(aws.client("elbv2"), outputs) or weights
        source = "live"
    except Exception:  # AWS unreachable: say we show the recorded weights
        pass
    try:
        from tfreview import aws
        from tfreview.rollout.status import colour_status

        running = {c: s.to_dict() for c, s in colour_status(aws.client("ecs"), None, outputs, roles).items()}
    except Exception:  # AWS unreachable: the state's versions are all we can say (what runs is unknown: null)
        unknown = dict.fromkeys(("version", "task_definition", "rollout_state", "running", "desired"))
        running = {c: dict(unknown) for c in outputs.get("versions") or {}}
    from tfreview.rollout.status import differing

    live = max(weights, key=lambda c: weights[c]) if weights else outputs.get("live_color")
    release = last_release(ctx.store, app, env)
    from tfreview.trust.verify import load_history_or_none
    from tfreview.trust.witness import record_damage

    try:  # what status shows comes from that apply: its plan record must be its planner's
        record = load_plan(ctx.store, applied["plan_id"])
        damaged = record_damage(record, ctx.policy or load_history_or_none(ctx.store))
    except (NotFound, StoreError) as exc:
        record, damaged = {}, exc.message
    # A team's module may have no `strategy` output: the release variables of that apply say it.
    strategy = outputs.get("strategy") or (None if damaged else (record.get("release_vars") or {}).get("strategy"))
    return {"app": app, "env": env, "strategy": strategy, "live_color": live,
            "versions": recorded, "running": running,
            "differs": differing(recorded, running),
            "weights": weights, "weights_source": source,
            "last_apply": {"plan_id": applied["plan_id"], "version": applied["version"],
                           "finished_at": applied["finished_at"], "by": applied.get("by"),
                           **({"damaged": f"plan record plans/{applied['plan_id']}/record.json is damaged: {damaged}"}
                              if damaged else {})},
            "last_release": None if release is None else {k: release.get(k) for k in
                                                          ("plan_id", "version", "outcome", "reason", "finished_at", "by")}}
