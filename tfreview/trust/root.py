"""The root of the policy chain, pinned, and the audit log as the witness of every activation (issue 20).

What this module guarantees, on top of the signed chain of tfreview.trust.policy:

- **One root.** A store is initialised once: `policy init` refuses a store with any policy history or any audit
  entry (a store that lost policy/ but kept its log is damaged, not new). The root's pin,
  `sha256:<version 1's sha256> admins=<fingerprint>,<fingerprint>` (the sha256 of version 1's canonical JSON, then
  the SHA256 fingerprints of every key of its admins, sorted), goes into tfreview.toml's `[trust] policy_root`,
  where code review sees it; every command that loads the policy checks the chain starts there.
- **The log is the witness.** Version 1 is active only if audit entry 1 is its `policy-init` (same sha256);
  version n > 1 only if a `policy-activate` entry of the log names it with the same sha256 (found through
  `policy/<n>/activation.json`, written after that entry, or near the head of the log when a crash lost it). A
  version the log activated that is missing, replaced, edited or renumbered, and a log whose newest entry was
  written under a newer version than the store's active one, are refused (exit 3, naming the version).

What it cannot do: a writer of the store can delete everything (policy/ and audit/ together). That is caught by
the pin (a new root is not the pinned one) and by a checkpoint kept outside the store (`audit checkpoint`), never
prevented; see docs/approvals.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from tfreview.errors import PolicyRefusal
from tfreview.store.base import Store, dumps

PREFIX = "policy/"  # the store folder of the policy chain (tfreview.trust.policy builds on this module, not back)
ACTIVATE = "policy-activate"
POLICY_EVENTS = ("policy-init", "policy-propose", "policy-approve", ACTIVATE)
SCAN_BACK = 100  # entries below the head searched for an activation whose pointer a crash lost
RESTORE = "restore the store's policy/ and audit/ from a backup; do not trust this store until then"


class PolicyVersion(Protocol):
    """What the root checks read of a tfreview.trust.policy.PolicyVersion (passed in: root.py never imports it)."""

    @property
    def sha256(self) -> str: ...

    @property
    def document(self) -> Any: ...


class PolicyHistory(Protocol):
    """What `repair` reads of a tfreview.trust.policy.PolicyHistory."""

    @property
    def unrecorded(self) -> tuple[tuple[int, str, int], ...]: ...


# -- the pin ---------------------------------------------------------------------------------------------------------
def pin_of(root: "PolicyVersion") -> str:
    """The pin of root version `root`: its sha256 and its admins' key fingerprints."""
    fps = sorted(k.fingerprint for a in root.document.admins for k in root.document.signers[a])
    return f"sha256:{root.sha256} admins={','.join(fps)}"


def check_pin(pin: str, root: "PolicyVersion") -> None:
    """PolicyRefusal (exit 3) when the store's version 1 is not the root `pin` names."""
    if pin_of(root) != pin:
        raise PolicyRefusal(f"the store's policy root (version 1, sha256 {root.sha256[:16]}...) is not the one "
                            f"tfreview.toml pins (sha256 {pin[7:23]}...)",
                            "the store was re-initialised or replaced: restore it from a backup, or, if the team "
                            "really started over, change [trust] policy_root in a reviewed commit")


# -- a fresh store -----------------------------------------------------------------------------------------------------
def refuse_unless_new(store: Store) -> None:
    """PolicyRefusal (exit 3) unless `store` has no policy history and no audit entry: a root is installed once."""
    from tfreview.store.audit import ENTRIES_PREFIX, HEAD_KEY, SEGMENTS_PREFIX, entry_key

    if store.list(PREFIX):
        raise PolicyRefusal(f"store {store.url} already has a policy history: its root cannot be installed again",
                            "change the policy with: tfreview policy propose FILE (admins then approve it)")
    if store.exists(HEAD_KEY) or store.exists(entry_key(1)) or store.list(SEGMENTS_PREFIX) \
            or store.list(ENTRIES_PREFIX):
        raise PolicyRefusal(f"store {store.url} has an audit log but no policy: it is a damaged store (policy/ "
                            "was removed), not a new one", RESTORE)


# -- activation records ------------------------------------------------------------------------------------------------
def activation_key(version: int) -> str:
    return f"{PREFIX}{version:06d}/activation.json"


def store_activation(store: Store, version: int, sha: str, seq: int) -> None:
    """Point version `version` at its `policy-activate` audit entry `seq` (create-only; a repeat is harmless)."""
    from tfreview.errors import Conflict

    try:
        store.create(activation_key(version), dumps({"version": version, "policy_sha256": sha, "audit_seq": seq}))
    except Conflict:
        pass


@dataclass
class LogView:
    """The few audit entries the witness needs, read on demand (not verified: `audit verify` does that); an
    entry whose hash does not match its content reads as None."""

    store: Store
    _head: int | None = None
    _cache: dict[int, Any] = field(default_factory=dict)

    def head(self) -> int:
        from tfreview.store.audit import read_head

        if self._head is None:
            self._head = read_head(self.store)[0]
        return self._head

    @staticmethod
    def _valid(entry: Any) -> dict[str, Any] | None:
        from tfreview.store.audit import entry_hash

        return entry if isinstance(entry, dict) and entry and entry_hash(entry) == entry.get("hash") else None

    def entry(self, seq: int) -> dict[str, Any] | None:
        from tfreview.store.audit import load_entry

        if seq not in self._cache:
            self._cache[seq] = self._valid(load_entry(self.store, seq)) if seq >= 1 else None
        return self._cache[seq]

    def tail(self) -> list[dict[str, Any]]:
        """The last SCAN_BACK entries (and one past the head: the crash window), newest first."""
        from tfreview.store.audit import load_entries

        head = self.head()
        seqs = list(range(head + 1, max(head - SCAN_BACK, 0), -1))
        missing = [s for s in seqs if s not in self._cache]
        for s, e in zip(missing, load_entries(self.store, missing), strict=True):
            self._cache[s] = self._valid(e)
        return [e for s in seqs if (e := self._cache[s])]


def _details(entry: Mapping[str, Any] | None) -> Mapping[str, Any]:
    d = (entry or {}).get("details")
    return d if isinstance(d, Mapping) else {}


def _names(entry: Mapping[str, Any] | None, event: str, version: int, sha: str) -> bool:
    d = _details(entry)
    return entry is not None and entry.get("event") == event and d.get("version") == version \
        and d.get("policy_sha256") == sha


def _refuse(version: int, why: str) -> PolicyRefusal:
    return PolicyRefusal(f"policy version {version} {why}", RESTORE)


def read_pointer(store: Store, version: int) -> dict[str, Any] | None:
    """The activation record of `version` (None: none; {} unreadable)."""
    from tfreview import jsontext
    from tfreview.errors import NotFound

    try:
        doc = jsontext.loads_std(store.read(activation_key(version)))
    except NotFound:
        return None
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


@dataclass(frozen=True)
class Witnessed:
    """Which versions of the chain the log activated: `active` the newest, `unrecorded` those found near the head
    whose activation record is missing (version, sha256, seq: a deciding command writes it back)."""

    active: int
    unrecorded: tuple[tuple[int, str, int], ...] = ()


def witness(store: Store, versions: Mapping[int, "PolicyVersion"], chain: list[int], pointers: set[int],
            log: LogView) -> Witnessed:
    """The newest version of `chain` (the versions that verify, each on the one before, in order) whose activation
    the log records, every earlier one too. PolicyRefusal naming the version when the log activated a version the
    store no longer has as it was (missing, replaced, edited), or when the newest entry was written under a newer
    version than that. `pointers`: the versions with an activation record."""
    root = versions[1]
    if not _names(log.entry(1), "policy-init", 1, root.sha256):
        first = log.entry(1)
        if not first:
            raise _refuse(1, "is not recorded by the audit log (entry 1 should be its policy-init): the log was "
                          "removed, or policy init was interrupted")
        raise _refuse(1, f"is not the version the audit log installed (entry 1, {first.get('event')}): it was "
                      "replaced, edited, or comes from another store")
    for n in sorted(pointers):
        ptr = read_pointer(store, n)
        seq = ptr.get("audit_seq") if ptr else None
        entry = log.entry(seq) if isinstance(seq, int) else None
        if not entry or entry.get("event") != ACTIVATE or _details(entry).get("version") != n:
            raise _refuse(n, f"has an activation record that no policy-activate entry of the audit log backs "
                          f"(policy/{n:06d}/activation.json)")
        logged = _details(entry).get("policy_sha256")
        if n not in versions:
            raise _refuse(n, f"was activated by audit entry {entry['seq']} but its file is missing or unreadable")
        if versions[n].sha256 != logged:
            raise _refuse(n, f"is not the version audit entry {entry['seq']} activated (sha256 "
                          f"{str(logged)[:16]}..., the store's is {versions[n].sha256[:16]}...): it was replaced or "
                          "edited")
        if n not in chain:
            raise _refuse(n, f"was activated by audit entry {entry['seq']} but no longer verifies (its signatures "
                          "or its predecessor were changed or removed)")
    active, unrecorded = 1, []
    tail: list[dict[str, Any]] | None = None
    for n in chain[1:]:
        if n not in pointers:
            tail = log.tail() if tail is None else tail
            found = next((e for e in tail if _names(e, ACTIVATE, n, versions[n].sha256)), None)
            if found is None:
                break  # verified, never activated (a crash before its entry): it is not in force
            unrecorded.append((n, versions[n].sha256, int(found["seq"])))
        active = n
    head = log.entry(log.head())
    if head:
        named = head.get("policy_version")
        seen: int = named if isinstance(named, int) else 0
        activated = _details(head).get("version")
        if head.get("event") == ACTIVATE and isinstance(activated, int):
            seen = max(seen, activated)
        if seen > active:
            raise _refuse(seen, f"is the one the audit log's newest entry ({head.get('seq')}, {head.get('event')}) "
                          f"was written under, but the store's newest valid, activated version is {active}: version "
                          f"{seen} was removed, replaced or edited (a rollback)")
    return Witnessed(active, tuple(unrecorded))


def repair(store: Store, history: "PolicyHistory") -> None:
    """Write back the activation records a crash lost (found near the head of the log)."""
    for version, sha, seq in history.unrecorded:
        store_activation(store, version, sha, seq)
