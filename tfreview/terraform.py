"""The only place that runs terraform.

python-terraform builds the command lines (its option conventions: snake_case -> -kebab-case, IsFlagged flags,
-var/-backend-config dicts); we run them ourselves so that each call gets an explicit environment (provider
mirror, plugin cache, AWS endpoint) and so that `-json` UI events stream to a progress callback line by line.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from tfreview.config import Settings
from tfreview.errors import BadInput, TerraformFailed

# One UI event of `terraform ... -json` (see Terraform's machine-readable UI docs): {"@level", "@message", "type", ...}
Event = dict[str, Any]
OnEvent = Callable[[Event], None]


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    diagnostics: tuple[Event, ...] = ()


def cli_config_text(provider_mirror: str) -> str:
    """Terraform CLI configuration installing every provider from a filesystem mirror (offline installs)."""
    return (
        "provider_installation {\n"
        f"  filesystem_mirror {{\n    path = {json.dumps(provider_mirror)}\n  }}\n"
        "}\n"
    )


class Terraform:
    """Runs terraform in one working directory with tfreview's settings."""

    def __init__(self, settings: Settings, working_dir: str | os.PathLike[str]) -> None:
        self.settings = settings
        self.working_dir = Path(working_dir)
        from python_terraform import Terraform as _CommandLayer  # small import, but keep the CLI start-up lean

        self._cmd = _CommandLayer(working_dir=str(working_dir), terraform_bin_path=settings.terraform_bin)

    # -- environment -----------------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["TF_IN_AUTOMATION"] = "1"
        env["TF_INPUT"] = "0"
        env.pop("TF_CLI_ARGS", None)
        cache = Path(self.settings.plugin_cache_dir)
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"cannot use the plugin cache {cache}: {exc.strerror}",
                           "fix TFREVIEW_PLUGIN_CACHE_DIR or [terraform].plugin_cache_dir in tfreview.toml") from None
        env["TF_PLUGIN_CACHE_DIR"] = str(cache)
        # Link a provider the cache already holds instead of installing it into the cache again. Without this, every
        # init of a directory without a lock file (every fetched package) removes and re-creates the cache's entry,
        # and a terraform starting meanwhile in another run (plan, show, state pull) finds no provider: "Failed to
        # load plugin schemas", "still not detected in .terraform/providers". A lock file, when the package has one,
        # is still checked against the cached provider.
        env["TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE"] = "true"
        if self.settings.provider_mirror:
            mirror = Path(self.settings.provider_mirror)
            if not mirror.is_dir():
                raise BadInput(f"provider mirror {mirror} does not exist",
                               "fix TFREVIEW_PROVIDER_MIRROR or [terraform].provider_mirror in tfreview.toml")
            # One file per mirror, named by a stable digest (str hash() changes per process: a file per run).
            cfg = cache.parent / f"cli-config-{hashlib.sha256(str(mirror).encode()).hexdigest()[:16]}.tfrc"
            text = cli_config_text(str(mirror))
            if not cfg.is_file() or cfg.read_text() != text:
                fd, tmp = tempfile.mkstemp(dir=cfg.parent, prefix=".cli-config-", suffix=".tmp")
                with os.fdopen(fd, "w") as fh:
                    fh.write(text)
                os.replace(tmp, cfg)
            env["TF_CLI_CONFIG_FILE"] = str(cfg)
        elif env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).is_file():
            env.pop("TF_CLI_CONFIG_FILE")  # a dangling setting only produces a warning on every command
        return env

    # -- running ---------------------------------------------------------------------------------------------
    def run(self, cmd: str, *args: str, on_event: OnEvent | None = None, **options: Any) -> Result:
        """Run `terraform CMD [options] ARGS`; with on_event, `-json` UI events are streamed to it."""
        argv = self._cmd.generate_cmd_string(cmd, *args, **options)
        # terraform writes to files in its private working directory, not to pipes: if tfreview is killed, terraform
        # finishes what it is doing and writes its state (a broken pipe would kill it mid-write), and its lock stays
        # held meanwhile (store.locks.busy_workdir_owners).
        out_path = self.working_dir / f".tfreview-{cmd.replace(' ', '-')}.out"
        err_path = out_path.with_suffix(".err")
        try:
            with open(out_path, "wb") as out_w, open(err_path, "wb") as err_w:
                # Its own process group: a Ctrl-C in the terminal reaches tfreview only, which forwards exactly
                # one SIGINT (terraform stops gracefully on the first, and aborts mid-write on a second).
                proc = subprocess.Popen(argv, cwd=self.working_dir, env=self.environment(), stdout=out_w,
                                        stderr=err_w, stdin=subprocess.DEVNULL, umask=0o077, process_group=0)
        except FileNotFoundError:
            raise TerraformFailed(f"terraform binary {self.settings.terraform_bin!r} not found",
                                  "install Terraform >= 1.5 or set TFREVIEW_TERRAFORM_BIN") from None
        except OSError as exc:  # not executable, unreadable, not a program (the setting is wrong: bad input)
            raise BadInput(f"cannot run terraform binary {self.settings.terraform_bin!r}: {exc.strerror or exc}",
                           "set TFREVIEW_TERRAFORM_BIN (or [terraform] bin) to an executable terraform") from None
        out_lines: list[str] = []
        diags: list[Event] = []
        still = StillWorking(self.settings.progress_interval_s)
        try:
            for line in _follow(out_path, proc, tick_s=min(1.0, still.interval_s / 4)):
                if on_event is not None:  # a resource terraform works on for a while gets its "still" line
                    for late in still.due(time.monotonic()):
                        on_event(late)
                if not line:  # a tick: nothing written meanwhile
                    continue
                out_lines.append(line)
                if on_event is None and "json" not in options:
                    continue
                event = _parse_event(line)
                if event is None:
                    continue
                if event.get("type") == "diagnostic":
                    diags.append(event)
                still.see(event, time.monotonic())
                if on_event is not None:
                    on_event(event)
            rc = proc.wait()
        except BaseException:  # interrupted (Interrupted, KeyboardInterrupt) or a failing callback
            stop_gracefully(proc)
            raise
        stderr = err_path.read_text(errors="replace")
        out_path.unlink(missing_ok=True)
        err_path.unlink(missing_ok=True)
        result = Result(rc, "".join(out_lines), stderr, tuple(diags))
        if rc != 0:
            raise TerraformFailed(f"terraform {cmd} failed: {first_error(result)}",
                                  "fix the configuration or the environment, then run the command again")
        return result

    def init(self, backend_config: dict[str, str] | None = None, on_event: OnEvent | None = None) -> Result:
        # One init at a time per plugin cache: terraform does not make the cache safe for concurrent installs.
        with plugin_cache_lock(Path(self.settings.plugin_cache_dir)):
            return self.run("init", on_event=on_event, input=False, no_color=_flag(), json=_flag(),
                            backend_config=backend_config or None)

    def plan(self, out: str, on_event: OnEvent | None = None, options: Any = None) -> Result:
        """`terraform plan -out OUT`, with the planner's `TerraformOptions` (var-files first, so a --var wins)."""
        extra: dict[str, Any] = {}
        if options:
            extra = {"var_file": list(options.var_files), "var": [f"{n}={v}" for n, v in options.variables],
                     "target": list(options.targets), "replace": list(options.replace),
                     "destroy": _flag() if options.destroy else None,
                     "refresh_only": _flag() if options.refresh_only else None}
        return self.run("plan", on_event=on_event, input=False, no_color=_flag(), json=_flag(), out=out,
                        lock_timeout="60s", **extra)

    def apply(self, plan_file: str, on_event: OnEvent | None = None) -> Result:
        return self.run("apply", plan_file, on_event=on_event, input=False, no_color=_flag(), json=_flag(),
                        lock_timeout="60s")

    def show_json(self, plan_file: str) -> bytes:
        """`terraform show -json PLAN` as raw bytes."""
        result = self.run("show", plan_file, no_color=_flag(), json=_flag())
        return result.stdout.encode()

    def output_json(self) -> dict[str, Any]:
        """Root outputs of the current state: {name: value} (sensitive values included: never print them)."""
        result = self.run("output", no_color=_flag(), json=_flag())
        data = json.loads(result.stdout or "{}")
        return {k: v.get("value") for k, v in data.items()}

    def state_pull(self) -> dict[str, Any] | None:
        """The current state document (lineage, serial, outputs...), or None when there is no state yet."""
        result = self.run("state pull", no_color=_flag())
        text = result.stdout.strip()
        return json.loads(text) if text else None


def _follow(path: Path, proc: subprocess.Popen, poll_s: float = 0.02, tick_s: float | None = None) -> Iterator[str]:
    """The lines `proc` writes to the file at `path`, as they come, until it exits (`tail -f` of one process); with
    `tick_s`, also an empty string after each `tick_s` seconds in which nothing was written (a clock tick)."""
    partial = ""
    quiet_since = time.monotonic()
    with open(path, encoding="utf-8", errors="replace") as reader:
        while True:
            chunk = reader.read()
            if chunk:
                lines = (partial + chunk).split("\n")
                partial = lines.pop()
                for line in lines:
                    yield line + "\n"
                quiet_since = time.monotonic()
            elif proc.poll() is not None:
                rest = reader.read()
                if not rest:
                    break
                partial += rest
            else:
                if tick_s is not None and time.monotonic() - quiet_since >= tick_s:
                    quiet_since = time.monotonic()
                    yield ""
                time.sleep(poll_s)
    if partial:
        yield partial


_ACTING = {"create": "creating", "update": "modifying", "delete": "destroying", "read": "reading",
           "replace": "replacing", "noop": "working"}


def elapsed_text(seconds: float) -> str:
    """Terraform's way of saying a duration: 30s, 1m0s, 2m30s, 1h0m0s."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


class StillWorking:
    """Which resources terraform has started and not finished (apply_start, then apply_complete or apply_errored),
    and the "still creating (1m0s elapsed)" event due for each every `interval_s` seconds, as terraform prints it,
    so a slow resource never sits silent. Times are the caller's clock (time.monotonic), in seconds."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._working: dict[str, tuple[str, float, float]] = {}  # addr -> (action, started, last said)

    def see(self, event: Event, now: float) -> None:
        kind = event.get("type")
        hook = event.get("hook") or {}
        addr = str((hook.get("resource") or {}).get("addr", ""))
        if not addr:
            return
        if kind == "apply_start":
            self._working[addr] = (str(hook.get("action", "")), now, now)
        elif kind in ("apply_complete", "apply_errored"):
            self._working.pop(addr, None)

    def due(self, now: float) -> list[Event]:
        """tfreview's own `apply_progress` events (marked "tfreview": true) for resources not said for interval_s."""
        out: list[Event] = []
        for addr, (action, started, said) in list(self._working.items()):
            if now - said >= self.interval_s:
                self._working[addr] = (action, started, now)
                elapsed = now - started
                out.append({"type": "apply_progress", "tfreview": True,
                            "@message": f"{addr}: Still {_ACTING.get(action, action + 'ing')}... "
                                        f"[{elapsed_text(elapsed)} elapsed]",
                            "hook": {"resource": {"addr": addr}, "action": action,
                                     "elapsed_seconds": int(elapsed)}})
        return out


STOP_GRACE_S = 120.0  # how long terraform may take to finish its in-flight operations and write its state


def stop_gracefully(proc: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> None:
    """Stop a running terraform as Ctrl-C would: one SIGINT (it finishes what is in flight and writes its state),
    then wait; SIGKILL only if it has not exited after `grace_s` seconds. Signals arriving meanwhile are ignored:
    a second interrupt would make terraform abort mid-write."""
    import signal

    import threading

    if proc.poll() is not None:
        return
    main_thread = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _flag() -> Any:
    from python_terraform import IsFlagged

    return IsFlagged


def _parse_event(line: str) -> Event | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def first_error(result: Result) -> str:
    """One line saying why terraform failed: the first error diagnostic, else the last line of stderr."""
    for d in result.diagnostics:
        diag = d.get("diagnostic", {})
        if diag.get("severity") == "error":
            detail = " ".join(str(diag.get("detail", "")).split())
            where = diag.get("address") or (diag.get("range") or {}).get("filename", "")
            text = diag.get("summary", "error")
            if where:
                text = f"{text} ({where})"
            return f"{text}: {detail[:300]}" if detail else text
    text = _ANSI.sub("", result.stderr or result.stdout)
    lines = [ln.strip().lstrip("│ ").strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not set(ln) <= set("╷│╵")]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    return (errors or lines or [f"exit code {result.returncode}"])[0][:300]


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@contextlib.contextmanager
def plugin_cache_lock(cache: Path) -> Iterator[None]:
    """Hold the lock of the plugin cache `cache` (a file beside it): one terraform init at a time fills it."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        lock = open(cache.parent / f".{cache.name}.lock", "a")
    except OSError as exc:
        raise BadInput(f"cannot use the plugin cache {cache}: {exc.strerror}",
                       "fix TFREVIEW_PLUGIN_CACHE_DIR or [terraform].plugin_cache_dir in tfreview.toml") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


def make_workdir(settings: Settings, prefix: str) -> Path:
    """A fresh private working directory for one terraform run (removed by the caller)."""
    base = settings.work_dir
    try:
        if base:
            Path(base).mkdir(parents=True, exist_ok=True)
        remove_abandoned_workdirs(Path(base or tempfile.gettempdir()))
        # The pid in the name tells which tfreview made it (see store.locks.busy_workdir_owners).
        return Path(tempfile.mkdtemp(prefix=f"tfreview-{prefix}-{os.getpid()}-", dir=base))
    except OSError as exc:
        raise BadInput(f"cannot make a working directory in {base or tempfile.gettempdir()}: {exc.strerror}",
                       "fix TFREVIEW_WORK_DIR or [terraform].work_dir in tfreview.toml") from None


def remove_abandoned_workdirs(base: Path) -> None:
    """Remove the working directories of killed tfreview runs on this host: their tfreview is gone and no process
    (an orphaned terraform) still works in them. They may hold a plan file with secrets."""
    from tfreview.store.locks import busy_workdir_owners, pid_alive, workdir_owner

    try:
        owned = [(n, workdir_owner(n)) for n in os.listdir(base) if n.startswith("tfreview-")]
    except OSError:
        return
    dead = [(n, pid) for n, pid in owned if pid is not None and pid != os.getpid() and not pid_alive(pid)]
    if not dead:
        return
    busy = busy_workdir_owners()
    for name, pid in dead:
        if pid not in busy:
            shutil.rmtree(base / name, ignore_errors=True)


def progress_text(event: Event) -> str | None:
    """A short human line for a terraform UI event, or None for events not worth showing."""
    kind = event.get("type")
    hook = event.get("hook") or {}
    addr = (hook.get("resource") or {}).get("addr", "")
    if kind == "apply_start":
        return f"{hook.get('action', 'apply')} {addr}"
    if kind == "apply_progress":
        action = str(hook.get("action", "noop"))
        return (f"{addr}: still {_ACTING.get(action, action + 'ing')} "
                f"({elapsed_text(float(hook.get('elapsed_seconds', 0) or 0))} elapsed)")
    if kind == "apply_complete":
        return f"{addr}: {hook.get('action', 'done')} complete"
    if kind in ("refresh_start", "planned_change", "change_summary", "init_output", "log"):
        return str(event.get("@message", ""))[:120] or None
    return None
