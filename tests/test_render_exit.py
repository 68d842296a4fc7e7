"""`tfreview render` leaves by `os._exit` once its review is written and flushed (exit 0 only: it does not free the
whole parsed plan object by object; tfreview.cli.app.leave_when_done). What a user sees must not change: the same
bytes on a pipe and in a file, in every format, as a process that exits the normal way (here: one with a second
thread alive, which `_leave` never cuts short); exit handlers still run; the `--fail-on` gate still exits 4 after
the review.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PLANS = sorted(p for p in (REPO / "fixtures" / "plans").glob("*.json")
               if not p.name.endswith(".expected.json") and b'"format_version"' in p.read_bytes()[:200])
NORMAL_EXIT = "import threading, time\nthreading.Thread(target=time.sleep, args=(0.5,)).start()\n"


def render(*args: str, code: str = "", stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    """`tfreview render ARGS` as a process (`code`: Python run in it before the command line)."""
    return subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nsys.argv = ['tfreview', 'render', "
                           f"*{list(args)!r}]\nfrom tfreview.launch import main\nmain()"],
                          cwd=REPO, stdout=stdout, stderr=subprocess.PIPE, timeout=300)


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json"])
def test_the_review_is_whole_on_a_pipe_and_in_a_file(fmt, tmp_path):
    plan = str(PLANS[0])
    normal = render(plan, "-f", fmt, code=NORMAL_EXIT)
    assert normal.returncode == 0 and normal.stdout, normal.stderr
    piped = render(plan, "-f", fmt)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, normal.stdout, normal.stderr)
    with open(tmp_path / "out", "wb") as out:
        to_file = render(plan, "-f", fmt, stdout=out)
    assert (to_file.returncode, (tmp_path / "out").read_bytes()) == (0, normal.stdout)
    for name, code in (("written", ""), ("written-normally", NORMAL_EXIT)):  # -o FILE: the file's own rendering
        assert render(plan, "-f", fmt, "-o", str(tmp_path / name), code=code).returncode == 0
    assert (tmp_path / "written").read_bytes() == (tmp_path / "written-normally").read_bytes()


def test_every_fixture_plan_reads_the_same_as_a_normal_exit():
    for plan in PLANS:
        assert render(str(plan)).stdout == render(str(plan), code=NORMAL_EXIT).stdout, plan.name


def test_exit_handlers_run_and_the_gate_still_exits_4():
    plan = str(REPO / "fixtures" / "plans" / "import.json")
    done = render(plan, code="import atexit, sys\natexit.register(lambda: print('handler ran', file=sys.stderr))\n")
    assert done.returncode == 0 and done.stderr.endswith(b"handler ran\n")
    gated = [render(str(p), "--fail-on", "low") for p in PLANS]
    assert any(g.returncode == 4 for g in gated)  # a plan with any risk flag: the gate, after the review
    assert all(g.returncode in (0, 4) and g.stdout for g in gated)
