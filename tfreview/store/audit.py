"""The audit log: hash-chained, append-only, on the Store protocol only (works on the local store and on S3).

Layout:
    audit/entries/<seq:012d>.json   one object per entry, written create-only (two writers cannot share a seq)
    audit/head.json                 {"seq": N, "hash": H}: the last entry, advanced by compare-and-swap

Each entry carries `prev_hash` (the `hash` of entry seq-1; 64 zeros for entry 1) and `hash`, the sha256 of the
canonical JSON of the entry without `hash`. Entries are stored as exactly that canonical JSON, so any byte
change, deletion or reordering breaks either the bytes, the hash, the seq or the chain, and `verify_chain`
names the first bad entry.

Signed entries: an entry written with a `signer` carries `signature`, the SSHSIG signature of its statement
(the entry without seq, prev_hash, hash and signature: time, event, actor, policy_version and the fields), so
the chain proves order and completeness and the signature proves who said it (tfreview.trust).

Crash window: a writer may die after creating entry N and before advancing the head to N. The next writer
finds entry N, checks that it chains to the head, adopts it (advances the head) and carries on; `verify_chain`
accepts entries past the head when they chain.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from tfreview.errors import Conflict, NotFound, StoreError
from tfreview.store.base import Store, canonical, dumps, put_json

HEAD_KEY = "audit/head.json"
ENTRIES_PREFIX = "audit/entries/"
GENESIS_HASH = "0" * 64
MAX_ATTEMPTS = 200

_SECRET_KEY = re.compile(r"secret|password|passwd|token|credential|private_key|access_key", re.IGNORECASE)
_ENTRY_NAME = re.compile(r"^audit/entries/(\d{12})\.json$")


def entry_key(seq: int) -> str:
    """Store key of entry number `seq` (1-based)."""
    return f"{ENTRIES_PREFIX}{seq:012d}.json"


def entry_hash(entry: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of `entry` without its `hash` field."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(dumps(body)).hexdigest()


CHAIN_FIELDS = ("seq", "prev_hash", "hash", "signature")


def entry_statement(entry: dict[str, Any]) -> dict[str, Any]:
    """What the actor signed: the entry without its place in the chain and its signature."""
    return {k: v for k, v in entry.items() if k not in CHAIN_FIELDS}


def _scrub(value: Any, key: str = "") -> Any:
    """Details never carry secrets: values under secret-looking keys are replaced, recursively."""
    if key and _SECRET_KEY.search(key):
        return "(redacted)"
    if isinstance(value, dict):
        return {str(k): _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _read_head(store: Store) -> tuple[int, str, str | None]:
    """(seq, hash, etag) of the head; (0, GENESIS_HASH, None) for an empty log."""
    try:
        raw, etag = store.read_versioned(HEAD_KEY)
    except NotFound:
        return 0, GENESIS_HASH, None
    try:
        head = json.loads(raw)
        return int(head["seq"]), str(head["hash"]), etag
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"audit head {HEAD_KEY} is unreadable", "run `tfreview audit verify`") from exc


def _advance_head(store: Store, seq: int, hash_: str, etag: str | None) -> bool:
    """Move the head to (seq, hash) if it is still at `etag`; False if someone else moved it first."""
    data = dumps({"seq": seq, "hash": hash_})
    try:
        if etag is None:
            store.create(HEAD_KEY, data)
        else:
            store.replace(HEAD_KEY, data, etag)
        return True
    except Conflict:
        return False


def _load_entry(store: Store, seq: int) -> dict[str, Any] | None:
    try:
        return json.loads(store.read(entry_key(seq)))
    except NotFound:
        return None
    except ValueError:
        return {}


def _backoff(attempt: int) -> None:
    # Full jitter, capped: concurrent writers spread out instead of colliding in lock-step.
    time.sleep(random.uniform(0, min(0.05, 0.002 * (2 ** min(attempt, 6)))))


def append_event(store: Store, event: str, actor: str, *, signer: Any = None, **fields: Any) -> dict[str, Any]:
    """Append one event to the audit log and return the stored entry (with seq, time, prev_hash, hash).

    `signer` (a tfreview.trust.signer.Signer): the entry's statement is signed once, before it is placed.
    `fields` are recorded at the top level (app, env, version, plan_id...) except `details`, a dict scrubbed of
    secret-looking keys. Safe against concurrent writers (create-only entries + CAS on the head, bounded retries
    with jitter); raises StoreError if the log cannot be extended (e.g. it was tampered with).
    """
    if not event or not isinstance(event, str):
        raise ValueError("event must be a non-empty string")
    reserved = {"seq", "time", "event", "actor", "prev_hash", "hash", "signature"} & fields.keys()
    if reserved:
        raise ValueError(f"reserved audit fields: {sorted(reserved)}")
    # JSON round trip: tuples become lists, datetimes strings, so the hash re-computed on read is the same.
    payload = json.loads(json.dumps({k: _scrub(v, k) for k, v in fields.items() if v is not None}, default=str))
    statement = {"time": _now(), "event": event, "actor": actor, **payload}
    signed = {"signature": signer.sign(canonical(statement))} if signer is not None else {}
    for attempt in range(MAX_ATTEMPTS):
        seq, head_hash, etag = _read_head(store)
        nxt = _load_entry(store, seq + 1)
        if nxt is not None:
            # The head lags (a writer crashed or is about to advance it): adopt the entry if it chains.
            if nxt.get("prev_hash") != head_hash or nxt.get("seq") != seq + 1 or entry_hash(nxt) != nxt.get("hash"):
                raise StoreError(
                    f"audit entry {seq + 1} does not chain to the audit head",
                    "run `tfreview audit verify` and investigate before recording more events",
                )
            _advance_head(store, seq + 1, nxt["hash"], etag)
            continue
        entry = {"seq": seq + 1, **statement, **signed, "prev_hash": head_hash}
        entry["hash"] = entry_hash(entry)
        try:
            put_json(store, entry_key(seq + 1), entry)
        except Conflict:
            _backoff(attempt)
            continue
        # Our entry is in: advance the head; if the CAS loses, someone adopted it already (or will).
        for _ in range(MAX_ATTEMPTS):
            if _advance_head(store, seq + 1, entry["hash"], etag):
                break
            cur, _h, etag = _read_head(store)
            if cur >= seq + 1:
                break
        return entry
    raise StoreError("could not append to the audit log (too much contention)", "retry the command")


_UNPARSABLE: Any = object()  # an entry's bytes that are not JSON


def _read_objects(store: Store) -> list[tuple[str, bytes | None, Any]]:
    """Every object under the entries prefix, in key order, read once: (key, bytes, parsed JSON or _UNPARSABLE);
    bytes None for a name that is not an entry's (not read) or an entry that vanished. Reads run
    `store.read_workers` at a time (on S3 each is a round trip)."""

    def read(key: str) -> tuple[str, bytes | None, Any]:
        if not _ENTRY_NAME.match(key):
            return key, None, None
        try:
            raw = store.read(key)
        except NotFound:
            return key, None, None
        try:
            return key, raw, json.loads(raw)
        except ValueError:
            return key, raw, _UNPARSABLE

    keys = store.list(ENTRIES_PREFIX)
    if store.read_workers <= 1:
        return [read(key) for key in keys]
    with ThreadPoolExecutor(max_workers=store.read_workers, thread_name_prefix="audit-read") as pool:
        return list(pool.map(read, keys))


def _entries(objects: list[tuple[str, bytes | None, Any]]) -> list[Any]:
    return [entry for _key, raw, entry in objects if raw is not None and entry is not _UNPARSABLE]


def iter_entries(store: Store) -> Iterator[dict[str, Any]]:
    """Audit entries in seq order (not verified: use `verify_chain` for that); unreadable ones are skipped."""
    yield from _entries(_read_objects(store))


def filter_entries(entries: Iterable[dict[str, Any]], *, app: str | None = None, env: str | None = None,
                   version: str | None = None, person: str | None = None, event: str | None = None,
                   plan_id: str | None = None, since: datetime | None = None,
                   until: datetime | None = None) -> list[dict[str, Any]]:
    """Entries matching every given filter (pure). `person` matches the actor case-insensitively; `since` and
    `until` (aware datetimes) bound the entry's time, inclusive."""
    out = []
    who = person.strip().casefold() if person else None
    for e in entries:
        if (app and e.get("app") != app) or (env and e.get("env") != env) or (version and e.get("version") != version):
            continue
        if (event and e.get("event") != event) or (plan_id and e.get("plan_id") != plan_id):
            continue
        if who and str(e.get("actor", "")).strip().casefold() != who:
            continue
        if since or until:
            try:
                t = datetime.fromisoformat(str(e.get("time", "")).replace("Z", "+00:00"))
            except ValueError:
                continue
            if (since and t < since) or (until and t > until):
                continue
        out.append(e)
    return out


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of `verify_chain`: ok, number of entries checked, first bad seq (None when ok) and why."""

    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str = ""


def _verify(store: Store, objects: list[tuple[str, bytes | None, Any]]) -> VerifyResult:
    prev_hash = GENESIS_HASH
    expected = 1
    hashes: dict[int, str] = {}

    def bad(seq: int, reason: str) -> VerifyResult:
        return VerifyResult(False, expected - 1, seq, reason)

    for key, raw, entry in objects:
        m = _ENTRY_NAME.match(key)
        if not m:
            return bad(expected, f"unexpected object {key} among the audit entries")
        seq = int(m.group(1))
        if seq != expected:
            return bad(expected, f"entry {expected} is missing (next found: {seq})")
        if raw is None:
            return bad(expected, f"entry {expected} vanished while verifying")
        if entry is _UNPARSABLE:
            return bad(seq, f"entry {seq} is not valid JSON")
        if not isinstance(entry, dict):
            return bad(seq, f"entry {seq} is not a JSON object")
        if dumps(entry) != raw:
            return bad(seq, f"entry {seq} bytes are not as written (not canonical JSON)")
        if entry.get("seq") != seq:
            return bad(seq, f"entry {seq} says it is entry {entry.get('seq')} (moved or reordered)")
        if entry_hash(entry) != entry.get("hash"):
            return bad(seq, f"entry {seq} content does not match its hash (modified)")
        if entry.get("prev_hash") != prev_hash:
            return bad(seq, f"entry {seq} does not chain to entry {seq - 1} (prev_hash differs)")
        prev_hash = entry["hash"]
        hashes[seq] = prev_hash
        expected += 1
    count = expected - 1
    try:
        head_seq, head_hash, _ = _read_head(store)
    except StoreError:
        return VerifyResult(False, count, count or None, f"audit head {HEAD_KEY} is unreadable")
    if head_seq > count:
        return VerifyResult(False, count, count + 1,
                            f"entry {count + 1} is missing (the head says the log has {head_seq} entries)")
    if head_seq and hashes.get(head_seq) != head_hash:
        return VerifyResult(False, count, head_seq, f"the audit head does not match entry {head_seq}")
    # head_seq < count is the crash window (entries created, head not yet advanced): they chain, so they count.
    return VerifyResult(True, count)


def verify_chain(store: Store) -> VerifyResult:
    """Check every audit entry: canonical bytes, own hash, seq matching its key, contiguous seqs from 1,
    prev_hash chaining to the entry before, and the head pointing at an entry of the chain."""
    return _verify(store, _read_objects(store))


def read_log(store: Store) -> tuple[list[dict[str, Any]], VerifyResult]:
    """(`iter_entries`, `verify_chain`) of the log in one pass: every entry object is read once."""
    objects = _read_objects(store)
    return _entries(objects), _verify(store, objects)
