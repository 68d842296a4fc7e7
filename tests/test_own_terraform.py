"""A release through a team's own ECS stack (tests/data/team_terraform: other resource names, colours
stable/canary, two weight variables and no live-colour variable, an AWS-managed IAM policy attached), described
by `[apps.team]` roles in tfreview.toml: deploy-to-idle, traffic shift and rollback classify and run as they do for
the bundled module. ONE stack on the session's local AWS for the whole module."""
from __future__ import annotations

import json
import shutil
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
version_variable = "image_tag_{colour}"
weight_variable = "traffic_{colour}"
live_variable = ""
"""


def release(cli: Cli, version: str, *apply_args: str) -> tuple[dict, str]:
    """package -> plan -> two approvals -> apply; returns (plan JSON, apply's stderr log)."""
    cli.ok("package", "--app", APP, "--version", version)
    rec = json.loads(cli.ok("plan", "--app", APP, "--version", version, "--env", ENV, "--format", "json").stdout)
    for reviewer in ("bob@example.com", "carol@example.com"):
        cli.ok("approve", rec["id"], "--yes", user=reviewer)
    return rec, cli.ok("apply", rec["id"], *apply_args, env=FAST).stderr


def status(cli: Cli) -> dict:
    return json.loads(cli.ok("status", "--app", APP, "--env", ENV, "--format", "json").stdout)


@pytest.fixture(scope="module")
def team(aws_sandbox, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("team")
    shutil.copytree(TEAM_TF, cwd / "terraform", ignore=shutil.ignore_patterns("README.md"))
    (cwd / "tfreview.toml").write_text(ROLES)
    cli = Cli(store=cwd / ".tfreview", cwd=cwd)
    rec, _ = release(cli, "1.0.0")  # creates the stack, the AWS-managed policy attached
    assert rec["classification"]["kind"] == "infrastructure"
    return cli


def test_first_release_attaches_the_aws_managed_policy_and_serves_stable(team, aws_sandbox):
    iam = aws_sandbox.client("iam")
    attached = iam.list_attached_role_policies(RoleName=f"{APP}-{ENV}-task-exec")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonECSTaskExecutionRolePolicy"]
    st = status(team)
    assert st["weights"] == {"stable": 100, "canary": 0} and st["weights_source"] == "live"
    assert st["strategy"] == "blue_green"
    assert st["versions"] == {"stable": "1.0.0", "canary": "1.0.0"}


def test_new_version_deploys_to_the_idle_track_then_shifts_traffic(team):
    rec, log = release(team, "1.1.0", "--steps", "100")
    assert rec["classification"]["kind"] == "deploy-to-idle" and rec["classification"]["target_colour"] == "canary"
    assert rec["classification"]["live_colours"] == ["stable"]
    assert "traffic 100% -> canary" in log
    st = status(team)
    assert st["weights"] == {"stable": 0, "canary": 100} and st["live_color"] == "canary"
    assert st["versions"] == {"stable": "1.0.0", "canary": "1.1.0"} and st["last_release"]["outcome"] == "succeeded"
    kinds = [json.loads(p.read_text())["summary"]["classification"]["kind"]
             for p in (team.store / "plans").glob("*/record.json")
             if json.loads(p.read_text())["plan_kind"] == "shift"]
    assert kinds == ["traffic-shift"]


def test_rollback_moves_all_traffic_back_to_stable(team):
    team.ok("rollback", "--app", APP, "--env", ENV, "--yes", user="bob@example.com", env=FAST)
    assert status(team)["weights"] == {"stable": 100, "canary": 0}
    row = json.loads(team.ok("history", "--app", APP, "--format", "json").stdout)[0]
    assert row["kind"] == "rollback" and row["outcome"] == "applied"
    record = json.loads((team.store / "plans" / row["id"] / "record.json").read_text())
    assert record["summary"]["classification"]["kind"] == "traffic-shift"
    assert record["release_vars"]["traffic_stable"] == 100 and "live_color" not in record["release_vars"]
