"""`tfreview plan`: terraform plan -out in a fresh workspace, the review (redacted) and the signed plan record, stored."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tfreview.text import iso, now_utc
from tfreview.errors import BadInput
from tfreview.text import check_name
from tfreview.store import Store
from tfreview.store.base import dumps, update_json
from tfreview.trust.verify import statement_sha256
from tfreview.usecases.context import Context
from tfreview.usecases.package import fetch_package
from tfreview.usecases.workspace import (Workspace, deploy_vars, env_default_strategy, open_workspace, state_identity,
    write_release_vars)


# -- plan ------------------------------------------------------------------------------------------------------
def new_plan_id(app: str, env: str, at: datetime) -> str:
    return f"{app}-{env}-{at.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def plan_keys(plan_id: str) -> dict[str, str]:
    """Store keys of a plan. The binary keeps secrets in clear: it lives under `private/`, which the documented
    reviewer and auditor policies cannot read (docs/s3-store.md); the JSON reviewers read is redacted."""
    base = f"plans/{check_name('plan id', plan_id)}"
    return {"record": f"{base}/record.json", "binary": f"private/{base}/plan.tfplan", "json": f"{base}/plan.json"}


@dataclass
class Planned:
    """A stored plan: its record, the plan binary and the review built from its JSON (parsed once)."""

    record: dict[str, Any]
    binary: bytes
    review: Any


def plan(ctx: Context, app: str, version: str, env: str, *, kind: str = "deploy",
         release_vars: dict[str, Any] | None = None, release_id: str | None = None, options: Any = None) -> Planned:
    """Fetch and verify the package, init, `plan -out`, `show -json`, and store the plan record.

    `kind` is "deploy" (the version goes to the idle colour), or "shift"/"rollback" with explicit
    `release_vars` (weight-only plans made by a release). `options`: the planner's `TerraformOptions`."""
    for k, v in (("app", app), ("version", version), ("env", env)):
        check_name(k, v)
    zip_bytes, manifest = fetch_package(ctx.store, app, version)
    ws = open_workspace(ctx, app, env, zip_bytes, "plan")
    try:
        return plan_in_workspace(ctx, ws, app, version, env, manifest["sha256"], kind=kind,
                                 release_vars=release_vars, release_id=release_id, options=options)
    finally:
        ws.close()


def plan_in_workspace(ctx: Context, ws: Workspace, app: str, version: str, env: str, package_sha256: str, *,
                      kind: str = "deploy", release_vars: dict[str, Any] | None = None,
                      release_id: str | None = None, options: Any = None) -> Planned:
    """`plan` in an open, initialised workspace of the package (a release plans its traffic steps in the
    workspace it applied in): plan, show, review, store the record."""
    from tfreview.plan.options import TerraformOptions, option_risks, record_options

    options = options or TerraformOptions()
    var_files = read_var_files(options.var_files)
    roles = ctx.settings.roles_for(app)
    lineage, serial, outputs = state_identity(ws.tf)
    variables = release_vars or deploy_vars(app, version, outputs, env_default_strategy(ws.env_dir), roles)
    variables = write_release_vars(ctx, ws, app, variables)
    ws.tf.plan("tfreview.tfplan", on_event=ctx.on_event, options=options)
    binary = (ws.env_dir / "tfreview.tfplan").read_bytes()
    from dataclasses import replace

    from tfreview.plan import review_plan
    from tfreview.plan.redact import REDACTION_VERSION, redact_plan_with_secrets

    # Reviewers read, and the record binds, the redacted JSON: no secret leaves the binary (plan/redact.py).
    raw_json = ws.tf.show_json("tfreview.tfplan")
    from tfreview.trust.checks import start_plan_checks

    # The policy's Rego checks judge the truth (the unredacted JSON); only their messages are scrubbed. The engine
    # process takes the plan as its input while the review below is built (the facts the rules see need it).
    checks_started = start_plan_checks(ctx.policy, env, raw_json)
    try:
        plan_json, plan_secrets = redact_plan_with_secrets(raw_json)

        review = review_plan(plan_json, roles=roles)
        # A --var whose value the redaction replaced (sensitive, or equal to a secret) is recorded and shown masked.
        recorded = record_options(options, redacted_variables(plan_json, options), var_files) if options else None
        review = replace(review, terraform_options=recorded)
        created = now_utc()
        plan_id = new_plan_id(app, env, created)
        keys = plan_keys(plan_id)
        summary = review_summary(review)
        from tfreview.review.policy import escalation_reasons

        # Risks that call for more approvers (destroy, replace, changed IAM/security groups), per the policy.
        escalation = [*escalation_reasons({"address": r.address, "type": r.type, "action": r.action, "mode": r.mode,
                                           "deposed": r.deposed} for r in review.resources), *option_risks(recorded)]
        record = {
            "kind": "plan",
            "id": plan_id,
            "plan_kind": kind,
            "release_id": release_id,
            "app": app,
            "env": env,
            "version": version,
            "plan_sha256": hashlib.sha256(binary).hexdigest(),
            "json_sha256": hashlib.sha256(plan_json).hexdigest(),
            "json_redaction": REDACTION_VERSION,
            "package_sha256": package_sha256,
            "state_lineage": lineage,
            "state_serial": serial,
            "state_location": ws.state_location,
            "prior_outputs": public_outputs(outputs),
            "release_vars": variables,
            "roles": roles.to_json(),
            "terraform_options": recorded,
            "terraform_version": review.terraform_version or "unknown",
            "planner": ctx.user,
            "identity": ctx.identity,
            "created_at": iso(created),
            "summary": summary,
            "risky": bool(escalation),
            "risk_reasons": [*summary["risk_reasons"], *option_risks(recorded)],
            "escalation_reasons": list(escalation),
        }
        if checks_started is not None:
            record["policy_checks"] = checks_started.finish(record, plan_secrets)
    finally:
        if checks_started is not None:
            checks_started.cancel()  # nothing after finish; a review that failed leaves no engine process behind
    if ctx.signer is not None:  # the planner signs the plan record (plan, JSON and package sha256, state, ...)
        record = ctx.sign(record)
    # The binary holds secrets in clear: a private object (owner-only file; on S3 under private/).
    ctx.store.create(keys["binary"], binary, private=True)
    ctx.store.create(keys["json"], plan_json)
    # The audit entry before the record: a plan exists once its record does, and never unrecorded.
    ctx.audit("plan", app=app, env=env, version=version, plan_id=plan_id,
              details={"plan_sha256": record["plan_sha256"], "counts": summary["counts"], "kind": kind,
                       "statement_sha256": statement_sha256(record)})
    ctx.store.create(keys["record"], dumps(record))
    _advance_latest_plan(ctx.store, app, env, plan_id, created)
    return Planned(record, binary, review)


def _advance_latest_plan(store: Store, app: str, env: str, plan_id: str, created: datetime) -> None:
    """Point app/env's latest plan at `plan_id` unless a plan created later is there already (compare-and-swap):
    "superseded by a newer plan" stays true to creation order whatever order concurrent planners finish in."""
    mine = {"plan_id": plan_id, "created_at": iso(created), "created_us": int(created.timestamp() * 1_000_000)}

    def forward(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current and (int(current.get("created_us") or 0), str(current.get("plan_id"))) >= (mine["created_us"], plan_id):
            return None
        return mine

    update_json(store, f"heads/{app}/{env}/latest-plan.json", forward)


def public_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    keep = ("strategy", "live_color", "versions", "weights", "services", "cluster_name", "target_groups",
            "task_definitions", "listener_arn", "test_listener_arn", "test_listener_port", "alb_dns_name")
    return {k: outputs[k] for k in keep if k in outputs}


def review_summary(review: Any) -> dict[str, Any]:
    """The part of a review stored in the plan record (no attribute values: nothing sensitive)."""
    doc = review.summary_json()  # no attribute trees: cheap on huge plans
    counts = doc.get("counts", {})
    risks = doc.get("risks", [])
    reasons = [f"{r.get('address', '')}: {r.get('reason', '')}".strip(": ") for r in risks
               if r.get("level") in ("critical", "high", "medium")]
    return {
        "counts": counts,
        "summary_line": review.counts.summary_line(),
        "classification": doc.get("classification"),
        "ecs": doc.get("ecs", []),
        "risk_reasons": reasons,
    }


def redacted_variables(plan_json: bytes, options: Any) -> frozenset[str]:
    """Names of the --var variables whose value the redacted plan JSON does not show as typed."""
    if not options.variables:
        return frozenset()
    import orjson

    shown = orjson.loads(plan_json).get("variables") or {}
    return frozenset(n for n, v in options.variables if not isinstance(shown.get(n), dict) or shown[n].get("value") != v)


def read_var_files(paths: tuple[str, ...]) -> dict[str, str]:
    """sha256 of each --var-file (what the record keeps instead of the contents); BadInput when unreadable."""
    out = {}
    for path in paths:
        try:
            out[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError as exc:
            raise BadInput(f"cannot read --var-file {path}: {exc.strerror}",
                           "give the path of a readable .tfvars or .tfvars.json file") from None
    return out
