"""The audit log: hash-chained, append-only, on the Store protocol only (works on the local store and on S3).

Layout:
    audit/entries/<seq:012d>.json   one object per entry, written create-only (two writers cannot share a seq)
    audit/head.json                 {"seq": N, "hash": H}: the last entry, advanced by compare-and-swap
    audit/segments/<first:012d>.jsonl   a sealed segment: one seal line, then the bytes of entries
                                    first..first + SEGMENT_SIZE - 1 (create-only)

Each entry carries `prev_hash` (the `hash` of entry seq-1; 64 zeros for entry 1) and `hash`, the sha256 of the
canonical JSON of the entry without `hash`. Entries are stored as exactly that canonical JSON, so any byte
change, deletion or reordering breaks either the bytes, the hash, the seq or the chain, and `verify_chain`
names the first bad entry.

Signed entries: an entry written with a `signer` carries `signature`, the SSHSIG signature of its statement
(the entry without seq, prev_hash, hash and signature: time, event, actor, policy_version and the fields), so
the chain proves order and completeness and the signature proves who said it (tfreview.trust).

Sealed segments: verifying 10^5 signatures (and, on S3, reading 10^5 objects) is too slow for an auditor, so
complete segments of SEGMENT_SIZE entries are sealed, as a transparency log publishes signed checkpoints: a
policy principal checks the segment's entries (chain and signatures) once and signs a seal naming the sha256 of
their bytes and the hashes the segment starts from and ends at (tfreview.trust.verify.seal_log). `read_log` reads
a segment in place of its entries and checks its bytes against the seal; the trust layer checks the seal's
signature. Entry files stay (the audit log is never deleted); see `read_log` for when they are compared.

Crash window: a writer may die after creating entry N and before advancing the head to N. The next writer
finds entry N, checks that it chains to the head, adopts it (advances the head) and carries on; `verify_chain`
accepts entries past the head when they chain.
"""
from __future__ import annotations

import gc
import hashlib
import json
import random
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from itertools import repeat
from typing import Any, Callable, Iterable, Iterator, Mapping

import orjson

from tfreview.errors import Conflict, NotFound, StoreError
from tfreview import jsontext
from tfreview.store.base import Store, canonical, dumps, each_read, put_json, read_all, read_many

HEAD_KEY = "audit/head.json"
ENTRIES_PREFIX = "audit/entries/"
SEGMENTS_PREFIX = "audit/segments/"
SEGMENT_SIZE = 1000  # entries per sealed segment
GENESIS_HASH = "0" * 64
MAX_ATTEMPTS = 200

_SECRET_KEY = re.compile(r"secret|password|passwd|token|credential|private_key|access_key", re.IGNORECASE)
_ENTRY_NAME = re.compile(r"^audit/entries/(\d{12})\.json$")
_SEGMENT_NAME = re.compile(r"^audit/segments/(\d{12})\.jsonl$")


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


def read_head(store: Store) -> tuple[int, str, str | None]:
    """(seq, hash, etag) of the head; (0, GENESIS_HASH, None) for an empty log."""
    try:
        raw, etag = store.read_versioned(HEAD_KEY)
    except NotFound:
        return 0, GENESIS_HASH, None
    try:
        head = jsontext.loads_std(raw)
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


def load_entry(store: Store, seq: int) -> dict[str, Any] | None:
    """Entry `seq` as stored (not verified): None when missing, {} when its bytes are not JSON."""
    try:
        return jsontext.loads_std(store.read(entry_key(seq)))
    except NotFound:
        return None
    except ValueError:
        return {}


def load_entries(store: Store, seqs: Iterable[int]) -> list[dict[str, Any] | None]:
    """`load_entry` of each of `seqs`, in order, read `store.read_workers` at a time."""
    return each_read(store, lambda seq: load_entry(store, seq), seqs)


def entry_hash_at(store: Store, seq: int) -> str | None:
    """The `hash` of audit entry `seq` as stored, not verified ("" for seq 0, before the first entry; None when the
    entry is missing)."""
    if seq == 0:
        return ""
    entry = load_entry(store, seq)
    return None if entry is None else str(entry.get("hash", ""))


def plans_named(store: Store, first: int, last: int) -> tuple[dict[str, str], str]:
    """What entries first..last (not verified) say changed: plan id -> time of the newest of them naming that plan,
    and the `hash` of entry `last` ("" when it is missing or unreadable). Read `store.read_workers` at a time."""
    touched: dict[str, str] = {}
    last_hash = ""
    for found in load_entries(store, range(first, last + 1)):
        entry = found or {}
        last_hash = str(entry.get("hash", ""))
        if entry.get("plan_id"):
            touched[str(entry["plan_id"])] = str(entry.get("time", ""))
    return touched, last_hash


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
        seq, head_hash, etag = read_head(store)
        nxt = load_entry(store, seq + 1)
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
            cur, _h, etag = read_head(store)
            if cur >= seq + 1:
                break
        return entry
    raise StoreError("could not append to the audit log (too much contention)", "retry the command")


_UNPARSABLE: Any = object()  # an entry's bytes that are not JSON


def _parse(raw: bytes) -> Any:
    try:
        return jsontext.loads_std(raw)
    except ValueError:
        return _UNPARSABLE


def iter_entries(store: Store) -> Iterator[dict[str, Any]]:
    """Audit entries in seq order, from their entry files (not verified: use `read_log` for that); unreadable
    ones are skipped."""
    for key, raw in read_all(store, ENTRIES_PREFIX):
        entry = _parse(raw) if raw is not None and _ENTRY_NAME.match(key) else None
        if isinstance(entry, dict):
            yield entry


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
            t = entry_time(e)
            if t is None or (since and t < since) or (until and t > until):
                continue
        out.append(e)
    return out


def entry_time(entry: dict[str, Any] | None) -> datetime | None:
    """The time of an entry (None when missing or unreadable)."""
    try:
        return datetime.fromisoformat(str((entry or {}).get("time", "")).replace("Z", "+00:00"))
    except ValueError:
        return None


# -- checking entries and sealed segments (pure) ------------------------------------------------------------------
def check_entry(seq: int, raw: bytes, entry: Any, prev_hash: str) -> str | None:
    """Why the entry file bytes `raw` (parsed: `entry`, or _UNPARSABLE) are not entry `seq` chained to
    `prev_hash` (None: they are)."""
    if entry is _UNPARSABLE:
        return f"entry {seq} is not valid JSON"
    if not isinstance(entry, dict):
        return f"entry {seq} is not a JSON object"
    if dumps(entry) != raw:
        return f"entry {seq} bytes are not as written (not canonical JSON)"
    if entry.get("seq") != seq:
        return f"entry {seq} says it is entry {entry.get('seq')} (moved or reordered)"
    if entry_hash(entry) != entry.get("hash"):
        return f"entry {seq} content does not match its hash (modified)"
    if entry.get("prev_hash") != prev_hash:
        return f"entry {seq} does not chain to entry {seq - 1} (prev_hash differs)"
    return None


def segment_first(seq: int) -> int:
    """The first seq of the segment holding entry `seq`."""
    return (seq - 1) // SEGMENT_SIZE * SEGMENT_SIZE + 1


def _segment_name(key: str) -> int:
    """The first seq of the segment stored at `key` (0: not a segment's name)."""
    m = _SEGMENT_NAME.match(key)
    first = int(m.group(1)) if m else 0
    return first if first and segment_first(first) == first else 0


def segment_key(first: int) -> str:
    """Store key of the sealed segment of entries first..first + SEGMENT_SIZE - 1."""
    return f"{SEGMENTS_PREFIX}{first:012d}.jsonl"


def seal_statement(first: int, prev_hash: str, body: bytes, last_hash: str) -> dict[str, Any]:
    """What a seal says (before who, when and the policy version are added and it is signed): the entries
    first..last, exactly the bytes `body` (their entry files, concatenated), chain from `prev_hash` to
    `last_hash`."""
    return {"kind": "audit-seal", "first": first, "last": first + SEGMENT_SIZE - 1, "prev_hash": prev_hash,
            "last_hash": last_hash, "entries_sha256": hashlib.sha256(body).hexdigest()}


@dataclass(frozen=True)
class Segment:
    """A sealed segment as read: its seal (a signed statement: the trust layer checks the signature), the entry
    bytes it holds, one per line, and those entries parsed."""

    seal: dict[str, Any]
    lines: list[bytes]
    entries: list[dict[str, Any]]


def parse_segment(raw: bytes) -> tuple[list[bytes], Any]:
    """(lines, entries) of the segment in `raw`: its entries' bytes, one per line, and those lines parsed as one JSON
    list (_UNPARSABLE when they are not JSON). Pure; the expensive part of `check_segment`, which can be given it."""
    body = raw.partition(b"\n")[2]
    lines = body.splitlines(keepends=True)
    joined = b"[" + b",".join(lines) + b"]"
    try:
        # The most brackets any line opens (every byte but `{`, `[` and newlines deleted, then a search for a run of
        # MAX_NESTING brackets: at C speed, no object per line): when no line holds enough to nest too deep for what
        # reads it later, jsontext's walk of the whole 720 KB (a third of the parsing) is not needed. Lines split at
        # newlines only, so never fewer brackets per line than `splitlines` gives.
        if _DEEP.search(body.translate(None, _NOT_OPENING)) is None:
            return lines, orjson.loads(joined)
        return lines, jsontext.loads(joined)
    except orjson.JSONDecodeError:
        return lines, _UNPARSABLE


_NOT_OPENING = bytes(b for b in range(256) if b not in b"{[\n")  # what parse_segment deletes to count brackets
_DEEP = re.compile(rb"[^\n]{%d}" % jsontext.MAX_NESTING)  # a line (once only brackets are left) that may nest too deep


def check_segment(raw: bytes, first: int, prev_hash: str,
                  parsed: tuple[list[bytes], Any] | None = None) -> Segment | str:
    """The segment in `raw` if it holds entries first..first + SEGMENT_SIZE - 1, exactly the bytes its seal names,
    chained from `prev_hash`; else why not. Its entries' own hashes are not recomputed: the sealer checked them
    (and their signatures) before signing the seal, and any later change of a byte breaks `entries_sha256`.
    `parsed`: `parse_segment(raw)`, when the caller has it already."""
    header, _, body = raw.partition(b"\n")
    seal = _parse(header)
    last = first + SEGMENT_SIZE - 1
    if not isinstance(seal, dict) or seal.get("kind") != "audit-seal":
        return "its first line is not a seal"
    if (seal.get("first"), seal.get("last")) != (first, last):
        return f"its seal covers entries {seal.get('first')}-{seal.get('last')}, not {first}-{last} (moved)"
    if hashlib.sha256(body).hexdigest() != seal.get("entries_sha256"):
        return "its entries are not the bytes its seal names (modified, removed or reordered after sealing)"
    if seal.get("prev_hash") != prev_hash:
        return f"it does not chain to entry {first - 1} (prev_hash differs)"
    lines, entries = parsed if parsed is not None else parse_segment(raw)
    if entries is _UNPARSABLE:
        return "its entries are not JSON"
    if len(entries) != SEGMENT_SIZE or not all(map(isinstance, entries, repeat(dict))):
        return f"it holds {len(entries)} entries, not {SEGMENT_SIZE}"
    # Each entry's seq and prev_hash, as lists compared at C speed (10^5 entries); the loop only to name the entry.
    seqs, prevs = [e.get("seq") for e in entries], [e.get("prev_hash") for e in entries]
    hashes = [e.get("hash") for e in entries]
    if seqs != list(range(first, last + 1)) or prevs != [prev_hash, *hashes[:-1]]:
        for seq, entry in enumerate(entries, start=first):
            if entry.get("seq") != seq or entry.get("prev_hash") != prev_hash:
                return f"entry {seq} in it is out of place"
            prev_hash = entry.get("hash")
    prev_hash = hashes[-1]
    if prev_hash != seal.get("last_hash"):
        return "its last entry is not the one its seal names"
    return Segment(seal, lines, entries)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of `verify_chain`: ok, number of entries checked, first bad seq (None when ok) and why; `seals`: the
    seals of the segments the entries were read from (their signatures are the trust layer's to check)."""

    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str = ""
    seals: tuple[dict[str, Any], ...] = ()

    @property
    def sealed(self) -> int:
        """How many of the entries were read from sealed segments."""
        return len(self.seals) * SEGMENT_SIZE


def _walk(segments: dict[int, tuple[str, bytes | None]], files: dict[int, bytes | None], strays: list[str],
          head: tuple[int, str] | None,
          parsed: dict[int, tuple[list[bytes], Any]] | None = None) -> tuple[list[dict[str, Any]], VerifyResult]:
    """Check the log (pure): from entry 1, each segment of `segments` (first seq -> key, bytes) in place of its
    entries, every other entry from `files` (seq -> bytes, None when missing; the entry files of sealed entries
    are compared with their segments apart: `_settle`). `head`: (seq, hash), None when unreadable. `parsed`: first
    seq -> `parse_segment` of its bytes, for the segments already parsed."""
    parsed = parsed or {}
    entries: list[dict[str, Any]] = []
    seals: list[dict[str, Any]] = []
    prev_hash, seq = GENESIS_HASH, 1

    def bad(at: int, reason: str) -> tuple[list[dict[str, Any]], VerifyResult]:
        return entries, VerifyResult(False, len(entries), at, reason, tuple(seals))

    if strays:
        return bad(1, f"unexpected object {strays[0]} among the audit entries")
    while True:
        if seq in segments:
            key, raw = segments.pop(seq)
            checked = (check_segment(raw, seq, prev_hash, parsed.get(seq)) if raw is not None
                       else "it vanished while verifying")
            if isinstance(checked, str):
                return bad(seq, f"sealed segment {key}: {checked}")
            entries += checked.entries
            seals.append(checked.seal)
            prev_hash, seq = checked.seal["last_hash"], seq + SEGMENT_SIZE
            continue
        if seq not in files:
            break
        raw = files.pop(seq)
        if raw is None:
            break
        entry = _parse(raw)
        why = check_entry(seq, raw, entry, prev_hash)
        if why:
            return bad(seq, why)
        entries.append(entry)
        prev_hash, seq = entry["hash"], seq + 1
    count = seq - 1
    later = sorted([*(s for s, raw in files.items() if raw is not None), *segments])
    if later:
        return bad(seq, f"entry {seq} is missing (next found: {later[0]})")
    if head is None:
        return bad(count or 1, f"audit head {HEAD_KEY} is unreadable")
    head_seq, head_hash = head
    if head_seq > count:
        return bad(count + 1, f"entry {count + 1} is missing (the head says the log has {head_seq} entries)")
    if head_seq and entries[head_seq - 1].get("hash") != head_hash:
        return bad(head_seq, f"the audit head does not match entry {head_seq}")
    # head_seq < count is the crash window (entries created, head not yet advanced): they chain, so they count.
    return entries, VerifyResult(True, count, seals=tuple(seals))


def _settle(entries: list[dict[str, Any]], walked: VerifyResult, mismatched: Mapping[int, tuple[int, bool]],
            keys: Mapping[int, str]) -> tuple[list[dict[str, Any]], VerifyResult]:
    """The log's verdict once the entry files of the sealed segments are compared with them (pure): `walked` (the
    chain as `_walk` found it) unless a segment it walked (its seal in `walked.seals`) has an entry file that is
    missing or not its line (`mismatched`: first seq -> (that entry, missing?); `keys`: first seq -> segment key).
    The walk would have stopped at the first such entry, before anything after it, so that is the finding."""
    walked_firsts = {seal["first"] for seal in walked.seals}
    bad = sorted(first for first in mismatched if first in walked_firsts)
    if not bad:
        return entries, walked
    first = bad[0]
    at, missing = mismatched[first]
    what = "is missing" if missing else "differs from its sealed copy (modified)"
    return entries[:first - 1], VerifyResult(False, first - 1, at, f"entry {at} {what} (sealed in {keys[first]})",
                                             tuple(seal for seal in walked.seals if seal["first"] < first))


class LogRead:
    """The audit log being read (`open_log`): `entries` and `result`, the chain as walked, are there at once;
    `finish()` returns the final verdict, once the entry files of sealed segments are compared with them (on the
    local store a forked child reads them meanwhile: see tfreview.store.entryfiles). Use it in a `with` block."""

    def __init__(self, entries: list[dict[str, Any]], result: VerifyResult, child: Any, keys: Mapping[int, str],
                 settle: Callable[[], Mapping[int, tuple[int, bool]]] | None = None, shares: Any = None) -> None:
        self.entries, self.result = entries, result
        self._child, self._keys, self._settle, self._shares = child, keys, settle, shares
        self._final: tuple[list[dict[str, Any]], VerifyResult] | None = None
        self._collecting = False

    def finish(self) -> VerifyResult:
        """Whether the log holds, every check done (`result`, or the first sealed entry file that differs)."""
        return self.final()[1]

    def final(self) -> tuple[list[dict[str, Any]], VerifyResult]:
        """(entries, verdict) as `read_log` returns them. The sealed entry files the child has not compared yet are
        compared here meanwhile (tfreview.store.entryfiles.Shares)."""
        if self._final is None:
            mismatched = self._settle() if self._settle is not None else {}
            self._final = _settle(self.entries, self.result, mismatched, self._keys)
            self.close()
        return self._final

    def close(self) -> None:
        if self._child is not None:
            self._child.close()
            self._child = None
        if self._shares is not None:
            self._shares.close()
            self._shares = None

    def __enter__(self) -> "LogRead":
        self._collecting = gc.isenabled()  # none inside the block either: its checks walk the 10^5 entries again
        gc.disable()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        if self._collecting:
            gc.enable()


def read_log(store: Store, *, full: bool = False) -> tuple[list[dict[str, Any]], VerifyResult]:
    """Every entry of the log in seq order, and whether the chain holds (`VerifyResult`), each object read once.

    Sealed segments are read in place of their entries (one read per 1,000 entries). Their entry files are
    compared with them byte for byte where reads are cheap (the local store) or when `full`; on S3, where each
    read is a round trip, they are not read (entry objects there are create-only and never deleted, by the
    bucket policy of docs/s3-store.md). Everything after the last segment, or not sealed, is checked entry by
    entry (canonical bytes, own hash, seq, chain)."""
    with open_log(store, full=full) as log:
        return log.final()


@contextmanager
def _no_collection() -> Iterator[None]:
    """No cyclic garbage collection inside: parsing 10^5 entries creates 10^5 dicts, none in a cycle, and the
    collector would walk the growing heap again and again (half the time of the parse)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def open_log(store: Store, *, full: bool = False) -> LogRead:
    """`read_log`, the comparison of the sealed entry files still running (`LogRead`): what needs only the
    entries (signatures, policy, records) can be checked meanwhile."""
    from tfreview.store import entryfiles

    named: dict[int, str] = {}
    strays: list[str] = []
    for key in store.list(SEGMENTS_PREFIX):
        if first := _segment_name(key):
            named[first] = key
        else:
            strays.append(key)
    segments = dict(zip(named, zip(named.values(), read_many(store, list(named.values())), strict=True),
                        strict=True))
    compare = full or store.read_workers <= 1
    files: dict[int, bytes | None] = {}
    parsed: dict[int, tuple[list[bytes], Any]] = {}
    child = shares = None
    settle: Callable[[], Mapping[int, tuple[int, bool]]] | None = None
    try:
        if compare or not named:  # every entry file, listed and read in one pass where the store can (local)
            # The segments' bytes as read (`_walk` pops `segments`; the work may run here after it, when the child dies).
            raws = {first: raw for first, (_key, raw) in segments.items() if raw is not None}
            shares = shared = entryfiles.Shares(list(raws))
            read_in = getattr(store, "read_in", None)  # the local store's: one folder, no path per file

            def read_sealed(names: list[str]) -> list[bytes | None]:
                return read_in(ENTRIES_PREFIX, names) if read_in is not None else read_many(
                    store, [ENTRIES_PREFIX + name for name in names])

            def entry_files() -> Iterator[Any]:
                names = entryfiles.sealed_names({first: entryfiles.line_count(raw) for first, raw in raws.items()})
                besides = getattr(store, "keys_besides", None)  # the local store's: one listing, one set difference
                listed = besides(ENTRIES_PREFIX, set(names)) if besides is not None else store.list(ENTRIES_PREFIX)
                unsealed, others = entryfiles.others(listed, ENTRIES_PREFIX, set(names))
                del names
                keys = [key for _seq, key in unsealed]  # all of them in a log not sealed
                read_keys = getattr(store, "read_keys", None)  # the local store's: one pass, no path per file
                yield entryfiles.Unsealed(dict(zip([seq for seq, _key in unsealed], read_keys(keys) if read_keys
                                                   is not None else read_many(store, keys), strict=True)), others)
                yield entryfiles.compare(shared.take(), lambda first: entryfiles.segment_lines(raws[first]),
                                         read_sealed)

            # Reading 10^5 entry files is the other half of the work: on the local store a forked child does it on
            # the other CPU while this process parses the segments and, after `open_log` returns, checks signatures,
            # policy and records, then joins in (`Shares`: the groups of segments the child has not taken yet).
            # Not on S3, where a client's sockets must not be shared, nor without segments, where this process
            # needs every file's bytes anyway.
            child = entryfiles.Child(entry_files, fork=bool(named) and store.read_workers <= 1)
            with _no_collection():
                parsed = {first: parse_segment(raw) for first, raw in raws.items()}
            found = child.next()
            files = found.files
            strays += found.strays
            settle = partial(shared.settle, child, lambda first: parsed[first][0], read_sealed)
        else:  # entries of the segments not sealed below the last one, then all after it
            top = max(named) + SEGMENT_SIZE - 1  # the last sealed seq
            gaps = [entry_key(seq) for first in range(1, top + 1, SEGMENT_SIZE) if first not in named
                    for seq in range(first, first + SEGMENT_SIZE)]
            seq_of: dict[str, int] = {}
            for key in gaps + store.list(ENTRIES_PREFIX, start_after=entry_key(top)):
                if m := _ENTRY_NAME.match(key):
                    seq_of[key] = int(m.group(1))
                else:
                    strays.append(key)
            wanted = list(seq_of)  # no entry of a sealed segment
            files = {seq_of[key]: raw for key, raw in zip(wanted, read_many(store, wanted), strict=True)}
        try:
            head: tuple[int, str] | None = read_head(store)[:2]
        except StoreError:
            head = None
        with _no_collection():  # the entries no segment holds are parsed here, one by one
            entries, result = _walk(segments, files, strays, head, parsed)
    except BaseException:
        if child is not None:
            child.close()
        if shares is not None:
            shares.close()
        raise
    return LogRead(entries, result, child, named, settle, shares)


def verify_chain(store: Store) -> VerifyResult:
    """Check every audit entry: canonical bytes, own hash, seq matching its key, contiguous seqs from 1,
    prev_hash chaining to the entry before, and the head pointing at an entry of the chain (see `read_log`)."""
    return read_log(store)[1]


# -- sealing (the trust layer signs: tfreview.trust.verify.seal_log) ---------------------------------------------
def unsealed_segments(store: Store) -> list[int]:
    """First seqs of the complete segments (all SEGMENT_SIZE entries written, by the head) not sealed yet."""
    head = read_head(store)[0]
    sealed = {_segment_name(key) for key in store.list(SEGMENTS_PREFIX)}
    return [first for first in range(1, head - SEGMENT_SIZE + 2, SEGMENT_SIZE) if first not in sealed]


def segment_to_seal(store: Store, first: int) -> tuple[bytes, list[dict[str, Any]], str]:
    """(body, entries, prev_hash) of the segment starting at `first`, read from the entry files and checked as
    `verify_chain` checks them; StoreError naming the first that is not right."""
    keys = [entry_key(seq) for seq in range(max(first - 1, 1), first + SEGMENT_SIZE)]
    raws = read_many(store, keys)
    if first > 1:
        before = _parse(raws.pop(0) or b"")
        prev_hash = before.get("hash") if isinstance(before, dict) else None
    else:
        prev_hash = GENESIS_HASH
    hint = "run `tfreview audit verify` and investigate"
    if not isinstance(prev_hash, str):
        raise StoreError(f"audit entry {first - 1} is missing or unreadable: segment {first} is not sealed", hint)
    entries: list[dict[str, Any]] = []
    chain = prev_hash
    for seq, raw in enumerate(raws, start=first):
        entry = _parse(raw) if raw is not None else None
        why = check_entry(seq, raw, entry, chain) if raw is not None else f"entry {seq} is missing"
        if why or not isinstance(entry, dict):
            raise StoreError(f"{why}: segment {first} is not sealed", hint)
        entries.append(entry)
        chain = entry["hash"]
    return b"".join(raw for raw in raws if raw is not None), entries, prev_hash


def store_segment(store: Store, seal: dict[str, Any], body: bytes) -> bool:
    """Write the sealed segment (seal line, then the entries' bytes), create-only; False if it exists already."""
    try:
        store.create(segment_key(int(seal["first"])), dumps(seal) + body)
    except Conflict:
        return False
    return True
