"""One apply lock per app/env, on the Store protocol only (create-only object; works on local and S3 stores).

`locks/<app>/<env>.json` holds who applies what, from which process and host, since when. It is created with
`store.create`, so of any number of concurrent acquirers exactly one wins; released with an etag check, so a
holder whose lock was force-unlocked (and maybe re-taken by someone else) cannot delete the new holder's lock.
"""
from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tfreview.errors import BadInput, Conflict, NotFound, PolicyRefusal, StoreError
from tfreview import jsontext
from tfreview.store.base import Store, put_json

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def lock_key(app: str, env: str) -> str:
    """Store key of the lock of app/env; raises BadInput for names that cannot be keys."""
    for what, name in (("app", app), ("env", env)):
        if not _NAME.match(name or ""):
            raise BadInput(f"invalid {what} name {name!r}", "use letters, digits, '.', '_' and '-'")
    return f"locks/{app}/{env}.json"


@dataclass(frozen=True)
class Lock:
    """A held apply lock. acquired_at is UTC; etag identifies this very lock object in the store."""

    app: str
    env: str
    owner: str
    pid: int
    host: str
    plan_id: str
    acquired_at: datetime
    etag: str
    break_glass: bool = False

    @property
    def key(self) -> str:
        return lock_key(self.app, self.env)

    def age_minutes(self, now: datetime | None = None) -> int:
        """Whole minutes since the lock was taken."""
        now = now or datetime.now(timezone.utc)
        return max(0, int((now - self.acquired_at).total_seconds() // 60))

    def to_dict(self) -> dict[str, Any]:
        """The stored document (without etag)."""
        return {"app": self.app, "env": self.env, "owner": self.owner, "pid": self.pid, "host": self.host,
                "plan_id": self.plan_id, "break_glass": self.break_glass,
                "acquired_at": self.acquired_at.isoformat().replace("+00:00", "Z")}


def _parse(raw: bytes, etag: str, key: str) -> Lock:
    try:
        d = jsontext.loads_std(raw)
        at = datetime.fromisoformat(str(d["acquired_at"]).replace("Z", "+00:00"))
        pid = int(d["pid"])
        if not valid_pid(pid):
            raise ValueError("not a process id")
        return Lock(app=d["app"], env=d["env"], owner=d["owner"], pid=pid, host=d["host"],
                    plan_id=d.get("plan_id", ""), acquired_at=at, etag=etag, break_glass=bool(d.get("break_glass")))
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"lock {key} is unreadable",
                         "inspect it, then clear it with `tfreview unlock --app APP --env ENV --force`") from exc


def holder_alive(lock: Lock) -> bool | None:
    """Is the process holding `lock` still running? None when it runs on another host (we cannot tell)."""
    if lock.host != socket.gethostname():
        return None
    return pid_alive(lock.pid) or lock.pid in busy_workdir_owners()


MAX_PID = 2**31 - 1  # pid_t is a signed 32-bit int on every system tfreview runs on


def valid_pid(pid: object) -> bool:
    """A process id some system could give (an int in 1..MAX_PID, not a bool): 0 and negative numbers name
    process groups to os.kill, and a number past 64 bits overflows it."""
    return isinstance(pid, int) and not isinstance(pid, bool) and 1 <= pid <= MAX_PID


def pid_alive(pid: int) -> bool:
    """Is process `pid` running on this host? (False for what cannot be a process id.)"""
    if not valid_pid(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_WORKDIR = re.compile(r"^tfreview-[a-z]+-(\d+)-")  # terraform.make_workdir's names: tfreview-<purpose>-<pid>-...


def workdir_owner(name: str) -> int | None:
    """The pid of the tfreview that made the working directory called `name`, or None for another name."""
    match = _WORKDIR.match(name)
    return int(match.group(1)) if match else None


def busy_workdir_owners() -> set[int]:
    """Pids of the tfreview runs some process still works for, in one look at /proc: a killed tfreview's terraform
    runs on in its working directory, and that apply's lock is not free until it is done. Empty off Linux."""
    owners: set[int] = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return owners
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        for part in cwd.split(os.sep):
            owner = workdir_owner(part)
            if owner is not None:
                owners.add(owner)
    return owners


def describe_lock(lock: Lock, now: datetime | None = None) -> str:
    """One line: who holds the lock, for which plan, since when, and whether its process is gone."""
    at = lock.acquired_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    line = (f"apply in progress for {lock.app}/{lock.env} by {lock.owner} since {at} "
            f"({lock.age_minutes(now)} min ago; plan {lock.plan_id}, pid {lock.pid} on {lock.host})")
    if holder_alive(lock) is False:
        line += "; its process is gone: the apply was interrupted"
    return line


def unlock_hint(app: str, env: str) -> str:
    return f"wait, or `tfreview unlock --app {app} --env {env}` if it is stuck"


def read_lock(store: Store, app: str, env: str) -> Lock | None:
    """The lock held on app/env, or None."""
    key = lock_key(app, env)
    try:
        raw, etag = store.read_versioned(key)
    except NotFound:
        return None
    return _parse(raw, etag, key)


def acquire_lock(store: Store, app: str, env: str, owner: str, plan_id: str, *, break_glass: bool = False,
                 now: datetime | None = None) -> Lock:
    """Take the apply lock of app/env for `owner` applying `plan_id`.

    Raises PolicyRefusal ("apply in progress for app/env by X since T (N min ago)...") when it is held.
    """
    key = lock_key(app, env)
    at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    lock = Lock(app=app, env=env, owner=owner, pid=os.getpid(), host=socket.gethostname(), plan_id=plan_id,
                acquired_at=at, etag="", break_glass=break_glass)
    for _ in range(5):
        try:
            etag = put_json(store, key, lock.to_dict())
            return Lock(**{**lock.__dict__, "etag": etag})
        except Conflict:
            held = read_lock(store, app, env)
            if held is None:
                continue  # released between our create and our read: try again
            raise PolicyRefusal(describe_lock(held, at), unlock_hint(app, env)) from None
    raise PolicyRefusal(f"apply lock for {app}/{env} is changing hands too fast", "retry the command")


def release_lock(store: Store, lock: Lock) -> bool:
    """Release `lock` if it is still this very lock; False if it was force-unlocked and someone else holds it now
    (their lock is left alone)."""
    try:
        store.delete(lock.key, etag=lock.etag)
    except Conflict:
        return False
    return True


def force_unlock(store: Store, app: str, env: str, who: str, *, held: Lock | None = None) -> Lock:
    """Remove the lock of app/env whoever holds it and return it (the caller records `who` in the audit log).

    `held`: the lock the caller has just read (`read_lock`), tried first instead of reading it again; if it has
    changed hands since, the lock is read again as without it.
    Raises NotFound when no lock is held, BadInput when `who` is empty.
    """
    if not who.strip():
        raise BadInput("cannot tell who is unlocking", "set TFREVIEW_USER (or git's user.email)")
    for attempt in range(5):
        if attempt or held is None:
            held = read_lock(store, app, env)
        if held is None:
            raise NotFound(f"no apply lock is held for {app}/{env}", "nothing to unlock")
        try:
            store.delete(held.key, etag=held.etag)
            return held
        except Conflict:
            continue  # it changed hands while we looked: look again
    raise StoreError(f"apply lock for {app}/{env} keeps changing", "retry the command")
