"""The CLI contract people and CI script against (README "Exit codes", ARCHITECTURE "The contract with users").

- `tfreview --help` is fast and imports nothing heavy.
- Bad input, for every command: ONE line on stderr (`tfreview: error: WHAT (WHAT TO DO)`), the documented exit
  code, nothing on stdout, no traceback, never "internal error".
- A failed command leaves nothing half-written in the store.
- `--format json` has the keys documented in docs/cli-json.md (the doc's ```json examples are the reference).

Everything but the last test runs without terraform: plans are recorded in the store as `tfreview plan` records
them (a real review of a small plan document). The test marked `integration` makes one real plan (plan only,
no apply) against the local AWS.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import helpers
from tests.helpers import assert_one_line_error, snapshot
from tfreview.store.base import dumps
from tfreview.store.local import LocalStore

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "cli-json.md"
INVALID_PLAN_JSON = Path("/work/shared/peer-plans/terraform-json/testdata/invalid/plan.json")
ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
APP, VERSION = "webapp", "1.0.0"

PLAN_DOC = {
    "format_version": "1.2", "terraform_version": "1.11.4", "planned_values": {},
    "resource_changes": [{
        "address": 'module.webapp.aws_ecs_task_definition.app["green"]', "mode": "managed",
        "type": "aws_ecs_task_definition", "name": "app", "index": "green",
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {"actions": ["delete", "create"],
                   "before": {"family": "webapp-sandbox-green",
                              "container_definitions": json.dumps([{"name": "web", "image": "r/webapp:1.0.0"}])},
                   "after": {"family": "webapp-sandbox-green",
                             "container_definitions": json.dumps([{"name": "web", "image": "r/webapp:1.1.0"}])},
                   "after_unknown": {"arn": True}, "before_sensitive": {}, "after_sensitive": {},
                   "replace_paths": [["container_definitions"]]}}],
    "output_changes": {"live_color": {"actions": ["update"], "before": "blue", "after": "green",
                                      "after_unknown": False, "before_sensitive": False, "after_sensitive": False}},
    "prior_state": {"format_version": "1.0", "terraform_version": "1.11.4", "values": {"root_module": {}}},
}


# -- helpers -----------------------------------------------------------------------------------------------------
def assert_no_temp_files(store: Path) -> None:
    leftovers = [k for k in snapshot(store) if Path(k).name.startswith(".tmp") or k.endswith((".part", ".tmp"))]
    assert not leftovers, f"temporary files left in the store: {leftovers}"


def record_plan(store_dir: Path, planner: str = ALICE, env: str = "sandbox") -> str:
    """Store a plan of PLAN_DOC for APP VERSION the way `tfreview plan` does."""
    return helpers.record_plan(LocalStore(store_dir), PLAN_DOC, APP, VERSION, env, planner)


def doc_sections() -> dict[str, list]:
    """docs/cli-json.md: `## ` heading -> the JSON documents of its ```json blocks."""
    sections: dict[str, list] = {}
    heading = None
    for m in re.finditer(r"^## (?P<h>[^\n]+)$|^```json\n(?P<body>.*?)^```$", DOC.read_text(), re.M | re.S):
        if m.group("h"):
            heading = m.group("h")
            sections[heading] = []
        else:
            assert heading, "a json block before the first section"
            sections[heading].append(json.loads(m.group("body")))
    return sections


def documented(command: str) -> object:
    """The first JSON example of the section whose heading names `tfreview COMMAND`."""
    for heading, blocks in doc_sections().items():
        if f"`tfreview {command}`" in heading and blocks:
            return blocks[0]
    raise AssertionError(f"docs/cli-json.md documents no JSON for `tfreview {command}`")


def missing_keys(doc: object, actual: object, path: str = "$") -> list[str]:
    """Keys the documentation shows that `actual` lacks (recursively; a documented list item must match one of
    the actual items, and is not checked when the actual list is empty)."""
    if isinstance(doc, dict):
        if not isinstance(actual, dict):
            return [f"{path}: documented an object, got {type(actual).__name__}"]
        out = [f"{path}.{k}" for k in doc if k not in actual]
        for k in doc:
            if k in actual:
                out += missing_keys(doc[k], actual[k], f"{path}.{k}")
        return out
    if isinstance(doc, list):
        if not isinstance(actual, list):
            return [f"{path}: documented a list, got {type(actual).__name__}"]
        out = []
        for i, item in enumerate(doc):
            if actual and isinstance(item, (dict, list)):
                closest: list[str] = min((missing_keys(item, a, f"{path}[{i}]") for a in actual), key=len)
                out += closest
        return out
    return []


def assert_documented(command: str, proc: subprocess.CompletedProcess) -> object:
    assert proc.stdout.endswith("\n")
    actual = json.loads(proc.stdout)
    gaps = missing_keys(documented(command), actual)
    assert not gaps, f"`tfreview {command} --format json` lacks documented keys: {gaps}"
    return actual


# -- fixtures ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli(cli_factory):
    """A store with webapp 1.0.0 packaged from the repo's terraform/ tree. Terraform is never reached here."""
    c = cli_factory("contract")
    c.ok("package", "--app", APP, "--version", VERSION, "--source", str(c.cwd / "terraform"))
    return c


@pytest.fixture(scope="module")
def plan_id(cli):
    return record_plan(cli.store)


# -- startup -----------------------------------------------------------------------------------------------------
def test_help_imports_nothing_heavy():
    """`tfreview --help` stays quick by importing no AWS, HCL or sandbox library (its time is in `make bench`)."""
    code = ("import sys, runpy; sys.argv = ['tfreview', '--help']\n"
            "try:\n    runpy.run_module('tfreview', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "heavy = [m for m in ('boto3', 'botocore', 'hcl2', 'moto', 'python_terraform', 'github', 'gitlab')"
            " if m in sys.modules]\n"
            "print('HEAVY', heavy, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "approve" in proc.stdout, proc.stderr
    assert "HEAVY []" in proc.stderr, f"`tfreview --help` imports {proc.stderr.splitlines()[-1]}"


def test_cli_import_loads_nothing_heavy():
    code = ("import sys, tfreview.cli; "
            "print([m for m in ('boto3', 'botocore', 'hcl2', 'moto') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", f"`import tfreview.cli` loads {proc.stdout.strip()}"


# -- bad input: one line, the documented exit code, no traceback --------------------------------------------------
@pytest.mark.parametrize("args", [
    ("show", "nope-123"),
    ("show", "nope-123", "--format", "json"),
    ("approve", "nope-123", "--yes"),
    ("approve", "nope-123", "--yes", "--format", "json"),
    ("reject", "nope-123", "--reason", "no"),
    ("apply", "nope-123"),
    ("apply", "nope-123", "--format", "json"),
    ("report", "nope-123"),
    ("report", "nope-123", "--format", "json"),
], ids=lambda a: " ".join(a))
def test_unknown_plan_id(cli, args):
    assert_one_line_error(cli(*args, input=""), 2, "no plan 'nope-123'")


@pytest.mark.parametrize("args,contains", [
    (("show", "../../etc/passwd"), "invalid plan id"),
    (("report", "../../etc/passwd"), "invalid plan id"),
    (("apply", "Bad Id"), "invalid plan id"),
    (("package", "--app", "Bad_App", "--version", "1.0.0"), "invalid app"),
    (("package", "--app", APP, "--version", "1 0"), "invalid version"),
    (("package", "--app", APP, "--version", "../1.0.0", "--format", "json"), "invalid version"),
    (("plan", "--app", "BAD", "--version", VERSION, "--env", "sandbox"), "invalid app"),
    (("plan", "--app", APP, "--version", "../x", "--env", "sandbox"), "invalid version"),
    (("plan", "--app", APP, "--version", VERSION, "--env", "PROD"), "invalid env"),
    (("plan", "--app", APP, "--version", VERSION, "--env", "PROD", "--format", "json"), "invalid env"),
    (("status", "--app", "../x", "--env", "qa"), "invalid app"),
    (("rollback", "--app", APP, "--env", "../qa", "--yes"), "invalid env"),
    (("promote", "--app", "../x", "--version", VERSION, "--from", "qa", "--to", "prod"), "invalid app"),
    (("promote", "--app", APP, "--version", "../1", "--from", "qa", "--to", "prod"), "invalid version"),
    (("unlock", "--app", "../x", "--env", "qa"), "invalid app"),
    (("history", "--since", "yesterday"), "cannot read the time"),
    (("apply", "nope-123", "--steps", "10,abc"), "traffic step"),
], ids=lambda a: " ".join(a) if isinstance(a, tuple) else None)
def test_invalid_names(cli, args, contains):
    assert_one_line_error(cli(*args), 2, contains)


@pytest.mark.parametrize("args,contains", [
    (("render",), "Missing argument"),
    (("render", "plan.json", "--bogus"), "No such option: --bogus"),
    (("plan", "--app", APP, "--version", VERSION, "--env", "qa", "--format", "yaml"), "'yaml' is not one of"),
    (("render", "plan.json", "--fail-on", "severe"), "'severe' is not one of"),
    (("audit", "verify", "--nope"), "No such option: --nope"),
    (("nosuch",), "No such command 'nosuch'"),
    (("approve",), "Missing argument"),
], ids=lambda a: " ".join(a) if isinstance(a, tuple) else None)
def test_usage_errors_found_by_the_parser_are_one_line_too(cli, args, contains):
    line = assert_one_line_error(cli(*args), 2, contains)
    assert line.endswith(f"(see `tfreview {args[0] + ' ' + args[1] if args[0] == 'audit' else args[0]} -h`)") \
        or "No such command" in line


def test_unknown_environment_and_unpackaged_version(cli):
    assert_one_line_error(cli("plan", "--app", APP, "--version", VERSION, "--env", "nope"), 2,
                          "environment 'nope' is not in the package")
    assert_one_line_error(cli("plan", "--app", APP, "--version", "9.9.9", "--env", "sandbox"), 2,
                          "no package for webapp 9.9.9")


def test_missing_source_dir(cli):
    before = snapshot(cli.store)
    assert_one_line_error(cli("package", "--app", APP, "--version", "2.0.0", "--source", str(cli.cwd / "nope")),
                          2, "does not exist")
    assert_one_line_error(cli("package", "--app", APP, "--version", "2.0.0", "--source",
                              str(cli.cwd / "terraform" / "envs" / "qa" / "main.tf")), 2, "is not a directory")
    assert snapshot(cli.store) == before
    assert not (cli.store / "packages" / APP / "2.0.0").exists()


def test_source_without_terraform_or_with_a_symlink(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README").write_text("no terraform here\n")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "main.tf").write_text("# root\n")
    (linked / "elsewhere.tf").symlink_to(linked / "main.tf")
    before = snapshot(cli.store)
    assert_one_line_error(cli("package", "--app", APP, "--version", "2.0.1", "--source", str(empty)), 2, "no .tf files")
    assert_one_line_error(cli("package", "--app", APP, "--version", "2.0.2", "--source", str(linked)), 2,
                          "symbolic link")
    assert snapshot(cli.store) == before, "a failed package left files in the store"
    assert not any((cli.store / "packages" / APP / v).exists() for v in ("2.0.1", "2.0.2"))


def test_repackage_with_other_content_is_refused_and_changes_nothing(cli, tmp_path):
    import shutil

    source = tmp_path / "terraform"
    shutil.copytree(cli.cwd / "terraform", source)
    cli.ok("package", "--app", APP, "--version", "3.0.0", "--source", str(source))
    same = cli.ok("package", "--app", APP, "--version", "3.0.0", "--source", str(source), "--format", "json")
    assert json.loads(same.stdout)["status"] == "unchanged"
    (source / "envs" / "qa" / "main.tf").write_text((source / "envs" / "qa" / "main.tf").read_text() + "# edit\n")
    before = snapshot(cli.store)
    line = assert_one_line_error(cli("package", "--app", APP, "--version", "3.0.0", "--source", str(source)), 2,
                                 "already packaged with different content")
    assert "envs/qa/main.tf" in line
    assert snapshot(cli.store) == before


def test_render_bad_files(cli, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a plan\n")
    broken = tmp_path / "broken.json"
    broken.write_text('{"format_version": "1.2", ')
    future = tmp_path / "future.json"
    future.write_text(json.dumps({"format_version": "9.0", "terraform_version": "9.0.0"}))
    array = tmp_path / "array.json"
    array.write_text("[]")
    empty = tmp_path / "empty.json"
    empty.write_text("")
    assert_one_line_error(cli("render", str(tmp_path / "missing.json")), 2, "does not exist")
    assert_one_line_error(cli("render", str(tmp_path)), 2, "is not a file")
    assert_one_line_error(cli("render", str(text)), 2, "neither plan JSON nor a saved plan")
    assert_one_line_error(cli("render", str(empty)), 2, "neither plan JSON nor a saved plan")
    assert_one_line_error(cli("render", str(broken), "--format", "json"), 2, "not valid JSON")
    assert_one_line_error(cli("render", str(array)), 2, "not a JSON object")
    assert_one_line_error(cli("render", str(future)), 2, "format_version 9.0")


@pytest.mark.skipif(not INVALID_PLAN_JSON.is_file(), reason=f"{INVALID_PLAN_JSON} is not on this machine")
def test_render_invalid_plan_json_of_the_peer_testdata(cli):
    assert_one_line_error(cli("render", str(INVALID_PLAN_JSON)), 2, "not valid JSON")


def test_render_output_into_a_missing_directory(cli, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN_DOC))
    assert_one_line_error(cli("render", str(plan), "--format", "markdown", "--output",
                              str(tmp_path / "nope" / "review.md")), 2, "cannot write")


@pytest.mark.parametrize("config,contains", [
    ('store = [\n', "is not valid TOML"),
    ('[policy.default]\nrequired_approvals = 0\n', "[policy] no longer belongs in tfreview.toml"),
    (None, "cannot read"),
    ('store = 5\n', "store must be a string"),
    ('terraform = "x"\n', "terraform must be a table"),
    ('[backend]\ntype = "s3"\n', "backend.type must be a table"),
    ('rollout_poll_s = "fast"\n', "rollout_poll_s must be a number"),
], ids=["invalid-toml", "policy-in-settings", "missing-file", "store-type", "terraform-type",
        "flat-backend", "number-type"])
@pytest.mark.parametrize("args", [("history",), ("package", "--app", APP, "--version", VERSION), ("show", "nope-123")],
                         ids=lambda a: a[0])
def test_broken_config(cli, tmp_path, config, contains, args):
    path = tmp_path / "tfreview.toml"
    if config is not None:
        path.write_text(config)
    assert_one_line_error(cli(*args, env={"TFREVIEW_CONFIG": str(path)}), 2, contains)


@pytest.mark.parametrize("args", [("sandbox", "--port", "99999"), ("sandbox", "--port", "-1"),
                                  ("apply", "nope-123", "--bake", "-5")], ids=lambda a: " ".join(a))
def test_out_of_range_options_are_usage_errors(cli, args):
    proc = cli(*args, timeout=60)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert "Invalid value for" in proc.stderr and "Traceback" not in proc.stderr


def test_corrupt_store_record_is_one_line(cli_factory):
    c = cli_factory("contract-corrupt")
    c.ok("package", "--app", APP, "--version", VERSION)
    pid = record_plan(c.store)
    (c.store / "plans" / pid / "record.json").write_text("not json")
    for args in (("show", pid), ("report", pid), ("approve", pid, "--yes")):
        assert_one_line_error(c(*args, user=BOB), 1, "is not valid JSON")
    listed = c("history", user=BOB)  # one damaged record does not hide the rest of the store: named, not fatal
    assert listed.returncode == 0 and "is not valid JSON" in listed.stderr and pid in listed.stdout, listed.stderr
    other = record_plan(c.store)
    (c.store / "plans" / other / "plan.json").unlink()
    assert_one_line_error(c("show", other), 2, f"plans/{other}/plan.json not found in store")


def test_bad_number_in_the_environment(cli):
    assert_one_line_error(cli("history", env={"TFREVIEW_ROLLOUT_TIMEOUT": "soon"}), 2,
                          "rollout_timeout_s must be a number")


@pytest.mark.parametrize("args", [("history", "--format", "yaml"), ("show", "x", "--format", "pdf"),
                                  ("package", "--app", APP, "--version", VERSION, "-f", "xml")],
                         ids=lambda a: a[0])
def test_unknown_format_is_a_usage_error(cli, args):
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert "Invalid value for '--format'" in proc.stderr


def test_unknown_report_format(cli, plan_id):
    assert_one_line_error(cli("report", plan_id, "--format", "pdf"), 2, "unknown report format 'pdf'")


@pytest.mark.parametrize("store", ["s3://", "s3:///prefix"])
def test_s3_store_without_bucket(cli, store):
    assert_one_line_error(cli("--store", store, "history"), 2, "names no bucket")
    assert_one_line_error(cli("history", env={"TFREVIEW_STORE": store}), 2, "names no bucket")


def test_sandbox_port_taken(cli):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = cli("sandbox", "--port", str(port), timeout=120)
    assert_one_line_error(proc, 2, f"cannot listen on 127.0.0.1:{port}")


def test_never_applied_never_released(cli):
    assert_one_line_error(cli("status", "--app", APP, "--env", "qa"), 2, "webapp has never been applied to qa")
    assert_one_line_error(cli("status", "--app", APP, "--env", "qa", "--format", "json"), 2, "never been applied")
    assert_one_line_error(cli("rollback", "--app", APP, "--env", "qa", "--yes"), 2, "never been applied")
    assert_one_line_error(cli("promote", "--app", APP, "--version", VERSION, "--from", "qa", "--to", "prod"), 3,
                          "was not released successfully in qa")
    assert_one_line_error(cli("unlock", "--app", APP, "--env", "qa"), 2, "no apply lock is held")


def test_break_glass_needs_a_reason(cli, plan_id):
    assert_one_line_error(cli("apply", plan_id, "--break-glass"), 2, "--break-glass needs --reason")
    assert_one_line_error(cli("apply", plan_id, "--break-glass", "--reason", "  "), 2, "--break-glass needs --reason")
    assert not (cli.store / "applies" / plan_id).exists()


def test_confirmations_without_a_terminal(cli, plan_id):
    before = snapshot(cli.store)
    assert_one_line_error(cli("approve", plan_id, user=BOB, input=""), 2, "approve needs a confirmation")
    assert_one_line_error(cli("rollback", "--app", APP, "--env", "sandbox", input=""), 2,
                          "rollback needs a confirmation")
    assert_one_line_error(cli("reject", plan_id, "--reason", " ", user=BOB), 2, "reject needs a reason")
    assert snapshot(cli.store) == before
    assert not (cli.store / "approvals" / plan_id).exists()


def test_refusals_write_nothing(cli, plan_id):
    before = snapshot(cli.store)
    assert_one_line_error(cli("approve", plan_id, "--yes", user=ALICE), 3)  # the planner approving their own plan
    assert_one_line_error(cli("apply", plan_id, user=BOB), 3)  # not approved
    assert snapshot(cli.store) == before


def test_terraform_missing_is_one_line_exit_1_and_leaves_no_plan(cli):
    before = snapshot(cli.store)
    proc = cli("plan", "--app", APP, "--version", VERSION, "--env", "sandbox",
               env={"TFREVIEW_TERRAFORM_BIN": str(cli.cwd / "no-terraform-here")})
    assert_one_line_error(proc, 1, "terraform")
    assert snapshot(cli.store) == before


def test_unusable_directories_are_bad_settings(cli):
    a_file = cli.cwd / "a-file"
    a_file.write_text("")
    before = snapshot(cli.store)
    plan = ("plan", "--app", APP, "--version", VERSION, "--env", "sandbox")
    assert_one_line_error(cli(*plan, env={"TFREVIEW_WORK_DIR": str(a_file)}), 2, "cannot make a working directory")
    assert_one_line_error(cli(*plan, env={"TFREVIEW_PLUGIN_CACHE_DIR": str(a_file)}), 2, "cannot use the plugin cache")
    assert_one_line_error(cli("--store", "", "package", "--app", APP, "--version", "5.0.0"), 2, "--store is empty")
    assert snapshot(cli.store) == before
    assert not (cli.cwd / "packages").exists(), "an empty --store wrote into the working directory"


def test_debug_shows_the_traceback(cli):
    env = {**os.environ, "TFREVIEW_STORE": str(cli.store), "TFREVIEW_DEBUG": "1", "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-m", "tfreview", "show", "nope-123"], cwd=cli.cwd, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "NotFound: no plan 'nope-123'" in proc.stderr


def test_store_stays_consistent_after_failures(cli):
    """Run last in this module (file order): all the failures above left a clean, verifiable store."""
    assert_no_temp_files(cli.store)
    proc = cli.ok("audit", "verify", "--format", "json")
    assert json.loads(proc.stdout)["ok"] is True


# -- --format json: the documented keys -----------------------------------------------------------------------
def test_every_json_command_is_documented():
    import typer.main

    from tfreview.cli import app

    def walk(group, prefix=""):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from walk(cmd, f"{prefix}{name} ")
            elif any("--format" in p.opts for p in cmd.params):
                yield f"{prefix}{name}"

    commands = sorted(walk(typer.main.get_command(app)))
    assert {"package", "plan", "show", "approve", "reject", "apply", "status", "rollback", "promote", "history",
            "report", "audit verify", "unlock"} <= set(commands)
    headings = " ".join(doc_sections())
    undocumented = [c for c in commands if f"`tfreview {c}`" not in headings]
    assert not undocumented, f"docs/cli-json.md has no section for: {undocumented}"
    assert "docs/cli-json.md" in (REPO / "README.md").read_text(), "README's Usage must link docs/cli-json.md"


def test_json_package(cli):
    created = cli.ok("package", "--app", APP, "--version", "4.0.0", "--source", str(cli.cwd / "terraform"),
                     "--format", "json")
    doc = assert_documented("package", created)
    assert doc["status"] == "created" and doc["app"] == APP and doc["version"] == "4.0.0"
    assert isinstance(doc["files"], int) and re.fullmatch(r"[0-9a-f]{64}", doc["sha256"])
    again = cli.ok("package", "--app", APP, "--version", "4.0.0", "--source", str(cli.cwd / "terraform"),
                   "--format", "json")
    assert {**json.loads(again.stdout), "status": "created"} == doc


def test_json_decisions_history_report_audit(cli):
    pid = record_plan(cli.store)
    approved = assert_documented("approve", cli.ok("approve", pid, "--yes", "-m", "lgtm", "--format", "json", user=BOB))
    assert (approved["kind"], approved["approver"], approved["plan_id"]) == ("approve", BOB, pid)
    rejected = assert_documented("reject", cli.ok("reject", pid, "--reason", "no", "--format", "json", user=CAROL))
    assert (rejected["kind"], rejected["comment"]) == ("reject", "no")

    rows = assert_documented("history", cli.ok("history", "--format", "json"))
    row = next(r for r in rows if r["id"] == pid)
    assert row["outcome"] == "planned" and [a["by"] for a in row["approvals"]] == [BOB, CAROL]
    assert json.loads(cli.ok("history", "--app", "other", "--format", "json").stdout) == []

    report = assert_documented("report", cli.ok("report", pid, "--format", "json"))
    assert report["plan"]["id"] == pid and report["outcome"] == "not applied" and report["diff"]["schema_version"] == 1

    verify = assert_documented("audit verify", cli.ok("audit", "verify", "--format", "json"))
    assert verify["ok"] is True and verify["entries"] >= 4
    entries = assert_documented("audit log", cli.ok("audit", "log", "--plan", pid, "--format", "json"))
    assert [e["event"] for e in entries] == ["plan", "approve", "reject"]


def test_json_show_and_render_review(cli, plan_id, tmp_path):
    shown = assert_documented("show", cli.ok("show", plan_id, "--format", "json"))
    assert shown["schema_version"] == 1 and shown["image_changes"][0]["new_image"] == "r/webapp:1.1.0"
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN_DOC))
    rendered = assert_documented("render", cli.ok("render", str(plan), "--format", "json"))
    assert rendered == shown


def test_json_unlock(cli):
    from tfreview.store.locks import acquire_lock

    acquire_lock(LocalStore(cli.store), APP, "qa", ALICE, "webapp-qa-20261126-000000-abcd")
    doc = assert_documented("unlock", cli.ok("unlock", "--app", APP, "--env", "qa", "--force", "--format", "json",
                                             user=BOB))
    assert doc["unlocked_by"] == BOB and doc["previous"]["owner"] == ALICE and doc["interrupted"] is None


def test_json_apply_no_wait_with_a_stub_terraform(cli_factory, tmp_path):
    """`apply --no-wait --format json` up to the recorded result, terraform being a stub that succeeds."""
    stub = tmp_path / "terraform"
    outputs = {"strategy": "blue_green", "live_color": "blue", "versions": {"blue": "1.0.0", "green": "1.0.0"},
               "weights": {"blue": 100, "green": 0}}
    shown = tmp_path / "plan.json"  # what `terraform show -json` says of the plan binary: the plan reviewed
    shown.write_text(json.dumps(PLAN_DOC))
    stub.write_text("#!/bin/sh\ncase \"$1\" in\n  output) echo '%s' ;;\n  show) cat '%s' ;;\nesac\nexit 0\n"
                    % (json.dumps({k: {"value": v} for k, v in outputs.items()}), shown))
    stub.chmod(0o755)
    c = cli_factory("contract-apply")
    c.ok("package", "--app", APP, "--version", VERSION)
    pid = record_plan(c.store)
    c.ok("approve", pid, "--yes", user=BOB)
    proc = c.ok("apply", pid, "--no-wait", "--format", "json", env={"TFREVIEW_TERRAFORM_BIN": str(stub)})
    doc = json.loads(proc.stdout)
    # no rollout with --no-wait; outputs are the stack's (the stub's here)
    gaps = [k for k in missing_keys(documented("apply"), doc) if not k.startswith(("$.rollout", "$.outputs."))]
    assert not gaps and "rollout" not in doc, gaps
    assert (doc["outcome"], doc["plan_id"], doc["outputs"]) == ("applied", pid, outputs)
    rows = json.loads(c.ok("history", "--format", "json").stdout)
    assert (rows[0]["outcome"], rows[0]["applied_by"]) == ("applied", ALICE)
    report = assert_documented("report", c.ok("report", pid, "--format", "json"))
    assert report["apply"]["outcome"] == "applied"


def test_json_status_from_the_store(cli):
    """status reads the last apply's outputs from the store; with AWS unreachable the weights are `recorded`."""
    store = LocalStore(cli.store)
    pid = "webapp-prod-20261126-000000-beef"
    outputs = {"strategy": "blue_green", "live_color": "green", "versions": {"blue": "1.0.0", "green": "1.1.0"},
               "weights": {"blue": 0, "green": 100}, "listener_arn": "arn:aws:elasticloadbalancing:x",
               "target_groups": {"blue": "arn:tg-blue", "green": "arn:tg-green"}}
    store.create(f"applies/{pid}/start.json", dumps({"kind": "apply-start", "app": APP, "env": "prod",
                                                     "version": "1.1.0", "plan_id": pid, "by": ALICE,
                                                     "started_at": "2026-11-26T10:00:00Z", "break_glass": None}))
    store.create(f"applies/{pid}/result.json", dumps({"kind": "apply-result", "app": APP, "env": "prod",
                                                      "version": "1.1.0", "plan_id": pid, "by": ALICE,
                                                      "started_at": "2026-11-26T10:00:00Z", "outcome": "applied",
                                                      "outputs": outputs, "finished_at": "2026-11-26T10:05:00Z"}))
    store.create(f"rollouts/{APP}/prod/{pid}.json", dumps({"kind": "release", "plan_id": pid, "app": APP,
                                                           "env": "prod", "version": "1.1.0", "by": ALICE,
                                                           "outcome": "succeeded", "reason": "",
                                                           "finished_at": "2026-11-26T10:04:59Z"}))
    closed = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1", "AWS_ACCESS_KEY_ID": "testing",
              "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    doc = assert_documented("status", cli.ok("status", "--app", APP, "--env", "prod", "--format", "json", env=closed))
    assert (doc["live_color"], doc["weights_source"], doc["last_release"]["outcome"]) == ("green", "recorded",
                                                                                           "succeeded")


# -- one real plan (plan only): `plan --format json` -------------------------------------------------------------
@pytest.mark.integration
def test_json_real_plan(aws_sandbox, cli_factory):
    c = cli_factory("contract-plan")
    c.ok("package", "--app", APP, "--version", VERSION)
    proc = c("plan", "--app", APP, "--version", VERSION, "--env", "sandbox", "--format", "json",
             "--detailed-exitcode", timeout=600)
    assert proc.returncode == 2, f"a first plan has changes (--detailed-exitcode: 2): {proc.stderr[-2000:]}"
    doc = assert_documented("plan", proc)
    assert doc["sha256"] == doc["plan_sha256"] and doc["plan_kind"] == "deploy" and doc["counts"]["add"] > 0
    shown = assert_documented("show", c.ok("show", doc["id"], "--format", "json"))
    assert shown["counts"] == doc["counts"]
    assert not [line for line in proc.stderr.splitlines() if line.startswith("tfreview: error")]
