"""Signed statements: signing them, and turning them into verified facts (or a one-line refusal naming which).

A verified statement guarantees: its bytes are exactly what the key's holder signed, and that key belongs, in the
policy version used to check it, to the principal the statement names as its actor. The pure policy core
(tfreview.review.policy) then decides what a set of verified decisions allows.
"""
from __future__ import annotations

import fnmatch
import os
from dataclasses import replace
from typing import Any, Iterable, Mapping, Sequence

from tfreview.errors import PolicyRefusal, StoreError
from tfreview.store.base import Store, canonical, get_json, get_jsons
from tfreview.trust.policy import PolicyHistory, PolicyVersion, sha256_of
from tfreview.trust.signer import Signer
from tfreview.trust.sshsig import PublicKey, SignatureError, verify

UNSIGNED = ("signature", "audit_seq")  # fields beside a statement, not part of it


def statement_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The signed statement inside a stored document (the document without its signature and pointers)."""
    return {k: v for k, v in doc.items() if k not in UNSIGNED}


def statement_sha256(doc: Mapping[str, Any]) -> str:
    return sha256_of(statement_of(doc))


def sign(signer: Signer, statement: Mapping[str, Any]) -> dict[str, Any]:
    """`statement` with its `signature` (SSHSIG over its canonical JSON)."""
    body = statement_of(statement)
    return {**body, "signature": signer.sign(canonical(body))}


def check_signed(doc: Mapping[str, Any], policy: PolicyVersion, actor: str, what: str) -> PublicKey:
    """The key that signed `doc`, verified and belonging to `actor` in policy version `policy`; PolicyRefusal
    (exit 3) naming `what` and why otherwise."""
    hint = "do not trust it: investigate who wrote it (tfreview audit verify), then re-plan / re-approve"
    try:
        key = verify(canonical(statement_of(doc)), str(doc.get("signature") or ""))
    except SignatureError as exc:
        reason = "it is not signed" if not doc.get("signature") else str(exc)
        raise PolicyRefusal(f"{what}: {reason}", hint) from None
    owner = policy.document.principal_of(key)
    if owner is None:
        raise PolicyRefusal(f"{what}: signed with key {key.fingerprint}, unknown to policy version {policy.version} "
                            "(unknown or revoked key)", hint)
    if owner != actor:
        raise PolicyRefusal(f"{what}: says {actor} but was signed with {owner}'s key (principal mismatch)", hint)
    return key


def claimed_user(environ: Mapping[str, str] | None = None) -> str | None:
    """TFREVIEW_USER when set (None otherwise); BadInput (exit 2) when it is blank or holds control characters."""
    from tfreview.text import check_person

    env = os.environ if environ is None else environ
    claimed = env.get("TFREVIEW_USER")
    return None if claimed is None else check_person(claimed, "TFREVIEW_USER")


def identify(signer: Signer, history: PolicyHistory, environ: Mapping[str, str] | None = None,
             aws_arn: str | None = None) -> str:
    """The principal the active policy gives the signing key; PolicyRefusal (exit 3) when the key is unknown,
    TFREVIEW_USER names someone else, or (S3 mode) the AWS caller does not match the principal's ARN pattern."""
    active = history.active
    claimed = claimed_user(environ)
    principal = active.document.principal_of(signer.public_key)
    if principal is None:
        raise PolicyRefusal(f"your signing key {signer.public_key.fingerprint} is not in the store's policy "
                            f"(version {active.version})",
                            "send your .pub to an admin, who adds it to [signers]: tfreview policy propose FILE")
    if claimed is not None and claimed != principal:
        raise PolicyRefusal(f"TFREVIEW_USER is {claimed!r} but your signing key belongs to {principal}",
                            "unset TFREVIEW_USER, or sign with that person's key (you cannot act as someone else)")
    pattern = active.document.aws_principals.get(principal)
    if pattern and aws_arn is not None and not fnmatch.fnmatchcase(aws_arn, pattern):
        raise PolicyRefusal(f"AWS caller {aws_arn} does not match {principal}'s ARN pattern {pattern}",
                            "use the AWS credentials the policy gives you ([aws_principals])")
    return principal


def audit_entry_for(store: Store, doc: Mapping[str, Any], event: str, what: str) -> dict[str, Any]:
    """The audit entry recorded with decision `doc` (its `audit_seq`), checked to name its statement's sha256;
    PolicyRefusal naming `what` when it is missing or does not match."""
    from tfreview.store.audit import entry_hash, entry_key

    seq = doc.get("audit_seq")
    try:
        entry = get_json(store, entry_key(int(seq))) if isinstance(seq, int) else None
    except (StoreError, LookupError, ValueError):
        entry = None
    if entry is None or entry.get("event") != event or entry_hash(entry) != entry.get("hash") \
            or (entry.get("details") or {}).get("statement_sha256") != statement_sha256(doc):
        raise PolicyRefusal(f"{what}: its audit entry is missing or does not match it",
                            "do not trust it: run tfreview audit verify and investigate")
    return entry


def verified_decisions(store: Store, plan_id: str, docs: Iterable[Mapping[str, Any]],
                       history: PolicyHistory) -> list[Any]:
    """Approvals/rejections of a plan as `Approval`s carrying the signing key's fingerprint and AWS principal,
    each signature verified against the active policy, signed by the principal it names, with its audit entry
    present. PolicyRefusal (exit 3) naming the first that fails and why. A decision not yet pointing at its
    audit entry (being recorded, or interrupted) is left out: it does not count."""
    from tfreview.review.policy import Approval

    out = []
    for doc in docs:
        who = str(doc.get("approver", "?"))
        what = f"{'rejection' if doc.get('kind') == 'reject' else 'approval'} of plan {plan_id} by {who}"
        key = check_signed(doc, history.active, who, what)
        if "audit_seq" not in doc:
            continue  # being recorded right now (or interrupted before its audit entry): it does not count
        audit_entry_for(store, doc, str(doc.get("kind")), what)
        entry_arn = (doc.get("identity") or {}).get("aws_arn")
        out.append(replace(Approval.from_dict(doc), key=key.fingerprint, aws_arn=entry_arn or ""))
    return sorted(out, key=lambda a: a.approved_at)


# -- audit verify ----------------------------------------------------------------------------------------------------
def _signed_by(doc: Mapping[str, Any], statement: Mapping[str, Any], actor: str,
               history: PolicyHistory) -> str | None:
    """Why `doc`'s signature over `statement` does not prove `actor` said it under the policy version it names
    (None: it does)."""
    pv = history.versions.get(statement.get("policy_version"))  # type: ignore[arg-type]
    if pv is None:
        return f"names policy version {statement.get('policy_version')!r}, which the store does not have"
    try:
        key = verify(canonical(statement), str(doc.get("signature") or ""))
    except SignatureError as exc:
        return "is not signed" if not doc.get("signature") else f"signature: {exc}"
    owner = pv.document.principal_of(key)
    if owner != actor:
        return (f"is signed with key {key.fingerprint}, which policy version {pv.version} gives "
                f"{owner or 'nobody'}, not {actor}")
    return None


def verify_log(store: Store, entries: list[dict[str, Any]], seals: Sequence[Mapping[str, Any]] = (),
               *, full: bool = False, history: PolicyHistory | None = None) -> tuple[int | None, str]:
    """Check the signature of every seal and of every entry no seal covers (with `full`: every entry) against the
    policy version it names, then cross-check the plan records and decisions in the store against the log.
    (None, "") when all holds, else (seq or None, reason). `history`: the store's, when the caller has it.

    A seal is a policy principal's signed word that the entries it covers chained and were signed by their actors
    when sealed (`seal_log`); the bytes it names are checked by the chain layer (tfreview.store.audit)."""
    from tfreview.store import audit

    history = history or load_history_or_none(store)
    if history is None:
        return (entries[0]["seq"], "the store has no policy to check signatures against") if entries else (None, "")
    for seal in seals:
        why = _signed_by(seal, statement_of(seal), str(seal.get("sealer")), history)
        if why:
            return seal.get("first"), f"the seal of entries {seal.get('first')}-{seal.get('last')} {why}"
    vouched = set() if full else {seal["first"] for seal in seals}  # the segments seals vouch for
    size = audit.SEGMENT_SIZE  # segment_first, inlined: it would run once per entry (10^5)
    for entry in [e for e in entries if (e["seq"] - 1) // size * size + 1 not in vouched] if vouched else entries:
        why = _entry_refusal(entry, history)
        if why:
            return entry.get("seq"), why
    by_statement: dict[str, dict[str, Any]] = {
        sha: entry for entry in entries if (sha := (entry.get("details") or {}).get("statement_sha256"))}
    for key, doc in get_jsons(store, [k for k in store.list("plans/") if k.endswith("/record.json")]):
        why = _cross_check(doc, "planner", "plan", by_statement, history)
        if why:
            return None, f"plan record {key}: {why}"
    for key, doc in get_jsons(store, store.list("approvals/")):
        why = _cross_check(doc, "approver", str(doc.get("kind")), by_statement, history)
        if why:
            return None, f"decision {key}: {why}"
    return None, ""


def _entry_refusal(entry: dict[str, Any], history: PolicyHistory) -> str | None:
    """Why the audit entry's signature does not hold (naming the entry, its event and actor), else None."""
    from tfreview.store.audit import entry_statement

    why = _signed_by(entry, entry_statement(entry), str(entry.get("actor")), history)
    return f"entry {entry.get('seq')} ({entry.get('event')} by {entry.get('actor')}) {why}" if why else None


def seal_log(ctx: Any, firsts: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Seal the complete segments not sealed yet (or those starting at `firsts`): read each one's entries, check
    their chain and every signature, and store them as one object led by a seal signed by the acting principal.
    Returns the seals written (a segment someone else sealed first is skipped). StoreError naming the first entry
    that does not verify (nothing is sealed from it on)."""
    from tfreview.store.audit import seal_statement, segment_to_seal, store_segment, unsealed_segments
    from tfreview.text import iso, now_utc

    store, history = ctx.store, ctx.policy
    written = []
    for first in unsealed_segments(store) if firsts is None else firsts:
        body, entries, prev_hash = segment_to_seal(store, first)
        for entry in entries:
            why = _entry_refusal(entry, history)
            if why:
                raise StoreError(f"{why}: segment {first} is not sealed", "run `tfreview audit verify` and investigate")
        seal = ctx.sign({**seal_statement(first, prev_hash, body, entries[-1]["hash"]), "sealer": ctx.user,
                         "time": iso(now_utc())})
        if store_segment(store, seal, body):
            written.append(seal)
    return written


def _cross_check(doc: Mapping[str, Any], actor_field: str, event: str, by_statement: Mapping[str, Any],
                 history: PolicyHistory) -> str | None:
    actor = str(doc.get(actor_field))
    why = _signed_by(doc, statement_of(doc), actor, history)
    if why:
        return why
    if event != "plan" and "audit_seq" not in doc:
        return None  # a decision whose command died before it was recorded: never in effect (apply skips it too)
    entry = by_statement.get(statement_sha256(doc))
    if entry is None or entry.get("event") != event or entry.get("actor") != actor:
        return "has no matching entry in the audit log (written or edited outside tfreview)"
    return None


def load_history_or_none(store: Store) -> PolicyHistory | None:
    from tfreview.errors import BadInput
    from tfreview.trust.policy import load_history

    try:  # the versions, to check signatures against: whether the log witnessed them is root.policy_findings' job
        return load_history(store, witness=False)
    except BadInput:
        return None


# -- checkpoints: truncation and rewind ------------------------------------------------------------------------------
def make_checkpoint(ctx: Any, entries: list[dict[str, Any]], at: str) -> dict[str, Any]:
    """A signed statement of how far the (verified) log reaches: its last seq and hash, the store, the time."""
    last = entries[-1] if entries else {"seq": 0, "hash": "0" * 64}
    return ctx.sign({"kind": "audit-checkpoint", "store": ctx.store.url, "seq": last["seq"], "head_hash": last["hash"],
                     "time": at, "signer": ctx.user})


def check_checkpoint(doc: Mapping[str, Any], entries: list[dict[str, Any]], history: PolicyHistory) -> str | None:
    """Why the log does not extend checkpoint `doc` (None: it does): the checkpoint's signature must verify as its
    signer's under the policy version it names, and the entry at its seq must still have its hash."""
    if doc.get("kind") != "audit-checkpoint" or not isinstance(doc.get("seq"), int):
        return "the checkpoint file is not a tfreview audit checkpoint"
    why = _signed_by(doc, statement_of(doc), str(doc.get("signer")), history)
    if why:
        return f"the checkpoint {why}"
    seq = doc["seq"]
    if seq == 0:
        return None
    if len(entries) < seq:
        return f"the log has {len(entries)} entries, the checkpoint of {doc.get('time')} saw {seq} (truncated)"
    if entries[seq - 1].get("hash") != doc.get("head_hash"):
        return f"entry {seq} is not the one the checkpoint of {doc.get('time')} saw (the log was rewound and rewritten)"
    return None


# -- the auditor's report ----------------------------------------------------------------------------------------------
def report_statements(store: Store, record: Mapping[str, Any], decisions: Iterable[Mapping[str, Any]],
                      events: Iterable[Mapping[str, Any]], history: PolicyHistory | None = None) -> dict[str, Any]:
    """Every signed statement about one plan, for a report an auditor checks without tfreview: `statements`
    (what, principal, the exact signed bytes as text, signature, key fingerprint, verified here yes/no) and
    `allowed_signers` (policy version -> OpenSSH allowed_signers text) of the versions they name. `history`: the
    policy versions to check against (None: the store's, read without the log's witness)."""
    from tfreview.store.audit import entry_statement

    history = history if history is not None else load_history_or_none(store)
    items = [("plan record", record, statement_of(record), str(record.get("planner")))]
    items += [(f"{d.get('kind')} by {d.get('approver')}", d, statement_of(d), str(d.get("approver")))
              for d in decisions]
    items += [(f"audit entry {e.get('seq')} ({e.get('event')})", e, entry_statement(dict(e)), str(e.get("actor")))
              for e in events]
    out, versions = [], set()
    for what, doc, statement, principal in items:
        try:
            key = verify(canonical(statement), str(doc.get("signature") or "")).fingerprint
        except SignatureError:
            key = ""
        why = _signed_by(doc, statement, principal, history) if history else "no policy"
        versions.add(statement.get("policy_version"))
        out.append({"what": what, "principal": principal, "statement": canonical(statement).decode(),
                    "signature": doc.get("signature"), "key": key, "verified": "yes" if not why else f"NO: {why}",
                    "policy_version": statement.get("policy_version")})
    signers = {str(v): history.versions[v].document.allowed_signers() for v in versions
               if history and isinstance(v, int) and v in history.versions}
    return {"statements": out, "allowed_signers": signers}
