"""What the store holds, checked against who signed it and what the audit log witnessed (issue 20, items 3-5).

- `check_record`: a plan record is genuine only when its planner's signature verifies under the policy version it
  names; every reader (show, report, comment, history --expand, status) asks before presenting a plan.
- `placed`: a decision counts as one about plan P only when it sits in P's folder *and* names P; an approval copied
  in from another plan is never listed as an approval of the plan it sits beside.
- `unwitnessed`: `audit verify`'s check that every record standing for an event (package, apply start and result,
  rollout, policy version and signature, decision) has its audit entry, and every decision sits in its plan's folder.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from tfreview.errors import PolicyRefusal, StoreError
from tfreview.store.base import Store, get_jsons

DAMAGED_HINT = "do not trust it: the store was modified outside tfreview; run tfreview audit verify and investigate"


# -- plan records: signed by their planner -----------------------------------------------------------------------
def record_damage(record: Mapping[str, Any], history: Any) -> str | None:
    """Why `record` is not a plan record its planner signed (None: it is), under the policy version it names."""
    from tfreview.trust.verify import _signed_by, statement_of

    if history is None:
        return "cannot be checked: the store has no policy"
    why = _signed_by(record, statement_of(record), str(record.get("planner")), history)
    return None if why is None else f"its signature does not hold (the record {why})"


def check_record(store: Store, record: Mapping[str, Any], history: Any = None) -> None:
    """PolicyRefusal (exit 3) naming the plan record as damaged unless its planner's signature verifies."""
    from tfreview.trust.verify import load_history_or_none

    why = record_damage(record, history if history is not None else load_history_or_none(store))
    if why:
        raise PolicyRefusal(f"plan record plans/{record.get('id')}/record.json is damaged: {why}", DAMAGED_HINT)


# -- decisions: in the folder of the plan they name ----------------------------------------------------------------
def placed(doc: Any, plan_id: str) -> bool:
    """Is the decision document `doc`, found in approvals/<plan_id>/, one about `plan_id`? (One naming no plan is
    damaged, not misplaced: it is listed, and its signature check says it does not verify.)"""
    return isinstance(doc, dict) and doc.get("plan_id", plan_id) == plan_id


def folder_of(key: str) -> str:
    """The plan id of the folder of approvals/<plan_id>/<file>."""
    parts = key.split("/")
    return parts[1] if len(parts) >= 3 else ""


# -- audit verify: every record has its entry ----------------------------------------------------------------------
def unwitnessed(store: Store, entries: list[dict[str, Any]]) -> str | None:
    """Why the store holds a record that stands for an event the audit log never recorded, or a decision outside
    the folder of the plan it names (None: every one is witnessed and in place). Names the record and the entry
    it lacks."""
    by_event: dict[Any, list[Mapping[str, Any]]] = {}  # one pass over the log (10^5 entries), not one per check
    for e in entries:
        by_event.setdefault(e.get("event"), []).append(e)
    for check in (_misplaced_decisions, _unlogged_packages, _unlogged_applies, _unlogged_rollouts, _unlogged_policy):
        why = check(store, by_event)
        if why:
            return why
    return None


def _objects(store: Store, keys: list[str]) -> Iterable[tuple[str, dict[str, Any]]]:
    """(key, JSON object) of each of `keys`; a record that is not a JSON object reads as an empty one."""
    for key, doc in get_jsons(store, keys):
        yield key, doc if isinstance(doc, dict) else {}


def _events(by_event: Mapping[Any, list[Mapping[str, Any]]], *names: str) -> list[Mapping[str, Any]]:
    """The entries of events `names`, in log order."""
    found = [e for name in names for e in by_event.get(name, ())]
    return sorted(found, key=lambda e: e.get("seq") or 0) if len(names) > 1 else found


def _misplaced_decisions(store: Store, entries: Mapping[Any, list[Mapping[str, Any]]]) -> str | None:
    logged: dict[Any, Mapping[str, Any]] | None = None  # seq -> decision entry, built when a decision needs it
    for key, doc in _objects(store, store.list("approvals/")):
        folder = folder_of(key)
        if not placed(doc, folder):
            return (f"decision {key} names plan {doc.get('plan_id')} but sits in the folder of plan {folder} "
                    "(copied from another plan)")
        if logged is None:
            logged = {e.get("seq"): e for name in ("approve", "reject") for e in entries.get(name, ())}
        entry = logged.get(doc.get("audit_seq"))
        if "audit_seq" in doc and (entry is None or entry.get("plan_id") != folder):
            return f"decision {key}: its audit entry {doc.get('audit_seq')} is not a decision on plan {folder}"
    return None


def _unlogged_packages(store: Store, entries: Mapping[Any, list[Mapping[str, Any]]]) -> str | None:
    logged = {(e.get("app"), e.get("version"), (e.get("details") or {}).get("sha256"))
              for e in _events(entries, "package")}
    for key, doc in _objects(store, [k for k in store.list("packages/") if k.endswith("/manifest.json")]):
        if (doc.get("app"), doc.get("version"), doc.get("sha256")) not in logged:
            return f"package {key} has no `package` entry in the audit log (written outside tfreview)"
    return None


def _unlogged_applies(store: Store, entries: Mapping[Any, list[Mapping[str, Any]]]) -> str | None:
    starts = {e.get("plan_id") for e in _events(entries, "apply-start")}
    ends = {e.get("plan_id") for e in _events(entries, "apply-end")}
    for key in store.list("applies/"):
        plan_id, _, name = key.removeprefix("applies/").partition("/")
        if name == "start.json" and plan_id not in starts:
            return f"apply record {key} has no `apply-start` entry in the audit log (an apply the log never saw start)"
        if name == "result.json" and plan_id not in ends:
            return f"apply record {key} has no `apply-end` entry in the audit log (an outcome the log never saw)"
    return None


def _unlogged_rollouts(store: Store, entries: Mapping[Any, list[Mapping[str, Any]]]) -> str | None:
    logged = {(e.get("app"), e.get("env"), e.get("plan_id")) for e in _events(entries, "rollout")}
    for key in store.list("rollouts/"):
        parts = key.split("/")
        if len(parts) == 4 and parts[3].endswith(".json") \
                and (parts[1], parts[2], parts[3].removesuffix(".json")) not in logged:
            return f"rollout record {key} has no `rollout` entry in the audit log (written outside tfreview)"
    return None


def _unlogged_policy(store: Store, entries: Mapping[Any, list[Mapping[str, Any]]]) -> str | None:
    from tfreview.trust.policy import PREFIX, sha256_of

    made = {((e.get("details") or {}).get("version"), (e.get("details") or {}).get("policy_sha256"))
            for e in _events(entries, "policy-init", "policy-propose")}
    signed = {((e.get("details") or {}).get("version"), e.get("actor"))
              for e in _events(entries, "policy-init", "policy-approve")}
    keys = store.list(PREFIX)
    for key, doc in _objects(store, [k for k in keys if k.endswith("/policy.json")]):
        if (_version_of(key, PREFIX), sha256_of(doc)) not in made:
            return f"policy version {key} has no policy-init/policy-propose entry in the audit log naming its sha256"
    for key, doc in _objects(store, [k for k in keys if "/signatures/" in k]):
        if (_version_of(key, PREFIX), doc.get("signer")) not in signed:
            return f"policy signature {key} has no policy-init/policy-approve entry in the audit log by its signer"
    return None


def _version_of(key: str, prefix: str) -> int | None:
    head = key.removeprefix(prefix).split("/", 1)[0]
    return int(head) if head.isdigit() else None


# -- readers of many plans: name the damaged ones ----------------------------------------------------------------
def flag_damaged(store: Store, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History rows (and their release steps) with each plan record's signature checked: a row whose record does
    not verify gets outcome "damaged" and an `error` naming the record (rows are changed in place)."""
    from tfreview.errors import NotFound
    from tfreview.store.base import get_json
    from tfreview.trust.verify import load_history_or_none

    history = load_history_or_none(store)
    for row in [x for r in rows for x in (r, *r.get("steps", []))]:
        if row.get("error"):
            continue  # already named as unreadable
        key = f"plans/{row['id']}/record.json"
        try:
            record = get_json(store, key)
        except (NotFound, StoreError):
            continue
        why = record_damage(record, history) if isinstance(record, dict) else "it is not a JSON object"
        if why:
            row["outcome"], row["error"] = "damaged", f"plan record {key} is damaged: {why}"
    return rows
