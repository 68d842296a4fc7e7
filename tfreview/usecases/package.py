"""`tfreview package`: a deterministic, checksummed terraform.zip per version, stored once (create-only)."""
from __future__ import annotations

import hashlib
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

from tfreview import packaging
from tfreview.text import iso, now_utc
from tfreview.errors import Conflict, NotFound, PolicyRefusal, StoreError
from tfreview.text import check_name
from tfreview.store import Store, get_json
from tfreview.store.base import dumps, parse_json
from tfreview.usecases.context import Context


# -- package -------------------------------------------------------------------------------------------------
def _git_commit(source: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def package(ctx: Context, app: str, version: str, source: str | None = None) -> dict[str, Any]:
    """Build terraform.zip for app/version and store it with its manifest. Same content again is a no-op;
    different content for an existing version is refused (Conflict)."""
    check_name("app", app)
    check_name("version", version)
    src = Path(source or ctx.settings.source_dir)
    pkg = packaging.build_package(src)
    zip_key, manifest_key = packaging.package_keys(app, version)
    if ctx.store.exists(manifest_key):
        return _packaged_already(ctx.store, app, version, manifest_key, pkg)
    manifest = packaging.manifest(pkg, app, version, iso(now_utc()), ctx.user, _git_commit(src))
    claim = _claim_package(ctx, app, version, manifest_key)
    if claim is None:  # a concurrent run of the same version finished it while we waited
        return _packaged_already(ctx.store, app, version, manifest_key, pkg)
    try:
        if ctx.store.exists(manifest_key):  # finished by another run between our first look and our claim
            return _packaged_already(ctx.store, app, version, manifest_key, pkg)
        created_zip = False
        try:
            ctx.store.create(zip_key, pkg.zip_bytes)
            created_zip = True
        except Conflict:
            # A crashed earlier run left the zip but no manifest: accept it only if it is the same bytes.
            if hashlib.sha256(ctx.store.read(zip_key)).hexdigest() != pkg.sha256:
                raise
        # The audit entry first: a package counts once its manifest exists, and it never exists unrecorded. Only
        # the holder of the claim logs it: one package, one `package` entry, however many runs race.
        try:
            ctx.audit("package", app=app, version=version, details={"sha256": pkg.sha256, "files": len(pkg.files)})
        except BaseException:
            if created_zip:  # refused (the log cannot take it) or interrupted: leave nothing behind
                _delete_quietly(ctx.store, zip_key)
            raise
        ctx.store.create(manifest_key, dumps(manifest))
    finally:
        _delete_quietly(ctx.store, claim[0], claim[1])
    return {**manifest, "status": "created"}


def _packaged_already(store: Store, app: str, version: str, manifest_key: str, pkg: Any) -> dict[str, Any]:
    """Same content again: a no-op ("unchanged"); other content for a packaged version: Conflict."""
    existing = get_json(store, manifest_key)
    if existing.get("sha256") == pkg.sha256:
        return {**existing, "status": "unchanged"}
    changed = sorted(set((existing.get("files") or {}).items()) ^ set(pkg.files.items()))
    names = sorted({name for name, _ in changed})
    raise Conflict(f"{app} {version} is already packaged with different content ({len(names)} files differ, "
                   f"e.g. {names[0] if names else '?'})", "package a new version instead of changing a released one")


CLAIM_WAIT_S = 60.0  # how long a run waits for a concurrent packager of the same version
CLAIM_STALE_S = 600.0  # a claim this old is an abandoned run's, whoever made it


def _claim_package(ctx: Context, app: str, version: str, manifest_key: str) -> tuple[str, str] | None:
    """Take the create-only claim of packaging app/version: (key, etag); None when a concurrent run finished the
    package meanwhile. A claim whose run is gone (same host, dead pid) or older than CLAIM_STALE_S is taken over;
    PolicyRefusal when a live run keeps it longer than CLAIM_WAIT_S."""
    import os
    import socket
    import time

    from tfreview.store.locks import pid_alive

    key = manifest_key.replace("/manifest.json", "/claim.json")
    doc = {"by": ctx.user, "pid": os.getpid(), "host": socket.gethostname(), "at": iso(now_utc())}
    deadline = time.monotonic() + CLAIM_WAIT_S
    while True:
        try:
            return key, ctx.store.create(key, dumps(doc))
        except Conflict:
            pass
        if ctx.store.exists(manifest_key):
            return None
        try:
            raw, etag = ctx.store.read_versioned(key)
        except NotFound:
            continue  # released between our create and our read
        try:
            held = parse_json(key, raw)
        except StoreError:
            held = {}  # damaged (a run killed mid-write cannot leave one: writes are atomic): stale
        held = held if isinstance(held, dict) else {}
        pid, host = held.get("pid"), held.get("host")
        try:
            age = (now_utc() - _parse_time(str(held.get("at")))).total_seconds()
        except ValueError:
            age = CLAIM_STALE_S  # unreadable: an abandoned or damaged claim
        gone = host == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid)
        if gone or age >= CLAIM_STALE_S:
            try:
                ctx.store.delete(key, etag)
            except Conflict:
                pass
            continue
        if time.monotonic() > deadline:
            raise PolicyRefusal(f"{app} {version} is being packaged by {held.get('by')} (pid {pid} on {host}, since "
                                f"{held.get('at')})", "wait for that run, then run the command again")
        time.sleep(0.1)


def _parse_time(value: str) -> datetime:
    from tfreview.review.policy import parse_time

    return parse_time(value)


def _delete_quietly(store: Store, key: str, etag: str | None = None) -> None:
    try:
        store.delete(key, etag)
    except (StoreError, Conflict):
        pass


def fetch_package(store: Store, app: str, version: str) -> tuple[bytes, dict]:
    """The package zip and manifest of app/version, verified against the manifest."""
    zip_key, manifest_key = packaging.package_keys(app, version)
    try:
        manifest = get_json(store, manifest_key)
    except NotFound:
        raise NotFound(f"no package for {app} {version}",
                       f"run: tfreview package --app {app} --version {version}") from None
    data = store.read(zip_key)
    sha = hashlib.sha256(data).hexdigest()
    if sha != manifest["sha256"]:
        raise PolicyRefusal(f"package {app} {version} does not match its manifest (sha256 {sha[:12]} != "
                            f"{manifest['sha256'][:12]})", "the store was modified: re-package under a new version")
    return data, manifest
