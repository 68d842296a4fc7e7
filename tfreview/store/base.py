"""The Store protocol: a small object store with create-only and compare-and-swap writes.

Keys are '/'-separated relative paths ("plans/<id>/record.json"). Every write is atomic: a reader sees the old
object or the new one, never half of one. `create` fails if the key exists (S3: If-None-Match: *); `replace`
fails unless the object still has the etag the caller read (S3: If-Match), so two writers cannot lose each
other's update.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Protocol

import json

from tfreview import jsontext
from tfreview.errors import Conflict, NotFound, StoreError


class Store(Protocol):
    url: str
    read_workers: int  # reads worth running at once: 1 on a local disk, more where each read is a round trip

    def read(self, key: str) -> bytes:
        """Bytes of `key`; raises NotFound."""

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        """(bytes, etag) of `key`; raises NotFound."""

    def exists(self, key: str) -> bool: ...

    def create(self, key: str, data: bytes, *, private: bool = False) -> str:
        """Write `key` only if it does not exist; returns the etag; raises Conflict if it exists.
        `private`: the object holds secrets (plan binaries, state): owner-only / encrypted."""

    def write(self, key: str, data: bytes, *, private: bool = False) -> str:
        """Write or overwrite `key` atomically; returns the etag."""

    def replace(self, key: str, data: bytes, etag: str, *, private: bool = False) -> str:
        """Overwrite `key` only if its current etag is `etag`; returns the new etag; raises Conflict otherwise."""

    def delete(self, key: str, etag: str | None = None) -> None:
        """Delete `key` (only if its etag is `etag`, when given); missing keys are ignored."""

    def list(self, prefix: str, *, start_after: str = "") -> list[str]:
        """All keys under `prefix` (recursive), sorted; only those after `start_after` when given."""


def key_parts(key: str, *, what: str = "key") -> list[str]:
    """The names of store key `key` ('/'-separated, empty names dropped); StoreError if one is '.' or '..', or
    (for a key, not a prefix: `what="prefix"`) if there is none."""
    parts = [p for p in key.split("/") if p]
    if (what == "key" and not parts) or any(p in (".", "..") for p in parts):
        raise StoreError(f"invalid store {what} {key!r}",
                         "names in store keys are letters, digits, '.', '_' and '-', never '..'")
    return parts


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, UTF-8, no insignificant whitespace (what statements sign)."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def dumps(obj: Any) -> bytes:
    """Canonical JSON bytes, newline-terminated (stable hashes across machines)."""
    return canonical(obj) + b"\n"


def put_json(store: Store, key: str, obj: Any, *, create: bool = True) -> str:
    data = dumps(obj)
    return store.create(key, data) if create else store.write(key, data)


def update_json(store: Store, key: str, change: Callable[[Any], Any], attempts: int = 20) -> bool:
    """Compare-and-swap update of the JSON record `key`: `change(current or None)` returns the new document, or
    None when nothing needs to change. Retried when another writer got in first; True if this call wrote."""
    for _ in range(attempts):
        try:
            raw, etag = store.read_versioned(key)
            current: Any = jsontext.loads_std(raw)
        except NotFound:
            raw, etag, current = b"", None, None
        except ValueError:
            raise StoreError(f"store record {key} is not valid JSON",
                             "the store was modified outside tfreview: restore that file from a backup") from None
        new = change(current)
        if new is None:
            return False
        try:
            if etag is None:
                store.create(key, dumps(new))
            else:
                store.replace(key, dumps(new), etag)
            return True
        except Conflict:
            continue
    raise StoreError(f"could not update {key}: too many concurrent writers", "retry the command")


def get_json(store: Store, key: str) -> Any:
    return parse_json(key, store.read(key))


def get_jsons(store: Store, keys: list[str]) -> Iterator[tuple[str, Any]]:
    """(key, `get_json`) of each of `keys`, in order, read `store.read_workers` at a time (256 held at most)."""
    for start in range(0, len(keys), 256):
        chunk = keys[start:start + 256]
        for key, data in zip(chunk, read_many(store, chunk), strict=True):
            yield key, get_json(store, key) if data is None else parse_json(key, data)  # gone: get_json's NotFound


def parse_json(key: str, data: bytes) -> Any:
    """The JSON of store record `key`; StoreError naming it when it is not JSON."""
    try:
        return jsontext.loads_std(data)
    except ValueError:  # UnicodeDecodeError and too deep included
        raise StoreError(f"store record {key} is not valid JSON",
                         "the store was modified outside tfreview: restore that file from a backup") from None


def read_many(store: Store, keys: list[str]) -> list[bytes | None]:
    """The bytes of each of `keys` (None for one that does not exist), in order, `store.read_workers` at a time."""

    def read(key: str) -> bytes | None:
        try:
            return store.read(key)
        except NotFound:
            return None

    return each_read(store, read, keys)


def read_all(store: Store, prefix: str) -> list[tuple[str, bytes | None]]:
    """(key, bytes) of every object under `prefix`, sorted by key (None: removed between the listing and the read):
    the store's own one-pass read where it has one (the local store), else `list` then `read_many`."""
    bulk = getattr(store, "read_all", None)
    if bulk is not None:
        return bulk(prefix)
    keys = store.list(prefix)
    return list(zip(keys, read_many(store, keys), strict=True))


def each_read(store: Store, read: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """`read(item)` for each of `items`, in order, `store.read_workers` at a time (on S3 each read is a round trip;
    on a disk threads would only add overhead)."""
    items = list(items)
    if store.read_workers <= 1 or len(items) <= 1:
        return [read(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=store.read_workers, thread_name_prefix="store-read") as pool:
        return list(pool.map(read, items))
