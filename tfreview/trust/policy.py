"""The policy document: versioned and signed in the store, the trust root of every decision.

A document holds the per-environment rules (`[policy.<env>]`, read by tfreview.review.policy), `[signers]`
(principal -> SSH public keys: the allowed-signers list), `admins`, `admin_quorum`, and optionally
`[aws_principals]` (principal -> AWS ARN pattern the STS caller must match in S3 mode).

Store layout (every object create-only):
    policy/<version:06d>/policy.json             {"version", "previous_sha256", "document", "proposed_by", ...}
    policy/<version:06d>/signatures/<slug>.json  a signed statement {"kind": "policy-signature", "version",
                                                 "policy_sha256", "signer", "signed_at", "policy_version"}

What an active version guarantees: version 1 is signed by one of its own admins (trust on first use); version
n+1 is active once `admin_quorum` distinct admins of the active version n signed its sha256 with keys that
version n lists for them, and it names version n's sha256 as its previous one. So nobody below a quorum of
admin keys can change the rules, and every change is signed and in the audit log.
"""
from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from tfreview.errors import BadInput, Conflict, PolicyRefusal
from tfreview.store.base import Store, canonical, dumps
from tfreview import jsontext
from tfreview.trust.root import PREFIX
from tfreview.trust.sshsig import PublicKey, SignatureError, parse_public_key, verify

_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
_EMAIL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+", re.ASCII)
_TOP_KEYS = {"admins", "admin_quorum", "signers", "aws_principals", "policy", "rego_modules"}


def valid_principal(name: Any) -> bool:
    """Principal names are plain ASCII identifiers or e-mail addresses (no control characters, no look-alike
    letters from other scripts, no blanks), compared exactly."""
    return isinstance(name, str) and bool(_IDENT.fullmatch(name) or _EMAIL.fullmatch(name))


def _bad(where: str, what: str) -> BadInput:
    return BadInput(f"policy file: {where + ' ' if where else ''}{what}", "fix the policy file (see docs/approvals.md)")


def _principal(where: str, name: Any) -> str:
    if not valid_principal(name):
        raise _bad(where, f"{name!r} is not a valid principal name (ASCII identifier or e-mail address)")
    return name


@dataclass(frozen=True)
class PolicyDocument:
    """A parsed, validated policy document. `signers`: principal -> public keys; `aws_principals`: principal ->
    ARN pattern (fnmatch); `rules`: the raw `[policy]` tables (tfreview.review.policy parses them)."""

    admins: tuple[str, ...]
    admin_quorum: int
    signers: Mapping[str, tuple[PublicKey, ...]]
    aws_principals: Mapping[str, str] = field(default_factory=dict)
    rules: Mapping[str, Any] = field(default_factory=dict)
    parsed_rules: Any = field(default=None, compare=False, repr=False)  # `rules` parsed (once, when validated)
    rego_modules: Mapping[str, str] = field(default_factory=dict)  # name -> Rego source (tfreview.trust.checks)

    def to_json(self) -> dict[str, Any]:
        doc = {"admins": list(self.admins), "admin_quorum": self.admin_quorum,
               "signers": {p: [k.line() for k in keys] for p, keys in sorted(self.signers.items())},
               "aws_principals": dict(self.aws_principals), "policy": self.rules}
        if self.rego_modules:  # a policy without Rego checks keeps its document (and sha256) as before
            doc["rego_modules"] = dict(sorted(self.rego_modules.items()))
        return doc

    def principal_of(self, key: PublicKey) -> str | None:
        """The principal this document gives `key` (None: an unknown or revoked key)."""
        return next((p for p, keys in self.signers.items() if any(k.blob == key.blob for k in keys)), None)

    def allowed_signers(self) -> str:
        """The `[signers]` as an OpenSSH allowed_signers file (for `ssh-keygen -Y verify -f`)."""
        return "".join(f'{p} namespaces="tfreview" {k.line()}\n' for p, keys in sorted(self.signers.items())
                       for k in keys)


def parse_document(data: Mapping[str, Any]) -> PolicyDocument:
    """Validate a policy document (from a TOML file or as stored); BadInput naming the first problem."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _bad("", f"has unknown key {unknown[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})")
    signers_raw = data.get("signers")
    if not isinstance(signers_raw, Mapping) or not signers_raw:
        raise _bad("[signers]", 'must list principal = "ssh-ed25519 AAAA..." lines (at least one)')
    signers: dict[str, tuple[PublicKey, ...]] = {}
    owner: dict[bytes, str] = {}
    for name, lines in signers_raw.items():
        _principal("[signers]", name)
        lines = [lines] if isinstance(lines, str) else lines
        if not isinstance(lines, list) or not lines or not all(isinstance(x, str) for x in lines):
            raise _bad(f"[signers] {name}", "must be a public key line or a list of them")
        keys = []
        for line in lines:
            try:
                key = parse_public_key(line)
            except SignatureError as exc:
                raise _bad(f"[signers] {name}", f"has an unusable key: {exc}") from None
            if key.blob in owner and owner[key.blob] != name:
                raise _bad(f"[signers] {name}", f"shares a key with {owner[key.blob]} (one key, one principal)")
            owner[key.blob] = name
            keys.append(key)
        signers[name] = tuple(keys)
    admins = data.get("admins")
    if not isinstance(admins, list) or not admins:
        raise _bad("admins", 'must list at least one principal, e.g. admins = ["alice@example.com"]')
    for a in admins:
        if _principal("admins", a) not in signers:
            raise _bad("admins", f"names {a!r}, who has no key in [signers]")
    quorum = data.get("admin_quorum", 1)
    if isinstance(quorum, bool) or not isinstance(quorum, int) or not 1 <= quorum <= len(set(admins)):
        raise _bad("admin_quorum", f"must be a whole number from 1 to the number of admins ({len(set(admins))})")
    aws = data.get("aws_principals", {})
    if not isinstance(aws, Mapping) or not all(isinstance(v, str) and v.startswith("arn:") for v in aws.values()):
        raise _bad("[aws_principals]", 'must map principals to ARN patterns, e.g. ci = "arn:aws:sts::1:assumed-role/ci/*"')
    for name in aws:
        if _principal("[aws_principals]", name) not in signers:
            raise _bad("[aws_principals]", f"names {name!r}, who has no key in [signers]")
    rules = data.get("policy", {})
    from tfreview.review.policy import policy_from_dict

    parsed = policy_from_dict(rules)
    for env_policy in (parsed.default, *parsed.envs.values()):
        for who in (*(env_policy.approvers or ()), *env_policy.break_glass):
            if _principal("approvers/break_glass", who) not in signers:
                raise _bad("approvers/break_glass", f"names {who!r}, who has no key in [signers]")
    from tfreview.trust.checks import parse_stored_modules

    modules = parse_stored_modules(data.get("rego_modules", {}), parsed)
    return PolicyDocument(tuple(dict.fromkeys(admins)), quorum, signers, dict(aws), json.loads(json.dumps(rules)),
                          parsed, modules)


def read_policy_file(path: Path) -> PolicyDocument:
    """Read and validate a policy TOML file (the input of `policy init` / `policy propose`)."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}", "pass the policy TOML file") from None
    except UnicodeDecodeError as exc:  # before TOMLDecodeError: both are ValueErrors
        raise BadInput(f"{path} is not UTF-8 text (byte {exc.start})", "save the policy file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path} is not valid TOML: {exc}", "fix the policy file") from None
    from tfreview.trust.checks import read_check_files

    return parse_document(read_check_files(data, path.parent))


# -- versions in the store ------------------------------------------------------------------------------------
def version_key(version: int) -> str:
    return f"{PREFIX}{version:06d}/policy.json"


def sha256_of(doc: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(doc)).hexdigest()


@dataclass(frozen=True)
class PolicyVersion:
    """One stored version: its number, sha256 (of its canonical JSON), the document, and who signed it."""

    version: int
    sha256: str
    previous_sha256: str | None
    document: PolicyDocument
    signed_by: tuple[str, ...] = ()

    @property
    def rules(self) -> Any:
        return self.document.parsed_rules


@dataclass(frozen=True)
class PolicyHistory:
    """Every stored version; `active` is the newest one reached by valid signatures from version 1, `pending`
    the newest proposal that follows it but is short of its quorum, if any (an abandoned proposal is simply
    superseded by a newer one)."""

    versions: Mapping[int, PolicyVersion]
    active: PolicyVersion
    pending: PolicyVersion | None = None
    unrecorded: tuple[tuple[int, str, int], ...] = ()  # activations found in the log whose record a crash lost


def _signatures(store: Store, keys: list[str]) -> list[dict[str, Any]]:
    out = []
    for key in keys:
        try:
            out.append(jsontext.loads_std(store.read(key)))
        except ValueError:
            continue  # an unreadable signature is simply not counted
    return out


def _valid_signers(sigs: list[dict[str, Any]], version: int, sha: str, trusted: PolicyDocument) -> tuple[str, ...]:
    """Principals of `trusted` (its admins) whose signature over (version, sha) verifies with a key `trusted`
    gives them; forged, edited and unknown-key signatures are not counted."""
    who: list[str] = []
    for doc in sigs:
        statement = {k: v for k, v in doc.items() if k != "signature"}
        if statement.get("version") != version or statement.get("policy_sha256") != sha:
            continue
        try:
            key = verify(canonical(statement), str(doc.get("signature", "")))
        except SignatureError:
            continue
        principal = trusted.principal_of(key)
        if principal is None or principal != statement.get("signer") or principal in who:
            continue
        if principal not in trusted.admins:
            continue
        who.append(principal)
    return tuple(who)


def load_history(store: Store, *, pin: str | None = None, witness: bool = True, log: Any = None) -> PolicyHistory:
    """Read and verify the policy versions of the store. BadInput (exit 2) when there is none and no audit log;
    PolicyRefusal (exit 3) when version 1 is missing or not signed by one of its admins, a version's number is not
    its folder's, the chain does not start at the pinned root `pin`, or (with `witness`, always but inside `policy`
    commands) the audit log activated a version the store no longer has as it was (tfreview.trust.root). `log`: a
    tfreview.trust.root.LogView holding entries read already."""
    from tfreview.trust import root

    keys = store.list(PREFIX)  # recursive: the versions, their signatures and activation records, listed once
    numbers = sorted({int(k[len(PREFIX):len(PREFIX) + 6]) for k in keys if re.fullmatch(r"policy/\d{6}/policy\.json", k)})
    pointers = {int(k[len(PREFIX):len(PREFIX) + 6]) for k in keys if re.fullmatch(r"policy/\d{6}/activation\.json", k)}
    log = log or root.LogView(store)
    if not numbers:
        if witness and log.head() > 0:
            raise PolicyRefusal(f"store {store.url} has an audit log but no policy: it is a damaged store (policy/ "
                                "was removed), not a new one", root.RESTORE)
        raise BadInput(f"store {store.url} has no policy",
                       "an admin installs one: tfreview policy init POLICY.toml (see docs/approvals.md)")
    if numbers[0] != 1:
        raise PolicyRefusal("policy version 1 (the root) is missing from the store", root.RESTORE)
    versions: dict[int, PolicyVersion] = {}
    chain: list[int] = []  # the versions that verify, each signed by a quorum of the admins of the one before
    for n in numbers:
        try:
            raw = jsontext.loads_std(store.read(version_key(n)))
            document = parse_document(raw["document"])
        except (ValueError, KeyError, TypeError, BadInput):
            if not chain or n in pointers:
                raise PolicyRefusal(f"policy version {n} in the store is unreadable",
                                    "restore the store's policy/ from a backup") from None
            continue  # a broken proposal never becomes active
        if raw.get("version") != n:  # tfreview never writes this: a version copied or moved into another's place
            raise PolicyRefusal(f"policy version {n}: its file says it is version {raw.get('version')!r} (copied "
                                "or moved from another place)", root.RESTORE)
        sha = sha256_of(raw)
        # Version 1 is signed by its own admins (trust on first use); later ones by the admins of the chain's last.
        last = versions[chain[-1]] if chain else None
        trusted = document if last is None else last.document
        signature_keys = [k for k in keys if k.startswith(f"{PREFIX}{n:06d}/signatures/")]
        pv = PolicyVersion(n, sha, raw.get("previous_sha256"), document,
                           _valid_signers(_signatures(store, signature_keys), n, sha, trusted))
        versions[n] = pv
        if last is None:
            if not pv.signed_by:
                raise PolicyRefusal("policy version 1 is not signed by one of its admins",
                                    "the store's policy was tampered with: restore policy/ from a backup")
            chain.append(n)
        elif pv.previous_sha256 == last.sha256 and len(pv.signed_by) >= last.document.admin_quorum:
            chain.append(n)
    if pin is not None:
        root.check_pin(pin, versions[1])
    seen = root.witness(store, versions, chain, pointers, log) if witness else root.Witnessed(chain[-1])
    active = versions[seen.active]
    following = [pv for n, pv in versions.items() if n > active.version and pv.previous_sha256 == active.sha256]
    return PolicyHistory(versions, active, following[-1] if following else None, seen.unrecorded)


def policy_statement(version: int, sha: str, signer: str, at: str) -> dict[str, Any]:
    """The statement an admin signs to install or approve a policy version (made under version - 1)."""
    return {"kind": "policy-signature", "version": version, "policy_sha256": sha, "signer": signer,
            "signed_at": at, "policy_version": version - 1}


def store_version(store: Store, version: int, document: PolicyDocument, previous_sha256: str | None,
                  proposed_by: str, at: str) -> dict[str, Any]:
    """Write policy version `version` (create-only: Conflict when someone stored that version first)."""
    raw = {"version": version, "previous_sha256": previous_sha256, "document": document.to_json(),
           "proposed_by": proposed_by, "proposed_at": at}
    store.create(version_key(version), dumps(raw))
    return raw


def store_signature(store: Store, version: int, statement: dict[str, Any], signature: str) -> None:
    slug = hashlib.sha256(statement["signer"].encode()).hexdigest()[:16]
    try:
        store.create(f"{PREFIX}{version:06d}/signatures/{slug}.json", dumps({**statement, "signature": signature}))
    except Conflict:
        raise PolicyRefusal(f"{statement['signer']} already signed policy version {version}",
                            "another admin must sign it") from None


def has_policy(store: Store) -> bool:
    return store.exists(version_key(1))


# -- audit verify's policy findings -------------------------------------------------------------------------------------
def policy_findings(store: Store, entries: list[dict[str, Any]], pin: str | None
                    ) -> tuple["PolicyHistory | None", int | None, str]:
    """(history, seq, reason) for `audit verify`: the store's policy as every command loads it (chain, witness,
    pin), then every policy event of the (chain-verified) log against the store: each version the log names is in
    the store with the sha256 the log recorded, and the newest version the log activated is the active one.
    reason "" when all holds; history None when the policy cannot be loaded (or the store has none and no log)."""
    from tfreview.trust import root

    log = root.LogView(store, entries[-1]["seq"] if entries else 0, {e["seq"]: e for e in entries})  # read (and chained)
    try:
        history = load_history(store, pin=pin, log=log)
    except PolicyRefusal as exc:
        return None, None, exc.message
    except BadInput:
        return None, None, ""  # no policy and no log: nothing to check
    newest = (0, 0)
    for e in entries:
        if e.get("event") not in root.POLICY_EVENTS:
            continue
        n, sha = root._details(e).get("version"), root._details(e).get("policy_sha256")
        pv = history.versions.get(n) if isinstance(n, int) else None
        if pv is None:
            return history, e.get("seq"), (f"entry {e.get('seq')} ({e.get('event')}) records policy version {n}, "
                                           "which the store no longer has (deleted or unreadable)")
        if pv.sha256 != sha:
            return history, e.get("seq"), (f"entry {e.get('seq')} ({e.get('event')}) records policy version {n} "
                                           f"with sha256 {str(sha)[:16]}..., the store's version {n} is "
                                           f"{pv.sha256[:16]}... (replaced or edited)")
        if e.get("event") in ("policy-init", root.ACTIVATE) and isinstance(n, int):
            newest = max(newest, (n, int(e.get("seq") or 0)))
    if newest[0] > history.active.version:
        return history, newest[1], (f"policy version {newest[0]}, activated by entry {newest[1]}, is not the active "
                                    f"one (version {history.active.version}): a rollback")
    return history, None, ""
