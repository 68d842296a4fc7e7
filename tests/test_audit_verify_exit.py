"""`tfreview audit verify` leaves by `os._exit` once it has printed its verdict and reaped its child (it does not
free its 10^5 parsed entries one by one: docs/design-notes.md, issue 19 item 6). What a user sees must not change:
the whole output and exit 0, whether stdout is a pipe, a file or closed, in text and JSON; exit handlers still run;
a failure still exits 1 with its one line.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests import helpers
from tfreview.store import audit
from tfreview.store.audit import entry_key

INTACT = ("audit log intact: {n} entries (1000 of them in 1 sealed segment(s), checked by their seals' signatures), "
          "each chained to the one before and signed by its actor; plan records and decisions match it\n")


@pytest.fixture(scope="module")
def sealed(cli_factory):
    """A store whose log has a sealed segment (so `audit verify` forks its child) and a few entries after it."""
    cli = cli_factory("verify-exit")
    store = helpers.sealed_log(cli, 1003)
    n = len(list(audit.iter_entries(store)))
    return cli, store, INTACT.format(n=n), n


def run(cli, *args: str, stdout=subprocess.PIPE, code: str = "") -> subprocess.CompletedProcess:
    """`tfreview audit verify ARGS` as a process (`code`: Python run before the command line, in the process)."""
    return subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nsys.argv = ['tfreview', 'audit', 'verify', "
                           f"*{list(args)!r}]\nfrom tfreview.launch import main\nmain()"],
                          cwd=cli.cwd, env=cli.environment(), stdout=stdout, stderr=subprocess.PIPE, text=True,
                          timeout=300)


def test_the_verdict_is_whole_on_a_pipe_in_a_file_and_with_stdout_closed(sealed, tmp_path):
    cli, _store, intact, n = sealed
    done = run(cli)
    assert (done.returncode, done.stdout, done.stderr) == (0, intact, "")
    with open(tmp_path / "out.txt", "w") as out:
        done = run(cli, stdout=out)
    assert (done.returncode, done.stderr, (tmp_path / "out.txt").read_text()) == (0, "", intact)
    with open(tmp_path / "out.json", "w") as out:
        done = run(cli, "--format", "json", stdout=out)
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads((tmp_path / "out.json").read_text()) == {"ok": True, "entries": n, "sealed": 1000,
                                                               "first_bad_seq": None, "reason": "",
                                                               "schema_version": 1}
    closed = subprocess.run(["sh", "-c", f"exec {sys.executable} -m tfreview audit verify >&-"], cwd=cli.cwd,
                            env=cli.environment(), stderr=subprocess.PIPE, text=True, timeout=300)
    assert (closed.returncode, closed.stderr) == (0, "")


def test_exit_handlers_and_buffered_output_still_go_out(sealed):
    """What an exit handler prints, and what sits in Python's buffers, is written before the process leaves."""
    cli, _store, intact, _n = sealed
    done = run(cli, code="import atexit, sys\natexit.register(lambda: print('handler ran', file=sys.stderr))\n"
                         "print('buffered before', end=' ')")
    assert (done.returncode, done.stdout, done.stderr) == (0, "buffered before " + intact, "handler ran\n")


def test_a_failure_still_exits_1_with_its_line(sealed):
    cli, store, _intact, _n = sealed
    path = store.path(entry_key(500))
    original = path.read_bytes()
    path.write_bytes(original.replace(b'"p-', b'"q-'))
    try:
        done = run(cli)
        assert done.returncode == 1 and done.stdout == "" and done.stderr.count("\n") == 1
        assert "audit log broken at entry 500: entry 500 differs from its sealed copy" in done.stderr
        done = run(cli, "--format", "json")
        assert done.returncode == 1 and json.loads(done.stdout)["first_bad_seq"] == 500
    finally:
        path.write_bytes(original)
