"""The policy use cases: init (version 1, trust on first use), propose, approve, show. Orchestration only."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tfreview.errors import Conflict, NotFound, PolicyRefusal
from tfreview.store import Store
from tfreview.trust.policy import (PolicyHistory, PolicyVersion, has_policy, load_history, policy_statement,
                                   read_policy_file, sha256_of, store_signature, store_version)


def _now() -> str:
    from tfreview.workflow import iso, now_utc

    return iso(now_utc())


def _sign_version(ctx: Any, version: int, sha: str) -> None:
    """Sign (version, sha) as the acting admin and store the signature."""
    from tfreview.trust.verify import sign

    statement = policy_statement(version, sha, ctx.user, _now())
    store_signature(ctx.store, version, statement, sign(ctx.signer, statement)["signature"])


def init(settings: Any, store: Store, signer: Any, file: Path, claimed: str | None = None) -> dict[str, Any]:
    """Install version 1 from `file` into `store` (which has no policy), signed by `signer`, whose key must be one
    of its admins' (`claimed`: TFREVIEW_USER, which must then name that admin)."""
    from tfreview.workflow import Context

    document = read_policy_file(file)
    if has_policy(store):
        raise Conflict(f"store {store.url} already has a policy",
                       "change it with: tfreview policy propose FILE (admins then approve it)")
    principal = document.principal_of(signer.public_key)
    if principal is None or principal not in document.admins:
        raise PolicyRefusal(f"your signing key {signer.public_key.fingerprint} is not an admin's key in {file}",
                            "the installer signs version 1: list your key under [signers] and your name in admins")
    if claimed is not None and claimed != principal:
        raise PolicyRefusal(f"TFREVIEW_USER is {claimed!r} but your signing key belongs to {principal}",
                            "unset TFREVIEW_USER, or sign with that person's key")
    sha = sha256_of(store_version(store, 1, document, None, principal, _now()))
    ctx = Context(settings, store, principal, identity={"user": principal}, signer=signer)
    _sign_version(ctx, 1, sha)
    ctx.policy = load_history(store)
    ctx.audit("policy-init", details={"version": 1, "policy_sha256": sha})
    return show(ctx.policy)


def propose(ctx: Any, file: Path) -> dict[str, Any]:
    """Store `file` as the next version after the active one, signed by the proposer (an admin's signature
    counts toward the quorum; with admin_quorum = 1 an admin's proposal is active at once)."""
    document = read_policy_file(file)
    history: PolicyHistory = ctx.policy
    active = history.active
    version = max(history.versions) + 1
    raw = store_version(ctx.store, version, document, active.sha256, ctx.user, _now())
    sha = sha256_of(raw)
    ctx.audit("policy-propose", details={"version": version, "policy_sha256": sha})
    if ctx.user in active.document.admins:
        _sign_version(ctx, version, sha)
        ctx.audit("policy-approve", details={"version": version, "policy_sha256": sha})
    ctx.policy = load_history(ctx.store)
    return show(ctx.policy)


def approve(ctx: Any, version: int) -> dict[str, Any]:
    """Sign pending policy `version` as an admin of the active version."""
    history: PolicyHistory = ctx.policy
    active = history.active
    pv = history.versions.get(version)
    if pv is None:
        raise NotFound(f"no policy version {version}", "see: tfreview policy show")
    if pv.previous_sha256 != active.sha256 or version <= active.version:
        raise PolicyRefusal(f"policy version {version} is not a proposal on the active version {active.version}",
                            "propose the change again on the active version: tfreview policy propose FILE")
    if ctx.user not in active.document.admins:
        raise PolicyRefusal(f"{ctx.user} is not an admin of policy version {active.version}",
                            f"ask one of: {', '.join(active.document.admins)}")
    _sign_version(ctx, version, pv.sha256)
    ctx.audit("policy-approve", details={"version": version, "policy_sha256": pv.sha256})
    ctx.policy = load_history(ctx.store)
    return show(ctx.policy)


def _version_json(pv: PolicyVersion) -> dict[str, Any]:
    from tfreview.trust.checks import module_list

    return {"version": pv.version, "sha256": pv.sha256, "previous_sha256": pv.previous_sha256,
            "signed_by": list(pv.signed_by), "admins": list(pv.document.admins),
            "admin_quorum": pv.document.admin_quorum,
            "signers": {p: [k.fingerprint for k in keys] for p, keys in sorted(pv.document.signers.items())},
            "aws_principals": dict(pv.document.aws_principals), "policy": pv.document.rules,
            "checks": module_list(pv.document.rego_modules),
            "allowed_signers": pv.document.allowed_signers()}


def show(history: PolicyHistory) -> dict[str, Any]:
    """The active version (and a pending proposal) as JSON-ready data."""
    return {"active": _version_json(history.active),
            "pending": _version_json(history.pending) if history.pending else None}


def show_store(store: Store) -> dict[str, Any]:
    return show(load_history(store))

