"""A release through a team's own ECS stack (tests/data/team_terraform: other resource names, colours
stable/canary, image variables that take the whole image URI, two weight variables and no live-colour variable, an
AWS-managed IAM policy attached, Application Auto Scaling), described by `[apps.team]` roles in tfreview.toml:
deploy-to-idle, traffic shift and rollback classify and run as they do for the bundled module, and `status` tells
the truth after each. ONE stack on the session's local AWS for the whole module."""
from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.integration

APP, ENV = "team", "sandbox"
FAST = {"TFREVIEW_ROLLOUT_POLL": "0.3", "TFREVIEW_ROLLOUT_TIMEOUT": "60"}
TEAM_TF = Path(__file__).parent / "data" / "team_terraform"
ROLES = """
[apps.team]
colours = ["stable", "canary"]
service = 'aws_ecs_service.svc["{colour}"]'
task_definition = 'aws_ecs_task_definition.task["{colour}"]'
target_group = 'aws_lb_target_group.tg["{colour}"]'
production_listener = "aws_lb_listener.https"
test_listener = "aws_lb_listener.preview"
version_variable = "container_image_{colour}"
weight_variable = "traffic_{colour}"
live_variable = ""
image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team:{version}"
"""
REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team"


def release(cli: Cli, version: str, *apply_args: str, env: dict[str, str] | None = None) -> tuple[dict, str]:
    """package -> plan -> two approvals -> apply; returns (plan JSON, apply's stderr log)."""
    cli.ok("package", "--app", APP, "--version", version)
    rec = json.loads(cli.ok("plan", "--app", APP, "--version", version, "--env", ENV, "--format", "json").stdout)
    for reviewer in ("bob@example.com", "carol@example.com"):
        cli.ok("approve", rec["id"], "--yes", user=reviewer)
    return rec, cli.ok("apply", rec["id"], *apply_args, env={**FAST, **(env or {})}).stderr


def status(cli: Cli) -> dict:
    return json.loads(cli.ok("status", "--app", APP, "--env", ENV, "--format", "json").stdout)


@pytest.fixture(scope="module")
def team(aws_sandbox, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("team")
    shutil.copytree(TEAM_TF, cwd / "terraform", ignore=shutil.ignore_patterns("README.md"))
    (cwd / "tfreview.toml").write_text(ROLES)
    cli = Cli(store=cwd / ".tfreview", cwd=cwd)
    # creates the stack, the AWS-managed policy attached; "still creating" lines every second instead of every 30
    rec, log = release(cli, "1.0.0", env={"TFREVIEW_PROGRESS_INTERVAL": "1"})
    assert rec["classification"]["kind"] == "infrastructure"
    cli.first_log = log
    return cli


def test_a_resource_terraform_still_creates_gets_a_still_creating_line_each_progress_interval(team):
    # The load balancer takes the provider's own waits: its lines come at 1s, 2s... as terraform's do at 10s.
    still = re.findall(r"aws_lb\.front: still creating \((\d+)s elapsed\)", team.first_log)
    assert len(still) >= 2 and [int(s) for s in still] == sorted(int(s) for s in still)
    assert "aws_lb.front: create complete" in team.first_log or "aws_lb.front: create" in team.first_log


def images(sandbox) -> dict[str, str]:
    """The image each track's service runs (its PRIMARY deployment's task definition), read from ECS."""
    ecs = sandbox.client("ecs")
    out = {}
    for svc in ecs.describe_services(cluster=f"{APP}-{ENV}", services=[f"{APP}-{ENV}-stable",
                                                                        f"{APP}-{ENV}-canary"])["services"]:
        primary = next(d for d in svc["deployments"] if d["status"] == "PRIMARY")
        td = ecs.describe_task_definition(taskDefinition=primary["taskDefinition"])["taskDefinition"]
        out[svc["serviceName"].rsplit("-", 1)[1]] = td["containerDefinitions"][0]["image"]
    return out


def test_first_release_attaches_the_aws_managed_policy_and_serves_stable(team, aws_sandbox):
    iam = aws_sandbox.client("iam")
    attached = iam.list_attached_role_policies(RoleName=f"{APP}-{ENV}-task-exec")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonECSTaskExecutionRolePolicy"]
    st = status(team)
    assert st["weights"] == {"stable": 100, "canary": 0} and st["weights_source"] == "live"
    assert st["strategy"] == "blue_green"
    assert st["versions"] == {"stable": "1.0.0", "canary": "1.0.0"}


def test_the_module_gets_whole_image_uris_and_status_reads_the_version_from_what_ecs_runs(team, aws_sandbox):
    assert images(aws_sandbox) == {"stable": f"{REPO}:1.0.0", "canary": f"{REPO}:1.0.0"}  # not images named 1.0.0
    st = status(team)
    assert {c: r["version"] for c, r in st["running"].items()} == {"stable": "1.0.0", "canary": "1.0.0"}
    assert st["differs"] == []
    text = team.ok("status", "--app", APP, "--env", ENV).stdout
    assert "the state records" not in text and "runs 1.0.0" in text


def test_autoscaling_targets_and_policies_apply_on_the_local_aws_with_their_tags(team, aws_sandbox):
    aas = aws_sandbox.client("application-autoscaling")
    targets = aas.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    ours = {t["ResourceId"]: t for t in targets if t["ResourceId"].startswith(f"service/{APP}-{ENV}/")}
    assert set(ours) == {f"service/{APP}-{ENV}/{APP}-{ENV}-stable", f"service/{APP}-{ENV}/{APP}-{ENV}-canary"}
    for target in ours.values():
        assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
        tags = aas.list_tags_for_resource(ResourceARN=target["ScalableTargetARN"])["Tags"]
        assert tags == {"team": "shop", "track": target["ResourceId"].rsplit("-", 1)[1]}
    policies = aas.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    kinds = sorted(p["PolicyType"] for p in policies if p["ResourceId"] in ours)
    assert kinds == ["StepScaling", "StepScaling", "TargetTrackingScaling", "TargetTrackingScaling"]


def test_new_version_deploys_to_the_idle_track_then_shifts_traffic(team, aws_sandbox):
    rec, log = release(team, "1.1.0", "--steps", "100")
    assert rec["classification"]["kind"] == "deploy-to-idle" and rec["classification"]["target_colour"] == "canary"
    assert rec["classification"]["live_colours"] == ["stable"]
    assert "traffic 100% -> canary" in log
    st = status(team)
    assert st["weights"] == {"stable": 0, "canary": 100} and st["live_color"] == "canary"
    assert st["versions"] == {"stable": "1.0.0", "canary": "1.1.0"} and st["last_release"]["outcome"] == "succeeded"
    assert {c: r["version"] for c, r in st["running"].items()} == st["versions"] and st["differs"] == []
    assert images(aws_sandbox) == {"stable": f"{REPO}:1.0.0", "canary": f"{REPO}:1.1.0"}
    kinds = [json.loads(p.read_text())["summary"]["classification"]["kind"]
             for p in (team.store / "plans").glob("*/record.json")
             if json.loads(p.read_text())["plan_kind"] == "shift"]
    assert kinds == ["traffic-shift"]


def test_rollback_moves_all_traffic_back_to_stable(team):
    team.ok("rollback", "--app", APP, "--env", ENV, "--yes", user="bob@example.com", env=FAST)
    st = status(team)
    assert st["weights"] == {"stable": 100, "canary": 0} and st["differs"] == []
    assert st["versions"] == {c: r["version"] for c, r in st["running"].items()} == {"stable": "1.0.0",
                                                                                      "canary": "1.1.0"}
    row = json.loads(team.ok("history", "--app", APP, "--format", "json").stdout)[0]
    assert row["kind"] == "rollback" and row["outcome"] == "applied"
    assert row["version"] == "1.0.0"  # the version it rolled back to, not the package it was planned with
    record = json.loads((team.store / "plans" / row["id"] / "record.json").read_text())
    assert record["summary"]["classification"]["kind"] == "traffic-shift"
    assert record["release_vars"]["traffic_stable"] == 100 and "live_color" not in record["release_vars"]
    assert record["release_vars"]["container_image_stable"] == f"{REPO}:1.0.0"


def test_after_a_circuit_breaker_rollback_status_reports_what_really_runs(team, aws_sandbox):
    aws_sandbox.set_fault(f"{APP}-{ENV}-canary", "circuit-breaker-rollback")
    try:
        team.ok("package", "--app", APP, "--version", "1.2.0")
        rec = json.loads(team.ok("plan", "--app", APP, "--version", "1.2.0", "--env", ENV, "--format", "json").stdout)
        for reviewer in ("bob@example.com", "carol@example.com"):
            team.ok("approve", rec["id"], "--yes", user=reviewer)
        proc = team("apply", rec["id"], env=FAST)
    finally:
        aws_sandbox.set_fault(f"{APP}-{ENV}-canary", None)
    assert proc.returncode == 1 and "CannotPullContainerError" in proc.stderr
    deadline = time.monotonic() + 30  # the circuit breaker rolls back a deployment step after the failure
    while images(aws_sandbox)["canary"] != f"{REPO}:1.1.0" and time.monotonic() < deadline:
        time.sleep(0.2)
    st = status(team)
    assert st["versions"]["canary"] == "1.2.0" and st["running"]["canary"]["version"] == "1.1.0"
    assert st["differs"] == ["canary"] and st["weights"] == {"stable": 100, "canary": 0}
