"""Rego policy checks (conftest conventions): parsing, evaluation, the signed policy, `policy check`/`policy test`.

The conftest-style policies of tests/data/rego/conftest_style give, through `tfreview policy check`, the same
messages as an independent engine (Microsoft's rego-cpp, PyPI `regopy`) evaluating the same Rego over the same
JSON; the v0 module (which regopy reads only as v1) is compared with the same rule written in Python.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, snapshot
from tfreview.errors import EXIT_POLICY, BadInput, PolicyRefusal
from tfreview.review.checks import check_policy_checks
from tfreview.trust import rego

REPO = Path(__file__).resolve().parent.parent
POLICIES = REPO / "tests" / "data" / "rego" / "conftest_style"
PLANS = REPO / "fixtures" / "plans"
HIDDEN_BY_NAME = "fixture-env-secret-5e1d0b7a"  # SESSION_SECRET's value in secret_env_rotated.json: not marked
COMPARED = ["destroy", "sg_opened", "image_bump", "sidecar_added", "traffic_shift", "service_removed", "drift"]


def tfreview(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    full = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    full.pop("TFREVIEW_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "tfreview", *args], cwd=cwd or REPO, env=full, capture_output=True,
                          text=True, timeout=120)


def privileged_plan(tmp_path: Path) -> Path:
    """secret_env_rotated.json (whose worker's container_definitions Terraform marks sensitive, because one
    environment value is secret) with the worker container made privileged and root."""
    doc = json.loads((PLANS / "secret_env_rotated.json").read_text())
    for rc in doc["resource_changes"]:
        if rc["type"] == "aws_ecs_task_definition" and "create" in rc["change"]["actions"]:
            defs = json.loads(rc["change"]["after"]["container_definitions"])
            defs[0]["privileged"] = True
            defs[0]["user"] = "root"
            rc["change"]["after"]["container_definitions"] = json.dumps(defs)
    path = tmp_path / "privileged.json"
    path.write_text(json.dumps(doc))
    return path


def check_json(plan: Path, policy: Path = POLICIES, *extra: str) -> tuple[int, dict]:
    proc = tfreview("policy", "check", str(plan), "--policy", str(policy), "--format", "json", *extra)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def by_rule(result: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"deny": [], "violation": [], "warn": []}
    for r in result["results"]:
        out[r["rule"]].append(r["msg"])
    return {k: sorted(v) for k, v in out.items()}


# -- an independent evaluation ------------------------------------------------------------------------------------
def regopy_messages(plan_doc: dict, modules: list[Path]) -> dict[str, list[str]]:
    """The messages of deny/violation/warn by rego-cpp. Its query output is not valid JSON for strings holding a
    quote (addresses like app["green"] do), nor is its json.marshal, so each message comes back base64-encoded."""
    regopy = pytest.importorskip("regopy")
    interpreter = regopy.Interpreter()
    for path in modules:
        interpreter.add_module(path.name, path.read_text())
    interpreter.set_input(regopy.Input(plan_doc))
    out = {}
    for rule in ("deny", "violation", "warn"):
        query = (f'x := [base64.encode(m) | some r in data.main.{rule}; '
                 f'm := object.get({{"r": r}}, ["r", "msg"], r)]')
        result = json.loads(str(interpreter.query(query)))
        out[rule] = sorted(base64.b64decode(m).decode() for m in result["bindings"]["x"])
    return out


def legacy_v0_in_python(plan_doc: dict) -> dict[str, list[str]]:
    """tests/data/rego/conftest_style/legacy_v0.rego, written in Python."""
    deny, warn = [], []
    for rc in plan_doc.get("resource_changes", []):
        if rc["type"] == "aws_ecs_service" and "delete" in rc["change"]["actions"]:
            deny.append(f"{rc['address']}: an ECS service is deleted")
        if rc["type"] == "aws_ecs_task_definition" and rc["change"]["actions"] == ["delete", "create"]:
            warn.append(f"{rc['address']}: task definition replaced (new revision)")
    return {"deny": deny, "violation": [], "warn": warn}


@pytest.mark.parametrize("name", COMPARED + ["privileged"])
def test_conftest_style_policies_give_the_messages_an_independent_engine_gives(name, tmp_path):
    plan = privileged_plan(tmp_path) if name == "privileged" else PLANS / f"{name}.json"
    plan_doc = json.loads(plan.read_text())
    _code, result = check_json(plan)
    assert result["error"] is None
    v1 = [p for p in sorted(POLICIES.glob("*.rego")) if p.name not in ("legacy_v0.rego",) and "_test" not in p.name]
    expected = regopy_messages(plan_doc, v1)
    legacy = legacy_v0_in_python(plan_doc)
    for rule in expected:
        expected[rule] = sorted(expected[rule] + legacy[rule])
    assert by_rule(result) == expected
    assert any(by_rule(result).values()) or name in ("drift",)


def test_each_policy_fires_on_the_fixture_that_breaks_it(tmp_path):
    messages = {n: by_rule(check_json(PLANS / f"{n}.json")[1]) for n in ("destroy", "sg_opened", "image_bump")}
    assert "blast radius 53 exceeds the limit of 20: split the change" in messages["destroy"]["deny"]
    assert ("module.webapp.aws_internet_gateway.main: delete of a forbidden resource type aws_internet_gateway"
            in messages["destroy"]["deny"])
    assert ("module.webapp.aws_cloudwatch_log_group.app: deleting a stateful aws_cloudwatch_log_group loses its data"
            in messages["destroy"]["violation"])
    assert 'module.webapp.aws_ecs_service.app["blue"]: an ECS service is deleted' in messages["destroy"]["deny"]
    assert "module.webapp.aws_security_group.tasks: ports 8080-8080 open to 0.0.0.0/0" in messages["sg_opened"]["deny"]
    assert ('module.webapp.aws_ecs_task_definition.app["green"]: container web uses image example/webapp:1.2.0 '
            "from a registry that is not allowed") in messages["image_bump"]["deny"]
    assert ('module.webapp.aws_ecs_task_definition.app["green"]: task definition replaced (new revision)'
            in messages["image_bump"]["warn"])


# -- the truth, not the redacted copy; messages scrubbed ------------------------------------------------------------
def test_rules_see_a_privileged_container_that_the_redacted_copy_hides(tmp_path):
    plan = privileged_plan(tmp_path)
    code, result = check_json(plan)
    assert code == EXIT_POLICY
    assert 'module.webapp.aws_ecs_task_definition.worker[0]: container worker runs privileged' in by_rule(result)["deny"]
    from tfreview.plan.redact import redact_plan

    redacted = tmp_path / "redacted.json"
    redacted.write_bytes(redact_plan(plan.read_bytes()))
    _code, on_redacted = check_json(redacted)
    assert not any("privileged" in m for m in by_rule(on_redacted)["deny"]), "the redacted copy masks privileged"


def test_a_rule_that_prints_a_secret_shows_it_masked(tmp_path):
    plan = privileged_plan(tmp_path)
    doc = json.loads(plan.read_text())
    from tfreview.plan.parse import parse_plan

    secrets = sorted(s for s in parse_plan(doc).sensitive_strings if len(s) >= 4 and not s.startswith("["))
    assert secrets
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    (leaky / "leak.rego").write_text(
        "package main\nimport rego.v1\n"
        "warn contains msg if {\n  some rc in input.resource_changes\n  rc.type == \"aws_ecs_task_definition\"\n"
        "  some c in json.unmarshal(rc.change.after.container_definitions)\n  some e in c.environment\n"
        "  msg := sprintf(\"%s=%s\", [e.name, e.value])\n}\n")
    proc = tfreview("policy", "check", str(plan), "--policy", str(leaky))
    assert proc.returncode == 0, proc.stderr
    assert "(sensitive value)" in proc.stdout
    for secret in secrets:
        assert secret not in proc.stdout + proc.stderr
    # A value Terraform does not mark but the review hides by its name (SESSION_SECRET of the web containers) is
    # hidden in the messages too; a plain value is not.
    assert "SESSION_SECRET=(sensitive value)" in proc.stdout and "APP_ENV=prod" in proc.stdout
    assert HIDDEN_BY_NAME not in proc.stdout + proc.stderr


# -- engine: parsing, v0/v1, fail closed ----------------------------------------------------------------------------
def test_a_module_that_does_not_parse_is_named_with_its_line():
    with pytest.raises(BadInput) as info:
        rego.check_modules({"policy/bad.rego": "package main\nimport rego.v1\ndeny contains m if {\n  m := \n}\n"})
    assert "policy/bad.rego:4:" in info.value.message


def test_v0_and_v1_modules_both_work_and_mixing_needs_import_rego_v1():
    v0 = 'package main\ndeny[msg] {\n  input.x == 1\n  msg := "v0 says no"\n}\n'
    v1 = 'package main\nimport rego.v1\ndeny contains "v1 says no" if input.x == 1\n'
    v1_bare = 'package main\nwarn contains "bare v1" if input.x == 1\n'
    assert rego.check_modules({"a.rego": v1_bare}) == "v1"
    assert rego.check_modules({"a.rego": v0}) == "v0"
    run = rego.evaluate({"a.rego": v0, "b.rego": v1}, b'{"x": 1}')
    assert [f.msg for f in run.findings] == ["v0 says no", "v1 says no"] and run.blocked
    with pytest.raises(BadInput) as info:
        rego.check_modules({"a.rego": v0, "c.rego": v1_bare})
    assert "import rego.v1" in info.value.message


def test_a_rule_that_runs_too_long_blocks_with_one_line():
    loop = "package main\nimport rego.v1\ndeny contains x if { some x in numbers.range(1, 2000000000); x < 0 }\n"
    run = rego.evaluate({"slow.rego": loop}, b"{}", timeout=1)
    assert run.blocked and run.error and "did not finish within 1 s" in run.error and "slow.rego" in run.error


@pytest.mark.parametrize("body, says", [
    ('deny contains 42 if { true }', "data.main.deny holds 42"),
    ('deny contains {"message": "x"} if { true }', "string msg"),
    ('deny := "just a string"', None),
    ('deny := 7', "not a set of messages"),
    ('deny contains x if { x := 1 / 0 }', "divide by zero"),
])
def test_wrong_shapes_and_errors_block_never_pass(body, says):
    run = rego.evaluate({"m.rego": f"package main\nimport rego.v1\n{body}\n"}, b"{}")
    assert run.blocked
    if says:
        assert run.error and says in run.error


def test_warn_alone_never_blocks():
    run = rego.evaluate({"w.rego": 'package main\nimport rego.v1\nwarn contains "careful" if { true }\n'}, b"{}")
    assert not run.blocked and [f.to_json()["level"] for f in run.findings] == ["warn"]


def test_other_namespaces_count_only_when_named():
    src = 'package terraform.aws\nimport rego.v1\ndeny contains "no" if { true }\n'
    assert not rego.evaluate({"n.rego": src}, b"{}").blocked
    assert rego.evaluate({"n.rego": src}, b"{}", namespaces=("terraform.aws",)).blocked


# -- what a result allows (pure) ------------------------------------------------------------------------------------
MODS = [{"name": "policy/a.rego", "sha256": "1" * 64}]
RECORD = {"id": "shop-prod-1", "app": "shop", "env": "prod", "version": "1.0.0",
          "policy_checks": {"policy_version": 2, "modules": MODS, "blocked": True, "error": None,
                            "results": [{"namespace": "main", "rule": "deny", "level": "deny", "msg": "no IAM"}]}}


def test_a_blocked_plan_is_refused_unless_break_glass():
    with pytest.raises(PolicyRefusal) as info:
        check_policy_checks(RECORD, 2, MODS, break_glass=False)
    assert "blocked by policy: main.deny: no IAM" in info.value.message
    check_policy_checks(RECORD, 2, MODS, break_glass=True)


def test_a_plan_judged_by_other_rules_than_the_active_ones_is_refused():
    passed = {**RECORD, "policy_checks": {**RECORD["policy_checks"], "blocked": False, "results": []}}
    check_policy_checks(passed, 3, MODS, break_glass=False)  # a new version with the same modules keeps the result
    for active in ([], [{"name": "policy/a.rego", "sha256": "2" * 64}], MODS + [{"name": "b.rego", "sha256": "3" * 64}]):
        with pytest.raises(PolicyRefusal) as info:
            check_policy_checks(passed, 3, active, break_glass=True)
        assert "make a new plan" in info.value.hint
    with pytest.raises(PolicyRefusal):
        check_policy_checks({k: v for k, v in passed.items() if k != "policy_checks"}, 3, MODS, break_glass=False)


# -- policy test / policy check exit codes --------------------------------------------------------------------------
def test_policy_test_runs_test_rules_and_fails_on_a_failing_one(tmp_path):
    proc = tfreview("policy", "test", str(POLICIES))
    assert proc.returncode == 0, proc.stderr
    assert "PASS privileged_test.rego: data.main.test_privileged_container_is_denied" in proc.stdout
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "privileged.rego").write_text((POLICIES / "privileged.rego").read_text().replace("c.privileged == true",
                                                                                              "c.privileged == false"))
    (broken / "privileged_test.rego").write_text((POLICIES / "privileged_test.rego").read_text())
    proc = tfreview("policy", "test", str(broken))
    assert proc.returncode == 1
    assert "FAIL privileged_test.rego: data.main.test_privileged_container_is_denied" in proc.stdout
    assert "1 of 2 policy test(s) failed" in proc.stderr


def test_policy_check_exit_codes(tmp_path):
    assert tfreview("policy", "check", str(PLANS / "no_changes.json"), "--policy", str(POLICIES)).returncode == 0
    blocked = tfreview("policy", "check", str(PLANS / "destroy.json"), "--policy", str(POLICIES))
    assert blocked.returncode == 3 and "deny  main.deny: blast radius 53" in blocked.stdout
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.rego").write_text("package main\ndeny contains if {\n")
    assert_one_line_error(tfreview("policy", "check", str(PLANS / "destroy.json"), "--policy", str(bad)), 1, "x.rego:")
    assert_one_line_error(tfreview("policy", "check", str(tmp_path / "nope.json"), "--policy", str(POLICIES),
                                   env={"TFREVIEW_STORE": str(tmp_path / "store")}), 2)


# -- the signed policy --------------------------------------------------------------------------------------------
RULES = '[policy.default]\nchecks = ["policy/*.rego"]\n'


def write_policy_dir(cwd: Path, *names: str) -> None:
    (cwd / "policy").mkdir(exist_ok=True)
    for name in names:
        (cwd / "policy" / name).write_text((POLICIES / name).read_text())


def test_policy_stores_each_module_and_shows_its_sha256(cli_factory):
    cli = cli_factory("checks-store")
    write_policy_dir(cli.cwd, "privileged.rego", "legacy_v0.rego", "privileged_test.rego")
    cli.set_rules(RULES)
    shown = json.loads(cli.ok("policy", "show", "--format", "json").stdout)["active"]
    assert [m["name"] for m in shown["checks"]] == ["policy/legacy_v0.rego", "policy/privileged.rego",
                                                    "policy/privileged_test.rego"]
    assert shown["checks"][1]["sha256"] == rego.module_sha256((POLICIES / "privileged.rego").read_text())
    stored = json.loads((cli.store / "policy" / f"{shown['version']:06d}" / "policy.json").read_text())
    assert stored["document"]["rego_modules"]["policy/privileged.rego"] == (POLICIES / "privileged.rego").read_text()
    text = cli.ok("policy", "show").stdout
    assert f"check policy/privileged.rego: sha256 {shown['checks'][1]['sha256']}" in text


def test_a_module_that_does_not_parse_is_refused_at_propose_and_nothing_is_stored(cli_factory):
    cli = cli_factory("checks-bad")
    cli.ensure_policy()
    (cli.cwd / "policy").mkdir()
    (cli.cwd / "policy" / "good.rego").write_text((POLICIES / "privileged.rego").read_text())
    (cli.cwd / "policy" / "broken.rego").write_text("package main\nimport rego.v1\n\ndeny contains msg if {\n  msg :=\n}\n")
    (cli.cwd / "p.toml").write_text((cli.cwd / "policy-init.toml").read_text() + RULES)
    before = snapshot(cli.store)
    line = assert_one_line_error(cli("policy", "propose", str(cli.cwd / "p.toml")), 2, "policy/broken.rego:5:")
    assert "does not parse" in line
    assert snapshot(cli.store) == before


def test_checks_that_match_no_file_are_refused(cli_factory):
    cli = cli_factory("checks-none")
    cli.ensure_policy()
    (cli.cwd / "p.toml").write_text((cli.cwd / "policy-init.toml").read_text() + '[policy.prod]\nchecks = ["nope/*.rego"]\n')
    assert_one_line_error(cli("policy", "propose", str(cli.cwd / "p.toml")), 2, "matches no file")


def test_a_stored_module_edited_in_the_store_is_refused_by_every_command(cli_factory):
    cli = cli_factory("checks-swap")
    write_policy_dir(cli.cwd, "privileged.rego")
    cli.set_rules(RULES)
    version = json.loads(cli.ok("policy", "show", "--format", "json").stdout)["active"]["version"]
    path = cli.store / "policy" / f"{version:06d}" / "policy.json"
    stored = json.loads(path.read_text())
    stored["document"]["rego_modules"]["policy/privileged.rego"] = "package main\n"
    path.chmod(0o644)
    path.write_text(json.dumps(stored))
    # The audit log activated the version with its old sha256: every command that loads the policy refuses,
    # naming the version, and audit verify finds it (a signature check alone would fall back to the version before).
    refused = cli("policy", "show", "--format", "json")
    assert refused.returncode == 3 and f"policy version {version} is not the version audit entry" in refused.stderr
    assert "replaced or edited" in refused.stderr
    assert cli("plan", "--app", "webapp", "--version", "1.0.0", "--env", "qa").returncode == 3
    verify = cli("audit", "verify")
    assert verify.returncode == 1 and f"policy version {version}" in verify.stderr, verify.stderr


def test_plan_time_checks_scrub_what_a_rule_prints(tmp_path):
    """The path `tfreview plan` takes (trust.checks.run_checks): the rule reads the truth, its message is masked."""
    from tfreview.plan.parse import parse_plan
    from tfreview.review.policy import EnvPolicy
    from tfreview.trust.checks import run_checks

    raw = privileged_plan(tmp_path).read_bytes()
    secrets = parse_plan(json.loads(raw)).sensitive_strings
    leak = ("package main\nimport rego.v1\nwarn contains msg if {\n  some rc in input.resource_changes\n"
            "  rc.type == \"aws_ecs_task_definition\"\n"
            "  some c in json.unmarshal(rc.change.after.container_definitions)\n  some e in c.environment\n"
            "  msg := sprintf(\"%s=%s\", [e.name, e.value])\n}\n")
    modules = {"policy/leak.rego": leak, "policy/p.rego": (POLICIES / "privileged.rego").read_text()}
    # As `plan` calls it (the plan's secrets looked for only once there is a message), and with them given.
    for given in (None, secrets):
        run = run_checks(modules, EnvPolicy(checks=("policy/*.rego",)), raw, {}, given)
        text = "\n".join(f.msg for f in run.findings)
        assert "runs privileged" in text and "(sensitive value)" in text
        assert not any(s in text for s in secrets if len(s) >= 4)
        assert "APP_ENV=prod" in text
        assert given is not None or HIDDEN_BY_NAME not in text  # found by the redaction, not given
    # As `plan` calls it: with the secrets of its own redaction.
    from tfreview.plan.redact import redact_plan_with_secrets

    run = run_checks(modules, EnvPolicy(checks=("policy/*.rego",)), raw, {}, redact_plan_with_secrets(raw)[1])
    text = "\n".join(f.msg for f in run.findings)
    assert "SESSION_SECRET=(sensitive value)" in text and HIDDEN_BY_NAME not in text and "APP_ENV=prod" in text


def test_the_scrubber_hides_every_character_of_every_secret_it_knows():
    from tfreview.plan.diff import Scrubber

    scrub = Scrubber(frozenset({"abcdef", "defghi", "xyz", "k3y-secret"}))
    assert scrub("1 abcdefghi 2") == "1 (sensitive value) 2"  # overlapping secrets: one marker over both
    assert scrub("k3y-secretk3y-secret!") == "(sensitive value)(sensitive value)!"
    assert scrub("xyz is too short to be a secret") == "xyz is too short to be a secret"
    assert scrub("abcde, defgh") == "abcde, defgh"
    assert Scrubber(frozenset())("anything") == "anything"


def test_one_query_reads_every_namespace_and_an_error_still_names_its_rule():
    """deny/violation/warn of every namespace come from one query; a namespace with no package is empty, not an
    error; a rule that fails is named (asked again rule by rule), and the run blocks."""
    aws = 'package terraform.aws\nimport rego.v1\ndeny contains "aws says no" if { true }\n'
    main = 'package main\nimport rego.v1\nviolation contains {"msg": "main violation"} if { true }\n'
    run = rego.evaluate({"a.rego": aws, "m.rego": main}, b"{}", namespaces=("main", "terraform.aws", "absent"))
    assert run.error is None
    assert [(f.namespace, f.rule, f.msg) for f in run.findings] == [("main", "violation", "main violation"),
                                                                    ("terraform.aws", "deny", "aws says no")]
    broken = 'package terraform.aws\nimport rego.v1\nwarn contains x if { x := 1 / 0 }\n'
    run = rego.evaluate({"a.rego": broken, "m.rego": main}, b"{}", namespaces=("main", "terraform.aws"))
    assert run.blocked and run.error and "data.terraform.aws.warn" in run.error and "a.rego:3:" in run.error


def test_engine_errors_stay_one_line_with_rust_backtraces_on(monkeypatch):
    """RUST_BACKTRACE=1 in the environment (common on developer machines) must not turn a parse error into a
    stack dump, nor slow every v0 module set down (they are tried as v1 first)."""
    monkeypatch.setenv("RUST_BACKTRACE", "1")
    with pytest.raises(BadInput) as info:
        rego.check_modules({"bad.rego": "package main\nimport rego.v1\ndeny contains if {\n"})
    assert "bad.rego:" in info.value.message and "\n" not in info.value.message
    assert "backtrace" not in info.value.message.lower()
    v0 = (POLICIES / "legacy_v0.rego").read_text()
    assert rego.check_modules({"legacy_v0.rego": v0}) == "v0"


def test_suffixed_rule_names_count_as_conftest_reads_them():
    """conftest reads deny_*, violation_* and warn_* as deny, violation and warn (conftest.dev: "Rules can
    optionally be suffixed with an underscore and an identifier"), in v1 and in v0 modules; a local variable or
    another rule whose name merely starts alike is not a rule."""
    v1 = ('package main\nimport rego.v1\n\ndeny_public_bucket contains msg if {\n\tsome rc in input.resource_changes\n'
          '\tdeny_count := 1\n\tmsg := sprintf("%s is public (%d)", [rc.address, deny_count])\n}\n\n'
          'warn_tags contains {"msg": "tags missing"} if true\n\nwarning_level := 3\n')
    run = rego.evaluate({"a.rego": v1}, b'{"resource_changes": [{"address": "aws_s3_bucket.logs"}]}')
    assert run.error is None and run.blocked
    assert [(f.rule, f.msg, f.to_json()["level"]) for f in run.findings] == [
        ("deny_public_bucket", "aws_s3_bucket.logs is public (1)", "deny"), ("warn_tags", "tags missing", "warn")]
    v0 = 'package main\n\nviolation_size[msg] {\n  msg := "too big"\n}\n'
    run = rego.evaluate({"b.rego": v0}, b"{}")
    assert run.rego_version == "v0" and run.blocked and [f.rule for f in run.findings] == ["violation_size"]


def test_policy_check_refuses_a_broken_plan_file_even_when_every_rule_passes(tmp_path):
    """The plan file is read as every command reads one (exit 2 for a broken plan), not only handed to the engine."""
    doc = json.loads((PLANS / "image_bump.json").read_text())
    doc["resource_changes"].append(doc["resource_changes"][0])
    broken = tmp_path / "twice.json"
    broken.write_text(json.dumps(doc))
    passing = tmp_path / "passing"
    passing.mkdir()
    (passing / "ok.rego").write_text('package main\nimport rego.v1\nwarn contains "never" if { false }\n')
    assert tfreview("policy", "check", str(PLANS / "image_bump.json"), "--policy", str(passing)).returncode == 0
    assert_one_line_error(tfreview("policy", "check", str(broken), "--policy", str(passing)), 2, "listed twice")


def test_the_secrets_the_checks_scrub_are_the_ones_the_review_redacts():
    """parse.sensitive_strings (what scrubs the checks' messages, reading only the marked changes) finds exactly
    what parse_plan finds, on every plan of the fixtures and test data that parses (secrets in 17 of them)."""
    from tfreview.plan.parse import parse_plan, sensitive_strings

    compared = with_secrets = 0
    for path in sorted([*PLANS.glob("*.json"), *(REPO / "tests" / "data").rglob("*.json")]):
        raw = path.read_bytes()
        try:
            want = parse_plan(raw).sensitive_strings
        except Exception:  # noqa: BLE001 - not a plan (state, schema, broken on purpose): nothing to compare
            continue
        assert sensitive_strings(raw) == want, path
        compared, with_secrets = compared + 1, with_secrets + bool(want)
    assert compared >= 20 and with_secrets >= 10
