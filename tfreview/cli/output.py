"""Output the commands share: a review on the terminal or in a file (written atomically), its checks, the CI
gate (--fail-on), a confirmation prompt, and the warning about interrupted applies.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from tfreview.cli.app import Level, ReportFormat, _bad, _console, _warn
from tfreview.errors import TfreviewError
from tfreview.text import visible


def _step_summary(ctx: Any, record: dict[str, Any], review: Any) -> None:
    """Under GitHub Actions, append the review to the job summary ($GITHUB_STEP_SUMMARY); a failure only warns."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    from tfreview.usecases.comment import append_step_summary
    from tfreview.render.comment import render_summary
    from tfreview.usecases.decide import approval_progress

    warning = append_step_summary(path, render_summary(record, review, approval_progress(ctx, record)))
    if warning:
        _warn(warning)


def _gate(review: Any, fail_on: Optional[Level], record: dict[str, Any] | None = None) -> None:
    """`--fail-on LEVEL`: after the review is out, exit 4 when a risk flag is at LEVEL or above; `--fail-on
    policy` (or any level) exits 4 when the plan's policy checks block it."""
    if fail_on is None:
        return
    from tfreview.errors import RiskGate
    from tfreview.plan.risk import at_or_above
    from tfreview.review.checks import blocking_lines

    blocked = blocking_lines((record or {}).get("policy_checks"))
    if blocked:
        raise RiskGate(f"blocked by policy: {blocked[0]}" + (f" (+{len(blocked) - 1} more)" if len(blocked) > 1 else ""),
                       f"fix what the policy checks say; the gate is --fail-on {fail_on.value}")
    if fail_on.value == "policy":
        return

    hits = at_or_above(review.risks, fail_on.value)
    if hits:
        first = hits[0]
        raise RiskGate(f"{len(hits)} risk flag(s) at {fail_on.value} or above, first: {first.level} "
                       f"{first.address}: {first.reason}", f"review them; the gate is --fail-on {fail_on.value}")


def _confirm(question: str) -> None:
    """Ask on the terminal (stderr) and read the answer from stdin; anything but yes aborts (exit 1).

    Not click.confirm: it writes the prompt's trailing space to stdout, which must hold only the result."""
    sys.stderr.write(f"{visible(question, keep_lines=False)} [y/N]: ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise typer.Abort()


def _plan_json(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "app", "env", "version", "plan_kind", "plan_sha256", "package_sha256", "planner", "created_at",
            "terraform_version", "state_lineage", "state_serial", "terraform_options")
    doc = {**{k: record.get(k) for k in keys}, "sha256": record["plan_sha256"], **record["summary"],
           "schema_version": 2}  # 2: policy_checks (issue 22)
    if record.get("policy_checks"):  # only plans of environments with Rego checks
        from tfreview.review.checks import blocking_lines

        doc["policy_checks"] = {**record["policy_checks"], "blocked": bool(blocking_lines(record["policy_checks"]))}
    return doc


def _print_checks(record: dict[str, Any], console: Any = None) -> None:
    """The "Blocked by policy" / policy checks lines, before the review (nothing without checks)."""
    from tfreview.render.checks import text_section

    section = text_section(record.get("policy_checks"))
    if section:
        (console or _console()).print(section.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)


def _show_review(review: Any, full: bool = False, console: Any = None, **filters: Any) -> None:
    """The review: rich's layout on a terminal. Piped or logged: the panels unboxed, and the per-resource diff
    written as plain text (the same characters, without rich's per-line layout: several times faster on big
    plans, docs/benchmarks.md)."""
    from tfreview.render.terminal import render_summary, render_terminal, resources_plain

    console = console or _console()
    if console.is_terminal:  # uncropped: a word wider than the terminal runs on, never split (docs/design-notes.md)
        console.print(render_terminal(review, full=full, **filters), crop=False)
        return
    from tfreview.plan.pause import paused_gc
    from tfreview.text import visible

    with paused_gc():  # the per-resource trees are built here: millions of small, acyclic objects
        diff = resources_plain(review, full=full, **filters)  # first: a bad filter is refused before any output
        console.print(_unboxed(render_summary(review)), crop=False)
    console.file.write(visible(diff))
    console.file.flush()


def _unboxed(renderable: Any) -> Any:
    """Piped or logged output: each panel becomes its title as a heading over its body (no box drawing)."""
    from rich.console import Group
    from rich.panel import Panel

    if isinstance(renderable, Group):
        return Group(*(_unboxed(r) for r in renderable.renderables))
    if isinstance(renderable, Panel):
        from tfreview.render.terminal import unboxed

        return unboxed(renderable)
    return renderable


def _output_review(review: Any, fmt: ReportFormat, output: Optional[Path], checks: Any = None, **opts: Any) -> None:
    if fmt is ReportFormat.text and output is None:
        _print_checks({"policy_checks": checks})
        _show_review(review, full=opts.get("full", False),
                     **{k: v for k, v in opts.items() if k != "full" and v})
        return
    from tfreview.render import render as render_as
    from tfreview.render.checks import with_checks

    text = with_checks(render_as(review, fmt.value, **{k: v for k, v in opts.items() if v}), fmt.value, checks)
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        _write_atomic(output, text)
        _console(stderr=True).print(f"wrote {output}", markup=False)


def _check_output(path: Path | None) -> None:
    """`--output` names a regular file (or a new one) in an existing directory: a symlink, named pipe, device or
    directory is refused (exit 2) before any work, so nothing is written through or replaced."""
    if path is None:
        return
    import stat

    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise _bad(f"cannot write {path}: {path.parent} is not a directory",
                       "pass --output in an existing, writable directory") from None
        return
    except OSError as exc:
        raise _bad(f"cannot write {path}: {exc.strerror}", "pass --output in an existing, writable directory") from None
    if not stat.S_ISREG(mode):
        kind = {stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a named pipe", stat.S_IFDIR: "a directory",
                stat.S_IFCHR: "a device", stat.S_IFBLK: "a device", stat.S_IFSOCK: "a socket"}.get(
                    stat.S_IFMT(mode), "not a regular file")
        raise _bad(f"--output {path} is {kind}", "--output writes regular files only: name a new or regular file, "
                   "or leave --output out and redirect stdout")


def _write_atomic(path: Path, text: str) -> None:
    """Write `text` to the regular file `path` atomically (a temp file beside it, then a rename); a full disk
    is an error (exit 1), an unwritable place bad input (exit 2); nothing is left half-written."""
    import errno
    import tempfile

    _check_output(path)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
            raise TfreviewError(f"cannot write {path}: {exc.strerror}", "free some space and run it again") from None
        raise _bad(f"cannot write {path}: {exc.strerror}", "pass --output in an existing, writable directory") from None


def _warn_interrupted(store: Any, app_name: str | None = None, env: str | None = None,
                      plan_ids: Any = None) -> None:
    """Tell about applies that stopped without an outcome (killed, host lost) and the locks they left
    (`plan_ids`: only those plans can be such applies)."""
    from tfreview.usecases.unlock import stale_warnings

    for line in stale_warnings(store, app_name, env, plan_ids):
        _warn(line)
