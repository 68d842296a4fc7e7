"""`tfreview apply`: only an approved, unchanged, fresh plan, under the environment's lock; the outcome signed and
recorded, the after-apply hook (the release) run with the workspace open."""
from __future__ import annotations

import hashlib
from typing import Any, Callable

from tfreview.text import iso, now_utc
from tfreview.errors import Conflict, Interrupted, NotFound, PolicyRefusal, StoreError, TfreviewError
from tfreview.store import Store, get_json
from tfreview.store.base import dumps, update_json
from tfreview.usecases.context import Context
from tfreview.usecases.package import fetch_package
from tfreview.usecases.plan import plan_keys, public_outputs
from tfreview.usecases.records import is_destroy, latest_plan_id, load_plan, load_policy, succeeded_in, verified
from tfreview.usecases.workspace import (Workspace, backend_config, open_workspace, refuse_other_backend,
    state_identity, state_location)


def mark_succeeded(store: Store, app: str, version: str, env: str) -> None:
    """Record that app/version was applied successfully in `env` (CAS update: concurrent envs lose nothing)."""
    def add(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        doc = doc or {"app": app, "version": version, "envs": []}
        return None if env in doc.get("envs", []) else {**doc, "envs": sorted({*doc.get("envs", []), env})}

    update_json(store, f"releases/{app}/{version}/succeeded.json", add)


def apply(ctx: Context, plan_id: str, *, break_glass_reason: str | None = None,
          after_apply: Callable[[dict[str, Any], Workspace, dict[str, Any]], dict[str, Any]] | None = None,
          rollback: bool = False) -> dict[str, Any]:
    """Apply an approved, unchanged, fresh plan. Preconditions are checked before terraform starts and again
    (state identity) with the lock held; the outcome is recorded whatever happens.

    `rollback`: a weight-only rollback plan that policy lets an approver apply alone (approvals waived, every
    other check kept)."""
    from tfreview.review.policy import CurrentFacts, check_apply, check_break_glass, parse_time
    from tfreview.store.locks import acquire_lock, release_lock

    record = load_plan(ctx.store, plan_id)
    app, env, version = record["app"], record["env"], record["version"]
    keys = plan_keys(plan_id)
    if record.get("json_redaction") is None:
        raise PolicyRefusal(f"plan {plan_id} was made by an older tfreview: its record does not bind the reviewed "
                            "JSON to the plan binary", f"make a new plan: tfreview plan --app {app} --version "
                            f"{version} --env {env}")
    policy = load_policy(ctx)
    if break_glass_reason is not None:
        check_break_glass(policy, env, ctx.user, break_glass_reason)
    from tfreview.review.checks import check_policy_checks
    from tfreview.trust.checks import active_modules

    check_policy_checks(record, ctx.policy.active.version, active_modules(ctx.policy, env),
                        break_glass=break_glass_reason is not None)
    binary = ctx.store.read(keys["binary"])
    age_h = (now_utc() - parse_time(record["created_at"])).total_seconds() / 3600
    if age_h > ctx.settings.plan_max_age_hours:
        raise PolicyRefusal(f"plan {plan_id} is stale: made {age_h:.1f} h ago (limit {ctx.settings.plan_max_age_hours:g} h)",
                            f"make a new plan: tfreview plan --app {app} --version {version} --env {env}")
    _refuse_if_applied(ctx.store, record)
    # Refuse early, before the lock and terraform, on everything but the live state (checked below, locked).
    # The workspace unpacks these very bytes, verified against the manifest and the plan's package sha256.
    zip_bytes, manifest = fetch_package(ctx.store, app, version)
    plan_sha256 = hashlib.sha256(binary).hexdigest()
    waived = break_glass_reason is not None or rollback

    def current(lineage: str, serial: int) -> Any:
        return CurrentFacts(plan_sha256=plan_sha256, package_sha256=manifest["sha256"], state_lineage=lineage,
                            state_serial=serial, latest_plan_id=latest_plan_id(ctx.store, app, env),
                            succeeded_in=succeeded_in(ctx.store, app, version))

    facts, decisions = verified(ctx, record)
    check_apply(policy, facts, decisions, now_utc(),
                current(record.get("state_lineage") or "", int(record.get("state_serial") or 0)), break_glass=waived)
    refuse_other_backend(record, state_location(*backend_config(ctx, app, env)))
    lock = acquire_lock(ctx.store, app, env, ctx.user, plan_id, break_glass=break_glass_reason is not None)
    try:
        ws = open_workspace(ctx, app, env, zip_bytes, "apply")
        try:
            lineage, serial, _outputs = state_identity(ws.tf)
            facts, decisions = verified(ctx, record)
            check_apply(policy, facts, decisions, now_utc(), current(lineage, serial), break_glass=waived)
            check_applies_reviewed(ws, record, binary)
            return apply_in_workspace(ctx, record, binary, ws, break_glass_reason, after_apply)
        finally:
            ws.close()
    finally:
        release_lock(ctx.store, lock)


def _refuse_if_applied(store: Store, record: dict[str, Any]) -> None:
    """A plan is applied once: refuse one whose apply already recorded an outcome."""
    try:
        done = get_json(store, f"applies/{record['id']}/result.json")
    except NotFound:
        return
    raise PolicyRefusal(f"plan {record['id']} was already applied at {done.get('finished_at')} "
                        f"(outcome: {done.get('outcome')})",
                        f"make a new plan: tfreview plan --app {record['app']} --version {record['version']} "
                        f"--env {record['env']}")


def _write_plan_file(ws: Workspace, binary: bytes) -> str:
    plan_file = ws.env_dir / "tfreview.tfplan"
    plan_file.write_bytes(binary)
    plan_file.chmod(0o600)
    return plan_file.name


def check_applies_reviewed(ws: Workspace, record: dict[str, Any], binary: bytes) -> None:
    """Refuse (PolicyRefusal) unless `binary`, shown as JSON by terraform in `ws` and redacted as `plan` did,
    hashes to the record's `json_sha256`: the plan applied is the plan its reviewers read."""
    from tfreview.plan.redact import redact_plan

    derived = hashlib.sha256(redact_plan(ws.tf.show_json(_write_plan_file(ws, binary)))).hexdigest()
    if derived != record.get("json_sha256"):
        raise PolicyRefusal(f"plan {record['id']}: its binary does not show the JSON its reviewers read (sha256 "
                            f"{derived[:12]} derived, {str(record.get('json_sha256'))[:12]} recorded)",
                            "the store was modified: do not apply it; make a new plan and have it reviewed")


def apply_in_workspace(ctx: Context, record: dict[str, Any], binary: bytes, ws: Workspace, break_glass_reason: str | None,
               after_apply: Callable[[dict[str, Any], Workspace, dict[str, Any]], dict[str, Any]] | None) -> dict[str, Any]:
    plan_id = record["id"]
    base = f"applies/{plan_id}"
    fields = {"app": record["app"], "env": record["env"], "version": record["version"], "plan_id": plan_id}
    start = {"kind": "apply-start", **fields, "by": ctx.user, "identity": ctx.identity, "started_at": iso(now_utc()),
             "break_glass": break_glass_reason}
    already = PolicyRefusal(f"plan {plan_id} was already applied (or an apply of it was interrupted)",
                            "a plan is applied once: make a new plan")
    if ctx.store.exists(f"{base}/start.json"):  # the app/env lock is held: no other apply of this plan runs now
        raise already
    result: dict[str, Any] = {"kind": "apply-result", **fields, "by": ctx.user, "started_at": start["started_at"]}
    # The audit entry before start.json: an apply the log never saw start cannot exist. If the log cannot take
    # it, nothing ran and nothing is written (an apply that is not in the audit log never happens).
    if break_glass_reason is not None:
        ctx.audit("break-glass", **fields, details={"reason": break_glass_reason})
    ctx.audit("apply-start", **fields)
    try:
        ctx.store.create(f"{base}/start.json", dumps(start))
    except (Conflict, StoreError) as exc:  # logged as started: the log gets its end too, and nothing runs
        _record_outcome(ctx, base, fields, {**result, "outcome": "failed", "finished_at": iso(now_utc()),
                                            "error": f"not applied: its start could not be recorded ({exc})"})
        raise already if isinstance(exc, Conflict) else exc from None
    plan_file = _write_plan_file(ws, binary)
    try:
        ws.tf.apply(plan_file, on_event=ctx.on_event)
        result["outcome"] = "applied"
        outputs = public_outputs(ws.tf.output_json())
        result["outputs"] = outputs
        if after_apply is not None:
            result["rollout"] = after_apply(record, ws, outputs)
            result["outputs"] = public_outputs(ws.tf.output_json())  # traffic steps changed them
        if not is_destroy(record):
            mark_succeeded(ctx.store, record["app"], record["version"], record["env"])  # promotion gates
    except TfreviewError as exc:
        result["outcome"] = "failed"
        result["error"] = exc.one_line()
        raise
    except Interrupted as exc:  # Ctrl-C / SIGTERM: terraform was stopped gracefully (terraform.stop_gracefully)
        result["outcome"] = "interrupted"
        result["error"] = f"interrupted by {exc}: terraform was stopped; check the environment before the next plan"
        raise
    except BaseException as exc:  # a bug: still an outcome, never a result without one
        result["outcome"] = "failed"
        result["error"] = f"internal error: {type(exc).__name__}"
        raise
    finally:
        result["finished_at"] = iso(now_utc())
        logged = _record_outcome(ctx, base, fields, result)
    if not logged:  # the environment changed, and the log does not say so: never a success
        raise StoreError(f"plan {plan_id} was {result['outcome']}, but the audit log could not record its outcome "
                         f"({base}/result.json says so; tfreview audit verify reports the gap)",
                         "make the store's audit/ writable again, then tell your auditors about this apply")
    return result


def _record_outcome(ctx: Context, base: str, fields: dict[str, Any], result: dict[str, Any]) -> bool:
    """The apply's outcome: the audit entry first, then `result.json`. The result is written even when the log
    cannot take the entry (the environment changed either way; `audit verify` reports the missing entry). Never
    raises: the error that ended the apply matters more, and a missing result shows as interrupted. Returns
    whether the audit log recorded the outcome."""
    logged = True
    try:
        ctx.audit("apply-end", **fields, details={"outcome": result["outcome"], "error": result.get("error")})
    except (StoreError, Conflict):
        logged = False
        result = {**result, "audit": "missing: the audit log could not record this outcome"}
    try:
        ctx.store.create(f"{base}/result.json", dumps(result))
    except (StoreError, Conflict):
        pass
    return logged
