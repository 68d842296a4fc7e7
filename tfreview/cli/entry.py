"""The entry point: the click command built from the app (the examples under each help screen, `--store` and
`--no-notify` after the subcommand too), and `main`, which runs it and maps every error to its exit code.
"""
from __future__ import annotations

import errno
import os
import sys
from typing import Any, Iterator, Optional

import typer

from tfreview.cli.app import NO_NOTIFY_HELP, STORE_HELP, _set_no_notify, _set_store, _state, app
from tfreview.errors import EXIT_ERROR, EXIT_RISK, Interrupted, TfreviewError
from tfreview.text import visible


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
# The commands whose audit entries can notify (tfreview.usecases.notify): they take --no-notify after the command too.
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


def build_command(only: Optional[str] = None) -> Any:
    """The click command: typer's, with the examples as each command's epilog and `--store` accepted after the
    subcommand too (`tfreview show ID --store DIR`). `only`: a top-level command's (or group's) name: the root
    holds that one alone, the others are not built (what `main` runs: building all 31 from their signatures cost
    more than the command's own start-up, issue 21); it is the command the whole tree has, option for option."""
    import typer.main

    def leaves(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
        for name, cmd in group.commands.items():
            yield from leaves(cmd, f"{prefix}{name} ") if hasattr(cmd, "commands") else ((f"{prefix}{name}", cmd),)

    root = typer.main.get_command(app if only is None else _app_of(only))
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
    from tfreview.coercion import install

    install(root)  # plain values coerced without pydantic (issue 21)
    return root


def _top_level_names() -> dict[str, Any]:
    """The app's top-level commands and groups by the name typer gives them, in typer's order."""
    import typer.main

    names: dict[str, Any] = {}
    for command in app.registered_commands:  # named as typer.main.get_command_from_info names them
        names[command.name or typer.main.get_command_name(getattr(command.callback, "__name__", ""))] = command
    names.update((group.name, group) for group in app.registered_groups if group.name)
    return names


def _app_of(name: str) -> Any:
    """The app with one top-level command or group, `name`: its callback, options and settings unchanged."""
    import copy

    info = _top_level_names()[name]
    one = copy.copy(app)
    one.registered_commands = [c for c in app.registered_commands if c is info]
    one.registered_groups = [g for g in app.registered_groups if g is info]
    return one


def command_named(args: list[str], environ: Any) -> Optional[str]:
    """The top-level command (or group) `args` run, when the root needs no other command to run it: only
    `--store VALUE` and `--no-notify` come before it, it is one of tfreview's, and no shell completion is asked
    for. Otherwise None (help, a typo that typer answers with suggestions, anything else: the whole tree)."""
    if "_TFREVIEW_COMPLETE" in environ:
        return None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--store":  # click takes the next word as its value, whatever it looks like
            i += 2
        elif arg == "--no-notify" or arg.startswith("--store="):
            i += 1
        elif arg.startswith("-"):
            return None
        else:
            return arg if arg in _top_level_names() else None
    return None


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
    _raise_on_signals()
    if sys.stdout is None:  # started with stdout closed (`>&-`): what it would print is dropped, as click's echo does
        sys.stdout = open(os.devnull, "w")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")
    _degrade_unicode()
    detailed = "--detailed-exitcode" in (sys.argv[1:] if argv is None else argv)
    try:  # the click typer ships (newer typer vendors it)
        from typer._click.exceptions import ClickException
    except ImportError:  # pragma: no cover - typer with click as a dependency
        from click.exceptions import ClickException  # type: ignore[assignment]

    try:
        try:
            # Not standalone: click's usage errors come here as exceptions and become one line like every error.
            args = sys.argv[1:] if argv is None else list(argv)
            root = build_command(only=command_named(args, os.environ))
            code = root(args=argv, prog_name="tfreview", standalone_mode=False)
            if isinstance(code, int) and code:  # typer.Exit(code), returned instead of raised outside standalone
                sys.exit(code)
        finally:
            _flush_notifications()  # whatever the outcome: a failed release is what people must hear of
            sys.stdout.flush()  # a full disk shows here, not as a warning at interpreter exit
        if argv is None and "leave" in _state:  # the process's own command line (not a caller's), done: leave
            _leave()
    except ClickException as exc:  # unknown option, missing argument, bad value: exit 2
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path} -h" if ctx is not None else "tfreview -h"
        code = EXIT_ERROR if detailed or _state.get("detailed") else exc.exit_code
        if type(exc).__name__ == "NoArgsIsHelpError" or exc.format_message() == "Missing command.":
            # `tfreview` alone (its message is the whole help screen), or options with no command after them
            _fail("no command given", f"see `{where}` for the commands", code)
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
        if isinstance(exc, OSError) and exc.errno in _WRITE_FAILED:
            fail_on_write(exc)
        _internal_error(exc)


_WRITE_FAILED = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG)


def _leave() -> None:
    """End the process now, exit 0, for a command that asked to (tfreview.cli.app.leave_when_done) and succeeded:
    its output is flushed (stdout by `main` already, stderr here: an error here is `main`'s to report), the exit
    handlers run and logging is shut down as at a normal exit, then `os._exit` skips only the freeing of every
    object. Not while another thread runs (a normal exit would wait for it)."""
    import atexit
    import threading

    if threading.active_count() > 1:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    getattr(atexit, "_run_exitfuncs", lambda: None)()
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    sys.stdout.flush()  # anything an exit handler printed
    sys.stderr.flush()
    os._exit(0)


def fail_on_write(exc: OSError) -> None:
    """Writing the output failed: one line and exit 1 (a closed pipe, a full disk), as `main` says it."""
    if isinstance(exc, BrokenPipeError):
        _fail(*_CLOSED_PIPE)
    if exc.errno in _WRITE_FAILED:
        _fail(f"write failed: {exc.strerror}", "free some space (or write elsewhere) and run it again", EXIT_ERROR)
    _internal_error(exc)


def _internal_error(exc: Exception) -> None:
    sys.stderr.write(f"tfreview: internal error: {type(exc).__name__}: {visible(str(exc), keep_lines=False)} "
                     "(run again with TFREVIEW_DEBUG=1 and report the traceback)\n")
    sys.exit(EXIT_ERROR)


def _flush_notifications() -> None:
    if "tfreview.usecases.notify" in sys.modules:  # loaded only by commands that may notify
        sys.modules["tfreview.usecases.notify"].flush_all()


_CLOSED_PIPE = ("the output was closed before everything was written",
                "the program reading tfreview's output stopped early", EXIT_ERROR)


def _fail(message: str, hint: str, code: int) -> None:
    """One line on stderr (untrusted text made visible), nothing more on stdout, exit `code`."""
    sys.stdout = open(os.devnull, "w")  # whatever is still buffered for a closed or full stdout is dropped
    line = f"{message} ({hint})" if hint else message
    sys.stderr.write(f"tfreview: error: {visible(line, keep_lines=False)}\n")
    sys.exit(code)


