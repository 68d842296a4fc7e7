"""The typer app and what every command shares: options, the console, settings and Context, JSON and plain
output, the examples under each help screen, and `main`, which maps errors to exit codes.

Kept light on import: boto3, hcl2, moto and the review engine load only inside the commands that use them.
"""
from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from enum import Enum
from typing import Any, Iterator, Optional

import typer

from tfreview.errors import TfreviewError


app = typer.Typer(
    name="tfreview",
    help="Review, approve and release Terraform plans of ECS web apps (blue/green).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(str, Enum):
    text = "text"
    json = "json"


class Forge(str, Enum):
    github = "github"
    gitlab = "gitlab"


class Level(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"
    policy = "policy"  # only the policy checks: exit 4 when they block the plan


class ReportFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    html = "html"
    json = "json"


_state: dict[str, Any] = {"store": None}
FormatOpt = typer.Option(Format.text, "--format", "-f", help="text for people, json for scripts (stable shape).")
FailOnOpt = typer.Option(None, "--fail-on", help="CI gate: exit 4 after printing when the review has a risk flag at "
                         "this level or above, or the plan is blocked by policy (policy: only then).")


def leave_when_done(*keep: Any) -> None:
    """The command is done and has nothing left to write but its flushed output: `main` then ends the process
    (exit 0) as soon as that output is flushed, with `os._exit` once the exit handlers ran, instead of freeing
    `keep` (what the command built: `audit verify`'s 10^5 parsed audit entries take ~0.2 s to free) and the rest of
    the interpreter object by object (tfreview.cli.entry.main, `_leave`). Only for a read-only command whose children
    are reaped."""
    _state["leave"] = keep


def _console(stderr: bool = False) -> Any:
    from tfreview.console import SafeConsole

    console = SafeConsole(stderr=stderr, highlight=False, soft_wrap=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = 160  # logs and pipes: do not fold reviews and tables at 80 columns
    return console


def _settings() -> Any:
    from tfreview.config import load_settings

    return load_settings({"store": _state["store"]})


class Progress:
    """Shows terraform's progress: a live status line on a terminal, deduplicated log lines otherwise."""

    def __init__(self, title: str) -> None:
        self.console = _console(stderr=True)
        self.title = title
        self.status: Any = None  # rich's Status while on a terminal
        self.last = ""

    def __enter__(self) -> "Progress":
        from rich.text import Text

        if self.console.is_terminal:  # Text, not str: rich reads a str status as markup
            self.status = self.console.status(Text(self.title))
            self.status.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)

    def __call__(self, event: dict[str, Any]) -> None:
        from rich.text import Text

        from tfreview.terraform import progress_text

        text = progress_text(event)
        if not text or text == self.last:
            return
        self.last = text
        if self.status is not None:
            self.status.update(Text(f"{self.title}: {text}"))
        elif event.get("type") in ("apply_start", "apply_complete", "change_summary", "rollout") or (
                event.get("type") == "apply_progress" and event.get("tfreview")):  # ours: every progress interval
            if self.title:  # in logs, say what we are doing once something happens (not before a refusal)
                self.console.print(self.title, markup=False)
                self.title = ""
            self.console.print(f"  {text}", markup=False, soft_wrap=True)

    @contextmanager
    def rollout(self) -> Iterator[Any]:
        """A live rollout panel (terminal) or coloured log lines (logs), with the status spinner paused."""
        from tfreview.rollout.display import LiveRollout

        if self.status is not None:
            self.status.stop()
        try:
            with LiveRollout(self.console) as live:
                yield live
        finally:
            if self.status is not None:
                self.status.start()

    def log(self, line: str) -> None:
        """A line of the rollout story (always printed, deduplicated by the caller)."""
        self.console.print(f"  {line}", markup=False, soft_wrap=True)


def _context(title: str | None = None, settings: Any = None, sign: bool = True) -> Any:
    """(Context, Progress) of a command; `sign`: the command decides something, so it needs the user's signing key
    and the store's policy (the principal is the one the policy gives that key)."""
    from tfreview.usecases.context import Context

    progress = Progress(title) if title else None
    ctx = Context.create(settings or _settings(), on_event=progress, sign=sign)
    if sign:  # what a command decides is told to the targets of [notify.<env>] (docs/notifications.md)
        from tfreview.usecases.notify import attach

        attach(ctx, ctx.settings, os.environ, enabled=not _state.get("no_notify"))
        _suggest_pin(ctx)
    return ctx, progress


def _suggest_pin(ctx: Any) -> None:
    """S3 mode without a pinned root: say once, on stderr, how to pin it (anyone who can write the bucket could
    otherwise replace the whole store, root and all)."""
    if ctx.settings.store.startswith("s3://") and not ctx.settings.policy_root and ctx.policy is not None:
        from tfreview.trust.root import pin_of

        _console(stderr=True).print(
            f"warning: tfreview.toml pins no policy root: add these two lines to it, in a reviewed commit: [trust] "
            f'then policy_root = "{pin_of(ctx.policy.versions[1])}" (docs/approvals.md)', markup=False,
            highlight=False, soft_wrap=True)


JSON_SCHEMA_VERSION = 1


def _emit_json(obj: Any) -> None:
    """One JSON document on stdout; every object (each item of a list) carries `schema_version`."""
    def versioned(doc: Any) -> Any:
        return {"schema_version": JSON_SCHEMA_VERSION, **doc} if isinstance(doc, dict) else doc

    obj = [versioned(o) for o in obj] if isinstance(obj, list) else versioned(obj)
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _print(text: str) -> None:
    _console().print(text, markup=False, highlight=False, soft_wrap=True)


def _warn(text: str) -> None:
    """`warning: TEXT` on stderr (the command goes on)."""
    _console(stderr=True).print(f"warning: {text}", markup=False, highlight=False)


# -- global options -------------------------------------------------------------------------------------------
STORE_HELP = "Store: a directory (default .tfreview) or s3://bucket/prefix."


def _set_store(store: Optional[str]) -> None:
    if store is not None and not store.strip():  # "" would make the working directory the store
        raise _bad("--store is empty", "pass a directory or s3://bucket/prefix, or leave it out for .tfreview")
    _state["store"] = store


def _show_version(value: bool) -> None:
    if value:
        from tfreview import __version__

        sys.stdout.write(f"tfreview {__version__}\n")
        raise typer.Exit()


NO_NOTIFY_HELP = "Send no notifications for this command ([notify.<env>] in tfreview.toml)."


def _set_no_notify(value: Optional[bool]) -> None:
    if value:
        _state["no_notify"] = True


@app.callback()
def _main(store: Optional[str] = typer.Option(None, "--store", envvar="TFREVIEW_STORE", help=STORE_HELP),
          no_notify: bool = typer.Option(False, "--no-notify", help=NO_NOTIFY_HELP),
          version: bool = typer.Option(False, "--version", is_eager=True, callback=_show_version,
                                       help="Print tfreview's version and exit.")) -> None:
    _set_store(store)
    _set_no_notify(no_notify)


# -- errors -------------------------------------------------------------------------------------------------------
def _bad(message: str, hint: str) -> TfreviewError:
    from tfreview.errors import BadInput

    return BadInput(message, hint)
