"""Hostile input through the real CLI (issue 9's acceptance): every bad input and attack below runs `tfreview` as a
subprocess and must give the documented exit code, exactly one line on stderr, never `internal error`, no
terminal control character, nothing on stdout, and leave the store byte-for-byte as it was.

No terraform and no AWS: one store (a package and a recorded plan) is made once per module; cases that damage a
store work on their own copy. Attacks that are not errors (hostile text inside a plan) are rendered and checked
for escaping in `test_hostile_plan_text_is_shown_escaped`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.helpers import assert_one_line_error, deep_json, snapshot
from tests.test_cli_contract import APP, PLAN_DOC, VERSION, record_plan
from tests.test_cli_contract import cli, plan_id  # noqa: F401  (the module's packaged store and recorded plan)

ESC = "\x1b"
HOSTILE = "\x1b]52;c;aGk=\x07\x1b[2J\x9b31m\u202egnp.exe\u2066"  # OSC 52, CSI, C1 CSI, bidi override/isolate
# Anything a terminal could obey: C0 but newline/tab, DEL, C1, bidi and other format characters.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


@dataclass
class World:
    """What a case may use: the Cli (bound to the module's store), a scratch directory, the recorded plan id."""

    cli: Any  # conftest.Cli
    tmp: Path
    plan_id: str
    env: dict[str, str] = field(default_factory=dict)

    def file(self, name: str, content: bytes | str) -> str:
        path = self.tmp / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return str(path)



@dataclass(frozen=True)
class Case:
    """One bad input: its id, the exit code and words of the one error line, the arguments (built in a scratch
    World), and the tfreview.toml (`config`) or environment (`env`, `{tmp}` filled in) it runs with."""

    id: str
    code: int
    contains: str
    build: Callable[[World], tuple[str, ...]]
    config: str | bytes | None = None
    env: dict[str, str] = field(default_factory=dict)


def history(w: World) -> tuple[str, ...]:
    return ("history",)


def plan_json(**changes: object) -> str:
    return json.dumps({**PLAN_DOC, **changes})


def source_tree(w: World, extra: Callable[[Path], None]) -> str:
    src = w.tmp / "src"
    (src / "envs" / "qa").mkdir(parents=True)
    (src / "envs" / "qa" / "main.tf").write_text('terraform {\n  backend "local" {}\n}\n')
    extra(src)
    return str(src)


def _fifo(w: World) -> str:
    path = w.tmp / "fifo"
    os.mkfifo(path)
    return str(path)


def _symlink(w: World) -> str:
    path = w.tmp / "link.md"
    path.symlink_to(w.tmp / "victim.md")
    return str(path)


def _dangling_terraform(w: World) -> str:
    repo = w.tmp / "repo"
    repo.mkdir()
    (repo / "terraform").symlink_to(w.tmp / "victim")
    return str(repo)


def _sparse(src: Path) -> None:
    with open(src / "huge.tf", "wb") as fh:
        fh.truncate(201 * 1024 * 1024)


def _bad_name(src: Path) -> None:
    with open(os.fsencode(src) + b"/bad\xff.tf", "wb") as fh:
        fh.write(b"# a name that is not UTF-8\n")


def render(w: World, content: bytes | str, *more: str) -> tuple[str, ...]:
    return ("render", w.file("plan.json", content), *more)


PLAN_FILE = json.loads(plan_json())
CASES = [
    # -- names: matched exactly end to end, no control characters, never blank ---------------------------------
    Case("app-trailing-newline", 2, "invalid app", lambda w: ("package", "--app", "webapp\n", "--version", "9.0.0")),
    Case("version-trailing-newline", 2, "invalid version", lambda w: ("package", "--app", APP, "--version", "9.0.0\n")),
    Case("env-trailing-newline", 2, "invalid env", lambda w: ("plan", "--app", APP, "--version", VERSION, "--env", "qa\n")),
    Case("plan-id-trailing-newline", 2, "invalid plan id", lambda w: ("show", w.plan_id + "\n")),
    Case("report-id-trailing-newline", 2, "invalid plan id", lambda w: ("report", w.plan_id + "\n")),
    Case("approve-id-trailing-newline", 2, "invalid plan id", lambda w: ("approve", w.plan_id + "\n", "--yes")),
    Case("blank-app", 2, "invalid app", lambda w: ("package", "--app", "", "--version", "9.0.0")),
    Case("blank-version", 2, "invalid version", lambda w: ("package", "--app", APP, "--version", "  ")),
    Case("blank-plan-id", 2, "invalid plan id", lambda w: ("show", "")),
    Case("app-escape", 2, "invalid app", lambda w: ("status", "--app", "web" + HOSTILE, "--env", "qa")),
    Case("env-escape", 2, "invalid env", lambda w: ("unlock", "--app", APP, "--env", "qa" + HOSTILE)),
    Case("version-bidi", 2, "invalid version", lambda w: ("package", "--app", APP, "--version", "1.0\u202e0")),
    Case("history-app-escape", 2, "invalid app", lambda w: ("history", "--app", HOSTILE)),
    Case("history-env-upper", 2, "invalid env", lambda w: ("history", "--env", "PROD")),
    Case("history-version-path", 2, "invalid version", lambda w: ("history", "--version", "../../x")),
    Case("audit-log-app-escape", 2, "invalid app", lambda w: ("audit", "log", "--app", "x" + ESC + "[31m")),
    Case("audit-log-plan-escape", 2, "invalid plan id", lambda w: ("audit", "log", "--plan", w.plan_id + ESC)),
    Case("audit-log-event-escape", 2, "invalid event", lambda w: ("audit", "log", "--event", "plan" + HOSTILE)),
    Case("rollback-app-escape", 2, "invalid app", lambda w: ("rollback", "--app", HOSTILE, "--env", "qa", "--yes")),
    Case("promote-from-upper", 2, "invalid env", lambda w: ("promote", "--app", APP, "--version", VERSION,
                                                            "--from", "QA", "--to", "prod")),
    Case("promote-to-blank", 2, "invalid env", lambda w: ("promote", "--app", APP, "--version", VERSION,
                                                          "--from", "qa", "--to", "")),
    Case("app-too-long", 2, "invalid app", lambda w: ("status", "--app", "a" * 200, "--env", "qa")),
    Case("plan-id-unicode-digit", 2, "invalid plan id", lambda w: ("show", "webapp-\u0663")),
    Case("user-escape", 2, "TFREVIEW_USER", lambda w: ("reject", w.plan_id, "--reason", "no"), env={"TFREVIEW_USER": "eve" + HOSTILE}),
    Case("user-newline", 2, "TFREVIEW_USER", lambda w: ("reject", w.plan_id, "--reason", "no"), env={"TFREVIEW_USER": "eve\nmallory"}),
    Case("user-blank", 2, "TFREVIEW_USER", lambda w: ("approve", w.plan_id, "--yes"), env={"TFREVIEW_USER": " \t "}),
    Case("person-escape", 2, "invalid person", lambda w: ("history", "--person", "a" + ESC + "[2J")),
    # -- plans at the door ----------------------------------------------------------------------------------------
    Case("state-json", 2, "state", lambda w: render(w, json.dumps({"format_version": "1.0", "terraform_version": "1.11.4",
                                                                    "values": {"root_module": {}}}))),
    Case("providers-schema-json", 2, "not a plan", lambda w: render(w, json.dumps({"format_version": "1.0",
                                                                                    "provider_schemas": {}}))),
    Case("validate-json", 2, "not a plan", lambda w: render(w, json.dumps({"format_version": "1.0", "valid": True,
                                                                            "error_count": 0, "warning_count": 0,
                                                                            "diagnostics": []}))),
    Case("version-json", 2, "no format_version", lambda w: render(w, json.dumps({"terraform_version": "1.11.4",
                                                                                  "platform": "linux_amd64"}))),
    Case("format-version-number", 2, "format_version", lambda w: render(w, plan_json(format_version=1.2))),
    Case("format-version-2", 2, "format_version 2.0", lambda w: render(w, plan_json(format_version="2.0"))),
    Case("json-null", 2, "neither plan JSON", lambda w: render(w, "null")),
    Case("json-string", 2, "neither plan JSON", lambda w: render(w, '"plan"')),
    Case("json-nan", 2, "not valid JSON", lambda w: render(w, '{"format_version": "1.2", "x": NaN}')),
    Case("json-not-utf8", 2, "not valid JSON", lambda w: render(w, b'{"format_version": "1.2", "x": "\xff"}')),
    Case("json-deep", 2, "not valid JSON", lambda w: render(w, '{"format_version": "1.2", "x": ' + "[" * 5000 + "]" * 5000 + "}")),
    Case("changes-not-list", 2, "not a list", lambda w: render(w, plan_json(resource_changes={"a": 1}))),
    Case("unknown-action", 2, "unknown actions", lambda w: render(w, plan_json(resource_changes=[
        {**PLAN_FILE["resource_changes"][0], "change": {**PLAN_FILE["resource_changes"][0]["change"],
                                                        "actions": ["explode"]}}]))),
    Case("address-not-string", 2, "no address", lambda w: render(w, plan_json(resource_changes=[
        {**PLAN_FILE["resource_changes"][0], "address": 42}]))),
    Case("address-with-escape", 2, "address", lambda w: render(w, plan_json(resource_changes=[
        {**PLAN_FILE["resource_changes"][0], "address": "aws_s3_bucket.x\n# aws_s3_bucket.y has no changes"}]))),
    Case("change-not-object", 2, "no change", lambda w: render(w, plan_json(resource_changes=[
        {**PLAN_FILE["resource_changes"][0], "change": "create"}]))),
    Case("outputs-not-object", 2, "output_changes", lambda w: render(w, plan_json(output_changes=["x"]))),
    # These reached the `internal error` catch-all before: each is a test now.
    Case("replace-paths-number", 2, "replace_paths", lambda w: render(w, plan_json(resource_changes=[
        {**PLAN_FILE["resource_changes"][0], "change": {**PLAN_FILE["resource_changes"][0]["change"],
                                                        "replace_paths": 5}}]))),
    Case("replace-paths-entry-object", 2, "replace_paths", lambda w: render(w, plan_json(resource_changes=[
        {**PLAN_FILE["resource_changes"][0], "change": {**PLAN_FILE["resource_changes"][0]["change"],
                                                        "replace_paths": [[{"a": 1}]]}}]))),
    Case("relevant-attribute-number", 2, "relevant_attributes", lambda w: render(w, plan_json(
        relevant_attributes=[{"resource": "aws_s3_bucket.x", "attribute": 1.5}]))),
    Case("check-instances-number", 2, "instances", lambda w: render(w, plan_json(
        checks=[{"address": {"kind": "resource", "to_display": "aws_s3_bucket.x"}, "status": "fail", "instances": 5}]))),
    Case("prior-state-number", 2, "prior_state", lambda w: render(w, plan_json(prior_state=5))),
    Case("prior-state-values-list", 2, "values", lambda w: render(w, plan_json(prior_state={"values": []}))),
    Case("planned-values-string", 2, "planned_values", lambda w: render(w, plan_json(planned_values="x"))),
    Case("configuration-list", 2, "configuration", lambda w: render(w, plan_json(configuration=[]))),
    Case("binary-garbage-zip", 2, "saved plan", lambda w: render(w, b"PK\x03\x04" + b"\x00" * 64)),
    Case("zip-without-plan", 2, "saved plan", lambda w: ("render", str(w.cli.store / "packages" / APP / VERSION / "terraform.zip"))),
    Case("file-name-escape", 2, "does not exist", lambda w: ("render", str(w.tmp / ("x" + HOSTILE + ".json")))),
    Case("render-name-too-long", 2, "cannot read", lambda w: ("render", "a" * 300)),  # reached `internal error`
    Case("render-fifo", 2, "is not a file", lambda w: ("render", _fifo(w))),
    Case("render-dev-zero", 2, "is not a file", lambda w: ("render", "/dev/zero")),
    # -- --output ---------------------------------------------------------------------------------------------------
    Case("output-symlink", 2, "symbolic link", lambda w: render(w, plan_json(), "-f", "markdown", "-o", _symlink(w))),
    Case("output-fifo", 2, "named pipe", lambda w: render(w, plan_json(), "-f", "html", "-o", _fifo(w))),
    Case("output-device", 2, "device", lambda w: render(w, plan_json(), "-f", "json", "-o", "/dev/full")),
    Case("output-directory", 2, "directory", lambda w: render(w, plan_json(), "-o", str(w.tmp))),
    Case("output-missing-dir", 2, "not a directory", lambda w: render(w, plan_json(), "-o", str(w.tmp / "no" / "r.md"))),
    Case("output-name-too-long", 2, "cannot write", lambda w: ("show", w.plan_id, "-o", str(w.tmp / ("o" * 300)))),
    Case("show-output-symlink", 2, "symbolic link", lambda w: ("show", w.plan_id, "-f", "markdown", "-o", _symlink(w))),
    Case("report-output-fifo", 2, "named pipe", lambda w: ("report", w.plan_id, "-o", _fifo(w))),
    Case("report-output-device", 2, "device", lambda w: ("report", w.plan_id, "-o", "/dev/null")),
    # -- options: every value checked, whatever the other flags --------------------------------------------------
    Case("steps-no-wait", 2, "traffic step", lambda w: ("apply", w.plan_id, "--no-wait", "--steps", "10,x")),
    Case("steps-zero", 2, "traffic step", lambda w: ("apply", w.plan_id, "--steps", "0,100")),
    Case("steps-over-100", 2, "traffic step", lambda w: ("apply", w.plan_id, "--steps", "50,150")),
    Case("steps-decreasing", 2, "traffic step", lambda w: ("apply", w.plan_id, "--steps", "50,10,100")),
    Case("steps-blank-part", 2, "traffic step", lambda w: ("apply", w.plan_id, "--no-wait", "--steps", " ,100")),
    Case("bake-over-a-day", 2, "--bake", lambda w: ("apply", w.plan_id, "--bake", "1e9")),
    Case("bake-inf", 2, "--bake", lambda w: ("apply", w.plan_id, "--no-wait", "--bake", "inf")),
    Case("verify-cmd-blank", 2, "--verify-cmd", lambda w: ("apply", w.plan_id, "--no-wait", "--verify-cmd", " ")),
    Case("break-glass-blank-reason", 2, "--reason", lambda w: ("apply", w.plan_id, "--break-glass", "--reason", "  ")),
    Case("since-not-a-date", 2, "cannot read the time", lambda w: ("history", "--since", "last tuesday")),
    Case("until-bad-month", 2, "cannot read the time", lambda w: ("audit", "log", "--until", "2026-13-01")),
    Case("render-unknown-action", 2, "--action", lambda w: render(w, plan_json(), "--action", "explode")),
    Case("reject-blank-reason", 2, "--reason", lambda w: ("reject", w.plan_id, "--reason", " ")),
    # -- configuration --------------------------------------------------------------------------------------------
    Case("config-not-utf8", 2, "UTF-8", history, config=b'store = "\xff"\n'),
    Case("config-unknown-top-key", 2, "did you mean 'store'", history, config='stor = "x"\n'),
    Case("config-unknown-terraform-key", 2, "did you mean 'bin'", history, config='[terraform]\nbinn = "t"\n'),
    Case("config-unknown-app-key", 2, "did you mean 'image_repository'",
         history, config='[apps.webapp]\nimage_repo = "r"\n'),
    Case("config-unknown-backend-key", 2, "did you mean 'bucket'",
         history, config='[backend.qa]\ntype = "s3"\nbuckett = "b"\n'),
    Case("config-backend-type", 2, "backend.qa.type", history, config='[backend.qa]\ntype = "gcs"\n'),
    Case("config-max-age-nan", 2, "plan_max_age_hours", history, config="plan_max_age_hours = nan\n"),
    Case("config-max-age-inf", 2, "plan_max_age_hours", history, config="plan_max_age_hours = inf\n"),
    Case("config-max-age-negative", 2, "plan_max_age_hours", history, config="plan_max_age_hours = -1\n"),
    Case("config-timeout-huge", 2, "rollout_timeout_s", history, config="rollout_timeout_s = 1e300\n"),
    Case("config-poll-zero", 2, "rollout_poll_s", history, config="rollout_poll_s = 0\n"),
    Case("config-bool-number", 2, "rollout_poll_s", history, config="rollout_poll_s = true\n"),
    Case("config-apps-not-table", 2, "apps.webapp", history, config='apps = { webapp = 5 }\n'),
    Case("config-is-directory", 2, "cannot read", history, env={"TFREVIEW_CONFIG": "{tmp}"}),
    Case("env-timeout-text", 2, "TFREVIEW_ROLLOUT_TIMEOUT", history, env={"TFREVIEW_ROLLOUT_TIMEOUT": "soon"}),
    Case("env-poll-nan", 2, "TFREVIEW_ROLLOUT_POLL", history, env={"TFREVIEW_ROLLOUT_POLL": "nan"}),
    Case("env-timeout-negative", 2, "TFREVIEW_ROLLOUT_TIMEOUT", history, env={"TFREVIEW_ROLLOUT_TIMEOUT": "-5"}),
    Case("store-S3-upper", 2, "s3://", lambda w: ("--store", "S3://bucket/tfreview", "history")),
    Case("store-s3-one-slash", 2, "s3://", lambda w: ("--store", "s3:/bucket/tfreview", "history")),
    Case("store-gs-scheme", 2, "s3://", lambda w: ("--store", "gs://bucket/tfreview", "history")),
    Case("store-s3-space", 2, "s3://", lambda w: ("--store", "s3://my bucket/tfreview", "history")),
    Case("store-s3-no-bucket", 2, "names no bucket", lambda w: ("--store", "s3://", "history")),
    Case("store-config-typo", 2, "s3://", history, config='store = "s3//bucket/x"\n'),
    Case("store-name-too-long", 2, "cannot use store", lambda w: ("--store", "s" * 300, "history")),
    Case("store-is-a-file", 2, "not a directory", lambda w: ("--store", w.file("store-file", "x"), "history")),
    # -- init (these two reached the `internal error` catch-all) --------------------------------------------------
    Case("init-dangling-symlink", 2, "already exists", lambda w: ("init", "--app", APP, "--dir", _dangling_terraform(w))),
    Case("init-dir-name-too-long", 2, "cannot use", lambda w: ("init", "--app", APP, "--dir", str(w.tmp / ("d" * 300)))),
    # -- packaging --------------------------------------------------------------------------------------------------
    Case("source-name-not-utf8", 2, "UTF-8", lambda w: ("package", "--app", APP, "--version", "9.1.0",
                                                        "--source", source_tree(w, _bad_name))),
    Case("source-too-large", 2, "too large", lambda w: ("package", "--app", APP, "--version", "9.2.0",
                                                         "--source", source_tree(w, _sparse))),
    Case("source-fifo", 2, "not a regular file", lambda w: ("package", "--app", APP, "--version", "9.3.0",
                                                            "--source", source_tree(w, lambda s: os.mkfifo(s / "pipe.tf")))),
    Case("source-is-a-file", 2, "is not a directory", lambda w: ("package", "--app", APP, "--version", "9.4.0",
                                                                 "--source", w.file("main.tf", "# x\n"))),
]


def assert_refused(proc, code: int, contains: str) -> None:
    where = f"exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr!r}"
    assert proc.returncode == code, where
    assert proc.stdout == "", where
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, where
    lines = proc.stderr.split("\n")
    assert len(lines) == 2 and lines[1] == "" and lines[0].startswith("tfreview: error: "), where
    assert not CONTROL.search(proc.stderr.rstrip("\n")), where
    assert contains in lines[0], where


def test_there_are_at_least_80_distinct_cases():
    assert len({c.id for c in CASES}) == len(CASES) >= 80


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_refused_in_one_line_and_changes_nothing(cli, plan_id, tmp_path, case):
    world = World(cli, tmp_path, plan_id, {k: v.format(tmp=tmp_path) for k, v in case.env.items()})
    if case.config is not None:
        world.env["TFREVIEW_CONFIG"] = world.file("tfreview.toml", case.config)
    args = case.build(world)
    before = snapshot(cli.store)
    proc = cli(*args, env=world.env, timeout=60)
    assert_refused(proc, case.code, case.contains)
    assert snapshot(cli.store) == before, "the store changed"
    assert not (tmp_path / "victim.md").exists(), "--output wrote through a symbolic link"


# -- a damaged store: the file is named, in one line --------------------------------------------------------------
def _damage(store: Path, plan_id: str, what: str) -> tuple[tuple[str, ...], str]:
    record = store / "plans" / plan_id / "record.json"
    if what == "record-not-json":
        record.write_text("{not json")
        return ("show", plan_id), f"plans/{plan_id}/record.json"
    if what == "record-not-utf8":
        record.write_bytes(b'{"id": "\xff"}')
        return ("report", plan_id), f"plans/{plan_id}/record.json"
    if what == "record-a-list":
        record.write_text("[]")
        return ("show", plan_id), f"plans/{plan_id}/record.json"
    if what == "record-missing-fields":
        record.write_text('{"kind": "plan"}')
        return ("show", plan_id), f"plans/{plan_id}/record.json"
    if what == "record-wrong-types":
        record.write_text(json.dumps({**json.loads(record.read_text()), "created_at": 5}))
        return ("show", plan_id), f"plans/{plan_id}/record.json"  # history lists the rest: test_damaged_records
    if what == "plan-json-damaged":
        (store / "plans" / plan_id / "plan.json").write_text('{"format_version": "1.2", "resource_changes": 5}')
        return ("show", plan_id), f"plans/{plan_id}/plan.json"
    if what in ("head-a-list", "head-damaged"):
        here = record_plan(store)  # a plan of this copy (a plan applies only in the store it was made in)
        next((store / "heads").rglob("latest-plan.json")).write_text("[]" if what == "head-a-list" else "\x00\x01")
        return ("apply", here), "latest-plan.json"
    if what == "approval-damaged":
        folder = store / "approvals" / plan_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "bob.json").write_text("{")
        return ("approve", plan_id, "--yes"), f"approvals/{plan_id}/bob.json"
    if what == "lock-damaged":
        lock = store / "locks" / APP / "sandbox.json"
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_text("garbage")
        return ("unlock", "--app", APP, "--env", "sandbox"), f"locks/{APP}/sandbox.json"
    if what == "plans-folder-is-a-file":
        shutil.rmtree(store / "plans")
        (store / "plans").write_text("")
        return ("history",), "plans"
    raise AssertionError(what)


DAMAGE = ["record-not-json", "record-not-utf8", "record-a-list", "record-missing-fields", "record-wrong-types",
          "plan-json-damaged", "head-a-list", "head-damaged",
          "approval-damaged", "lock-damaged", "plans-folder-is-a-file"]


@pytest.mark.parametrize("what", DAMAGE)
def test_a_damaged_store_file_is_named_in_one_line(cli, plan_id, tmp_path, what):
    store = tmp_path / "store"
    shutil.copytree(cli.store, store)
    args, name = _damage(store, plan_id, what)
    before = snapshot(store)
    proc = cli(*args, env={"TFREVIEW_STORE": str(store)}, user="bob@example.com", timeout=60)
    # A review JSON changed since planning no longer matches its record's sha256: refused by policy (exit 3).
    expected = 3 if what == "plan-json-damaged" else proc.returncode if proc.returncode in (1, 2) else -1
    assert_refused(proc, expected, name)
    assert snapshot(store) == before


def test_unlock_force_clears_an_unreadable_lock(cli, plan_id, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(cli.store, store)
    _damage(store, plan_id, "lock-damaged")
    proc = cli("unlock", "--app", APP, "--env", "sandbox", "--force", env={"TFREVIEW_STORE": str(store)})
    assert proc.returncode == 0, proc.stderr
    assert not (store / "locks" / APP / "sandbox.json").exists()


# -- hostile text inside a plan is shown, escaped, in every format ----------------------------------------------
def hostile_plan() -> dict:
    doc = json.loads(plan_json())
    rc = doc["resource_changes"][0]
    after = dict(rc["change"]["after"])
    after["family"] = "web" + HOSTILE + "</table><script>alert(1)</script><img src=x onerror=alert(2)>"
    after["container_definitions"] = json.dumps([{"name": "web" + HOSTILE + "```", "image": "r/webapp:1.1.0" + HOSTILE}])
    rc["change"] = {**rc["change"], "after": after}
    doc["resource_changes"].append({
        "address": "aws_s3_bucket.logs", "mode": "managed", "type": "aws_s3_bucket",
        "name": "logs", "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {"actions": ["delete"], "before": {"bucket": "</details>```" + HOSTILE}, "after": None,
                   "after_unknown": {}, "before_sensitive": {}, "after_sensitive": False}})
    return doc


@pytest.mark.parametrize("definitions", ['[{"name": "web", "environment": 5}]', '[{"name": "web", "portMappings": "x"}]',
                                         '[{"name": "web", "portMappings": {"a": 1}}]'],
                         ids=["environment-number", "port-mappings-string", "port-mappings-object"])
def test_malformed_container_definitions_are_reviewed_not_crashed(cli, tmp_path, definitions):
    """These reached the `internal error` catch-all: a definition AWS would refuse at apply is still reviewed."""
    doc = json.loads(plan_json())
    change = doc["resource_changes"][0]["change"]
    change["before"] = {**change["before"], "container_definitions": definitions}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    proc = cli("render", str(path))
    assert proc.returncode == 0 and "internal error" not in proc.stderr, proc.stderr
    assert "changed" in proc.stdout


def _outside_code(markdown: str) -> str:
    """Markdown without its fenced blocks and inline code spans (where text is shown, never read as HTML)."""
    lines, fence = [], None
    for line in markdown.split("\n"):
        m = re.match(r"^(`{3,})", line)
        if fence is None and m:
            fence = m.group(1)
            continue
        if fence is not None:
            if line.strip() == fence:
                fence = None
            continue
        lines.append(re.sub(r"`[^`]*`", "", line))
    assert fence is None, "a code fence was left open: a value broke out of it"
    return "\n".join(lines)


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json"])
def test_hostile_plan_text_is_shown_escaped(cli, tmp_path, fmt):
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(hostile_plan()))
    proc = cli("render", str(path), "--format", fmt, env={"COLUMNS": "300"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert not CONTROL.search(out.replace("\t", "")), f"a control character reached the terminal in {fmt}"
    if fmt == "json":
        bucket = next(r for r in json.loads(out)["resources"] if r["address"] == "aws_s3_bucket.logs")
        assert "\u202e" in json.dumps(bucket, ensure_ascii=False), "the data is kept, escaped the JSON way"
        return
    assert "\\x1b" in out or "\\u001b" in out, "control characters must be shown, escaped"
    assert "\\u202e" in out
    assert "aws_s3_bucket.logs" in out, "the destroyed bucket is listed"
    if fmt == "markdown":
        prose = _outside_code(out)
        for raw in ("<script", "<img", "</table", "</details>```"):
            assert raw not in prose, f"raw {raw} outside code in markdown"
    if fmt == "html":
        for raw in ("<script", "<img", "</table><"):
            assert raw not in out, f"raw {raw} in html"


@pytest.fixture(scope="module")
def hostile_store(cli, plan_id, tmp_path_factory):
    """A copy of the store where bob approved with a hostile comment and a store writer added an audit entry by
    a hostile identity (the CLI refuses such identities; a writer of the store need not use the CLI)."""
    from tfreview.store.audit import append_event
    from tfreview.store.local import LocalStore

    store = tmp_path_factory.mktemp("hostile-store") / "store"
    shutil.copytree(cli.store, store)
    cli.ok("approve", plan_id, "--yes", "--comment", "lgtm" + HOSTILE, user="bob@example.com",
           env={"TFREVIEW_STORE": str(store)})
    append_event(LocalStore(store), "reject", "mallory" + HOSTILE, app=APP, env="sandbox", version=VERSION,
                 plan_id=plan_id)
    return store


@pytest.mark.parametrize("args,shown", [
    (("history",), "bob@example.com"), (("audit", "log"), "mallory\\x1b]52;c;aGk="),
    (("report", "{plan}"), "lgtm\\x1b\\]52"), (("report", "{plan}", "-f", "html"), "lgtm\\x1b]52"),
    (("report", "{plan}", "-f", "json"), "lgtm\\u001b]52"), (("show", "{plan}"), "plan "),
], ids=lambda a: " ".join(a) if isinstance(a, tuple) else None)
def test_hostile_store_text_is_shown_escaped(cli, plan_id, hostile_store, args, shown):
    """Identities and comments recorded by others reach the terminal escaped, in every command that shows them."""
    proc = cli(*(a.format(plan=plan_id) for a in args), env={"TFREVIEW_STORE": str(hostile_store)})
    assert proc.returncode == 0, proc.stderr
    assert not CONTROL.search(proc.stdout.replace("\t", "") + proc.stderr)
    assert shown in proc.stdout


def test_control_characters_in_an_error_are_escaped(cli):
    proc = cli("show", "x" + HOSTILE)
    assert_refused(proc, 2, "invalid plan id")
    assert "\\x1b]52;c;aGk=" in proc.stderr


@pytest.mark.parametrize("fmt,stdout,says", [("text", "closed", "output was closed"),
                                              ("json", "closed", "output was closed"),
                                              ("json", "/dev/full", "No space left")])
def test_a_closed_or_full_stdout_is_one_line(cli, tmp_path, fmt, stdout, says):
    path = tmp_path / "plan.json"
    path.write_text(plan_json())
    with open("/dev/full" if stdout == "/dev/full" else os.devnull, "w") as full:
        p = cli.popen("render", str(path), "--format", fmt, stdout=-1 if stdout == "closed" else full, stderr=-1)
        if stdout == "closed":
            p.stdout.close()
        err = p.stderr.read()
        assert p.wait() == 1
    assert err.count("\n") == 1 and says in err, err


def test_output_replaces_a_regular_file_atomically(cli, tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(plan_json())
    out = tmp_path / "review.md"
    out.write_text("old")
    cli.ok("render", str(path), "--format", "markdown", "--output", str(out))
    assert out.read_text().startswith("## Terraform plan review")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json", "review.md"], "a temp file was left"



# -- nothing left behind per run ---------------------------------------------------------------------------------
def test_the_terraform_cli_config_file_is_one_per_mirror_not_one_per_run(tmp_path):
    """Each process used to name the file by Python's per-process string hash: one new file per run."""
    import subprocess
    import sys

    mirror, cache = tmp_path / "mirror", tmp_path / "cache" / "plugins"
    mirror.mkdir()
    code = ("from pathlib import Path; from tfreview.config import Settings; from tfreview.terraform import Terraform; "
            f"print(Terraform(Settings(provider_mirror={str(mirror)!r}, plugin_cache_dir={str(cache)!r}), Path('.'))"
            ".environment()['TF_CLI_CONFIG_FILE'])")
    files = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(files) == 1
    assert sorted(p.name for p in cache.parent.iterdir()) == sorted(["plugins", Path(files.pop().strip()).name])


@pytest.mark.parametrize("fmt", ["markdown", "html", "json"])
def test_a_report_of_records_with_wrong_types_is_one_page_not_a_crash(cli, plan_id, tmp_path, fmt):
    """A store writer's damage that reached the internal-error catch-all: an apply result whose outcome is not a
    string and an approval whose fields are numbers."""
    store = tmp_path / "store"
    shutil.copytree(cli.store, store)
    (store / "applies" / plan_id).mkdir(parents=True)
    (store / "applies" / plan_id / "start.json").write_text(json.dumps({"by": 5, "started_at": 1.5}))
    (store / "applies" / plan_id / "result.json").write_text(json.dumps({"outcome": True, "finished_at": False}))
    proc = cli("report", plan_id, "--format", fmt, env={"TFREVIEW_STORE": str(store)})
    assert proc.returncode == 0 and "internal error" not in proc.stderr, proc.stderr
    assert "True" in proc.stdout or "true" in proc.stdout


def test_a_literal_public_signing_key_is_one_file_per_key_not_one_per_run(tmp_path, monkeypatch):
    """git's `user.signingkey = key::ssh-ed25519 ...` used to leave a new /tmp/tfreview-signing-*.pub per command."""
    from tests.helpers import public_key
    from tfreview.trust.signer import find_signer

    monkeypatch.setenv("HOME", str(tmp_path))
    literal = "key::" + public_key("alice@example.com")
    paths = {find_signer({"TFREVIEW_SIGNING_KEY": literal}).key_file for _ in range(3)}
    assert len(paths) == 1
    folder = tmp_path / ".cache" / "tfreview" / "signing"
    assert [p.name for p in folder.iterdir()] == [paths.pop().name]
    assert folder.stat().st_mode & 0o077 == 0, "the folder is the user's own"


def test_commands_leave_nothing_in_the_temporary_directory(cli, plan_id, tmp_path):
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    plan = tmp_path / "plan.json"
    plan.write_text(plan_json())
    env = {"TMPDIR": str(scratch)}
    for args in (("render", str(plan), "-f", "markdown", "-o", str(tmp_path / "r.md")), ("show", plan_id),
                 ("history",), ("report", plan_id, "-f", "html"), ("audit", "verify"), ("show", "nope")):
        cli(*args, env=env)
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json", "r.md", "tmpdir"]


def _nested_plan(value_text: str, before_text: str = "null", actions: str = '["create"]') -> str:
    """A plan of one resource whose value is given as JSON text (built as text: Python's json module cannot
    write what nests this deep)."""
    return ('{"format_version": "1.2", "terraform_version": "1.9.0", "resource_changes": [{"address": "aws_x.a", '
            '"type": "aws_x", "name": "a", "mode": "managed", "provider_name": "p", "change": {"actions": '
            f'{actions}, "before": {before_text}, "after": {value_text}, "after_unknown": {{}}, '
            '"before_sensitive": false, "after_sensitive": false}}]}')


@pytest.mark.parametrize("levels", [300, 1000])
def test_a_plan_nesting_deeper_than_json_can_be_written_again_is_refused(cli, tmp_path, levels):
    """1,000 levels reached the internal-error catch-all (Python's recursion limit); orjson reads up to 1,024."""
    path = tmp_path / "deep.json"
    path.write_text(_nested_plan('{"x": ' + deep_json(levels, "1") + "}"))
    for fmt in ("text", "json"):
        assert_one_line_error(cli("render", str(path), "--format", fmt), 2, "nest deeper than 255 levels")


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json"])
def test_deep_values_and_json_strings_in_json_strings_are_shown_to_a_depth(cli, tmp_path, fmt):
    """Each JSON string may nest up to 255 levels, and JSON strings nest in JSON strings: the diff stops at 100
    levels in all and says so, in every format, with or without --full, for an update as for a create."""
    inner = "1"
    for _ in range(8):  # 8 JSON strings, each 40 levels deep: 320 levels in all
        inner = json.dumps({"v": json.loads("[" * 40 + json.dumps(inner) + "]" * 40)})
    path = tmp_path / "deep.json"
    after = '{"x": ' + deep_json(240, "2") + ', "y": ' + json.dumps(inner) + "}"
    before = '{"x": ' + deep_json(240, "1") + ', "y": ' + json.dumps(inner) + "}"
    for text in (_nested_plan(after), _nested_plan(after, before, '["update"]')):
        path.write_text(text)
        for full in ((), ("--full",)):
            proc = cli("render", str(path), "--format", fmt, *full)
            assert proc.returncode == 0 and "internal error" not in proc.stderr, proc.stderr[-2000:]
            # Markdown keeps to a pull-request comment's size: 100 indented levels do not fit, and it says so.
            assert "nested deeper than 100 levels" in proc.stdout or (fmt == "markdown" and "truncated" in proc.stdout)


DEEP_FILES = ["plans/{id}/record.json", "policy/000001/policy.json", "audit/head.json", "audit/entries/000000000002.json"]


@pytest.mark.parametrize("levels", [300, 1000])
@pytest.mark.parametrize("name", DEEP_FILES, ids=["record", "policy", "audit-head", "audit-entry"])
def test_a_store_file_nesting_too_deep_is_refused_not_crashed(cli, plan_id, tmp_path, name, levels):
    """Python's json reads about 1,000 levels and canonical JSON is written back recursively: a store file
    nesting 300 or 1,000 levels reached the internal-error catch-all in `show`, `history`, `report` and
    `audit verify`. Now it is a file that is not valid JSON, as far as each command is concerned."""
    store = tmp_path / "store"
    shutil.copytree(cli.store, store)
    target = store / name.format(id=plan_id)
    target.write_text('{"x": ' + deep_json(levels, "1") + ", " + target.read_text().lstrip()[1:])
    before = snapshot(store)
    for args in (("show", plan_id), ("history",), ("report", plan_id), ("audit", "verify")):
        proc = cli(*args, env={"TFREVIEW_STORE": str(store)}, user="bob@example.com", timeout=60)
        assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr[-800:])
        assert proc.returncode in (0, 1, 2, 3), (args, proc.returncode, proc.stderr[-800:])
    def records(snap: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in snap.items() if not k.startswith("index/")}  # history's cache may be made

    assert records(snapshot(store)) == records(before)
