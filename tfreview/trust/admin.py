"""The policy use cases: init (version 1, trust on first use), propose, approve, show. Orchestration only."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from tfreview.errors import NotFound, PolicyRefusal
from tfreview.store import Store
from tfreview.trust.policy import (PolicyHistory, PolicyVersion, load_history, policy_statement, read_policy_file,
                                   sha256_of, store_signature, store_version)
from tfreview.trust.root import ACTIVATE, pin_of, refuse_unless_new, store_activation


def _now() -> str:
    from tfreview.text import iso, now_utc

    return iso(now_utc())


def _sign_version(ctx: Any, version: int, sha: str) -> None:
    """Sign (version, sha) as the acting admin and store the signature."""
    from tfreview.trust.verify import sign

    statement = policy_statement(version, sha, ctx.user, _now())
    store_signature(ctx.store, version, statement, sign(ctx.signer, statement)["signature"])


def init(settings: Any, store: Store, signer: Any, file: Path, claimed: str | None = None, *,
         context: Callable[..., Any]) -> dict[str, Any]:
    """Install version 1 from `file` into `store` (which has no policy history and no audit entry), signed by
    `signer`, whose key must be one of its admins' (`claimed`: TFREVIEW_USER, which must then name that admin).
    The result carries `pin`, the line for tfreview.toml's [trust] policy_root. `context`: the use cases' Context
    class (tfreview.usecases.context), passed in because the trust layer imports no use case."""
    document = read_policy_file(file)
    if getattr(settings, "policy_root", None):
        raise PolicyRefusal("tfreview.toml pins a policy root ([trust] policy_root): a new root would not match it",
                            "a store is initialised once; if the team really starts over, remove the policy_root "
                            "line in a reviewed commit first")
    refuse_unless_new(store)
    principal = document.principal_of(signer.public_key)
    if principal is None or principal not in document.admins:
        raise PolicyRefusal(f"your signing key {signer.public_key.fingerprint} is not an admin's key in {file}",
                            "the installer signs version 1: list your key under [signers] and your name in admins")
    if claimed is not None and claimed != principal:
        raise PolicyRefusal(f"TFREVIEW_USER is {claimed!r} but your signing key belongs to {principal}",
                            "unset TFREVIEW_USER, or sign with that person's key")
    sha = sha256_of(store_version(store, 1, document, None, principal, _now()))
    ctx = context(settings, store, principal, identity={"user": principal}, signer=signer)
    _sign_version(ctx, 1, sha)
    ctx.policy = load_history(store, witness=False)  # the log witnesses version 1 with its first entry, next
    ctx.audit("policy-init", details={"version": 1, "policy_sha256": sha})
    ctx.policy = load_history(store)
    return show(ctx.policy)


def _check_admin(ctx: Any, what: str) -> None:
    active = ctx.policy.active
    if ctx.user not in active.document.admins:
        raise PolicyRefusal(f"{ctx.user} is not an admin of policy version {active.version}: only its admins may "
                            f"{what}", f"ask one of: {', '.join(active.document.admins)}")


def _activate_if_signed(ctx: Any, version: int, sha: str) -> bool:
    """Once `version` has its quorum on the active version, record its activation: the `policy-activate` entry
    (the log's witness), then policy/<version>/activation.json pointing at it. True when it did."""
    chain = load_history(ctx.store, witness=False)
    done = chain.active.version == version and chain.active.sha256 == sha
    if done:
        entry = ctx.audit(ACTIVATE, details={"version": version, "policy_sha256": sha,
                                             "previous_sha256": chain.active.previous_sha256})
        store_activation(ctx.store, version, sha, int(entry["seq"]))
    ctx.policy = load_history(ctx.store, pin=getattr(ctx.settings, "policy_root", None))
    return done


def propose(ctx: Any, file: Path) -> dict[str, Any]:
    """Store `file` as the next version after the active one, signed by the proposer, who must be an admin of the
    active version (their signature counts toward the quorum; with admin_quorum = 1 it is active at once)."""
    document = read_policy_file(file)
    history: PolicyHistory = ctx.policy
    active = history.active
    _check_admin(ctx, "propose a change")
    version = max(history.versions) + 1
    raw = store_version(ctx.store, version, document, active.sha256, ctx.user, _now())
    sha = sha256_of(raw)
    ctx.audit("policy-propose", details={"version": version, "policy_sha256": sha})
    # The entry before the signature: a kill between the two leaves an entry without its signature (signing again
    # completes it), never a signature the log did not see (docs/design-notes.md, issue 20).
    ctx.audit("policy-approve", details={"version": version, "policy_sha256": sha})
    _sign_version(ctx, version, sha)
    _activate_if_signed(ctx, version, sha)
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
    _check_admin(ctx, "approve a change")
    if ctx.user in pv.signed_by:  # signed already: a command that died before the activation is finished here
        if _activate_if_signed(ctx, version, pv.sha256):
            return show(ctx.policy)
        raise PolicyRefusal(f"{ctx.user} already signed policy version {version}", "another admin must sign it")
    ctx.audit("policy-approve", details={"version": version, "policy_sha256": pv.sha256})  # then the signature
    _sign_version(ctx, version, pv.sha256)
    _activate_if_signed(ctx, version, pv.sha256)
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
    """The active version (and a pending proposal) as JSON-ready data, with the pin of the root."""
    return {"schema_version": 2,  # 2: each version's `checks` (issue 22)
            "active": _version_json(history.active),
            "pending": _version_json(history.pending) if history.pending else None,
            "pin": pin_of(history.versions[1])}


def show_store(store: Store, pin: str | None = None) -> dict[str, Any]:
    """`show` of the store's policy, with the pin of its root."""
    return show(load_history(store, pin=pin))

