"""The local store: a directory (default `.tfreview/`). Atomic writes by temp file + rename (create: + link)."""
from __future__ import annotations

import bisect
import fcntl
import hashlib
import os
import tempfile
from operator import itemgetter
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
        return data if len(data) < _CHUNK else data + _read_rest(fd)
    finally:
        os.close(fd)


def _read_rest(fd: int) -> bytes:
    """The rest of the open file `fd` (a file bigger than one read)."""
    parts = []
    while part := os.read(fd, 1 << 20):
        parts.append(part)
    return b"".join(parts)


_CHUNK = 1 << 14  # an audit entry is under 1 KiB; a first read this big takes most files whole


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

    def _scan(self, prefix: str) -> list[tuple[str, str, str]]:
        """(key, folder, name) of every object under `prefix`, unsorted: os.scandir and plain strings (listing the
        audit log's 10^5 entry files builds no pathlib path each). Names starting with '.' (temporary files, locks)
        are not objects; a link to a folder is neither listed nor followed (as os.walk)."""
        parts = [p for p in prefix.split("/") if p]
        base = os.path.join(self.url, *parts)
        if not os.path.exists(base):
            return []
        if not os.path.isdir(base):
            raise StoreError(f"store folder {base} is a file", "the store was modified outside tfreview: restore "
                             "that folder from a backup")
        found: list[tuple[str, str, str]] = []
        pending = [(base, "".join(f"{part}/" for part in parts))]
        while pending:
            folder, key_prefix = pending.pop()
            try:
                with os.scandir(folder) as listing:
                    for item in listing:
                        if item.name.startswith("."):
                            continue
                        if item.is_dir():
                            if not item.is_symlink():
                                pending.append((item.path, f"{key_prefix}{item.name}/"))
                        else:
                            found.append((f"{key_prefix}{item.name}", folder, item.name))
            except OSError as exc:
                raise StoreError(f"cannot list {exc.filename or folder}: {exc.strerror}",
                                 "check the store directory's permissions") from exc
        return found

    def read_all(self, prefix: str) -> list[tuple[str, bytes | None]]:
        """(key, bytes) of every object `list(prefix)` names, sorted by key, in one pass (`_read_found`). None for a
        file removed between the listing and the read."""
        found = sorted(self._scan(prefix), key=itemgetter(0))  # keys are unique: no comparing of whole tuples
        return list(zip((key for key, _folder, _name in found), self._read_found(found), strict=True))

    def keys_besides(self, prefix: str, names: set[str]) -> list[str]:
        """The keys `list(prefix)` names, not sorted, except those of the files right in `prefix` named in `names`
        (the sealed audit entries: their 10^5 names are set apart by one set difference, no object per file; one
        of them that is a folder is left to the read, which says so)."""
        parts = key_parts(prefix, what="prefix")
        base = os.path.join(self.url, *parts)
        try:
            listed = os.listdir(base)
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            raise StoreError(f"store folder {base} is a file", "the store was modified outside tfreview: restore "
                             "that folder from a backup") from None
        except OSError as exc:
            raise StoreError(f"cannot list {base}: {exc.strerror}", "check the store directory's permissions") from exc
        rest = set(listed).difference(names)
        if len(rest) > 256:  # many (a log not sealed): scandir knows the folders without a stat per name
            return [key for key, folder, name in self._scan(prefix) if folder != base or name not in names]
        key_prefix = "".join(f"{part}/" for part in parts)
        out = []
        for name in rest:  # the few others, as `_scan` sees them
            path = os.path.join(base, name)
            if name.startswith("."):
                continue
            if not os.path.isdir(path):
                out.append(f"{key_prefix}{name}")
            elif not os.path.islink(path):  # a link to a folder is neither listed nor followed
                out += [key for key, _folder, _name in self._scan(f"{key_prefix}{name}/")]
        return out

    def read_in(self, prefix: str, names: list[str]) -> list[bytes | None]:
        """The bytes of each of the files `names` right in folder `prefix` (None: no such file), in order, as
        `read_all` reads them (the 10^5 entry files of sealed audit segments)."""
        if any("/" in name or name.startswith(".") or not name for name in names):
            raise StoreError(f"invalid name in store folder {prefix!r}", "names in store keys are letters, digits, "
                             "'.', '_' and '-', never '..'")
        folder = os.path.join(self.url, *key_parts(prefix, what="prefix"))
        return self._read_found([(name, folder, name) for name in names], prefix)

    def read_keys(self, keys: list[str]) -> list[bytes | None]:
        """The bytes of each of `keys` (None: no such object), in order, as `read_all` reads them (10^5 audit entries
        whose keys are known)."""
        folders: dict[str, str] = {}
        found = []
        rpartition = str.rpartition
        for key in keys:
            folder_key, _, name = rpartition(key, "/")
            if not name or name.startswith(".") or "/." in f"/{folder_key}":  # rare: the full check of the key
                parts = key_parts(key)
                folder_key, name = "/".join(parts[:-1]), parts[-1]
            folder = folders.get(folder_key)
            if folder is None:
                folder = folders[folder_key] = os.path.join(self.url, *key_parts(folder_key, what="prefix"))
            found.append((key, folder, name))
        return self._read_found(found)

    def _read_found(self, found: list[tuple[str, str, str]], prefix: str = "") -> list[bytes | None]:
        """The bytes of each (key, folder, name) of `found`, in order (None: no such file): each file read by one
        open relative to its folder and one read, no buffered file object. Keys (in errors) are after `prefix`."""
        folders: dict[str, int] = {}
        try:
            for _key, folder, _name in found:
                if folder not in folders:
                    try:
                        folders[folder] = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    except FileNotFoundError:
                        folders[folder] = -1  # no folder: none of its files
            out: list[bytes | None] = []
            add, open_, read, close, flags = out.append, os.open, os.read, os.close, os.O_RDONLY | os.O_CLOEXEC
            for key, folder, name in found:  # the loop of _read_at, inlined: it runs once per file (10^5 of them)
                at = folders[folder]
                if at < 0:
                    add(None)
                    continue
                try:
                    fd = open_(name, flags, dir_fd=at)
                except (FileNotFoundError, IsADirectoryError):
                    add(_read_at(at, name, prefix + key))  # gone (None), or the error it is
                    continue
                try:
                    data = read(fd, _CHUNK)
                    add(data if len(data) < _CHUNK else data + _read_rest(fd))
                except IsADirectoryError:
                    raise StoreError(f"store object {prefix}{key} is a folder", "the store was modified outside tfreview: "
                                     "restore that folder from a backup") from None
                finally:
                    close(fd)
            return out
        except OSError as exc:
            raise StoreError(f"cannot read {exc.filename or found[0][1]}: {exc.strerror}",
                             "check the store directory's permissions") from exc
        finally:
            for fd in folders.values():
                if fd >= 0:
                    os.close(fd)

    def list(self, prefix: str, *, start_after: str = "") -> list[str]:
        out = sorted([key for key, _folder, _name in self._scan(prefix)])
        return out[bisect.bisect_right(out, start_after):] if start_after else out
