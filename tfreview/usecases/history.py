"""`tfreview history`: plans, approvals and outcomes, newest first, answered from an index kept in the store.

The records (plans/, approvals/, applies/, rollouts/) stay the source of truth; the index is a cache of one row per
plan that a reader can rebuild from them at any time. Layout:

    index/history/<to_seq:012d>-full.jsonl    every row, as of audit entry `to_seq`
    index/history/<to_seq:012d>-delta.jsonl   the rows of the plans touched by audit entries after the previous
                                              segment, up to `to_seq`

Each segment is created once (create-only) and never changed: the index only grows. Its first line is a header
`{"index": 1, "to_seq": N, "to_hash": H}`, the audit entry it is current with. Every record tfreview writes is
followed by an audit entry naming its plan, so the audit log says what changed since a segment: a reader whose
newest segment is behind the audit head re-reads only the plans named by the newer entries and appends a delta.
A missing or unreadable index, or one that the audit log no longer matches (entry `to_seq` has another hash, or
the head is behind it), is rebuilt from the records with a full segment. After `COMPACT_AFTER` deltas the next
catch-up writes a full segment, so reads stay one big file and a few small ones.

A row is one line: the fields queries filter and sort on, tab-separated (created_at, id, release_id, app, env,
version, the people involved), then the row as JSON (no sensitive values: the records hold none). A query splits
lines and compares those fields as bytes, and decodes the JSON of the rows it returns only: 100,000 rows are
filtered without building 100,000 dicts. The live part of a row (whether an apply that has no outcome yet is still
running) is computed when the row is shown, never stored.
"""
from __future__ import annotations

import heapq
import re
from operator import itemgetter
from typing import Any, Iterable, NamedTuple

import orjson

from tfreview.errors import Conflict, NotFound, StoreError, TfreviewError
from tfreview import jsontext
from tfreview.store.base import Store, get_json

INDEX_PREFIX = "index/history/"
INDEX_VERSION = 2
COMPACT_AFTER = 32  # delta segments before the next catch-up writes a full one
_SEGMENT = re.compile(r"^index/history/(\d{12})-(full|delta)\.jsonl$")


# -- one row per plan (from the records) ------------------------------------------------------------------------
_ROW_FIELDS = {"id": str, "app": str, "env": str, "version": str, "created_at": str}  # what a history row needs
UNREADABLE = "?"  # the app of a row whose records are damaged (no app is named "?")


def plan_row(store: Store, plan_id: str) -> dict[str, Any] | None:
    """The history row of `plan_id` read from its records (None when the plan record is missing). A damaged record
    (an older or interrupted run's, or an edited one) gives an `unreadable` row naming it: it never hides the rest."""
    key = f"plans/{plan_id}/record.json"
    try:
        return _plan_row(store, plan_id, key)
    except NotFound:
        return None
    except (StoreError, KeyError, TypeError, ValueError, AttributeError) as exc:
        return {"id": plan_id, "app": UNREADABLE, "env": UNREADABLE, "version": UNREADABLE, "kind": UNREADABLE,
                "release_id": None, "created_at": "", "planner": UNREADABLE, "summary": None, "approvals": [],
                "applied_by": None, "break_glass": None, "outcome": "unreadable", "release": None,
                "error": exc.message if isinstance(exc, StoreError) else f"store record {key} is damaged"}


def _blocked(rec: dict[str, Any]) -> bool:
    from tfreview.review.checks import is_blocked

    return is_blocked(rec)


def _plan_row(store: Store, plan_id: str, key: str) -> dict[str, Any]:
    from tfreview.review.policy import parse_time
    from tfreview.usecases.records import approvals_of, checked_json

    rec = checked_json(store, key, _ROW_FIELDS)
    parse_time(rec["created_at"])  # ValueError: a record whose date cannot be read is listed as damaged
    decisions = [a.to_dict() for a in approvals_of(store, plan_id)]
    start = result = release = None
    try:  # an apply writes start.json first, result.json when it ends
        start = get_json(store, f"applies/{plan_id}/start.json")
        result = get_json(store, f"applies/{plan_id}/result.json")
    except NotFound:
        pass
    if rec.get("plan_kind", "deploy") == "deploy" and start is not None:
        try:
            release = get_json(store, f"rollouts/{rec['app']}/{rec['env']}/{plan_id}.json")
        except NotFound:
            pass
    if start is None:
        outcome = "planned"
    else:  # no result yet: running or interrupted, decided when shown; a result without outcome: interrupted
        outcome = "no-outcome" if result is None else (result.get("outcome") or "interrupted")
    return {"id": rec["id"], "app": rec["app"], "env": rec["env"], "version": shown_version(rec),
            "kind": rec.get("plan_kind", "deploy"), "release_id": rec.get("release_id"),
            "created_at": rec["created_at"], "planner": rec.get("planner", UNREADABLE),
            "summary": (rec.get("summary") or {}).get("summary_line"),
            "approvals": [{"by": d["approver"], "kind": d["kind"], "at": d["approved_at"], "comment": d["comment"]}
                          for d in decisions],
            "applied_by": start.get("by") if start else None, "break_glass": (start or {}).get("break_glass"),
            "policy_blocked": _blocked(rec), "outcome": outcome,
            "release": None if release is None else {"outcome": release.get("outcome"),
                                                     "reason": release.get("reason") or "",
                                                     "finished_at": release.get("finished_at"),
                                                     "alarm": release.get("alarm"),
                                                     "stopped_tasks": release.get("stopped_tasks") or []}}


def shown_version(rec: dict[str, Any]) -> str:
    """The version a history row shows: a rollback's is the version it rolled back to (the one then serving all
    traffic), not the package it was planned with; any other plan's is its own."""
    if rec.get("plan_kind") == "rollback" and isinstance(rec.get("release_vars"), dict):
        from tfreview.plan.roles import Roles
        from tfreview.rollout.traffic import traffic_state

        try:
            state = traffic_state(rec["release_vars"], Roles.from_dict(rec.get("roles")))
        except (TfreviewError, TypeError, ValueError):  # a record we cannot read so: its own version
            return str(rec["version"])
        back_to = state.versions.get(state.live_color)
        if back_to:
            return str(back_to)
    return str(rec["version"])


def _all_plan_ids(store: Store) -> list[str]:
    return [k.split("/")[1] for k in store.list("plans/") if k.endswith("/record.json")]


# -- the index --------------------------------------------------------------------------------------------------
def _segments(store: Store) -> list[tuple[int, str, str]]:
    """(to_seq, kind, key) of the segments to read, oldest first: the newest full one and the deltas after it."""
    found = sorted((int(m.group(1)), m.group(2), k) for k in store.list(INDEX_PREFIX) if (m := _SEGMENT.match(k)))
    fulls = [i for i, (_s, kind, _k) in enumerate(found) if kind == "full"]
    return found[fulls[-1]:] if fulls else []


# An index row as stored: the fields queries use, as bytes, then the row's JSON (decode it with `row`). A plain list
# from one bytes.split: 100,000 of them are filtered and sorted without a Python call per row.
CREATED, ID, RELEASE, APP, ENV, VERSION, PEOPLE, RAW = range(8)
IndexRow = list


def row(entry: IndexRow) -> dict[str, Any]:
    """The history row (a dict) of an index row."""
    return jsontext.loads(entry[RAW])


def _field(text: Any) -> str:
    return str(text or "").replace("\t", " ").replace("\n", " ")


def _line(row: dict[str, Any]) -> bytes:
    people = [row["planner"], *(a["by"] for a in row["approvals"]), row.get("applied_by") or ""]
    fields = [row["created_at"], row["id"], row.get("release_id"), row["app"], row["env"], row["version"],
              ",".join(_field(p).replace(",", " ") for p in people if p)]
    return "\t".join(_field(f) for f in fields).encode() + b"\t" + orjson.dumps(row)


def _parse_line(line: bytes) -> IndexRow:
    return line.split(b"\t", 7)


def _read_segment(store: Store, key: str) -> tuple[dict[str, Any], list[IndexRow]]:
    lines = store.read(key).split(b"\n")
    header = jsontext.loads(lines[0])
    if header.get("index") != INDEX_VERSION:
        raise ValueError("another index version")
    rows = [_parse_line(line) for line in lines[1:] if line]
    if any(len(r) != 8 for r in rows):
        raise ValueError("a row without its fields")
    return header, rows


def _write_segment(store: Store, kind: str, to_seq: int, to_hash: str, lines: Iterable[bytes]) -> None:
    body = [orjson.dumps({"index": INDEX_VERSION, "to_seq": to_seq, "to_hash": to_hash}), *lines]
    try:
        store.create(f"{INDEX_PREFIX}{to_seq:012d}-{kind}.jsonl", b"\n".join(body) + b"\n")
    except Conflict:
        pass  # another reader wrote the same segment from the same records
    except StoreError:
        pass  # a read-only reader (an auditor's role): the answer is right, the next writer's reader keeps it


def load_rows(store: Store, *, rebuild: bool = False) -> dict[bytes, IndexRow]:
    """Plan id (bytes) -> index row, from the index, brought up to date with the audit log first (see the module doc)."""
    from tfreview.store.audit import entry_hash_at, plans_named, read_head

    rows: dict[bytes, IndexRow] = {}
    segments = [] if rebuild else _segments(store)
    header: dict[str, Any] | None = None
    try:
        for _seq, _kind, key in segments:
            header, part = _read_segment(store, key)
            rows.update((r[ID], r) for r in part)
    except (ValueError, KeyError, IndexError, NotFound, StoreError):
        header, rows = None, {}
    head = read_head(store)[0]
    covered = int(header["to_seq"]) if header else 0
    if header is None or covered > head or entry_hash_at(store, covered) != header.get("to_hash"):
        return _rebuild(store, head)
    if covered == head:
        return rows
    touched, last_hash = plans_named(store, covered + 1, head)  # plan id -> time of its newest entry
    fresh = []
    pending = False
    for pid in sorted(touched):
        found = plan_row(store, pid)
        if found is not None:
            fresh.append(_line(found))
        else:  # the plan's audit entry is written before its record: a plan being made now has none yet
            pending = pending or _recent(touched[pid])
    rows.update((r[ID], r) for r in map(_parse_line, fresh))
    if pending:
        return rows  # nothing written: the next reader catches up from here again and finds the record
    if len(segments) > COMPACT_AFTER:
        _write_segment(store, "full", head, last_hash, (b"\t".join(r) for r in rows.values()))
    else:
        _write_segment(store, "delta", head, last_hash, fresh)
    return rows


PENDING_S = 600  # a plan entry this recent whose record is missing yet: its command is still writing it


def _recent(at: str) -> bool:
    from datetime import datetime, timezone

    try:
        return (datetime.now(timezone.utc) - datetime.fromisoformat(at.replace("Z", "+00:00"))).total_seconds() < PENDING_S
    except ValueError:
        return False


def _rebuild(store: Store, head: int) -> dict[bytes, IndexRow]:
    from tfreview.store.audit import entry_hash_at

    lines = [_line(found) for pid in _all_plan_ids(store) if (found := plan_row(store, pid)) is not None]
    _write_segment(store, "full", head, entry_hash_at(store, head) or "", lines)
    return {r[ID]: r for r in map(_parse_line, lines)}


# -- the query --------------------------------------------------------------------------------------------------
def _live_outcome(store: Store, row: dict[str, Any]) -> str:
    """An apply indexed without an outcome: the outcome recorded since (its audit entry comes first, the result
    right after), else `applying` while its holder still has the lock, else `interrupted`."""
    if row["outcome"] != "no-outcome":
        return row["outcome"]
    from tfreview.store.locks import holder_alive, read_lock

    try:
        return get_json(store, f"applies/{row['id']}/result.json").get("outcome") or "interrupted"
    except NotFound:
        pass

    lock = read_lock(store, row["app"], row["env"])
    running = lock is not None and lock.plan_id == row["id"] and holder_alive(lock) is not False
    return "applying" if running else "interrupted"


class Page(NamedTuple):
    """`rows` of one page; `unfinished`: ids of the plans of that app/env (all pages) whose apply has no outcome."""

    rows: list[dict[str, Any]]
    unfinished: list[str]


def history(store: Store, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """The rows of `query` (same arguments)."""
    return query(store, *args, **kwargs).rows


def query(store: Store, app: str | None = None, env: str | None = None, version: str | None = None,
          person: str | None = None, since: str | None = None, until: str | None = None, *,
          limit: int | None = None, offset: int = 0, releases: bool = False, release: str | None = None,
          rebuild: bool = False) -> Page:
    """Plans with their approvals and apply outcome, newest first, filtered, then `offset` rows skipped and at most
    `limit` returned. `person` matches the planner, an approver or the applier (case-insensitive); `since`/`until`
    bound the plan's creation time (dates inclusive). `releases`: one row per release (a deploy and the traffic
    plans it made are one release: those rows go under the deploy's `steps`) and per plan made alone; `release`:
    only that release's deploy row with its steps."""
    from tfreview.text import iso
    from tfreview.text import check_names
    from tfreview.usecases.records import time_bound

    check_names(app=app, env=env, version=version, person=person)
    lo, hi = time_bound(since), time_bound(until, end=True)
    # Fields compare as bytes; times as text: every created_at is written by clock.iso (UTC, seconds, "Z").
    lo_b, hi_b = (iso(lo).encode() if lo else None), (iso(hi).encode() if hi else None)
    want = {APP: app, ENV: env, VERSION: version}
    want_b = [(i, v.encode()) for i, v in want.items() if v]
    all_rows = load_rows(store, rebuild=rebuild)
    rel = release.encode() if release is not None else None
    if rel is not None and rel not in all_rows:
        raise NotFound(f"no release {release!r} in store {store.url}", "list releases with: tfreview history")
    picked = []
    for r in all_rows.values():
        if rel is not None and rel != r[ID] and rel != r[RELEASE]:
            continue
        if r[APP] == b"?":  # damaged records: listed (and named) unless a filter they cannot be checked against
            if not (version or person or lo_b or hi_b or rel is not None
                    or (app and not r[ID].startswith(f"{app}-".encode()))
                    or (env and f"-{env}-".encode() not in r[ID])):
                picked.append(r)
            continue
        if want_b and any(r[i] != v for i, v in want_b):
            continue
        if (lo_b and r[CREATED] < lo_b) or (hi_b and r[CREATED] > hi_b):
            continue
        if person and not any(person.casefold() == p.casefold()  # a search, not an identity check
                              for p in r[PEOPLE].decode().split(",") if p):
            continue
        picked.append(r)
    newest_first = itemgetter(CREATED, ID)
    steps: dict[bytes, list[IndexRow]] = {}
    grouped = releases or release is not None
    if grouped:
        heads = {r[ID] for r in picked}
        for r in picked:
            if r[RELEASE] and r[RELEASE] in heads:
                steps.setdefault(r[RELEASE], []).append(r)
        picked = [r for r in picked if not (r[RELEASE] and r[RELEASE] in heads)]
    if limit is None:
        page = sorted(picked, key=newest_first, reverse=True)[offset:]
    else:  # the newest offset + limit rows only: no full sort of 100,000 rows for one page
        page = heapq.nlargest(offset + limit, picked, key=newest_first)[offset:]
    out = []
    for r in page:
        shown = _shown(store, row(r), app, env)
        if grouped:
            shown["steps"] = [_shown(store, row(s)) for s in sorted(steps.get(r[ID], []), key=newest_first)]
        out.append(shown)
    unfinished = [r[ID].decode() for r in all_rows.values() if b'"outcome":"no-outcome"' in r[RAW]
                  and (not app or r[APP] == app.encode()) and (not env or r[ENV] == env.encode())]
    return Page(out, unfinished)


def _shown(store: Store, row: dict[str, Any], app: str | None = None, env: str | None = None) -> dict[str, Any]:
    if row["outcome"] == "unreadable":
        return {**row, "app": app or UNREADABLE, "env": env or UNREADABLE}
    return {**row, "outcome": _live_outcome(store, row)}
