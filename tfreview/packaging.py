"""Deterministic, checksummed packages of terraform/ per version, and a safe unpack.

Same content => same zip bytes => same sha256: entries are sorted, timestamps fixed, permissions normalised.
"""
from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tfreview.errors import BadInput

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
# Never packaged: provider binaries, state, plans, local caches.
EXCLUDED_DIRS = {".terraform", ".git", "__pycache__"}
EXCLUDED_SUFFIXES = (".tfstate", ".tfstate.backup", ".tfplan", ".zip")
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Package:
    zip_bytes: bytes
    sha256: str
    files: dict[str, str]  # path inside the package -> sha256 of the file


def _included(rel: PurePosixPath) -> bool:
    if any(part in EXCLUDED_DIRS for part in rel.parts):
        return False
    return not rel.name.endswith(EXCLUDED_SUFFIXES) and not rel.name.startswith(".tfreview")


def build_package(source: Path) -> Package:
    """Zip every file under `source` deterministically; returns the bytes, their sha256 and per-file hashes."""
    if not source.is_dir():
        raise BadInput(f"source directory {source} {'is not a directory' if source.exists() else 'does not exist'}",
                       "pass --source DIR with your terraform/ tree")
    paths = []
    total = 0
    for p in source.rglob("*"):
        rel = PurePosixPath(p.relative_to(source).as_posix())
        if not _included(rel):
            continue
        name = str(rel)
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise BadInput(f"{p!r} has a name that is not valid UTF-8", "rename it (zip entries are UTF-8)") from None
        if p.is_symlink():
            raise BadInput(f"{p} is a symbolic link", "packages hold regular files only; copy the target instead")
        try:
            st = p.stat()
        except OSError as exc:
            raise BadInput(f"cannot read {p}: {exc.strerror}", "fix its permissions or remove it") from None
        if stat.S_ISDIR(st.st_mode):
            continue
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(f"{p} is not a regular file", "packages hold regular files only: remove it")
        total += st.st_size
        paths.append((name, p))
        if len(paths) > MAX_ENTRIES or total > MAX_UNPACKED_BYTES:  # the limits `unpack` enforces
            raise BadInput(f"{source} is too large to package (more than {MAX_ENTRIES} files or "
                           f"{MAX_UNPACKED_BYTES // 2**20} MiB)", "package only the terraform/ tree")
    if not any(name.endswith(".tf") for name, _ in paths):
        raise BadInput(f"no .tf files under {source}", "point --source at the directory holding modules/ and envs/")
    paths.sort()
    buf = io.BytesIO()
    files: dict[str, str] = {}
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, p in paths:
            try:
                data = p.read_bytes()
            except OSError as exc:
                raise BadInput(f"cannot read {p}: {exc.strerror}", "fix its permissions or remove it") from None
            files[name] = hashlib.sha256(data).hexdigest()
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            zf.writestr(info, data)
    data = buf.getvalue()
    return Package(data, hashlib.sha256(data).hexdigest(), files)


def manifest(pkg: Package, app: str, version: str, created_at: str, created_by: str,
             source_commit: str | None) -> dict[str, Any]:
    return {
        "kind": "package",
        "app": app,
        "version": version,
        "sha256": pkg.sha256,
        "size": len(pkg.zip_bytes),
        "files": pkg.files,
        "created_at": created_at,
        "created_by": created_by,
        "source_commit": source_commit,
    }


def unpack(zip_bytes: bytes, dest: Path) -> None:
    """Extract a package into `dest`, refusing absolute paths, '..', links and zip bombs."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(zip_bytes))
    except zipfile.BadZipFile:
        raise BadInput("the stored package is not a valid zip", "re-package this version") from None
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES or sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
        raise BadInput("the package is too large to unpack", "package only the terraform/ tree")
    root = dest.resolve()
    for info in infos:
        name = PurePosixPath(info.filename)
        mode = info.external_attr >> 16
        if name.is_absolute() or ".." in name.parts or stat.S_ISLNK(mode):
            raise BadInput(f"unsafe path {info.filename!r} in package", "re-package from a clean source tree")
        target = (root / name).resolve()
        if root not in target.parents and target != root:
            raise BadInput(f"unsafe path {info.filename!r} in package", "re-package from a clean source tree")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(zf.read(info))


def package_keys(app: str, version: str) -> tuple[str, str]:
    """Store keys of a package's zip and manifest (the seed's layout: <app>/<version>/terraform.zip)."""
    base = f"packages/{app}/{version}"
    return f"{base}/terraform.zip", f"{base}/manifest.json"
