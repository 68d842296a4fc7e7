"""CLI habits people bring from terraform and friends, through the real `tfreview` command (no terraform, no AWS):
--version, completion, -h with examples, --store after the subcommand, `render -`, ASCII-only output, prompts
on the terminal, plain piped text, `--detailed-exitcode` errors exiting 1, and the `--fail-on` risk gate (exit 4).
"""
from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error
from tests.test_cli_contract import ALICE, APP, BOB, record_plan

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
IMAGE_BUMP = DATA / "ecs_image_bump.json"  # risks: one low; the ECS story has arrows
RISKY = DATA / "risky_infrastructure.json"  # risks up to critical
BOX = set("╭╮╰╯│─")


@pytest.fixture(scope="module")
def cli(cli_factory):
    c = cli_factory("habits")
    c.ok("package", "--app", APP, "--version", "1.0.0", "--source", str(c.cwd / "terraform"))
    return c


def test_version_and_short_help(cli):
    from tfreview import __version__

    assert cli.ok("--version").stdout == f"tfreview {__version__}\n"
    assert "Usage: tfreview" in cli.ok("-h").stdout
    assert "Usage: tfreview plan" in cli.ok("plan", "-h").stdout


def test_every_command_help_has_a_real_example():
    from tfreview.cli import build_command

    def leaves(group, prefix=""):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from leaves(cmd, f"{prefix}{name} ")
            else:
                yield f"{prefix}{name}", cmd

    for name, cmd in leaves(build_command()):
        assert cmd.epilog and f"tfreview {name}" in cmd.epilog, f"`tfreview {name} --help` shows no example"


def test_every_help_example_parses():
    """The examples are real command lines: each parses (options exist, values are valid) up to running it."""
    import shlex

    from tfreview.cli import EXAMPLES, build_command

    root = build_command()
    for examples in EXAMPLES.values():
        for example in examples:
            words = shlex.split(example.split(" | ")[-1].split("    #")[0].split(" > ")[0])
            args = words[words.index("tfreview") + 1:]
            if args[0] == "--store":  # the global option before the command
                args = args[2:]
            cmd = root
            while hasattr(cmd, "commands"):  # audit verify / audit log
                name, args = args[0], args[1:]
                cmd = cmd.commands[name]
            cmd.make_context(name, list(args))  # raises on an unknown option or a bad value


def test_examples_show_in_help(cli):
    out = cli.ok("render", "--help").stdout
    assert "Examples:" in out and "terraform show -json tfplan | tfreview render - --format markdown" in out


def test_shell_completion_is_enabled(cli):
    proc = cli("", env={"_TFREVIEW_COMPLETE": "complete_bash", "COMP_WORDS": "tfreview pro", "COMP_CWORD": "1"})
    assert proc.returncode == 0 and proc.stdout.split() == ["promote"], proc
    assert "--install-completion" in cli.ok("--help").stdout


def test_store_is_accepted_after_the_subcommand(cli, tmp_path):
    pid = record_plan(cli.store)
    elsewhere = {"TFREVIEW_STORE": str(tmp_path / "empty-store")}
    assert_one_line_error(cli("show", pid, env=elsewhere), 2, pid)
    assert pid in cli.ok("show", pid, "--store", str(cli.store), env=elsewhere).stdout
    assert pid in cli.ok("--store", str(tmp_path / "other"), "show", pid, "--store", str(cli.store)).stdout  # last wins
    assert_one_line_error(cli("history", "--store", "", env=elsewhere), 2, "--store is empty")


def test_render_reads_stdin(cli):
    from_file = cli.ok("render", str(IMAGE_BUMP), "--format", "json").stdout
    from_stdin = cli.ok("render", "-", "--format", "json", input=IMAGE_BUMP.read_text()).stdout
    assert from_stdin == from_file
    assert_one_line_error(cli("render", "-", input="not a plan"), 2, "stdin")


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LANG": "C", "LC_ALL": "C"}], ids=["ascii", "LANG=C"])
def test_ascii_only_output_degrades_cleanly(cli, env):
    out = subprocess.run([sys.executable, "-m", "tfreview", "render", str(IMAGE_BUMP)], capture_output=True,
                         env={**cli.environment(), **env}, cwd=cli.cwd)
    assert out.returncode == 0 and b"Traceback" not in out.stderr, out.stderr
    text = out.stdout.decode("utf-8")
    if env.get("PYTHONIOENCODING") == "ascii":
        assert out.stdout.isascii()
        assert "image 1.0.0 -> 1.1.0" in text and "-> module.webapp.aws_ecs_service" in text
    else:  # Python's C-locale coercion makes it UTF-8: the arrows survive
        assert "image 1.0.0 → 1.1.0" in text


def test_piped_text_is_plain_headings_without_panels(cli):
    out = cli.ok("render", str(IMAGE_BUMP)).stdout
    assert not BOX & set(out), "piped output must not draw boxes"
    lines = out.splitlines()
    assert lines[0] == "Plan" and "Risks (1)" in lines and "ECS revisions" in lines


def test_approve_prompt_goes_to_the_terminal_not_stdout(cli):
    pid = record_plan(cli.store, planner=ALICE)
    master, slave = pty.openpty()
    try:
        proc = cli.popen("approve", pid, "--format", "json", user=BOB, stdin=slave, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
        os.write(master, b"y\n")
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, stderr
    doc = json.loads(stdout)  # nothing but the JSON document
    assert (doc["kind"], doc["approver"], doc["schema_version"]) == ("approve", BOB, 1)
    assert f"Approve plan {pid}" in stderr and "Plan:" in stderr


def test_detailed_exitcode_errors_exit_1_as_terraforms_do(cli):
    args = ("plan", "--app", APP, "--version", "9.9.9", "--env", "qa")
    assert_one_line_error(cli(*args), 2, "9.9.9")
    assert_one_line_error(cli(*args, "--detailed-exitcode"), 1, "9.9.9")
    usage = cli("plan", "--app", APP, "--detailed-exitcode")  # a usage error found by the parser
    assert usage.returncode == 1 and "Missing option" in usage.stderr


# -- the risk gate -------------------------------------------------------------------------------------------------
def test_fail_on_gates_render_with_exit_4_after_the_review(cli):
    proc = cli("render", str(RISKY), "--fail-on", "high")
    assert proc.returncode == 4 and "Risks (" in proc.stdout
    line, = proc.stderr.splitlines()
    assert line.startswith("tfreview: error: ") and "at high or above" in line and "critical" in line
    assert cli("render", str(IMAGE_BUMP), "--fail-on", "medium").returncode == 0  # one low flag only
    assert cli("render", str(IMAGE_BUMP), "--fail-on", "low").returncode == 4
    gated = cli("render", str(RISKY), "--fail-on", "critical", "--format", "json")
    assert gated.returncode == 4 and json.loads(gated.stdout)["schema_version"] == 1
    assert cli("render", str(RISKY), "--fail-on", "severe").returncode == 2  # not a level: usage error


def test_fail_on_gates_show(cli):
    pid = record_plan(cli.store)  # the contract's plan: a task definition replaced (low flags only)
    assert cli("show", pid, "--fail-on", "medium").returncode == 0
    assert cli("show", pid, "--fail-on", "low", "--format", "json").returncode == 4
