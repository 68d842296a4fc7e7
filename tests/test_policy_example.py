"""The example Rego policy `tfreview init` writes and `make demo` installs (tfreview/policy_example), through
`tfreview plan` on real terraform against the local AWS, as the demo's step shows it: a plan pulling the image
from a registry the rule does not list is blocked ("Blocked by policy", --fail-on policy exits 4, apply refuses
with exit 3); the good release plans unblocked, its IAM roles shown as warnings."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "tfreview" / "policy_example"
APP = "demo"
ENV = "sandbox"


@pytest.fixture(scope="module")
def team(aws_sandbox, cli_factory):
    cli = cli_factory("policy-example")
    (cli.cwd / "policy").mkdir()
    for name in ("example.rego", "example_test.rego"):
        (cli.cwd / "policy" / name).write_text((EXAMPLE / name).read_text())
    cli.set_rules('[policy.default]\nchecks = ["policy/*.rego"]\n')
    cli.ok("package", "--app", APP, "--version", "1.0.0")
    return cli


def plan_id(proc) -> str:
    return next(ln.split()[2] for ln in proc.stdout.splitlines() if ln.startswith("plan id:"))


def test_the_demo_step_a_foreign_registry_is_blocked_and_apply_refuses(team):
    proc = team("plan", "--app", APP, "--version", "1.0.0", "--env", ENV,
                "--var", "image_repository=docker.io/mallory/demo", "--fail-on", "policy")
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr
    assert proc.stdout.startswith("Blocked by policy\n"), proc.stdout[:500]
    for colour in ("blue", "green"):
        assert (f'deny  main.deny: module.webapp.aws_ecs_task_definition.app["{colour}"]: container web pulls '
                "docker.io/mallory/demo:") in proc.stdout
    assert "policy/example.rego allows images from example/ only" in proc.stdout
    blocked = plan_id(proc)
    record = json.loads((team.store / "plans" / blocked / "record.json").read_text())
    assert record["policy_checks"]["blocked"] is True
    assert [m["name"] for m in record["policy_checks"]["modules"]] == ["policy/example.rego"]
    assert_one_line_error(team("apply", blocked), 3, "blocked by policy")


def test_the_good_release_plans_unblocked_with_iam_warnings(team):
    proc = team("plan", "--app", APP, "--version", "1.0.0", "--env", ENV, "--fail-on", "policy")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert "Blocked by policy" not in proc.stdout
    assert "main.warn: module.webapp.aws_iam_role.execution: IAM create;" in proc.stdout
    record = json.loads((team.store / "plans" / plan_id(proc) / "record.json").read_text())
    checks = record["policy_checks"]
    assert checks["blocked"] is False and {r["level"] for r in checks["results"]} == {"warn"}
