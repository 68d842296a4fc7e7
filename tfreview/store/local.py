"""The local store: a directory (default `.tfreview/`). Atomic writes by temp file + rename (create: + link)."""
from __future__ import annotations

import bisect
import fcntl
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tfreview.errors import BadInput, Conflict, NotFound, StoreError
from tfreview.store.base import key_parts


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_at(folder: int, name: str, key: str) -> bytes | None:
    """The bytes of file `name` in the open folder `folder` (None: it is gone)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=folder)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise StoreError(f"store object {key} is a folder", "the store was modified outside tfreview: restore "
                         "that folder from a backup") from None
    try:
        data = os.read(fd, _CHUNK)
        if len(data) == _CHUNK:  # a big file: the rest of it
            parts = [data]
            while part := os.read(fd, _CHUNK):
                parts.append(part)
            data = b"".join(parts)
        return data
    finally:
        os.close(fd)


_CHUNK = 1 << 16


class LocalStore:
    read_workers = 1  # a disk read costs microseconds: threads would only add overhead

    def __init__(self, root: str | os.PathLike[str]) -> None:
        # Absolute once, here: terraform runs in a temporary working directory, so a relative store path would
        # put the local state beside that directory and lose it when the directory is removed.
        self.root = Path(os.path.abspath(Path(root).expanduser()))
        self.url = str(self.root)
        hint = "point --store / TFREVIEW_STORE at the store's directory (or a new one)"
        try:
            unusable = self.root.exists() and not self.root.is_dir()
        except OSError as exc:  # a name too long, a loop of links...
            raise BadInput(f"cannot use store {self.url}: {exc.strerror}", hint) from None
        if unusable:  # never "no plans yet" for a store we cannot read
            raise BadInput(f"store {self.url} is not a directory", hint)

    # -- paths -----------------------------------------------------------------------------------------------
    def path(self, key: str) -> Path:
        """Filesystem path of `key` (local store only: terraform's local state lives here)."""
        return self.root.joinpath(*key_parts(key))

    def _tmp(self, target: Path, data: bytes, private: bool) -> str:
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600 if private else 0o644)
            if private:  # owner-only all the way down from the store root (mkdir's mode misses parents)
                for directory in target.relative_to(self.root).parents[:-1]:
                    os.chmod(self.root / directory, 0o700)
            return tmp
        except OSError as exc:
            raise StoreError(f"cannot write {target}: {exc.strerror}", "check the store directory's permissions") from exc

    @contextmanager
    def _locked(self, target: Path) -> Iterator[None]:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(target.parent / f".{target.name}.lock", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- protocol --------------------------------------------------------------------------------------------
    def read(self, key: str) -> bytes:
        p = self.path(key)
        try:
            return p.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{key} not found in store {self.url}",
                           "check --store / TFREVIEW_STORE, or restore the store from a backup") from None
        except OSError as exc:
            raise StoreError(f"cannot read {p}: {exc.strerror}", "check the store directory's permissions") from exc

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        data = self.read(key)
        return data, _etag(data)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def create(self, key: str, data: bytes, *, private: bool = False) -> str:
        target = self.path(key)
        tmp = self._tmp(target, data, private)
        try:
            os.link(tmp, target)  # atomic create-only: fails if target exists
        except FileExistsError:
            raise Conflict(f"{key} already exists in the store",
                           "someone else wrote it first: run the command again to see the current state") from None
        finally:
            os.unlink(tmp)
        return _etag(data)

    def write(self, key: str, data: bytes, *, private: bool = False) -> str:
        target = self.path(key)
        os.replace(self._tmp(target, data, private), target)
        return _etag(data)

    def replace(self, key: str, data: bytes, etag: str, *, private: bool = False) -> str:
        target = self.path(key)
        with self._locked(target):
            try:
                current = _etag(target.read_bytes())
            except FileNotFoundError:
                current = None
            if current != etag:
                raise Conflict(f"{key} changed while we were updating it", "retry the command")
            os.replace(self._tmp(target, data, private), target)
        return _etag(data)

    def delete(self, key: str, etag: str | None = None) -> None:
        target = self.path(key)
        with self._locked(target):
            if etag is not None:
                try:
                    if _etag(target.read_bytes()) != etag:
                        raise Conflict(f"{key} changed while we were deleting it", "retry the command")
                except FileNotFoundError:
                    return
            target.unlink(missing_ok=True)

    def read_all(self, prefix: str) -> list[tuple[str, bytes | None]]:
        """(key, bytes) of every object `list(prefix)` names, sorted by key, in one pass over the folders: os.scandir
        and plain strings, each file read by one open relative to its folder (the audit log's 10^5 entry files cost
        no pathlib path nor buffered file each). None for a file removed between the listing and the read."""
        base = os.path.join(self.url, *key_parts(prefix, what="prefix"))
        if not os.path.exists(base):  # (as `list`)
            return []
        if not os.path.isdir(base):
            raise StoreError(f"store folder {base} is a file", "the store was modified outside tfreview: restore "
                             "that folder from a backup")
        found: list[tuple[str, int, str]] = []  # (key, folder's fd, name)
        folders: list[int] = []
        parts = key_parts(prefix, what="prefix")
        pending = [(base, "".join(f"{part}/" for part in parts))]
        try:
            while pending:
                folder, key_prefix = pending.pop()
                fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
                folders.append(fd)
                with os.scandir(folder) as listing:
                    for item in listing:
                        if item.name.startswith("."):
                            continue
                        if item.is_dir():  # as `list` (os.walk): a link to a folder is neither listed nor followed
                            if not item.is_symlink():
                                pending.append((item.path, f"{key_prefix}{item.name}/"))
                        else:
                            found.append((f"{key_prefix}{item.name}", fd, item.name))
            found.sort()
            return [(key, _read_at(fd, name, key)) for key, fd, name in found]
        except OSError as exc:
            raise StoreError(f"cannot read {exc.filename or base}: {exc.strerror}",
                             "check the store directory's permissions") from exc
        finally:
            for fd in folders:
                os.close(fd)

    def list(self, prefix: str, *, start_after: str = "") -> list[str]:
        base = self.root.joinpath(*[p for p in prefix.split("/") if p]) if prefix.strip("/") else self.root
        if not base.exists():
            return []
        if not base.is_dir():
            raise StoreError(f"store folder {base} is a file", "the store was modified outside tfreview: restore "
                             "that folder from a backup")

        def unreadable(exc: OSError) -> None:
            raise StoreError(f"cannot list {exc.filename}: {exc.strerror}", "check the store directory's permissions")

        out = []
        for dirpath, _dirs, files in os.walk(base, onerror=unreadable):
            for name in files:
                if name.startswith("."):
                    continue
                out.append(Path(dirpath, name).relative_to(self.root).as_posix())
        out.sort()
        return out[bisect.bisect_right(out, start_after):] if start_after else out
