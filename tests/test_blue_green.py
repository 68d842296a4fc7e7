"""Blue/green releases on the local AWS, asserted through boto3: deploy to the idle colour, watch, shift traffic,
roll back, refuse a plan that touches the live colour. Every injected ECS fault is detected and traffic never moves
onto the failed colour: tests/test_blue_green_faults.py; alarms: tests/test_blue_green_alarms.py; the rolling
strategy: tests/test_blue_green_rolling.py (the helpers here serve all four)."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

APP = "bg"
ENV = "sandbox"
CLUSTER = f"{APP}-{ENV}"
FAST = {"TFREVIEW_ROLLOUT_POLL": "0.3", "TFREVIEW_ROLLOUT_TIMEOUT": "60"}


def _weights(sandbox, cluster: str = CLUSTER) -> dict[str, int]:
    elbv2 = sandbox.client("elbv2")
    lb = elbv2.describe_load_balancers(Names=[cluster])["LoadBalancers"][0]
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    prod = next(li for li in listeners if li["Port"] == 80)
    tgs = {tg["TargetGroupArn"]: tg["TargetGroupName"].rsplit("-", 1)[1]
           for tg in elbv2.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"]}
    return {tgs[t["TargetGroupArn"]]: t["Weight"] for t in prod["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]}


def _images(sandbox, cluster: str = CLUSTER) -> dict[str, str]:
    ecs = sandbox.client("ecs")
    out = {}
    for svc in ecs.describe_services(cluster=cluster, services=[f"{cluster}-blue", f"{cluster}-green"])["services"]:
        primary = next(d for d in svc["deployments"] if d["status"] == "PRIMARY")
        td = ecs.describe_task_definition(taskDefinition=primary["taskDefinition"])["taskDefinition"]
        out[svc["serviceName"].rsplit("-", 1)[1]] = td["containerDefinitions"][0]["image"].rsplit(":", 1)[1]
    return out


def _release(cli, version: str, *apply_args: str, expect: int = 0, app: str = APP):
    """package -> plan -> approve (a second person) -> apply; returns (plan record, apply process)."""
    cli.ok("package", "--app", app, "--version", version)
    rec = json.loads(cli.ok("plan", "--app", app, "--version", version, "--env", ENV, "--format", "json").stdout)
    for reviewer in ("bob@example.com", "carol@example.com"):
        cli.ok("approve", rec["id"], "--yes", user=reviewer)
    proc = cli("apply", rec["id"], *apply_args, env=FAST)
    assert proc.returncode == expect, f"apply exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return rec, proc


@pytest.fixture(scope="module")
def bg(aws_sandbox, cli_factory):
    """The app's first release (everything on blue); the tests below then release, roll back and refuse on it, in
    order. Faults, alarms and the rolling strategy are in test_blue_green_{faults,alarms,rolling}.py, each on its own
    stack, so that the four run side by side in `make test`'s workers (docs/design-notes.md, "A suite twice as
    fast")."""
    cli = cli_factory("bluegreen")
    _release(cli, "1.0.0")
    return cli


def test_first_release_puts_everything_on_blue(bg, aws_sandbox):
    assert _weights(aws_sandbox) == {"blue": 100, "green": 0}
    assert _images(aws_sandbox) == {"blue": "1.0.0", "green": "1.0.0"}


def test_release_deploys_to_idle_colour_then_moves_all_traffic(bg, aws_sandbox):
    rec, proc = _release(bg, "1.1.0", "--steps", "50,100",
                         "--verify-cmd", 'case "$TFREVIEW_TEST_URL" in http://*:8080) exit 0;; *) exit 9;; esac')
    assert rec["classification"]["kind"] == "deploy-to-idle"
    assert _images(aws_sandbox) == {"blue": "1.0.0", "green": "1.1.0"}
    assert _weights(aws_sandbox) == {"blue": 0, "green": 100}
    # The rollout log tells the story and the traffic steps.
    assert "traffic 50% -> green" in proc.stderr and "traffic 100% -> green" in proc.stderr
    assert "verifying the idle colour through the test listener" in proc.stderr
    status = json.loads(bg.ok("status", "--app", APP, "--env", ENV, "--format", "json").stdout)
    assert status["live_color"] == "green" and status["versions"] == {"blue": "1.0.0", "green": "1.1.0"}
    assert status["last_release"]["outcome"] == "succeeded"
    # The release report tells it from the store: samples of the watched colour, each step's weights, charts.
    report = json.loads(bg.ok("report", "--release", rec["id"], "--format", "json").stdout)["release"]
    kinds = [r["kind"] for r in report["timeline"]]
    assert kinds.count("shift") == 2 and kinds.count("bake") == 2 and "verify" in kinds and kinds[-1] == "outcome"
    assert report["timeline"][-1]["weights"] == {"blue": 0, "green": 100}
    assert report["timeline"][-1]["tasks"]["green"]["healthy"] >= 1
    page = bg.ok("report", rec["id"], "--format", "html").stdout
    assert page.count("<svg") == 2 and 'data-series="green" data-steps="3"' in page


def test_rollback_puts_all_traffic_back_on_the_old_colour_in_one_command(bg, aws_sandbox):
    bg.ok("rollback", "--app", APP, "--env", ENV, "--yes", user="bob@example.com", env=FAST)
    assert _weights(aws_sandbox) == {"blue": 100, "green": 0}
    assert _images(aws_sandbox)["blue"] == "1.0.0"
    rows = json.loads(bg.ok("history", "--app", APP, "--format", "json").stdout)
    assert rows[0]["kind"] == "rollback" and rows[0]["outcome"] == "applied"


def test_plan_touching_the_live_colour_is_refused_as_unsafe(bg, aws_sandbox, monkeypatch):
    from tests.helpers import signing_key
    from tfreview.config import load_settings
    from tfreview.usecases.context import Context
    from tfreview.usecases.plan import plan

    monkeypatch.setenv("TFREVIEW_SIGNING_KEY", str(signing_key("alice@example.com")))  # the planner, in-process
    monkeypatch.delenv("TFREVIEW_USER", raising=False)
    ctx = Context.create(load_settings({"store": str(bg.store)}))
    weights = _weights(aws_sandbox)
    live = max(weights, key=weights.get)
    images = _images(aws_sandbox)
    variables = {"app": APP, "strategy": "blue_green", "live_color": live, "blue_version": images["blue"],
                 "green_version": images["green"], "blue_weight": weights["blue"], "green_weight": weights["green"],
                 f"{live}_version": "9.9.9"}
    bg.ok("package", "--app", APP, "--version", "9.9.9")
    rec = plan(ctx, APP, "9.9.9", ENV, release_vars=variables).record
    assert rec["summary"]["classification"]["kind"] == "unsafe"
    for reviewer in ("bob@example.com", "carol@example.com"):
        bg.ok("approve", rec["id"], "--yes", user=reviewer)
    refused = bg("apply", rec["id"])
    assert refused.returncode == 3 and "unsafe" in refused.stderr
