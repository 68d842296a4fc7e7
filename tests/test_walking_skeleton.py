"""The walking skeleton, end to end: package -> plan -> review -> approve -> apply, twice, on real terraform against
the local AWS; the second release must really run image :1.1.0 on a new task definition revision."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

APP = "skel"
ENV = "sandbox"


@pytest.fixture(scope="module")
def released(aws_sandbox, cli_factory):
    """Release 1.0.0 then 1.1.0 through the CLI; yields (cli, first plan, second plan)."""
    cli = cli_factory("skeleton")
    cli.ok("package", "--app", APP, "--version", "1.0.0")
    first = json.loads(cli.ok("plan", "--app", APP, "--version", "1.0.0", "--env", ENV, "--format", "json").stdout)
    # The first release creates IAM roles and security groups: the default policy wants one more approver.
    cli.ok("approve", first["id"], "--yes", "--comment", "first release", user="bob@example.com")
    cli.ok("approve", first["id"], "--yes", "--comment", "IAM reviewed", user="carol@example.com")
    cli.ok("apply", first["id"], "--no-wait")
    cli.ok("package", "--app", APP, "--version", "1.1.0")
    second_proc = cli.ok("plan", "--app", APP, "--version", "1.1.0", "--env", ENV)
    second = json.loads(cli.ok("show", _plan_id(second_proc.stdout), "--format", "json").stdout)
    yield cli, first, second_proc, second


def _plan_id(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("plan id:"):
            return line.split()[2]
    raise AssertionError(f"no plan id in:\n{text}")


def test_first_plan_reports_id_sha256_and_counts(released):
    _cli, first, _proc, _second = released
    assert first["id"].startswith(f"{APP}-{ENV}-")
    assert len(first["sha256"]) == 64
    assert first["counts"]["add"] > 10 and first["counts"]["destroy"] == 0


def test_second_plan_review_tells_the_image_change(released):
    _cli, _first, proc, _second = released
    assert "1.0.0 → 1.1.0" in proc.stdout or "1.0.0 -> 1.1.0" in proc.stdout, proc.stdout


def test_apply_is_refused_before_approval(released):
    cli, _first, proc, _second = released
    refused = cli("apply", _plan_id(proc.stdout))
    assert refused.returncode == 3, refused.stderr
    assert "not approved" in refused.stderr or "approv" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_second_release_runs_new_revision_with_new_image(released, aws_sandbox):
    cli, _first, proc, _second = released
    plan_id = _plan_id(proc.stdout)
    ecs = aws_sandbox.client("ecs")
    before = {s["serviceName"]: s["taskDefinition"] for s in
              ecs.describe_services(cluster=f"{APP}-{ENV}", services=[f"{APP}-{ENV}-blue", f"{APP}-{ENV}-green"])["services"]}
    cli.ok("approve", plan_id, "--yes", user="bob@example.com")
    cli.ok("apply", plan_id, "--no-wait")
    services = ecs.describe_services(cluster=f"{APP}-{ENV}", services=[f"{APP}-{ENV}-blue", f"{APP}-{ENV}-green"])["services"]
    images = {}
    for svc in services:
        td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
        images[svc["serviceName"]] = (td["revision"], td["containerDefinitions"][0]["image"])
    # The new version went to the idle colour (green) on a new revision; blue still runs 1.0.0.
    assert images[f"{APP}-{ENV}-green"][1].endswith(":1.1.0")
    assert images[f"{APP}-{ENV}-green"][0] > int(before[f"{APP}-{ENV}-green"].rsplit(":", 1)[1])
    assert images[f"{APP}-{ENV}-blue"][1].endswith(":1.0.0")


def test_apply_refuses_plan_whose_bytes_changed_after_approval(released):
    cli, _first, _proc, _second = released
    rec = json.loads(cli.ok("plan", "--app", APP, "--version", "1.1.0", "--env", ENV, "--format", "json").stdout)
    cli.ok("approve", rec["id"], "--yes", user="bob@example.com")
    binary = cli.store / "private" / "plans" / rec["id"] / "plan.tfplan"
    data = bytearray(binary.read_bytes())
    data[len(data) // 2] ^= 0x01
    binary.write_bytes(bytes(data))
    refused = cli("apply", rec["id"])
    assert refused.returncode == 3
    assert "changed" in refused.stderr


def test_history_lists_both_releases_as_json(released):
    cli, first, _proc, _second = released
    rows = json.loads(cli.ok("history", "--app", APP, "--format", "json").stdout)
    outcomes = {r["id"]: r["outcome"] for r in rows}
    assert outcomes[first["id"]] == "applied"
    assert sum(1 for o in outcomes.values() if o == "applied") >= 2
