"""Blue/green releases on the local AWS, asserted through boto3: deploy to the idle colour, watch, shift traffic,
roll back; every injected ECS fault is detected and traffic never moves onto the failed colour."""
from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.integration

APP = "bg"
ENV = "sandbox"
CLUSTER = f"{APP}-{ENV}"
FAST = {"TFREVIEW_ROLLOUT_POLL": "0.3", "TFREVIEW_ROLLOUT_TIMEOUT": "60"}


def _weights(sandbox) -> dict[str, int]:
    elbv2 = sandbox.client("elbv2")
    lb = elbv2.describe_load_balancers(Names=[CLUSTER])["LoadBalancers"][0]
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    prod = next(li for li in listeners if li["Port"] == 80)
    tgs = {tg["TargetGroupArn"]: tg["TargetGroupName"].rsplit("-", 1)[1]
           for tg in elbv2.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"]}
    return {tgs[t["TargetGroupArn"]]: t["Weight"] for t in prod["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]}


def _images(sandbox) -> dict[str, str]:
    ecs = sandbox.client("ecs")
    out = {}
    for svc in ecs.describe_services(cluster=CLUSTER, services=[f"{CLUSTER}-blue", f"{CLUSTER}-green"])["services"]:
        primary = next(d for d in svc["deployments"] if d["status"] == "PRIMARY")
        td = ecs.describe_task_definition(taskDefinition=primary["taskDefinition"])["taskDefinition"]
        out[svc["serviceName"].rsplit("-", 1)[1]] = td["containerDefinitions"][0]["image"].rsplit(":", 1)[1]
    return out


def _release(cli, version: str, *apply_args: str, expect: int = 0):
    """package -> plan -> approve (a second person) -> apply; returns (plan record, apply process)."""
    cli.ok("package", "--app", APP, "--version", version)
    rec = json.loads(cli.ok("plan", "--app", APP, "--version", version, "--env", ENV, "--format", "json").stdout)
    for reviewer in ("bob@example.com", "carol@example.com"):
        cli.ok("approve", rec["id"], "--yes", user=reviewer)
    proc = cli("apply", rec["id"], *apply_args, env=FAST)
    assert proc.returncode == expect, f"apply exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return rec, proc


@pytest.fixture(scope="module")
def bg(aws_sandbox, cli_factory):
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


PULL = "task stopped: CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref"
WHY_STOPPED = {  # what the deploy log and `history --expand` say of each fault's stopped tasks, as ECS says it
    "failed": [PULL],
    "circuit-breaker-rollback": [PULL],
    # (the targets' own reason code, Target.FailedHealthChecks, shows only if a poll catches them unhealthy: on a
    # slow machine the stopped tasks are all that is left; tests/test_rollout_watch.py pins that line)
    "unhealthy-targets": ["task stopped: Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:"],
    "container-exits": ["task stopped: Essential container in task exited [EssentialContainerExited]; container web "
                        "exit code 137"],
}


@pytest.mark.parametrize("fault,version", [("failed", "2.0.1"), ("circuit-breaker-rollback", "2.0.2"),
                                           ("unhealthy-targets", "2.0.3"), ("never-finishes", "2.0.4"),
                                           ("verify-cmd-fails", "2.0.5"), ("container-exits", "2.0.6")])
def test_failed_deployment_is_detected_and_traffic_stays_on_live_colour(bg, aws_sandbox, fault, version):
    before = _weights(aws_sandbox)
    live = max(before, key=before.get)
    idle = "green" if live == "blue" else "blue"
    verify = ("--verify-cmd", "echo smoke test failed >&2; exit 7") if fault == "verify-cmd-fails" else ()
    if not verify:
        aws_sandbox.set_fault(f"{CLUSTER}-{idle}", fault)
    try:
        extra = {"TFREVIEW_ROLLOUT_TIMEOUT": "8"} if fault == "never-finishes" else {}
        cli_env = {**FAST, **extra}
        bg.ok("package", "--app", APP, "--version", version)
        rec = json.loads(bg.ok("plan", "--app", APP, "--version", version, "--env", ENV, "--format", "json").stdout)
        for reviewer in ("bob@example.com", "carol@example.com"):
            bg.ok("approve", rec["id"], "--yes", user=reviewer)
        proc = bg("apply", rec["id"], *verify, env=cli_env)
    finally:
        aws_sandbox.set_fault(f"{CLUSTER}-{idle}", None)
    assert proc.returncode == 1, proc.stderr
    assert "release of bg" in proc.stderr and "failed" in proc.stderr
    assert _weights(aws_sandbox) == before  # traffic never moved onto the failed colour
    status = json.loads(bg.ok("status", "--app", APP, "--env", ENV, "--format", "json").stdout)
    assert status["last_release"]["outcome"] == "failed"
    if fault == "circuit-breaker-rollback":  # the state says the new version, the service runs the old revision
        assert status["versions"][idle] == version and status["differs"] == [idle]
        ran = status["running"][idle]
        assert ran["version"] == _images(aws_sandbox)[idle] != version
        text = bg.ok("status", "--app", APP, "--env", ENV).stdout
        assert f"{idle}: the state records {version} but its service runs {ran['version']}" in text
    else:
        assert status["differs"] == []
    # Why the tasks stopped: once per distinct reason in the deploy log, in history --expand and in the report.
    expanded = bg.ok("history", "--app", APP, "--release", rec["id"], "--expand").stdout
    report = json.loads(bg.ok("report", "--release", rec["id"], "--format", "json").stdout)["release"]
    for reason in WHY_STOPPED.get(fault, []):
        assert proc.stderr.count(reason) == 1, proc.stderr
        short = reason.removeprefix("task stopped: ")
        assert short[:60] in " ".join(expanded.split()), expanded
        assert any(s["reason"].startswith(short) for s in report["stopped_tasks"]), report["stopped_tasks"]
    if fault in WHY_STOPPED:
        assert "Why tasks stopped" in bg.ok("report", "--release", rec["id"], "--format", "markdown").stdout


def new_alarm(sandbox, name: str) -> str:
    sandbox.client("cloudwatch").put_metric_alarm(
        AlarmName=name, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "LoadBalancer", "Value": f"app/{CLUSTER}/1"}])
    return name


def test_an_alarm_that_fires_after_the_first_shift_sends_traffic_back_and_is_named_everywhere(bg, aws_sandbox):
    from tfreview.sandbox import set_remote_alarm

    alarm = new_alarm(aws_sandbox, "bg-sandbox-5xx")
    before = _weights(aws_sandbox)
    live = max(before, key=before.get)
    idle = "green" if live == "blue" else "blue"
    reason = "Threshold Crossed: 1 out of the last 1 datapoints [42.0] was greater than the threshold (5.0)"
    set_remote_alarm(aws_sandbox.endpoint, alarm, "ALARM", reason, after_shifts=1)
    try:
        rec, proc = _release(bg, "2.2.0", "--steps", "50,100", "--alarm", alarm, expect=1)
    finally:
        aws_sandbox.set_alarm(alarm, "OK", "back to normal")
    assert _weights(aws_sandbox) == before  # the weight-only rollback put all traffic back on the live colour
    assert f"ALARM {alarm}" in proc.stderr and reason in proc.stderr
    assert "traffic 50% -> " + idle in proc.stderr and "traffic 100% -> " + idle not in proc.stderr
    assert "automatic rollback" in proc.stderr and f"traffic is back on {live}" in proc.stderr
    status = json.loads(bg.ok("status", "--app", APP, "--env", ENV, "--format", "json").stdout)
    assert status["last_release"]["outcome"] == "failed" and alarm in status["last_release"]["reason"]
    # history: the release line names the alarm; --expand gives its state reason and when it fired
    line = bg.ok("history", "--app", APP, "--limit", "1", env={"COLUMNS": "400"}).stdout  # the table unwrapped
    assert f"release failed (alarm {alarm})" in line
    expanded = " ".join(bg.ok("history", "--release", rec["id"]).stdout.split())
    assert f"alarm {alarm} in ALARM since 20" in expanded and "Threshold Crossed" in expanded
    row = json.loads(bg.ok("history", "--release", rec["id"], "--format", "json").stdout)[0]
    assert row["release"]["alarm"]["name"] == alarm and row["release"]["alarm"]["reason"] == reason
    # the report: the alarm named, its reason and time, a mark on the traffic chart
    report = json.loads(bg.ok("report", "--release", rec["id"], "--format", "json").stdout)["release"]
    assert report["alarm"]["name"] == alarm and report["alarm"]["fired_at"].startswith("20")
    assert [r["kind"] for r in report["timeline"]].count("alarm") == 1
    assert report["timeline"][-1]["weights"] == before
    page = bg.ok("report", "--release", rec["id"], "--format", "html").stdout
    assert 'class="mark alarm"' in page and f"Stopped by an alarm:</strong> alarm {alarm} in ALARM" in page


def test_an_alarm_already_in_alarm_stops_the_release_before_traffic_moves(bg, aws_sandbox):
    alarm = new_alarm(aws_sandbox, "bg-sandbox-latency")
    aws_sandbox.set_alarm(alarm, "ALARM", "Threshold Crossed: p99 latency 2.5 s")
    before = _weights(aws_sandbox)
    (bg.cwd / "tfreview.toml").write_text(f'[apps.{APP}]\nalarms = ["bg-{{env}}-latency"]\n')  # {env}: per env
    try:
        _rec, proc = _release(bg, "2.3.0", expect=1)
    finally:
        (bg.cwd / "tfreview.toml").unlink()
        aws_sandbox.set_alarm(alarm, "OK", "back to normal")
    assert _weights(aws_sandbox) == before
    assert f"ALARM {alarm}" in proc.stderr and "p99 latency 2.5 s" in proc.stderr
    assert "traffic was not moved" in proc.stderr and "planning traffic" not in proc.stderr


def test_an_alarm_that_does_not_exist_is_bad_input_before_anything_is_applied(bg, aws_sandbox):
    bg.ok("package", "--app", APP, "--version", "2.4.0")
    rec = json.loads(bg.ok("plan", "--app", APP, "--version", "2.4.0", "--env", ENV, "--format", "json").stdout)
    for reviewer in ("bob@example.com", "carol@example.com"):
        bg.ok("approve", rec["id"], "--yes", user=reviewer)
    proc = bg("apply", rec["id"], "--alarm", "no-such-alarm", env=FAST)
    assert proc.returncode == 2 and "CloudWatch alarm no-such-alarm does not exist" in proc.stderr
    assert not (bg.store / "applies" / rec["id"]).exists()  # nothing applied, no traffic moved
    refused = bg("apply", rec["id"], "--alarm", "x", "--no-wait")
    assert refused.returncode == 2 and "--alarm needs the release to be watched" in refused.stderr


def test_a_good_release_after_the_failed_ones_succeeds_and_drains_them(bg, aws_sandbox):
    before = _weights(aws_sandbox)
    live = max(before, key=before.get)
    idle = "green" if live == "blue" else "blue"
    _release(bg, "2.1.0")
    assert _weights(aws_sandbox) == {live: 0, idle: 100}
    assert _images(aws_sandbox)[idle] == "2.1.0"
    service = aws_sandbox.client("ecs").describe_services(cluster=CLUSTER, services=[f"{CLUSTER}-{idle}"])["services"][0]
    assert [d["status"] for d in service["deployments"]] == ["PRIMARY"]  # the failed deployments were drained


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


def test_promote_requires_a_successful_release_in_the_previous_env(bg):
    refused = bg("promote", "--app", APP, "--version", "2.0.1", "--from", ENV, "--to", "qa")
    assert refused.returncode == 3 and "not released successfully" in refused.stderr
    rec = json.loads(bg.ok("promote", "--app", APP, "--version", "1.1.0", "--from", ENV, "--to", "qa",
                           "--format", "json").stdout)
    assert rec["env"] == "qa" and rec["version"] == "1.1.0" and rec["counts"]["add"] > 10


def test_rolling_strategy_deploys_in_place_and_a_circuit_breaker_rollback_is_a_failed_release(cli_factory,
                                                                                               aws_sandbox):
    """The seed's own way: one service, rolling update with the circuit breaker; no colours, no test listener."""
    cli = cli_factory("rolling")
    variables = cli.cwd / "terraform" / "envs" / "qa" / "variables.tf"
    variables.write_text(variables.read_text().replace('default = "blue_green"', 'default = "rolling"'))

    def release(version: str) -> tuple[dict, object]:
        cli.ok("package", "--app", "roll", "--version", version)
        rec = json.loads(cli.ok("plan", "--app", "roll", "--version", version, "--env", "qa", "--format", "json").stdout)
        for reviewer in ("bob@example.com", "carol@example.com"):
            cli.ok("approve", rec["id"], "--yes", user=reviewer)
        return rec, cli("apply", rec["id"], env=FAST)

    first, proc = release("3.0.0")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(cli.ok("show", first["id"], "--format", "json").stdout)
    addresses = {r["address"] for r in shown["resources"]}
    assert 'module.webapp.aws_ecs_service.app["main"]' in addresses
    assert not any("blue" in a or "green" in a or "aws_lb_listener.test" in a for a in addresses)

    ecs = aws_sandbox.client("ecs")

    def image() -> str:
        svc = ecs.describe_services(cluster="roll-qa", services=["roll-qa"])["services"][0]
        return ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"][
            "containerDefinitions"][0]["image"]

    second, proc = release("3.1.0")
    assert second["classification"]["kind"] == "rolling-deploy"
    assert proc.returncode == 0, proc.stderr
    assert image().endswith(":3.1.0") and "SUCCEEDED" in proc.stderr

    aws_sandbox.set_fault("roll-qa", "circuit-breaker-rollback")
    try:
        _third, proc = release("3.2.0")
    finally:
        aws_sandbox.set_fault("roll-qa", None)
    assert proc.returncode == 1 and "failed" in proc.stderr, proc.stderr
    deadline = time.monotonic() + 30  # the circuit breaker rolls back a deployment step after the failure
    while not image().endswith(":3.1.0") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert image().endswith(":3.1.0")  # ECS rolled back: stable, but on the old revision
