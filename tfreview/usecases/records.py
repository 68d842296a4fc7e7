"""Reading what the use cases stored: plan records, their reviews, the policy in force, decisions and outcomes,
each checked on the way in (a damaged record is named, never trusted)."""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Mapping

from tfreview.errors import BadInput, NotFound, PolicyRefusal, StoreError
from tfreview.store import Store, get_json
from tfreview.store.base import get_jsons
from tfreview.usecases.context import Context
from tfreview.usecases.plan import plan_keys


_RECORD_FIELDS = {"id": str, "app": str, "env": str, "version": str, "planner": str, "created_at": str,
                  "plan_sha256": str, "package_sha256": str, "summary": dict}


def load_plan(store: Store, plan_id: str) -> dict[str, Any]:
    """The record of `plan_id` (NotFound for an unknown id; StoreError naming the file when it is damaged)."""
    keys = plan_keys(plan_id)
    try:
        return plan_record(store, keys["record"])
    except NotFound:
        raise NotFound(f"no plan {plan_id!r} in store {store.url}", "list plans with: tfreview history") from None


def plan_record(store: Store, key: str) -> dict[str, Any]:
    """The plan record stored at `key`, checked: a JSON object with the fields every reader uses."""
    return checked_json(store, key, _RECORD_FIELDS)


def checked_json(store: Store, key: str, fields: Mapping[str, type]) -> dict[str, Any]:
    """The JSON object stored at `key` with each of `fields` of its type; else StoreError naming the file."""
    doc = get_json(store, key)
    bad = [f for f, kind in fields.items() if not isinstance(doc, dict) or not isinstance(doc.get(f), kind)]
    if bad:
        raise StoreError(f"store record {key} is damaged ({bad[0]} missing or of the wrong type)",
                         "the store was modified outside tfreview: restore that file from a backup")
    return doc


def reviewed_json(store: Store, record: dict[str, Any]) -> bytes:
    """The stored review JSON of a plan, checked against its record's `json_sha256` (PolicyRefusal when it
    differs: what a reviewer would see is not what was planned)."""
    key = plan_keys(record["id"])["json"]
    data = store.read(key)
    recorded = record.get("json_sha256")
    if not recorded:
        raise PolicyRefusal(f"plan {record['id']} has no json_sha256 in its record: its review cannot be checked",
                            f"make a new plan: tfreview plan --app {record['app']} --version {record['version']} "
                            f"--env {record['env']}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != recorded:
        raise PolicyRefusal(f"plan {record['id']}: the stored review JSON does not match the plan record "
                            f"({key}: sha256 {actual[:12]}, recorded {recorded[:12]})",
                            "the store was modified: do not approve or apply it; make a new plan")
    return data


def load_review(store: Store, record: dict[str, Any]) -> Any:
    """The review of a stored plan, from its JSON checked against the record (see `reviewed_json`) and the record
    against its planner's signature (PolicyRefusal naming it as damaged), classified with the roles and showing the
    terraform options the record holds."""
    from tfreview.errors import InvalidPlan
    from tfreview.plan import review_plan
    from tfreview.plan.roles import Roles
    from tfreview.trust.witness import check_record

    data = reviewed_json(store, record)
    check_record(store, record)  # a record re-hashed to match an edited review is not its planner's
    try:
        return review_plan(data, roles=Roles.from_dict(record.get("roles")),
                           terraform_options=record.get("terraform_options"))
    except InvalidPlan as exc:  # tfreview stored it as a valid plan: it was changed since (record included)
        raise StoreError(f"store record {plan_keys(record['id'])['json']} is damaged: {exc.message}",
                         "the store was modified outside tfreview: restore that file from a backup") from None


# -- approvals ---------------------------------------------------------------------------------------------------
def _facts(record: dict[str, Any]) -> Any:
    from tfreview.review.policy import PlanFacts

    return PlanFacts.from_dict({**record, "plan_id": record["id"],
                                "risk_reasons": record.get("escalation_reasons", record.get("risk_reasons", [])),
                                "destroy": is_destroy(record)})


def is_destroy(record: dict[str, Any]) -> bool:
    """A destroy plan (`plan --destroy`): its own policy rule, no rollout, no promotion."""
    return bool((record.get("terraform_options") or {}).get("destroy"))


def load_policy(ctx: Context) -> Any:
    """The rules of the store's active, verified policy (never of a local file)."""
    if ctx.policy is None:
        from tfreview.trust.policy import load_history

        ctx.policy = load_history(ctx.store, pin=ctx.settings.policy_root)
    return ctx.policy.active.rules


def decision_docs(store: Store, plan_id: str) -> list[dict[str, Any]]:
    """The stored approval/rejection documents of a plan, as written (signed statements, not yet verified)."""
    return [doc for _, doc in get_jsons(store, store.list(f"approvals/{plan_id}/"))]


def approvals_of(store: Store, plan_id: str) -> list[Any]:
    """The decisions stored for `plan_id`, oldest first, unverified (for history and reports; `apply` counts only
    those `verified` accepts: signed, and recorded in the audit log)."""
    from tfreview.review.policy import Approval

    from tfreview.trust.witness import placed

    out = []
    for key in store.list(f"approvals/{plan_id}/"):
        try:
            doc = get_json(store, key)
            if not placed(doc, plan_id):
                continue  # a decision on another plan, copied here: never one of this plan's (audit verify names it)
            out.append(Approval.from_dict(doc))
        except (TypeError, KeyError, ValueError, AttributeError):
            raise StoreError(f"store record {key} is damaged",
                             "the store was modified outside tfreview: restore that file from a backup") from None
    return sorted(out, key=lambda a: a.approved_at)


def verified(ctx: Context, record: dict[str, Any]) -> tuple[Any, list[Any]]:
    """(plan facts, decisions) of a plan, every signature checked against the store's active policy: the plan
    record signed by its planner, each decision by the principal it names with its audit entry present (a decision
    whose command died before its audit entry is not in effect; `approve` again completes it).
    PolicyRefusal (exit 3) naming the first that is edited, forged, unsigned or signed with a wrong key."""
    from dataclasses import replace

    from tfreview.trust.verify import check_signed, verified_decisions

    load_policy(ctx)
    key = check_signed(record, ctx.policy.active, str(record.get("planner")), f"plan record {record['id']}")
    facts = replace(_facts(record), planner_key=key.fingerprint,
                    planner_arn=str((record.get("identity") or {}).get("aws_arn") or ""))
    return facts, verified_decisions(ctx.store, record["id"], decision_docs(ctx.store, record["id"]), ctx.policy)


# -- applied versions ----------------------------------------------------------------------------------------------
def latest_plan_id(store: Store, app: str, env: str) -> str | None:
    try:
        return checked_json(store, f"heads/{app}/{env}/latest-plan.json", {"plan_id": str})["plan_id"]
    except NotFound:
        return None


def succeeded_in(store: Store, app: str, version: str) -> frozenset[str]:
    """Environments where app/version was applied successfully (for promotion gates)."""
    try:
        return frozenset(get_json(store, f"releases/{app}/{version}/succeeded.json").get("envs", []))
    except NotFound:
        return frozenset()


# -- time filters -------------------------------------------------------------------------------------------------
def time_bound(value: str | None, *, end: bool = False) -> datetime | None:
    """--since/--until as an aware UTC datetime; a bare date means its start (or, with `end`, its end)."""
    if not value:
        return None
    from datetime import timedelta

    from tfreview.review.policy import parse_time

    try:
        t = parse_time(value)
    except ValueError:
        raise BadInput(f"cannot read the time {value!r}", "use an ISO date or time, e.g. 2026-11-01 or "
                       "2026-11-01T14:00Z") from None
    if end and len(value.strip()) == 10:  # a date: until the end of that day
        t += timedelta(days=1) - timedelta(microseconds=1)
    return t
