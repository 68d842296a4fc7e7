"""`tfreview approve` and `tfreview reject`: a signed decision on a plan, bound to its hash, and where the plan
stands (approvals given, needed, who may still approve)."""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from tfreview.text import now_utc
from tfreview.errors import Conflict, NotFound, PolicyRefusal
from tfreview.store import Store
from tfreview.store.base import dumps, parse_json
from tfreview.usecases.context import Context
from tfreview.trust.verify import statement_sha256
from tfreview.usecases.records import load_plan, load_policy, reviewed_json, verified


def _identity_slug(who: str) -> str:
    return hashlib.sha256(who.strip().lower().encode()).hexdigest()[:16]


def approval_status(ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
    """Where a plan stands before the current user decides: approvals needed (escalation included), who
    approved, why it escalates. Raises PolicyRefusal when the current user may not approve it (refuse early)."""
    from tfreview.review.policy import check_can_approve, required_approvals

    facts, decisions = verified(ctx, record)
    policy = load_policy(ctx)
    check_can_approve(policy, facts, decisions, ctx.user, now_utc(), key=ctx.signer.public_key.fingerprint,
                      aws_arn=str(ctx.identity.get("aws_arn") or ""))
    ep = policy.for_env(facts.env)
    return {"plan_id": record["id"], "required": required_approvals(ep, facts),
            "escalation": list(facts.risk_reasons) if facts.risky and ep.escalate_on_risk else [],
            "approved_by": [a.approver for a in decisions if a.kind == "approve"],
            "risk_reasons": record.get("risk_reasons", [])}


def approval_progress(ctx: Context, record: dict[str, Any]) -> Any:
    """Where a plan's approvals stand (for a pull-request comment): approvals required, who approved or rejected,
    counting only verified decisions (a forged one is refused, exit 3, as `apply` would). A report: `apply` still
    checks bindings, expiry and freshness itself."""
    from tfreview.render.comment import ApprovalProgress
    from tfreview.review.policy import required_approvals

    facts, decisions = verified(ctx, record)
    decisions = [d for d in decisions if d.plan_id == record["id"]]  # copied from another plan: not this one's
    ep = load_policy(ctx).for_env(record["env"])
    return ApprovalProgress(required_approvals(ep, facts),
                            approved_by=tuple(a.approver for a in decisions if a.kind == "approve"),
                            rejected_by=tuple(a.approver for a in decisions if a.kind != "approve"))


# A decision file without its audit entry, made less than this many seconds ago, is most likely another run's
# that is writing the entry right now (one append after the file); older, that run died.
DECISION_GRACE_S = 10.0


def _await_entry(store: Store, key: str, raw: bytes, etag: str, now: datetime) -> tuple[dict[str, Any], str]:
    """The decision file at `key` (read as `raw`, `etag`) once it points at its audit entry, or as it is when its
    maker is taken for dead: it was made DECISION_GRACE_S or more before `now`, or that long has passed here.
    Completing another live run's decision would log it twice and make that run fail."""
    import time

    from tfreview.review.policy import parse_time

    stored = parse_json(key, raw)
    try:
        age = (now - parse_time(str(stored.get("approved_at")))).total_seconds()
    except ValueError:
        age = DECISION_GRACE_S
    deadline = time.monotonic() + max(0.0, min(DECISION_GRACE_S, DECISION_GRACE_S - age))
    while "audit_seq" not in stored and time.monotonic() < deadline:
        time.sleep(0.1)
        raw, etag = store.read_versioned(key)
        stored = parse_json(key, raw)
    return stored, etag


def decide(ctx: Context, plan_id: str, kind: str, comment: str, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record an approval or a rejection of `plan_id` by the current user, bound to the plan's facts (`record`:
    the plan's record when the caller has read it; records are create-only)."""
    from tfreview.review.policy import check_can_approve, make_approval

    record = record or load_plan(ctx.store, plan_id)
    facts, decisions = verified(ctx, record)
    now = now_utc()
    key = f"approvals/{plan_id}/{_identity_slug(ctx.user)}.json"

    def log(decision: dict[str, Any], etag: str) -> dict[str, Any]:
        """Audit `decision` (naming its statement's sha256), then point its file at the entry: now it counts."""
        entry = ctx.audit(decision["kind"], app=record["app"], env=record["env"], version=record["version"],
                          plan_id=plan_id, details={"comment": decision["comment"], "plan_sha256": record["plan_sha256"],
                                                    "statement_sha256": statement_sha256(decision)})
        done = {**decision, "audit_seq": entry["seq"]}
        ctx.store.replace(key, dumps(done), etag)
        return done

    try:  # decided before: complete it if that run died before its audit entry
        raw, etag = ctx.store.read_versioned(key)
    except NotFound:
        pass
    else:
        stored, etag = _await_entry(ctx.store, key, raw, etag, now)
        if "audit_seq" not in stored:  # its signature was checked by `verified` above; the run that made it died
            done = log(stored, etag)  # as it was made, not as asked now
            if stored.get("kind") == kind:
                return done
    check_can_approve(load_policy(ctx), facts, decisions, ctx.user, now, kind=kind,  # type: ignore[arg-type]
                      key=ctx.signer.public_key.fingerprint, aws_arn=str(ctx.identity.get("aws_arn") or ""))
    if ctx.store.exists(f"applies/{plan_id}/start.json"):
        raise PolicyRefusal(f"plan {plan_id} was already applied: a decision on it would change nothing",
                            f"review the next plan instead: tfreview history --app {record['app']} --env {record['env']}")
    # What the approver could read is the JSON the record binds (reviewers cannot read the binary; apply checks
    # that the binary still hashes as recorded and still gives this JSON).
    if kind == "approve":
        reviewed_json(ctx.store, record)
    approval = make_approval(facts, ctx.user, comment, now, kind=kind)  # type: ignore[arg-type]
    doc = ctx.sign({**approval.to_dict(), "identity": ctx.identity})
    try:  # create-only: of concurrent decisions by one person exactly one is recorded, before any audit entry
        etag = ctx.store.create(key, dumps(doc))
    except Conflict:
        raise PolicyRefusal(f"{ctx.user} has already decided on plan {plan_id}",
                            "another person must approve; see: tfreview show " + plan_id) from None
    try:
        doc = log(doc, etag)
    except BaseException:
        # A decision the audit log does not hold is never in effect: take it back, so that it can be made again.
        ctx.store.delete(key, etag)
        raise
    return doc
