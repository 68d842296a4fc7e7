"""The `tfreview` command's entry point: `tfreview --help` (or `-h`) alone is answered from the help screen
rendered at build time (tfreview/_help.py), without importing typer or building the 31 commands; everything else
goes to the command line proper (`tfreview.cli.main`).

Why: importing typer and building every command from its signature took about 0.17 s of an idle machine's 0.22 s
`tfreview --help`, against 0.07 s for `terraform version` (issue 21). The saved screen is exactly what the full
path prints: one text per help width click can use (50 to 78 columns), used only when the installed typer is the
one it was rendered with, and tests/test_quick_help.py compares both paths, width by width, as whole processes.
Regenerate it with `make help-text` after changing a command's name, help or the top-level options.

Imports only what the interpreter has loaded already (`os`, `sys`, `_collections_abc`; not `typing`): `shutil`, for the terminal's size,
would cost more than the rest of this path.
"""
from __future__ import annotations

import os
import sys
from _collections_abc import Mapping  # what collections.abc re-exports, loaded at start-up (collections is not)

HELP_ARGS = (["--help"], ["-h"])
# Set, they change what the full path does with the same arguments: shell completion (click reads
# _TFREVIEW_COMPLETE before any argument) and typer's completion options (shell detection turned off).
FULL_PATH_ENV = ("_TFREVIEW_COMPLETE", "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION")


def terminal_columns() -> int:
    """The terminal's width in columns as `shutil.get_terminal_size()` gives it (the size click's help formatter
    reads): $COLUMNS when it is a positive number, else the size of the terminal on stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        size = os.get_terminal_size(sys.__stdout__.fileno())  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80
    return size.columns or 80


def help_width(columns: int) -> int:
    """The width click formats help at for a terminal of `columns` (its HelpFormatter, max_width 80)."""
    return max(min(columns, 80) - 2, 50)


def typer_is(version: str) -> bool:
    """Whether the typer Python would import is `version` (the dist-info beside the first `typer` on sys.path)."""
    for entry in sys.path:
        base = entry or os.curdir
        if os.path.isdir(os.path.join(base, "typer")):
            return os.path.isdir(os.path.join(base, f"typer-{version}.dist-info"))
    return False


def saved_help(args: list[str], environ: Mapping[str, str]) -> str | None:
    """The top-level help screen for `args` from the build-time rendering, or None when the full path must answer
    (other arguments, completion, another typer, a screen not saved or not plain ASCII)."""
    if args not in HELP_ARGS or any(name in environ for name in FULL_PATH_ENV):
        return None
    from tfreview import _help

    if not typer_is(_help.TYPER):
        return None
    text = _help.SCREENS.get(help_width(terminal_columns()))
    return text if text is not None and text.isascii() else None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `tfreview` script and `python -m tfreview`: the saved help screen, else the CLI."""
    text = saved_help(sys.argv[1:] if argv is None else list(argv), os.environ)
    if text is None:
        from tfreview.cli import main as full

        full(argv)
        return
    if sys.stdout is None:  # stdout closed: click's echo prints nothing and succeeds
        return
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:  # a closed pipe, a full disk: the same one line as the full path
        from tfreview.cli.entry import fail_on_write

        fail_on_write(exc)
