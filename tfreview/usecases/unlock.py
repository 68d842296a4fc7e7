"""Stuck applies: find interrupted applies (a start record with no result) and release a stuck lock, recorded.

An apply killed with -9 leaves `applies/<plan>/start.json` without `result.json` and its lock
`locks/<app>/<env>.json` held by a process that is gone. Nothing is half-written (every record is written
atomically); what is missing is the outcome, and the lock blocks the next apply until a person decides.
`tfreview unlock` is that decision: it removes the lock, records the interrupted outcome and an `unlock` audit
entry naming who unlocked what from whom.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from tfreview.errors import Conflict, NotFound, PolicyRefusal, StoreError
from tfreview.store.base import Store, get_json, put_json
from tfreview import jsontext
from tfreview.store.locks import Lock, describe_lock, force_unlock, holder_alive, lock_key, read_lock

if TYPE_CHECKING:
    from tfreview.usecases.context import Context


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class InterruptedApply:
    """An apply that started and recorded no outcome; `lock` is the app/env lock if one is still held."""

    plan_id: str
    app: str
    env: str
    version: str
    by: str
    started_at: str
    lock: Lock | None

    @property
    def in_progress(self) -> bool:
        """True when the lock of this very plan is held by a process alive on this host (not interrupted yet)."""
        return self.lock is not None and self.lock.plan_id == self.plan_id and holder_alive(self.lock) is True

    def describe(self) -> str:
        """One line for a warning: what was interrupted, and the lock it left."""
        line = (f"apply of plan {self.plan_id} ({self.app}/{self.env} {self.version}) by {self.by} started at "
                f"{self.started_at} recorded no outcome")
        if self.lock is not None and self.lock.plan_id == self.plan_id:
            alive = holder_alive(self.lock)
            state = {False: "its process is gone", True: "its process is still running",
                     None: f"held from host {self.lock.host}"}[alive]
            line += f"; lock {self.app}/{self.env} still held by {self.lock.owner} (pid {self.lock.pid}: {state})"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {"plan_id": self.plan_id, "app": self.app, "env": self.env, "version": self.version, "by": self.by,
                "started_at": self.started_at, "lock": self.lock.to_dict() if self.lock else None,
                "in_progress": self.in_progress}


def interrupted_applies(store: Store, app: str | None = None, env: str | None = None,
                        plan_ids: Iterable[str] | None = None) -> list[InterruptedApply]:
    """Applies with a start record and no result (app/env filters optional), oldest first. `plan_ids`: look at
    those plans only (history's index knows which applies have no outcome) instead of listing every apply.

    An apply still running on this host is listed too (`in_progress`); callers warn only about the others.
    """
    if plan_ids is None:
        keys = store.list("applies/")
        finished = {k.rsplit("/", 1)[0] for k in keys if k.endswith("/result.json")}
    else:
        keys = [f"applies/{pid}/start.json" for pid in plan_ids]
        finished = {k.rsplit("/", 1)[0] for k in keys if store.exists(k.replace("/start.json", "/result.json"))}
    out = []
    for key in keys:
        if not key.endswith("/start.json") or key.rsplit("/", 1)[0] in finished:
            continue
        try:
            start = jsontext.loads_std(store.read(key))
        except (NotFound, ValueError):
            continue
        if (app and start.get("app") != app) or (env and start.get("env") != env):
            continue
        out.append(InterruptedApply(
            plan_id=start.get("plan_id", key.split("/")[1]), app=start.get("app", "?"), env=start.get("env", "?"),
            version=start.get("version", "?"), by=start.get("by", "?"), started_at=start.get("started_at", "?"),
            lock=read_lock(store, start["app"], start["env"]) if start.get("app") and start.get("env") else None,
        ))
    return sorted(out, key=lambda i: i.started_at)


def stale_warnings(store: Store, app: str | None = None, env: str | None = None,
                   plan_ids: Iterable[str] | None = None) -> list[str]:
    """One line per interrupted apply (not the ones still running here), with the command that clears it."""
    return [f"{i.describe()}; check the environment, then: tfreview unlock --app {i.app} --env {i.env}"
            for i in interrupted_applies(store, app, env, plan_ids) if not i.in_progress]


def unlock(ctx: "Context", app: str, env: str, *, force: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """Remove the apply lock of app/env (refused while its process still runs on this host, unless `force`).

    Records, in this order: the interrupted outcome of the locked plan if its apply recorded none
    (`applies/<plan>/result.json`, outcome "interrupted", plus an apply-end audit entry), then an `unlock`
    audit entry with the previous lock. Returns {"previous": lock dict, "interrupted": plan id or None}.
    """
    try:
        held = read_lock(ctx.store, app, env)
    except StoreError:
        if not force:
            raise
        return _clear_unreadable_lock(ctx, app, env, now)
    if held is None:
        raise NotFound(f"no apply lock is held for {app}/{env}", "nothing to unlock")
    if holder_alive(held) is True and not force:
        raise PolicyRefusal(
            describe_lock(held) + " and its process is still running",
            f"wait for it to finish; `tfreview unlock --app {app} --env {env} --force` only if you are sure",
        )
    previous = force_unlock(ctx.store, app, env, ctx.user, held=held)
    at = _iso(now or datetime.now(timezone.utc))
    interrupted = None
    base = f"applies/{previous.plan_id}"
    if previous.plan_id and ctx.store.exists(f"{base}/start.json") and not ctx.store.exists(f"{base}/result.json"):
        start = get_json(ctx.store, f"{base}/start.json")
        result = {"kind": "apply-result", "app": app, "env": env, "version": start.get("version"),
                  "plan_id": previous.plan_id, "by": start.get("by"), "started_at": start.get("started_at"),
                  "finished_at": at, "outcome": "interrupted", "unlocked_by": ctx.user,
                  "error": "the apply stopped without recording an outcome (process killed or host lost)"}
        # The entry first (docs/design-notes.md, issue 20): a kill between the two leaves no result the log never saw.
        ctx.audit("apply-end", app=app, env=env, version=start.get("version"), plan_id=previous.plan_id,
                  details={"outcome": "interrupted", "unlocked_by": ctx.user})
        try:
            put_json(ctx.store, f"{base}/result.json", result)
            interrupted = previous.plan_id
        except Conflict:
            pass  # a forced unlock raced the apply, which recorded its own outcome (and entry) meanwhile: keep it
    ctx.audit("unlock", app=app, env=env, plan_id=previous.plan_id or None,
              details={"previous_lock": previous.to_dict(), "holder_alive": holder_alive(previous),
                       "forced": force, "interrupted_plan": interrupted})
    return {"app": app, "env": env, "unlocked_by": ctx.user, "at": at, "previous": previous.to_dict(),
            "interrupted": interrupted}


def _clear_unreadable_lock(ctx: "Context", app: str, env: str, now: datetime | None) -> dict[str, Any]:
    """`unlock --force` on a lock that cannot be read (damaged, truncated): remove it as it is, and record what
    it held (its first 1,000 bytes) in the unlock audit entry."""
    key = lock_key(app, env)
    raw, etag = ctx.store.read_versioned(key)
    ctx.store.delete(key, etag=etag)
    at = _iso(now or datetime.now(timezone.utc))
    ctx.audit("unlock", app=app, env=env, plan_id=None,
              details={"unreadable_lock": raw[:1000].decode("utf-8", "replace"), "forced": True})
    previous = {"app": app, "env": env, "owner": "(unreadable lock)", "pid": None, "host": None, "plan_id": None,
                "acquired_at": None, "break_glass": False}
    return {"app": app, "env": env, "unlocked_by": ctx.user, "at": at, "previous": previous, "interrupted": None}
