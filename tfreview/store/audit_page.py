"""One page of the audit log, read without reading the whole log: `tfreview audit log --since T --limit N`.

Entries are numbered 1..head and written in time order, so the first entry at or after `since` is found by a
binary search over the numbers (about 17 reads for 100,000 entries), and a page reads forward from there until it
holds `limit` matching entries. Reading is not verifying: `tfreview audit verify` proves the chain.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tfreview.store.base import Store

CHUNK = 64  # entries read per round (in parallel on S3)


@dataclass(frozen=True)
class Page:
    """`entries` oldest first; `next_after` the seq to pass as `after` for the next page (None: no more)."""

    entries: list[dict[str, Any]]
    next_after: int | None


def first_at_or_after(store: Store, since: datetime, head: int) -> int:
    """The smallest seq in 1..head whose entry's time is at or after `since` (head + 1 when none is)."""
    from tfreview.store.audit import entry_time, load_entry

    lo, hi = 1, head + 1
    while lo < hi:
        mid = (lo + hi) // 2
        t = entry_time(load_entry(store, mid))
        if t is not None and t >= since:
            hi = mid
        else:
            lo = mid + 1
    return lo


def page(store: Store, *, since: datetime | None = None, after: int = 0, limit: int | None = None,
         **filters: Any) -> Page:
    """Entries with seq > `after`, at or after `since`, matching `filters` (those of `filter_entries`), at most
    `limit` of them, oldest first."""
    from tfreview.store.audit import filter_entries, load_entries, read_head

    head = read_head(store)[0]
    seq = max(after + 1, first_at_or_after(store, since, head) if since else 1)
    out: list[dict[str, Any]] = []
    while seq <= head:
        seqs = list(range(seq, min(head, seq + CHUNK - 1) + 1))
        batch = [e for e in load_entries(store, seqs) if e]
        for entry in filter_entries(batch, since=since, **filters):
            out.append(entry)
            if limit is not None and len(out) >= limit:
                more = int(entry["seq"]) < head
                return Page(out, int(entry["seq"]) if more else None)
        seq = seqs[-1] + 1
    return Page(out, None)
