"""The typer app: parse arguments, call one workflow function, render, map errors to exit codes.

Kept light on import: boto3, hcl2, moto and the review engine load only inside the commands that use them.
"""
from __future__ import annotations

import json
import os
import re
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, Optional

import typer

from tfreview.errors import EXIT_ERROR, EXIT_RISK, EXIT_USAGE, Interrupted, TfreviewError
from tfreview.text import visible

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
    from tfreview.workflow import Context

    progress = Progress(title) if title else None
    ctx = Context.create(settings or _settings(), on_event=progress, sign=sign)
    if sign:  # what a command decides is told to the targets of [notify.<env>] (docs/notifications.md)
        from tfreview.notify import attach

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


# -- package --------------------------------------------------------------------------------------------------
@app.command()
def init(app_name: str = typer.Option(..., "--app", help="Application name."),
         directory: Path = typer.Option(Path("."), "--dir", help="Repository to write into (default: here)."),
         fmt: Format = FormatOpt) -> None:
    """Scaffold a working terraform/ tree (ECS blue/green module, envs sandbox/qa/prod), tfreview.toml and a starter
    policy.toml (you as its admin and signer), then print the commands that remain."""
    from tfreview.init import first_day, scaffold
    from tfreview.workflow import check_name

    from tfreview.errors import TfreviewError

    check_name("app", app_name)
    try:
        settings = _settings()
    except TfreviewError:  # a tfreview.toml there already: scaffold says so
        settings = None
    day = first_day(settings)
    files = scaffold(app_name, directory, pin=day.pin, policy=day.policy)
    steps = day.steps(app_name, "policy.toml" in files)
    if fmt is Format.json:
        _emit_json({"app": app_name, "directory": str(directory), "files": files, "signing_key": day.key,
                    "principal": day.principal, "policy_root": day.pin, "next": steps})
        return
    _print(f"wrote {len(files)} files into {directory}: terraform/, tfreview.toml"
           f"{' and policy.toml' if 'policy.toml' in files else ''}")
    if day.key_problem:
        _print(f"no signing key yet: {day.key_problem}")
    elif day.key:
        _print(f"your signing key: {day.key} ({day.principal} in policy.toml)" if day.policy else
               f"your signing key: {day.key}")
    _print("next:")
    for number, step in enumerate(steps, start=1):
        _print(f"  {number}. {step}")


@app.command()
def package(app_name: str = typer.Option(..., "--app", help="Application name."),
            version: str = typer.Option(..., "--version", help="Version to package (image tag)."),
            source: Optional[Path] = typer.Option(None, "--source", help="Terraform tree (default: ./terraform)."),
            fmt: Format = FormatOpt) -> None:
    """Build and store terraform.zip for a version (deterministic: same content, same sha256)."""
    ctx, _ = _context()
    from tfreview.workflow import package as do_package

    result = do_package(ctx, app_name, version, str(source) if source else None)
    if fmt is Format.json:
        _emit_json({k: result[k] for k in ("app", "version", "sha256", "size", "status", "created_at", "source_commit")}
                   | {"files": len(result["files"])})
        return
    verb = "already packaged (same content)" if result["status"] == "unchanged" else "packaged"
    _print(f"{app_name} {version} {verb}: {len(result['files'])} files, sha256 {result['sha256']}")


# -- plan -----------------------------------------------------------------------------------------------------
@app.command()
def plan(app_name: str = typer.Option(..., "--app", help="Application name."),
         version: str = typer.Option(..., "--version", help="Packaged version to deploy."),
         env: str = typer.Option(..., "--env", help="Environment (sandbox, qa, prod...)."),
         detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode",
                                                help="Exit 0 when there are no changes, 2 when there are."),
         full: bool = typer.Option(False, "--full", help="Show every attribute, not only the changed ones."),
         var: Optional[list[str]] = typer.Option(None, "--var", "-var", metavar="NAME=VALUE",
                                                 help="Set a root variable, as terraform's -var (repeatable)."),
         var_file: Optional[list[str]] = typer.Option(None, "--var-file", "-var-file", metavar="FILE",
                                                      help="Read variables from a .tfvars file (repeatable)."),
         target: Optional[list[str]] = typer.Option(None, "--target", "-target", metavar="ADDRESS",
                                                    help="Plan only this resource or module (repeatable; a risk)."),
         replace: Optional[list[str]] = typer.Option(None, "--replace", "-replace", metavar="ADDRESS",
                                                     help="Force replacement of this resource (repeatable)."),
         destroy: bool = typer.Option(False, "--destroy", "-destroy", help="Plan to destroy everything."),
         refresh_only: bool = typer.Option(False, "--refresh-only", "-refresh-only",
                                           help="Plan only to update the state to match the real resources."),
         fail_on: Optional[Level] = FailOnOpt,
         fmt: Format = FormatOpt) -> None:
    """Plan a version for an environment (the new version goes to the idle colour), store it, print the review."""
    settings = _settings()
    options = _terraform_options(settings, app_name, var, var_file, target, replace, destroy, refresh_only)
    ctx, progress = _context(f"planning {app_name} {version} for {env}", settings)
    from tfreview.workflow import plan as do_plan

    _warn_interrupted(ctx.store, app_name, env)
    with progress:
        planned = do_plan(ctx, app_name, version, env, options=options)
    record, review = planned.record, planned.review
    if fmt is Format.json:
        _emit_json(_plan_json(record))
    else:
        _print_checks(record)
        _show_review(review, full=full)
        _print(f"\nplan id: {record['id']}   sha256: {record['plan_sha256']}")
        _print(f"next: tfreview approve {record['id']}")
    _step_summary(ctx, record, review)
    _gate(review, fail_on, record)
    if detailed_exitcode and review.counts.has_changes:
        _state["changes"] = True  # exit 2 means "changes" here, not bad input (see main)
        raise typer.Exit(2)


def _terraform_options(settings: Any, app_name: str, var: Optional[list[str]], var_file: Optional[list[str]],
                       target: Optional[list[str]], replace: Optional[list[str]], destroy: bool,
                       refresh_only: bool) -> Any:
    """The plan controls checked at the door (exit 2, one line): NAME=VALUE, readable var-files, addresses."""
    from tfreview.plan.options import parse_options

    files = []
    for path in var_file or ():
        file = Path(path).expanduser()
        if not file.is_file():
            raise _bad(f"--var-file {path} {'is not a file' if file.exists() else 'does not exist'}",
                       "give the path of a .tfvars or .tfvars.json file")
        files.append(str(file.resolve()))  # terraform runs in a working directory of its own
    return parse_options(var or (), files, target or (), replace or (), destroy, refresh_only,
                         reserved=settings.roles_for(app_name).release_variables)
def _step_summary(ctx: Any, record: dict[str, Any], review: Any) -> None:
    """Under GitHub Actions, append the review to the job summary ($GITHUB_STEP_SUMMARY); a failure only warns."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    from tfreview.comment import append_step_summary
    from tfreview.render.comment import render_summary
    from tfreview.workflow import approval_progress

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


# -- render / show -------------------------------------------------------------------------------------------
@app.command()
def render(file: Path = typer.Argument(..., help="A .tfplan file or `terraform show -json` output (- for stdin)."),
           fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", "-f"),
           output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout."),
           full: bool = typer.Option(False, "--full", help="Show every attribute."),
           action: Optional[list[str]] = typer.Option(None, "--action", help="Only resources with this action."),
           rtype: Optional[list[str]] = typer.Option(None, "--type", help="Only resources of this type."),
           address: Optional[list[str]] = typer.Option(None, "--address", help="Only addresses containing this."),
           fail_on: Optional[Level] = FailOnOpt) -> None:
    """Review any plan without storing it (`-` reads plan JSON from stdin)."""
    _check_output(output)
    stdin = str(file) == "-"
    try:
        exists, regular = file.exists(), file.is_file()
    except OSError as exc:  # a name too long, a loop of links...
        raise _bad(f"cannot read {file}: {exc.strerror}", "pass a .tfplan file or the output of terraform show -json") from None
    if not stdin and not regular:
        raise _bad(f"{file} {'is not a file' if exists else 'does not exist'}",
                   "pass a .tfplan file or the output of terraform show -json")
    try:
        data = sys.stdin.buffer.read() if stdin else file.read_bytes()
    except OSError as exc:
        raise _bad(f"cannot read {file}: {exc.strerror}", "pass a readable plan file") from None
    if not data.lstrip().startswith((b"{", b"[")):
        if stdin:
            raise _bad("stdin holds no plan JSON", "pipe terraform show -json into it, or pass a .tfplan file's path")
        if not data.startswith(b"PK\x03\x04"):  # a saved plan is a zip archive: anything else is not a plan
            raise _bad(f"{file} is neither plan JSON nor a saved plan file",
                       "pass a .tfplan file or the output of terraform show -json")
        data = _show_plan_file(file)
    from tfreview.plan import review_plan

    review = review_plan(data)
    _output_review(review, fmt, output, full=full, actions=action, types=rtype, addresses=address)
    _gate(review, fail_on)


def _show_plan_file(file: Path) -> bytes:
    """`terraform show -json` of a binary plan, run in the plan's directory (it must be initialised there).
    What no `terraform plan -out` wrote (not a zip, no tfplan entry), or what terraform cannot read, is bad
    input (exit 2), refused before terraform runs where possible."""
    import zipfile

    from tfreview.errors import TerraformFailed
    from tfreview.terraform import Terraform

    hint = "pass a file saved by `terraform plan -out` (in its initialised directory) or its `terraform show -json`"
    try:
        with zipfile.ZipFile(file) as zf:
            if "tfplan" not in zf.namelist():
                raise _bad(f"{file} is a zip archive but not a saved plan (no tfplan inside)", hint)
    except (zipfile.BadZipFile, OSError, EOFError):
        raise _bad(f"{file} is not a saved plan file (a damaged zip archive)", hint) from None
    try:
        return Terraform(_settings(), file.resolve().parent).show_json(str(file.resolve()))
    except TerraformFailed as exc:
        raise _bad(f"terraform cannot read {file} as a saved plan: {exc.message}", hint) from None


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


@app.command()
def show(plan_id: str = typer.Argument(..., help="Plan id (from tfreview plan or tfreview history)."),
         fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", "-f"),
         output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout."),
         full: bool = typer.Option(False, "--full", help="Show every attribute."),
         fail_on: Optional[Level] = FailOnOpt) -> None:
    """Review a stored plan."""
    from tfreview.workflow import load_plan, load_review, open_store

    _check_output(output)
    store = open_store(_settings().store)
    record = load_plan(store, plan_id)
    review = load_review(store, record)
    if fmt is ReportFormat.text and output is None:
        _print(f"plan {record['id']}: {record['app']} {record['version']} -> {record['env']} "
               f"(planned by {record['planner']} at {record['created_at']})")
    _output_review(review, fmt, output, full=full, checks=record.get("policy_checks"))
    _gate(review, fail_on, record)


# -- comment ----------------------------------------------------------------------------------------------------
@app.command()
def comment(plan_id: str = typer.Argument(..., help="Plan id."),
            forge: Optional[Forge] = typer.Option(None, "--forge", help="github or gitlab (default: the CI you run in)."),
            repo: Optional[str] = typer.Option(None, "--repo", help="OWNER/REPO (GitHub) or project id/path (GitLab); "
                                               "default $GITHUB_REPOSITORY / $CI_PROJECT_ID."),
            number: Optional[int] = typer.Option(None, "--pr", "--mr", help="Pull/merge request number (default: "
                                                 "from the CI event / $CI_MERGE_REQUEST_IID)."),
            api_url: Optional[str] = typer.Option(None, "--api-url", help="API root for GitHub Enterprise or self-hosted "
                                                  "GitLab (default $GITHUB_API_URL / $CI_API_V4_URL)."),
            fmt: Format = FormatOpt) -> None:
    """Post the plan's review to the pull/merge request, updating tfreview's earlier comment for the same app and env."""
    from tfreview.comment import resolve_target, upsert

    target = resolve_target(os.environ, forge=forge.value if forge else None, project=repo, number=number, api_url=api_url)
    ctx, _ = _context(sign=False)  # a comment decides nothing: no signing key needed
    from tfreview.render.comment import marker, render_comment
    from tfreview.workflow import approval_progress, load_plan, load_review

    record = load_plan(ctx.store, plan_id)
    body = render_comment(record, load_review(ctx.store, record), approval_progress(ctx, record))
    posted = upsert(target, body, marker(record["app"], record["env"]))
    if fmt is Format.json:
        _emit_json({"plan_id": plan_id, "forge": target.forge, "action": posted.action,
                    "comment_id": posted.comment_id, "url": posted.url, "chars": len(body)})
        return
    _print(f"{posted.action} comment {posted.comment_id} on {posted.url or target.project}")


# -- approve / reject ----------------------------------------------------------------------------------------
@app.command()
def approve(plan_id: str = typer.Argument(..., help="Plan id."),
            comment: str = typer.Option("", "--comment", "-m", help="Why you approve (recorded)."),
            yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (scripts)."),
            fmt: Format = FormatOpt) -> None:
    """Approve a plan: binds your approval to this exact plan's bytes, package and state."""
    from tfreview.render.checks import approve_lines, still_needed
    from tfreview.workflow import approval_status, decide, load_plan, load_review

    ctx, _ = _context()
    record = None  # with --yes, `decide` reads the plan
    if not yes:
        record = load_plan(ctx.store, plan_id)
        if not sys.stdin.isatty():
            raise _bad("approve needs a confirmation", "run it in a terminal, or pass --yes in scripts")
        status = approval_status(ctx, record)  # refuses before the review is read if you may not approve
        # What the approver reads and the question go to the terminal (stderr): stdout keeps only the result.
        term = _console(stderr=True)
        _show_review(load_review(ctx.store, record), console=term)
        lines = [f"\nplanned by {record['planner']} at {record['created_at']}; needs {status['required']} "
                 f"approval(s), approved so far by: {', '.join(status['approved_by']) or 'nobody'}"]
        lines += [f"  risk: {reason}" for reason in status["risk_reasons"]]
        if status["escalation"]:
            lines.append(f"  one more approver needed because: {'; '.join(status['escalation'])}")
        lines += approve_lines(record.get("policy_checks"), status["approved_by"])  # Rego approval rules (issue 22)
        _print_checks(record, console=term)
        for line in lines:
            term.print(line, markup=False, highlight=False, soft_wrap=True)
        _confirm(f"Approve plan {plan_id} ({record['summary'].get('summary_line')}) as {ctx.user}?")
    doc = decide(ctx, plan_id, "approve", comment, record)
    from tfreview.review.checks import blocking_lines

    record = record or load_plan(ctx.store, plan_id)
    blocked = blocking_lines(record.get("policy_checks"))
    if blocked:
        _warn(f"plan {plan_id} is blocked by policy ({blocked[0]}): approvals do not let it apply "
              "(only break-glass does)")
    if (record.get("policy_checks") or {}).get("approvals"):  # Rego approval rules not met yet (issue 22)
        from tfreview.workflow import approvals_of

        approved = [a.approver for a in approvals_of(ctx.store, plan_id) if a.kind == "approve"]
        for line in still_needed(record["policy_checks"], plan_id, approved):
            _warn(line)
    if fmt is Format.json:
        _emit_json(doc)
        return
    _print(f"approved {plan_id} as {doc['approver']} (plan sha256 {doc['plan_sha256'][:12]})")


@app.command()
def reject(plan_id: str = typer.Argument(..., help="Plan id."),
           reason: str = typer.Option(..., "--reason", help="Why (recorded, shown to the planner)."),
           fmt: Format = FormatOpt) -> None:
    """Reject a plan: it can no longer be applied."""
    from tfreview.workflow import decide

    if not reason.strip():
        raise _bad("reject needs a reason", 'say what is wrong: tfreview reject ID --reason "..."')
    ctx, _ = _context()
    doc = decide(ctx, plan_id, "reject", reason)
    if fmt is Format.json:
        _emit_json(doc)
        return
    _print(f"rejected {plan_id} as {doc['approver']}: {reason}")


# -- apply ------------------------------------------------------------------------------------------------------
@app.command()
def apply(plan_id: str = typer.Argument(..., help="Plan id."),
          no_wait: bool = typer.Option(False, "--no-wait", help="Apply only: do not watch the rollout nor shift traffic."),
          steps: Optional[str] = typer.Option(None, "--steps", help="Traffic steps in percent, e.g. 10,50,100 (default: all at once)."),
          bake: float = typer.Option(0.0, "--bake", min=0.0, help="Seconds to wait (and re-check health) after each traffic step."),
          verify_cmd: Optional[str] = typer.Option(None, "--verify-cmd", help="Command run against the test listener before traffic moves ($TFREVIEW_TEST_URL)."),
          alarm: Optional[list[str]] = typer.Option(None, "--alarm", metavar="NAME", help="CloudWatch alarm name (repeatable): in ALARM during the watch or a bake, it stops the release and traffic goes back."),
          break_glass: bool = typer.Option(False, "--break-glass", help="Apply without approvals (allowed identities only)."),
          reason: Optional[str] = typer.Option(None, "--reason", help="Why break glass (required with --break-glass)."),
          fmt: Format = FormatOpt) -> None:
    """Apply an approved, unchanged, fresh plan, then watch the rollout and shift traffic (blue/green)."""
    import math

    if break_glass and not (reason or "").strip():
        raise _bad("--break-glass needs --reason TEXT", "say why the approval process is bypassed")
    if verify_cmd is not None and not verify_cmd.strip():
        raise _bad("--verify-cmd is empty", "pass the command to run against the test listener, or leave it out")
    if not math.isfinite(bake) or bake > 86_400:
        raise _bad(f"--bake {bake} is not a number of seconds up to a day", "pass e.g. --bake 60")
    from tfreview.release import ReleaseOptions, apply_release
    from tfreview.rollout.traffic import weight_steps

    percents = weight_steps(steps)  # checked even with --no-wait: every option value is checked
    from tfreview.rollout.alarms import check_alarm_name

    for name in alarm or ():
        check_alarm_name(name)
    if alarm and no_wait:
        raise _bad("--alarm needs the release to be watched", "drop --no-wait, or drop --alarm")
    settings = _settings()
    ctx, progress = _context(f"applying {plan_id}", settings)
    from tfreview.workflow import load_plan

    record = load_plan(ctx.store, plan_id)
    options = None if no_wait else ReleaseOptions(percents, bake_s=bake, verify_cmd=verify_cmd,
                                                  timeout_s=settings.rollout_timeout_s, poll_s=settings.rollout_poll_s,
                                                  alarms=settings.alarms_for(record["app"], record["env"], tuple(alarm or ())))
    _warn_interrupted(ctx.store, record["app"], record["env"])
    with progress:
        result = apply_release(ctx, plan_id, options=options, log=progress.log, display=progress.rollout,
                               break_glass_reason=reason if break_glass else None)
    if fmt is Format.json:
        _emit_json(result)
        return
    rollout = result.get("rollout") or {}
    live = f"; live colour: {rollout['live_color']}" if rollout.get("live_color") else ""
    _print(f"applied {plan_id}: {result['outcome']}{live}")


@app.command()
def status(app_name: str = typer.Option(..., "--app"), env: str = typer.Option(..., "--env"),
           fmt: Format = FormatOpt) -> None:
    """Live colour, version per colour, traffic weights, last release and its outcome."""
    from tfreview.release import status as do_status

    ctx, _ = _context(sign=False)
    st = do_status(ctx, app_name, env)
    _warn_interrupted(ctx.store, app_name, env)
    if st["last_apply"].get("damaged"):  # what status shows comes from that apply: say it cannot be trusted
        _warn(st["last_apply"]["damaged"])
    if fmt is Format.json:
        _emit_json(st)
        return
    source = "read from the production listener" if st["weights_source"] == "live" else \
        "as recorded at the last apply (AWS did not answer)"
    _print(f"{app_name} in {env} ({st['strategy']}): live colour {st['live_color']}; weights {source}")
    for colour, version in sorted((st["versions"] or {}).items()):
        run = st["running"].get(colour)
        runs = "" if run is None or run["task_definition"] is None else f"; runs {run['version'] or 'unknown'} ({run['task_definition']}, " \
            f"{(run['rollout_state'] or 'no rollout state').lower()}, {run['running']}/{run['desired']} tasks)"
        _print(f"  {colour:<6} {version or 'unknown':<12} {st['weights'].get(colour, 0):>3}% of traffic{runs}")
    for colour in st["differs"]:
        _print(f"  {colour}: the state records {st['versions'][colour]} but its service runs "
               f"{st['running'][colour]['version']} (the deployment did not take: a circuit-breaker rollback?); "
               f"do not shift traffic to {colour} before a good release")
    if st["versions"] and not any(r["task_definition"] for r in st["running"].values()):
        _print("  (versions as the state records them: ECS did not answer)")
    last = st["last_release"]
    if last:
        why = f": {last['reason']}" if last.get("reason") else ""
        _print(f"last release: {last['version']} {last['outcome']}{why} ({last['plan_id']}, {last['finished_at']})")


@app.command()
def drift(app_name: str = typer.Option(..., "--app", help="Application name."),
          env: str = typer.Option(..., "--env", help="Environment to check."),
          fmt: Format = FormatOpt) -> None:
    """Compare what is deployed with its state (a refresh-only plan): exit 0 no drift, 2 drift, 1 any error (as
    terraform's -detailed-exitcode), for scheduled CI."""
    _state["detailed"] = True  # exit 2 is kept for "drift" (see main)
    from tfreview.workflow import check_names

    check_names(app=app_name, env=env)  # a bad name is named before the signing key is looked for
    ctx, progress = _context(f"checking {app_name} in {env} for drift")
    from tfreview.drift import drift as do_drift

    with progress:
        result = do_drift(ctx, app_name, env)
    if fmt is Format.json:
        _emit_json(result)
    elif result["drifted"]:
        _print(f"{app_name} in {env}: {len(result['resources'])} resource(s) changed outside Terraform "
               f"(since {result['version']}, plan {result['plan_id']}):")
        for r in result["resources"]:
            _print(f"  {r['action']:<8} {r['address']} ({', '.join(r['attributes'])})")
    else:
        _print(f"{app_name} in {env}: no drift (checked against {result['version']}, plan {result['plan_id']})")
    if result["drifted"]:
        _state["changes"] = True
        raise typer.Exit(2)


@app.command()
def rollback(app_name: str = typer.Option(..., "--app"), env: str = typer.Option(..., "--env"),
             yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (scripts)."),
             fmt: Format = FormatOpt) -> None:
    """Move all production traffic back to the previous colour (it still runs the previous version)."""
    from tfreview.release import rollback as do_rollback
    from tfreview.workflow import check_names

    check_names(app=app_name, env=env)  # before the question shows them
    if not yes and not sys.stdin.isatty():
        raise _bad("rollback needs a confirmation", "run it in a terminal, or pass --yes in scripts")
    if not yes:
        _confirm(f"Move all traffic of {app_name} in {env} back to the previous colour?")
    ctx, progress = _context(f"rolling back {app_name} in {env}")
    with progress:
        result = do_rollback(ctx, app_name, env, progress.log)
    if fmt is Format.json:
        _emit_json(result)
        return
    if result.get("needs_approval"):
        _print(f"rollback planned as {result['plan_id']}; policy wants approvals: tfreview approve {result['plan_id']}")
    else:
        _print(f"rolled back: 100% of traffic on {result['target']} ({result['version']}), plan {result['plan_id']}")


@app.command()
def promote(app_name: str = typer.Option(..., "--app"), version: str = typer.Option(..., "--version"),
            source: str = typer.Option(..., "--from", help="Environment the version was released in."),
            target: str = typer.Option(..., "--to", help="Environment to plan it for."),
            fmt: Format = FormatOpt) -> None:
    """Plan a version for the next environment, only if it was released successfully in the previous one."""
    from tfreview.release import promote as do_promote

    ctx, progress = _context(f"planning {app_name} {version} for {target}")
    with progress:
        planned = do_promote(ctx, app_name, version, source, target)
    record = planned.record
    _step_summary(ctx, record, planned.review)
    if fmt is Format.json:
        _emit_json(_plan_json(record))
        return
    _show_review(planned.review)
    _print(f"\nplan id: {record['id']}   sha256: {record['plan_sha256']}")


# -- history ----------------------------------------------------------------------------------------------------
@app.command()
def history(app_name: Optional[str] = typer.Option(None, "--app"), env: Optional[str] = typer.Option(None, "--env"),
            version: Optional[str] = typer.Option(None, "--version"),
            person: Optional[str] = typer.Option(None, "--person", help="Planned or approved by this identity."),
            since: Optional[str] = typer.Option(None, "--since", help="ISO date/time, e.g. 2026-11-01."),
            until: Optional[str] = typer.Option(None, "--until", help="ISO date/time."),
            limit: int = typer.Option(50, "--limit", min=0, help="Releases per page (0: all)."),
            page: int = typer.Option(1, "--page", min=1, help="Page number, 1 is the newest."),
            expand: bool = typer.Option(False, "--expand", help="Show each release's traffic steps."),
            release: Optional[str] = typer.Option(None, "--release", help="One release (its deploy plan id), expanded."),
            rebuild_index: bool = typer.Option(False, "--rebuild-index",
                                               help="Rebuild the store's history index from the records first."),
            fmt: Format = FormatOpt) -> None:
    """Releases (a deploy and its traffic steps) and plans, newest first, one line each."""
    from tfreview.history import query
    from tfreview.store import open_store
    from tfreview.workflow import check_name

    if release is not None:
        check_name("plan id", release)
    store = open_store(_settings().store)
    found = query(store, app_name, env, version, person, since, until, limit=limit + 1 if limit else None,
                  offset=(page - 1) * limit, releases=True, release=release, rebuild=rebuild_index)
    more = bool(limit) and len(found.rows) > limit
    rows = found.rows[:limit] if limit else found.rows
    if expand or release:  # the expanded view presents each plan: its record's signature is checked first
        from tfreview.trust.witness import flag_damaged

        rows = flag_damaged(store, rows)
    _warn_interrupted(store, app_name, env, found.unfinished)  # on stderr: JSON on stdout stays clean
    for row in rows:
        if row.get("error"):
            _warn(row["error"])
    if more:
        _console(stderr=True).print(f"more releases: --page {page + 1} (or --limit 0 for all)", markup=False)
    if fmt is Format.json:
        _emit_json([{**r, "schema_version": 2} for r in rows])  # 2: policy_blocked (issue 22)
        return
    from rich.table import Table

    table = Table(box=None)
    width = max((len(x["id"]) + 2 for row in rows for x in [row, *row.get("steps", [])]), default=7)
    table.add_column("plan id", no_wrap=True, min_width=width)
    for name in ("kind", "version", "env", "planned by", "approvals", "outcome", "changes"):
        table.add_column(name)
    under = {"shift": "(the release's)", "rollback": "(approver alone)"}
    why: list[tuple[str, str]] = []
    for r in rows:
        for row, indent in [(r, "")] + ([(s, "  ") for s in r.get("steps", [])] if expand or release else []):
            approvals = ", ".join(f"{a['by']}{'' if a['kind'] == 'approve' else ' (rejected)'}" for a in row["approvals"])
            outcome = row["outcome"] + (" (BREAK-GLASS)" if row.get("break_glass") else "")
            rel = row.get("release") or {}
            if rel:
                outcome = f"release {rel['outcome']}"
                if isinstance(rel.get("alarm"), dict):
                    outcome += f" (alarm {rel['alarm'].get('name')})"
            if row.get("policy_blocked"):
                outcome += " (BLOCKED BY POLICY)"
            steps = f" +{len(row['steps'])} steps" if row.get("steps") and not (expand or release) else ""
            table.add_row(indent + row["id"], row.get("kind", ""), row["version"], row["env"], row["planner"],
                          approvals or under.get(row.get("kind", ""), "-"), outcome + steps,
                          _short_counts(row["summary"] or ""))
        if expand or release:
            why.extend((r["id"], line) for line in _release_why(r.get("release") or {}))
    _console().print(table if rows else "no plans yet")
    for plan_id, line in why:  # under the table, unwrapped: reasons are long and must stay greppable
        _print(f"{plan_id}: {line}")


def _release_why(rel: dict[str, Any]) -> list[str]:
    """The lines `history --expand` shows under a release that failed: its reason, the alarm that stopped it (name,
    state reason, when it fired), why its tasks stopped (once per distinct reason)."""
    from tfreview.report import alarm_line, stopped_lines

    if not rel or rel.get("outcome") == "succeeded" and not rel.get("stopped_tasks"):
        return []
    out = [f"why: {rel['reason']}"] if rel.get("reason") else []
    if isinstance(rel.get("alarm"), dict):
        out.append(alarm_line(rel["alarm"]))
    return out + stopped_lines(rel)


def _short_counts(summary: str) -> str:
    """"Plan: 1 to add, 2 to change, 0 to destroy." -> "+1 ~2 -0" (other lines as they are)."""
    m = re.search(r"(\d+) to add, (\d+) to change, (\d+) to destroy", summary)
    return f"+{m.group(1)} ~{m.group(2)} -{m.group(3)}" if m else summary.removeprefix("Plan: ").rstrip(".")


def _warn_interrupted(store: Any, app_name: str | None = None, env: str | None = None,
                      plan_ids: Any = None) -> None:
    """Tell about applies that stopped without an outcome (killed, host lost) and the locks they left
    (`plan_ids`: only those plans can be such applies)."""
    from tfreview.unlock import stale_warnings

    for line in stale_warnings(store, app_name, env, plan_ids):
        _warn(line)


# -- unlock / audit / report ------------------------------------------------------------------------------------
@app.command()
def unlock(app_name: str = typer.Option(..., "--app", help="Application name."),
           env: str = typer.Option(..., "--env", help="Environment."),
           force: bool = typer.Option(False, "--force", help="Even if the holder's process still runs on this host."),
           fmt: Format = FormatOpt) -> None:
    """Release a stuck apply lock (recorded in the audit log, with the interrupted apply's outcome)."""
    from tfreview.unlock import unlock as do_unlock

    ctx, _ = _context()
    done = do_unlock(ctx, app_name, env, force=force)
    if fmt is Format.json:
        _emit_json(done)
        return
    prev = done["previous"]
    if prev["pid"] is None:
        _print(f"unlocked {app_name}/{env}: an unreadable lock removed by {done['unlocked_by']} (recorded as it was)")
        return
    _print(f"unlocked {app_name}/{env}: lock of {prev['owner']} (plan {prev['plan_id']}, pid {prev['pid']} on "
           f"{prev['host']}, since {prev['acquired_at']}) removed by {done['unlocked_by']}")
    if done["interrupted"]:
        _print(f"apply of plan {done['interrupted']} recorded as interrupted: check the environment "
               f"(tfreview status --app {app_name} --env {env}) before the next apply")


audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _read_location(location: str) -> bytes:
    """Bytes of a local file or an s3://bucket/key object (a checkpoint kept outside the store)."""
    if location.startswith("s3://"):
        from tfreview.aws import client, translated

        bucket, _, key = location[5:].partition("/")
        with translated("s3:GetObject", resource=location):
            return client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return Path(location).read_bytes()
    except OSError as exc:
        raise _bad(f"cannot read {location}: {exc.strerror}",
                   "pass the checkpoint file written by audit checkpoint") from None


@audit_app.command("checkpoint")
def audit_checkpoint(output: Optional[str] = typer.Option(None, "--output", "-o",
                                                          help="FILE or s3://bucket/key (default: stdout).")
                     ) -> None:
    """Write a signed checkpoint (last seq, its hash, time) of the verified log, to keep outside the store."""
    from tfreview.errors import StoreError
    from tfreview.store.audit import read_log
    from tfreview.trust.verify import make_checkpoint
    from tfreview.workflow import iso, now_utc

    ctx, _ = _context()
    entries, result = read_log(ctx.store)
    if not result.ok:
        raise StoreError(f"audit log broken at entry {result.first_bad_seq}: {result.reason}",
                         "a checkpoint vouches for an intact log only: investigate first (tfreview audit verify)")
    text = json.dumps(make_checkpoint(ctx, entries, iso(now_utc())), indent=2, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    if output.startswith("s3://"):
        from tfreview.aws import client, translated

        bucket, _, key = output[5:].partition("/")
        # With S3 Object Lock on that bucket the checkpoint cannot be changed or deleted by the store's writers.
        with translated("s3:PutObject", resource=output):
            client("s3").put_object(Bucket=bucket, Key=key, Body=text.encode(), IfNoneMatch="*")
    else:
        _write_atomic(Path(output), text)
    _console(stderr=True).print(f"wrote checkpoint of entry {json.loads(text)['seq']} to {output}", markup=False)


@audit_app.command("seal")
def audit_seal(fmt: Format = FormatOpt) -> None:
    """Seal every complete segment of 1,000 entries not sealed yet: check its chain and signatures once and store
    it as one object under a seal you sign, so that `audit verify` reads one object and checks one signature per
    segment. The writer who completes a segment seals it already; this seals the rest (an older log, a lost race)."""
    from tfreview.store.audit import SEGMENT_SIZE, read_head
    from tfreview.trust.verify import seal_log

    ctx, _ = _context()
    seals = seal_log(ctx)
    head = read_head(ctx.store)[0]
    unsealed = head % SEGMENT_SIZE
    if fmt is Format.json:
        _emit_json({"sealed": [{"first": s["first"], "last": s["last"]} for s in seals], "entries": head,
                    "unsealed_tail": unsealed})
        return
    what = (f"sealed {len(seals)} segment(s), entries {seals[0]['first']}-{seals[-1]['last']}" if seals
            else "nothing to seal")
    _print(f"{what}; the last {unsealed} of {head} entries are sealed when their segment of {SEGMENT_SIZE:,} is "
           "complete")


@audit_app.command("verify")
def audit_verify(checkpoint: Optional[str] = typer.Option(None, "--checkpoint",
                                                          help="A checkpoint FILE or s3://bucket/key the log must extend."),
                 full: bool = typer.Option(False, "--full", help="Also read every entry object of sealed segments and "
                                           "check every entry's own signature, not only the seals'."),
                 fmt: Format = FormatOpt) -> None:
    """Prove the audit chain intact and every entry, plan record and decision signed by its actor (exit 1 naming
    the first that is not). Sealed segments (`audit seal`) are checked by their seal's signature and bytes."""
    from dataclasses import replace

    from tfreview.errors import StoreError
    from tfreview.store import open_store
    from tfreview.store.audit import read_log
    from tfreview.trust.verify import check_checkpoint, verify_log

    store = open_store(_settings().store)
    entries, result = read_log(store, full=full)
    sealed = result.sealed
    history = None
    if result.ok:  # the chain holds: is the policy the one the log activated, at the pinned root
        history, seq, why = _audit_policy(store, entries)
        if why:
            result = replace(result, ok=False, first_bad_seq=seq, reason=why)
    if result.ok:  # the chain holds: now who said each entry, and do the store's records match the log
        seq, why = verify_log(store, entries, result.seals, full=full, history=history)
        if why:
            result = replace(result, ok=False, first_bad_seq=seq, reason=why)
    if result.ok:  # every record that stands for an event has its entry; decisions sit beside their plan
        result = _witnessed(store, entries, result)
    if result.ok and checkpoint is not None:
        try:
            from tfreview import jsontext

            doc = jsontext.loads_std(_read_location(checkpoint))
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise _bad(f"{checkpoint} is not a checkpoint", "pass the file written by tfreview audit checkpoint")
        gap = check_checkpoint(doc, entries, history) if history else "the store has no policy"
        if gap is not None:
            result = replace(result, ok=False, first_bad_seq=doc.get("seq"),
                             reason=f"the log no longer extends checkpoint {checkpoint}: {gap}")
    if fmt is Format.json:
        _emit_json({"ok": result.ok, "entries": result.count, "sealed": sealed,
                    "first_bad_seq": result.first_bad_seq, "reason": result.reason})
        if not result.ok:
            raise typer.Exit(EXIT_ERROR)
        return
    if not result.ok:
        where = f"audit log broken at entry {result.first_bad_seq}" if result.first_bad_seq else "audit check failed"
        raise StoreError(f"{where}: {result.reason}",
                         "the log or the store was modified outside tfreview: compare with a backup of the store")
    how = (f" ({sealed} of them in {len(result.seals)} sealed segment(s), checked by their seals' signatures"
           f"{' and every entry' if full else ''})" if sealed else "")
    _print(f"audit log intact: {result.count} entries{how}, each chained to the one before and signed by its actor; "
           "plan records and decisions match it")


def _audit_policy(store: Any, entries: list[dict[str, Any]]) -> tuple[Any, int | None, str]:
    """`audit verify`'s policy findings (tfreview.trust.root): (history, seq, reason), reason "" when all holds."""
    from tfreview.trust.root import policy_findings

    return policy_findings(store, entries, _settings().policy_root)


def _witnessed(store: Any, entries: list[dict[str, Any]], result: Any) -> Any:
    """`result` failed with the first record the audit log never saw, or decision out of its plan's folder."""
    from dataclasses import replace

    from tfreview.trust.witness import unwitnessed

    why = unwitnessed(store, entries)
    return replace(result, ok=False, first_bad_seq=None, reason=why) if why else result


@audit_app.command("export")
def audit_export(since: str = typer.Option(..., "--since", help="First day (or time) of the period, e.g. 2026-10-01."),
                 until: str = typer.Option(..., "--until", help="Last day (or time) of the period, e.g. 2026-12-31."),
                 output: Path = typer.Option(..., "--output", "-o", help="A new directory, or a FILE.zip."),
                 include_failures: bool = typer.Option(False, "--include-failures",
                                                       help="Export even when audit verify fails, the failures in "
                                                       "the pack (audit/FAILURES.txt)."),
                 fmt: Format = FormatOpt) -> None:
    """Write the evidence pack of a period: signed statements, policy versions, audit entries and seals, release
    reports, an index, and verify.sh to check it all with ssh-keygen and sha256sum (docs/audit-evidence.md)."""
    from tfreview.evidence import export
    from tfreview.store import open_store

    pack = export(open_store(_settings().store), since, until, output, include_failures=include_failures)
    summary = {"output": str(output), "plans": pack.plans, "statements": pack.statements, "audit_entries": pack.entries,
               "reports": pack.reports, "policy_versions": pack.policy_versions, "failures": pack.failures}
    if fmt is Format.json:
        _emit_json(summary)
        return
    for failure in pack.failures:
        _warn(f"exported with a failure: {failure}")
    _print(f"evidence pack written to {output}: {pack.plans} plan(s), {pack.statements} signed statement(s), "
           f"{pack.entries} audit entr{'y' if pack.entries == 1 else 'ies'}, {pack.reports} release report(s), policy "
           f"version(s) {', '.join(map(str, pack.policy_versions))}")
    _print("check it with: " + ("unzip it, then: sh verify.sh" if output.suffix.lower() == ".zip" else
                                f"sh {output}/verify.sh"))


@audit_app.command("log")
def audit_log(app_name: Optional[str] = typer.Option(None, "--app"), env: Optional[str] = typer.Option(None, "--env"),
              version: Optional[str] = typer.Option(None, "--version"),
              person: Optional[str] = typer.Option(None, "--person", help="Entries by this identity."),
              event: Optional[str] = typer.Option(None, "--event", help="package, plan, approve, reject, apply-start, "
                                                  "apply-end, break-glass, rollout, unlock..."),
              plan_id: Optional[str] = typer.Option(None, "--plan", help="Entries about this plan."),
              since: Optional[str] = typer.Option(None, "--since", help="ISO date/time, e.g. 2026-11-01."),
              until: Optional[str] = typer.Option(None, "--until", help="ISO date/time (a date includes that day)."),
              limit: int = typer.Option(100, "--limit", min=0, help="Entries per page (0: all)."),
              after: int = typer.Option(0, "--after", min=0, help="Start after this entry number (the next page)."),
              fmt: Format = FormatOpt) -> None:
    """The audit entries, oldest first, filtered, one page at a time (not verified: see `tfreview audit verify`)."""
    from tfreview.store import open_store
    from tfreview.store.audit_page import page
    from tfreview.workflow import check_names, time_bound

    check_names(app=app_name, env=env, version=version, person=person, plan_id=plan_id)
    if event is not None and not re.fullmatch(r"[a-z][a-z-]{0,31}", event):
        raise _bad(f"invalid event {event!r}", "events are lower-case words like plan, approve, apply-end, unlock")
    found = page(open_store(_settings().store), since=time_bound(since), after=after, limit=limit or None,
                 app=app_name, env=env, version=version, person=person, event=event, plan_id=plan_id,
                 until=time_bound(until, end=True))
    entries = found.entries
    if found.next_after is not None:
        _console(stderr=True).print(f"more entries: --after {found.next_after}", markup=False)
    if fmt is Format.json:
        _emit_json(entries)
        return
    for e in entries:
        where = " ".join(str(e[k]) for k in ("app", "env", "version") if e.get(k))
        plan = f" plan {e['plan_id']}" if e.get("plan_id") else ""
        _print(f"#{e['seq']:<5} {e['time'][:19]}Z {e['event']:<12} {e['actor']:<28} {where}{plan}")
    if not entries:
        _print("no audit entries match")


@app.command()
def report(plan_id: Optional[str] = typer.Argument(None, help="Plan id (a release: its deploy plan id)."),
           release: Optional[str] = typer.Option(None, "--release", help="The release started by this deploy plan."),
           fmt: str = typer.Option("markdown", "--format", "-f", help="markdown, html or json."),
           output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout.")) -> None:
    """The auditor's report of a plan or a release: diff, planner, approvals (who, when, comment, signature), what
    was applied, the rollout with its traffic steps and timeline (charts in HTML), outcome, a rollback after it."""
    from tfreview.report import render_report
    from tfreview.store import open_store
    from tfreview.workflow import check_name

    if (plan_id is None) == (release is None):
        raise _bad("report needs one id", "pass a plan id, or --release ID (the release's deploy plan id)")
    plan_id = check_name("plan id", plan_id or release or "")
    _check_output(output)
    store = open_store(_settings().store)
    if release is not None:  # a traffic plan's id names the release it belongs to
        from tfreview.workflow import load_plan

        plan_id = load_plan(store, plan_id).get("release_id") or plan_id
    text = render_report(store, plan_id, fmt)
    if output is None:
        sys.stdout.write(text)
    else:
        _write_atomic(output, text)
        _console(stderr=True).print(f"wrote {output}", markup=False)


# -- policy -------------------------------------------------------------------------------------------------------
policy_app = typer.Typer(help="The signed, versioned policy in the store (rules, signers, admins).", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


def _print_policy(shown: dict[str, Any], fmt: Format, headline: str = "") -> None:
    if fmt is Format.json:
        _emit_json(shown)
        return
    if headline:
        _print(headline)
    active, pending = shown["active"], shown["pending"]
    _print(f"policy version {active['version']} (active), sha256 {active['sha256']}")
    _print(f"  signed by: {', '.join(active['signed_by'])}")
    _print(f"  admins: {', '.join(active['admins'])} (quorum {active['admin_quorum']})")
    for who, fps in active["signers"].items():
        _print(f"  signer {who}: {', '.join(fps)}")
    for module in active.get("checks", []):
        _print(f"  check {module['name']}: sha256 {module['sha256']}")
    if pending:
        _print(f"policy version {pending['version']} pending: signed by {', '.join(pending['signed_by']) or 'nobody'}, "
               f"needs {active['admin_quorum']} admin(s) of version {active['version']}: "
               f"tfreview policy approve {pending['version']}")


@policy_app.command("init")
def policy_init(file: Path = typer.Argument(..., help="The policy TOML file (rules, [signers], admins)."),
                fmt: Format = FormatOpt) -> None:
    """Install policy version 1 in a store without one (trust on first use; you must be one of its admins)."""
    from tfreview.store import open_store
    from tfreview.trust.admin import init
    from tfreview.trust.signer import find_signer

    settings = _settings()
    from tfreview.trust.verify import claimed_user

    shown = init(settings, open_store(settings.store), find_signer(), file, claimed_user())
    _print_policy(shown, fmt, "installed policy version 1")
    if fmt is Format.text:
        _print("pin this root in tfreview.toml (commit it: code review then sees any change of root):")
        _print(f'[trust]\npolicy_root = "{shown["pin"]}"')


@policy_app.command("propose")
def policy_propose(file: Path = typer.Argument(..., help="The new policy TOML file."), fmt: Format = FormatOpt) -> None:
    """Propose the next policy version; active once admin_quorum admins of the current version signed it."""
    from tfreview.trust.admin import propose

    ctx, _ = _context()
    _print_policy(propose(ctx, file), fmt)


@policy_app.command("approve")
def policy_approve(version: int = typer.Argument(..., help="The pending policy version."), fmt: Format = FormatOpt) -> None:
    """Sign a pending policy version as an admin of the active one."""
    from tfreview.trust.admin import approve

    ctx, _ = _context()
    _print_policy(approve(ctx, version), fmt)


@policy_app.command("show")
def policy_show(fmt: Format = FormatOpt) -> None:
    """The active policy version, its sha256, signers and admins (and a pending proposal)."""
    from tfreview.store import open_store
    from tfreview.trust.admin import show_store

    settings = _settings()
    shown = show_store(open_store(settings.store), settings.policy_root)
    _print_policy(shown, fmt)
    if fmt is Format.text:
        _print(f'root pin ([trust] in tfreview.toml): policy_root = "{shown["pin"]}"')


@policy_app.command("check")
def policy_check(target: str = typer.Argument(..., metavar="PLAN_JSON|PLAN_ID",
                                             help="A `terraform show -json` file, or a stored plan id."),
                 policy_dir: Optional[Path] = typer.Option(None, "--policy", "-p", help="Folder of .rego files "
                                                           "(default: the store's active policy)."),
                 env: Optional[str] = typer.Option(None, "--env", help="Environment whose checks apply (default: "
                                                   "the plan's; [policy.default] for a file)."),
                 namespace: Optional[list[str]] = typer.Option(None, "--namespace", help="Package to check "
                                                               "(repeatable; default main)."),
                 timeout: float = typer.Option(10.0, "--timeout", min=0.1, max=3600, help="Seconds before the "
                                               "checks are stopped (and fail)."),
                 fmt: Format = FormatOpt) -> None:
    """Run Rego checks on a plan without touching the store: exit 0 pass, 3 blocked, 1 checks failed to run."""
    from tfreview.errors import PolicyRefusal
    from tfreview.policycheck import PolicyChecksFailed, check
    from tfreview.render.checks import approval_lines
    from tfreview.text import visible

    store_url = None if Path(target).is_file() and policy_dir is not None else _settings().store
    result = check(target, store_url, policy_dir, env, tuple(namespace or ()), timeout)
    denies = sum(1 for r in result["results"] if r["level"] == "deny")
    if fmt is Format.json:
        _emit_json(result)
    else:
        for r in result["results"]:
            _print(f"{r['level']:<5} {r['namespace']}.{r['rule']}: {visible(r['msg'], keep_lines=False)}")
        for line in approval_lines(result):  # Rego approval rules (issue 22)
            _print(visible(line, keep_lines=False))
        warns = len(result["results"]) - denies
        if not result["error"]:
            _print(f"{len(result['modules'])} module(s) of {result['policy']}: {denies} deny, {warns} warn")
    if result["error"]:
        raise PolicyChecksFailed(result["error"], "fix the rule it names (tfreview policy test DIR)")
    if result["blocked"]:
        first = next(r for r in result["results"] if r["level"] == "deny")
        raise PolicyRefusal(f"blocked by policy: {first['namespace']}.{first['rule']}: {first['msg']}"
                            + (f" (+{denies - 1} more)" if denies > 1 else ""),
                            "change the plan, or the rule")


@policy_app.command("test")
def policy_test(directory: Path = typer.Argument(..., help="Folder of .rego files with *_test.rego tests."),
                timeout: float = typer.Option(10.0, "--timeout", min=0.1, max=3600, help="Seconds for all tests."),
                fmt: Format = FormatOpt) -> None:
    """Run the test_ rules of *_test.rego files, as opa test does: exit 1 when one fails."""
    from tfreview.policycheck import PolicyChecksFailed, test

    results = test(directory, timeout)
    failed = [r for r in results if not r["passed"]]
    if fmt is Format.json:
        _emit_json({"tests": results, "passed": len(results) - len(failed), "failed": len(failed)})
    else:
        for r in results:
            _print(f"{'PASS' if r['passed'] else 'FAIL'} {r['module']}: {r['name']}"
                   + (f" ({r['error']})" if r["error"] else ""))
        _print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise PolicyChecksFailed(f"{len(failed)} of {len(results)} policy test(s) failed, first: {failed[0]['name']}",
                                 "fix the rule or the test")


# -- sandbox ----------------------------------------------------------------------------------------------------
@app.command()
def sandbox(port: int = typer.Option(5000, "--port", min=0, max=65535, help="Loopback port for the local AWS."),
            step: Optional[float] = typer.Option(None, "--step", min=0.0, help="Seconds per ECS deployment step."),
            faults: Optional[str] = typer.Option(None, "--faults", help="service=fault,... to inject.")) -> None:
    """Run the local AWS (moto + the ECS deployment lifecycle) on 127.0.0.1 until Ctrl-C."""
    try:
        from tfreview.sandbox import parse_faults, run_sandbox
    except ImportError as exc:
        raise _bad(f"the sandbox needs moto ({exc.name} is missing)", "pip install 'tfreview[sandbox]'") from None
    run_sandbox(port=port, step_s=step, faults=parse_faults(faults) if faults else None)


# -- examples in --help, --store after the subcommand ---------------------------------------------------------------
EXAMPLES: dict[str, tuple[str, ...]] = {  # by command path ("audit verify"): `init` and `policy init` differ
    "init": ("tfreview init --app webapp", "tfreview init --app webapp --dir ../new-repo --format json"),
    "drift": ("tfreview drift --app webapp --env prod    # nightly: exit 2 when something changed outside Terraform",
              "tfreview drift --app webapp --env prod --format json"),
    "package": ("tfreview package --app webapp --version 1.1.0",
                "tfreview package --app webapp --version 1.1.0 --source infra/terraform --format json"),
    "plan": ("tfreview plan --app webapp --version 1.1.0 --env qa",
             "tfreview plan --app webapp --version 1.1.0 --env qa --format json --fail-on high > plan.json",
             "tfreview plan --app webapp --version 1.1.0 --env qa --var desired_count=2 --var-file qa.tfvars",
             "tfreview plan --app webapp --version 1.1.0 --env qa --destroy"),
    "render": ("terraform show -json tfplan | tfreview render - --format markdown",
               "tfreview render plan.json --action delete --fail-on high"),
    "show": ("tfreview show webapp-qa-20261126-112547-0dbc", "tfreview show ID --format html --output review.html"),
    "comment": ("tfreview comment \"$(jq -r .id plan.json)\"    # in GitHub Actions or GitLab CI",
                "tfreview comment ID --forge github --repo acme/webapp --pr 7 --api-url https://ghe.example.com/api/v3"),
    "approve": ("tfreview approve webapp-qa-20261126-112547-0dbc", "tfreview approve ID --yes -m \"checked the image bump\""),
    "reject": ('tfreview reject ID --reason "opens port 22 to the world"',),
    "apply": ("tfreview apply ID --steps 10,50,100 --bake 60 --verify-cmd ./smoke-test.sh",
              "tfreview apply ID --steps 25,100 --bake 300 --alarm webapp-prod-5xx --alarm webapp-prod-latency",
              "tfreview apply ID --no-wait"),
    "status": ("tfreview status --app webapp --env prod", "tfreview status --app webapp --env prod --format json"),
    "rollback": ("tfreview rollback --app webapp --env prod", "tfreview rollback --app webapp --env prod --yes"),
    "promote": ("tfreview promote --app webapp --version 1.1.0 --from qa --to prod",),
    "history": ("tfreview history --app webapp --env prod", "tfreview history --person alice@example.com --since 2026-11-01"),
    "unlock": ("tfreview unlock --app webapp --env prod",),
    "audit export": ("tfreview audit export --since 2026-10-01 --until 2026-12-31 --output evidence-q4.zip",
                     "tfreview audit export --since 2026-12-07 --until 2026-12-07 --output evidence/ --include-failures"),
    "audit verify": ("tfreview audit verify", "tfreview audit verify --full", "tfreview audit verify --checkpoint s3://acme-audit/tfreview/checkpoint.json",
                     "tfreview --store s3://acme-deploy/tfreview audit verify --format json"),
    "audit seal": ("tfreview audit seal", "tfreview audit seal --format json"),
    "audit checkpoint": ("tfreview audit checkpoint --output s3://acme-audit/tfreview/checkpoint.json",
                         "tfreview audit checkpoint --output checkpoint.json"),
    "policy init": ("tfreview policy init policy.toml    # version 1: you sign it and must be one of its admins",),
    "policy propose": ("tfreview policy propose policy.toml    # the next version, pending until admins approve",),
    "policy approve": ("tfreview policy approve 2",),
    "policy show": ("tfreview policy show", "tfreview policy show --format json"),
    "policy check": ("tfreview policy check plan.json --policy policy/    # your rules over a plan, nothing stored",
                     "tfreview policy check webapp-prod-20261207-101500-ab12 --env prod --format json"),
    "policy test": ("tfreview policy test policy/    # the test_ rules of policy/*_test.rego, as opa test runs them",),
    "audit log": ("tfreview audit log --app webapp --env prod --since 2026-11-01", "tfreview audit log --plan ID --format json"),
    "report": ("tfreview report ID --format html --output report.html", "tfreview report ID --format json"),
    "sandbox": ("tfreview sandbox --port 5000    # prints the export lines for another shell, serves until Ctrl-C",
                "tfreview sandbox --step 1 --faults webapp-sandbox-green=unhealthy-targets"),
}


# The commands whose audit entries can notify (tfreview.notify): they take --no-notify after the command too.
NOTIFYING = frozenset({"plan", "approve", "reject", "apply", "rollback", "promote", "policy propose",
                       "policy approve"})


def _store_after_subcommand(value: Optional[str]) -> None:
    if value is not None:
        _set_store(value)


def _store_option() -> Any:
    """`--store` as typer builds it (the click typer ships), not passed to the command function."""
    holder = typer.Typer()

    @holder.command()
    def _holder(store: Optional[str] = typer.Option(None, "--store", callback=_store_after_subcommand,
                                                    help=STORE_HELP + " Also accepted before the command.")) -> None:
        pass

    option = typer.main.get_command(holder).params[0]
    option.expose_value = False
    return option


def _no_notify_option() -> Any:
    """`--no-notify` after the subcommand too (`tfreview apply ID --no-notify`), not passed to the function."""
    holder = typer.Typer()

    @holder.command()
    def _holder(no_notify: bool = typer.Option(False, "--no-notify", callback=_set_no_notify,
                                               help=NO_NOTIFY_HELP)) -> None:
        pass

    option = typer.main.get_command(holder).params[0]
    option.expose_value = False
    return option


def build_command() -> Any:
    """The click command: typer's, with the examples as each command's epilog and `--store` accepted after the
    subcommand too (`tfreview show ID --store DIR`)."""
    import typer.main

    def leaves(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
        for name, cmd in group.commands.items():
            yield from leaves(cmd, f"{prefix}{name} ") if hasattr(cmd, "commands") else ((f"{prefix}{name}", cmd),)

    root = typer.main.get_command(app)
    store = _store_option()
    no_notify = _no_notify_option()
    for path, cmd in leaves(root):
        examples = EXAMPLES.get(path, ())
        if examples and not cmd.epilog:
            cmd.epilog = "Examples:\n\n\b\n" + "\n".join(f"  {e}" for e in examples)  # \b: click keeps the lines
        if not any("--store" in p.opts for p in cmd.params):
            cmd.params.append(store)
        if path in NOTIFYING and not any("--no-notify" in p.opts for p in cmd.params):
            cmd.params.append(no_notify)
    return root


# -- errors -------------------------------------------------------------------------------------------------------
def _bad(message: str, hint: str) -> TfreviewError:
    from tfreview.errors import BadInput

    return BadInput(message, hint)


# What a stream that cannot encode Unicode (PYTHONIOENCODING=ascii, a latin-1 terminal) prints instead.
ASCII_FALLBACKS = {"→": "->", "←": "<-", "↔": "<->", "—": "-", "–": "-", "…": "...", "✓": "ok", "✔": "ok",
                   "✗": "x", "⚠": "!", "\ufe0f": "", "•": "*", "×": "x", "≥": ">=", "≤": "<=", "“": '"', "”": '"',
                   "‘": "'", "’": "'", "─": "-", "━": "-", "│": "|", "┃": "|", "╭": "+", "╮": "+", "╰": "+", "╯": "+",
                   "┌": "+", "┐": "+", "└": "+", "┘": "+", "├": "+", "┤": "+", "┬": "+", "┴": "+", "┼": "+"}


def _ascii_fallback(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    text = exc.object[exc.start:exc.end]
    return "".join(ASCII_FALLBACKS.get(c, "?") for c in text), exc.end


def _degrade_unicode() -> None:
    """Streams that cannot encode what tfreview prints get ASCII stand-ins instead of a crash."""
    import codecs

    codecs.register_error("tfreview-ascii", _ascii_fallback)
    for stream in (sys.stdout, sys.stderr):
        try:
            "→╭".encode(stream.encoding or "ascii")
        except (UnicodeEncodeError, LookupError):
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(errors="tfreview-ascii")


def _raise_on_signals() -> None:
    """SIGINT and SIGTERM become `Interrupted`, so the use case under way records its outcome and stops terraform
    cleanly (an operator's Ctrl-C, a CI runner's cancel) instead of dying mid-write."""
    import signal

    def interrupted(signum: int, _frame: Any) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):  # once: a second Ctrl-C must not cut the recording short
            signal.signal(sig, signal.SIG_IGN)
        raise Interrupted(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupted)


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point: run the app; a TfreviewError becomes one line on stderr and its exit code.

    With `plan --detailed-exitcode`, as with terraform's, and with `drift`, 2 means "changes" (drift) and every
    error exits 1 (the risk gate keeps its 4)."""
    import errno

    _raise_on_signals()
    _degrade_unicode()
    detailed = "--detailed-exitcode" in (sys.argv[1:] if argv is None else argv)
    try:  # the click typer ships (newer typer vendors it)
        from typer._click.exceptions import ClickException
    except ImportError:  # pragma: no cover - typer with click as a dependency
        from click.exceptions import ClickException  # type: ignore[assignment]

    try:
        try:
            # Not standalone: click's usage errors come here as exceptions and become one line like every error.
            code = build_command()(args=argv, prog_name="tfreview", standalone_mode=False)
            if isinstance(code, int) and code:  # typer.Exit(code), returned instead of raised outside standalone
                sys.exit(code)
        finally:
            _flush_notifications()  # whatever the outcome: a failed release is what people must hear of
            sys.stdout.flush()  # a full disk shows here, not as a warning at interpreter exit
    except ClickException as exc:  # unknown option, missing argument, bad value: exit 2
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path} -h" if ctx is not None else "tfreview -h"
        code = EXIT_ERROR if detailed or _state.get("detailed") else exc.exit_code
        _fail(exc.format_message().rstrip("."), f"see `{where}`", code)
    except typer.Abort:
        _fail("aborted", "", EXIT_ERROR)
    except SystemExit as exc:  # typer.Exit, --help, completion
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":  # click's silent exit 1 on a closed pipe: say it
            _fail(*_CLOSED_PIPE)
        detailed = detailed or bool(_state.get("detailed"))
        if detailed and exc.code not in (0, None, EXIT_RISK) and not _state.get("changes"):
            sys.exit(EXIT_ERROR)
        raise
    except Interrupted as exc:
        sys.stderr.write(f"tfreview: interrupted by {exc}: what was under way is recorded as interrupted "
                         "(see: tfreview history)\n")
        sys.exit(exc.exit_code)
    except TfreviewError as exc:
        if os.environ.get("TFREVIEW_DEBUG"):
            raise
        detailed = detailed or bool(_state.get("detailed"))
        _fail(exc.message, exc.hint, EXIT_ERROR if detailed and exc.exit_code != EXIT_RISK else exc.exit_code)
    except KeyboardInterrupt:  # before the handlers were installed
        sys.stderr.write("tfreview: interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        _fail(*_CLOSED_PIPE)
    except Exception as exc:  # a full disk is one line; anything else is a bug: still one line unless debugging
        if os.environ.get("TFREVIEW_DEBUG"):
            raise
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG):
            _fail(f"write failed: {exc.strerror}", "free some space (or write elsewhere) and run it again", EXIT_ERROR)
        sys.stderr.write(f"tfreview: internal error: {type(exc).__name__}: {visible(str(exc), keep_lines=False)} "
                         "(run again with TFREVIEW_DEBUG=1 and report the traceback)\n")
        sys.exit(EXIT_ERROR)


def _flush_notifications() -> None:
    if "tfreview.notify" in sys.modules:  # loaded only by commands that may notify
        sys.modules["tfreview.notify"].flush_all()


_CLOSED_PIPE = ("the output was closed before everything was written",
                "the program reading tfreview's output stopped early", EXIT_ERROR)


def _fail(message: str, hint: str, code: int) -> None:
    """One line on stderr (untrusted text made visible), nothing more on stdout, exit `code`."""
    sys.stdout = open(os.devnull, "w")  # whatever is still buffered for a closed or full stdout is dropped
    line = f"{message} ({hint})" if hint else message
    sys.stderr.write(f"tfreview: error: {visible(line, keep_lines=False)}\n")
    sys.exit(code)


__all__ = ["app", "main", "EXIT_USAGE"]
