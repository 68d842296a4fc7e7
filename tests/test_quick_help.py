"""`tfreview --help` answered from the screen saved at build time (tfreview/_help.py, tfreview/launch.py) reads
exactly as the full command line prints it, at every width, on a terminal and in a pipe, with the same exit code and
the same one-line errors; it is used only where the full path would print that very screen (issue 21).

No time is measured here (bench/startup.py does); what the saved path avoids is checked as what it imports.
"""
from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error

REPO = Path(__file__).resolve().parent.parent
SAVED = ["-m", "tfreview"]  # the script's path: tfreview.launch.main
FULL = ["-c", "from tfreview.cli import main; main()"]  # the command line proper, always built by typer


def run(path: list[str], *args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "_TFREVIEW_COMPLETE")}
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kw}
    return subprocess.run([sys.executable, *path, *args], text=True, cwd=REPO, env={**full_env, **(env or {})},
                          timeout=120, **streams)


def test_saved_screens_are_the_current_ones():
    """tfreview/_help.py is what `make help-text` writes now: a command or option changed without regenerating it
    fails here (the saved path would print a stale screen)."""
    from tfreview import _help
    from tfreview.cli.helpscreen import MODULE, module_source, screen, typer_version

    if typer_version() != _help.TYPER:  # another typer (make test-latest): the saved screens are never used
        from tfreview.launch import saved_help

        assert saved_help(["--help"], {}) is None
        return
    for width in range(50, 79):
        assert _help.SCREENS[width] == screen(width), f"tfreview/_help.py is stale at width {width}: run make help-text"
    assert MODULE.read_text() == module_source(), "tfreview/_help.py is stale: run make help-text"


@pytest.mark.parametrize("columns", ["1", "40", "50", "51", "52", "53", "64", "79", "80", "81", "200", "0", "-3", "wide", ""])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_saved_help_reads_as_the_full_path_at_every_width(columns, flag):
    saved = run(SAVED, flag, env={"COLUMNS": columns})
    full = run(FULL, flag, env={"COLUMNS": columns})
    assert (saved.returncode, saved.stdout, saved.stderr) == (full.returncode, full.stdout, full.stderr)
    assert saved.returncode == 0 and saved.stdout.startswith("Usage: tfreview [OPTIONS] COMMAND [ARGS]...\n")
    assert "  approve " in saved.stdout and "  policy " in saved.stdout


def test_saved_help_skips_typer():
    """The point of the saved screen: `tfreview --help` imports neither typer nor any command module."""
    code = ("import sys, runpy; sys.argv = ['tfreview', '--help']\n"
            "runpy.run_module('tfreview', run_name='__main__')\n"
            "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'click', 'rich')"
            " or m.startswith('tfreview.cli')), file=sys.stderr)")
    proc = run(["-c", code])
    assert proc.returncode == 0 and proc.stdout.startswith("Usage: tfreview"), proc.stderr
    assert "LOADED []" in proc.stderr


def _on_terminal(path: list[str], columns: int) -> bytes:
    """What `tfreview --help` writes to a terminal `columns` wide (no $COLUMNS: the size comes from the terminal)."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.Popen([sys.executable, *path, "--help"], stdout=slave, stderr=subprocess.PIPE, cwd=REPO,
                            env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    return out


@pytest.mark.parametrize("columns", [56, 100])
def test_saved_help_on_a_terminal_takes_its_width(columns):
    saved = _on_terminal(SAVED, columns)
    assert saved == _on_terminal(FULL, columns)
    assert saved.startswith(b"Usage: tfreview")
    assert max(len(line) for line in saved.decode().splitlines()) <= min(columns, 80) - 2


def test_other_arguments_and_completion_go_to_the_full_path():
    from tfreview.launch import saved_help

    assert saved_help(["--help"], {}) is not None
    assert saved_help(["-h"], {}) is not None
    for args in (["plan", "--help"], ["--help", "--store", "x"], ["--store", "x", "--help"], [], ["--version"], ["-H"]):
        assert saved_help(args, {}) is None, args
    assert saved_help(["--help"], {"_TFREVIEW_COMPLETE": "complete_bash"}) is None
    assert saved_help(["--help"], {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}) is None
    completion = {"_TFREVIEW_COMPLETE": "complete_bash", "COMP_WORDS": "tfreview --he", "COMP_CWORD": "1"}
    saved, full = run(SAVED, "--help", env=completion), run(FULL, "--help", env=completion)
    assert (saved.returncode, saved.stdout) == (full.returncode, full.stdout)
    assert saved.stdout.split() == ["--help"]


def test_another_typer_is_not_trusted_with_the_saved_screen(monkeypatch):
    """A screen rendered with one typer is not printed under another (its help layout may differ)."""
    from tfreview import _help
    from tfreview.launch import saved_help, typer_is

    assert typer_is(_help.TYPER)
    monkeypatch.setattr(_help, "TYPER", "0.0.0-not-installed")
    assert not typer_is(_help.TYPER)
    assert saved_help(["--help"], {}) is None


def test_a_full_disk_or_a_closed_stdout_reads_as_on_the_full_path():
    with open("/dev/full", "w") as full_disk:
        saved = run(SAVED, "--help", stdout=full_disk, env={"COLUMNS": "80"})
        full = run(FULL, "--help", stdout=full_disk, env={"COLUMNS": "80"})
    assert (saved.returncode, saved.stderr) == (full.returncode, full.stderr)
    assert_one_line_error(subprocess.CompletedProcess([], saved.returncode, "", saved.stderr), 1, "write failed")
    closed = run(SAVED, "--help", stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(1))
    closed_full = run(FULL, "--help", stdout=subprocess.DEVNULL,
                      preexec_fn=lambda: os.close(1))
    assert (closed.returncode, closed.stderr) == (closed_full.returncode, closed_full.stderr) == (0, "")


# -- the command being run is the only one built (tfreview.cli.entry.command_named) ---------------------------------
def _outcome(monkeypatch, argv: list[str], lazy: bool) -> tuple[object, str, str]:
    """(exit code, stdout, stderr) of `tfreview ARGV` run in this process by `main`, building only the command
    run (`lazy`) or the whole tree as before."""
    import io

    from tfreview.cli import entry
    from tfreview.cli.app import _state

    out, err = io.StringIO(), io.StringIO()
    before = dict(_state)
    with monkeypatch.context() as m:
        m.setattr(entry, "_raise_on_signals", lambda: None)  # pytest keeps its own Ctrl-C
        if not lazy:
            m.setattr(entry, "command_named", lambda args, environ: None)
        m.setattr(sys, "stdout", out)
        m.setattr(sys, "stderr", err)
        m.setenv("COLUMNS", "100")
        m.delenv("_TFREVIEW_COMPLETE", raising=False)
        m.setenv("TFREVIEW_STORE", "/nonexistent/tfreview-quick-help-store")
        try:
            entry.main(list(argv))
            code: object = 0
        except SystemExit as exc:
            code = exc.code
        finally:
            _state.clear()
            _state.update(before)
    return code, out.getvalue(), err.getvalue()


def _every_command_path() -> list[list[str]]:
    from tfreview.cli import build_command

    paths = []
    for name, cmd in build_command().commands.items():
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(cmd, "commands", {}))
    return paths


def test_each_command_built_alone_reads_as_in_the_whole_tree(monkeypatch):
    """Help screens, a wrong option, a bad value, an unknown subcommand: byte for byte what the whole tree says,
    exit code included, for every command and subcommand."""
    from tfreview.cli.entry import command_named

    paths = _every_command_path()
    assert len(paths) >= 30 and ["audit", "verify"] in paths and ["policy", "check"] in paths
    for path in paths:
        assert command_named(path, {}) == path[0]
        # Never a bare command: some run with no argument at all (history, sandbox); these fail while parsing.
        for argv in (path + ["--help"], path + ["-h"], path + ["--no-such-option"],
                     ["--store", "elsewhere", "--no-notify"] + path + ["--help"], path + ["nope", "--format", "yaml"]):
            lazy, whole = _outcome(monkeypatch, argv, True), _outcome(monkeypatch, argv, False)
            assert lazy == whole, f"tfreview {' '.join(argv)}"
    code, out, _ = _outcome(monkeypatch, ["audit", "verify", "--help"], True)
    assert code == 0 and out.startswith("Usage: tfreview audit verify [OPTIONS]") and "Examples:" in out


def test_what_needs_the_whole_tree_gets_it():
    """A typo is answered with the close names, so it, help before a command and completion build everything."""
    from tfreview.cli.entry import command_named

    assert command_named(["--store", "plan", "show", "ID"], {}) == "show"  # --store's value is not the command
    assert command_named(["--store=x", "--no-notify", "apply", "ID"], {}) == "apply"
    for args in (["rendr", "x"], ["--help", "plan"], ["--version"], ["--store"], [], ["-x", "plan"], ["--", "plan"],
                 ["--no-notify=1", "plan"]):
        assert command_named(args, {}) is None, args
    assert command_named(["plan"], {"_TFREVIEW_COMPLETE": "complete_bash"}) is None


def test_a_typo_still_gets_suggestions(monkeypatch):
    code, out, err = _outcome(monkeypatch, ["rendr", "x"], True)
    assert code == 2 and out == "" and "No such command 'rendr'. Did you mean 'render'?" in err


@pytest.mark.parametrize("argv", [[], ["audit"], ["policy"], ["--store", "x"], ["--no-notify"]])
def test_no_command_is_one_line_pointing_at_the_help(argv):
    """`tfreview` alone (or a group alone, or options with no command after them) said the whole help screen as one
    escaped error line, or click's "Missing command": now one short line, the same in every case."""
    proc = run(SAVED, *argv)
    where = " ".join(["tfreview", *[a for a in argv if a in ("audit", "policy")]])
    line = assert_one_line_error(proc, 2, "no command given")
    assert line == f"tfreview: error: no command given (see `{where} -h` for the commands)"
