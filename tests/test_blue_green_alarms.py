"""Alarm-gated blue/green releases on the local AWS: an alarm that fires after the first traffic shift sends
traffic back and is named in the log, status, history and report; an alarm already in ALARM stops the release before
traffic moves; an alarm that does not exist is bad input before anything is applied.

On its own stack (app "bga"), so it runs beside tests/test_blue_green.py in `make test`'s workers."""
from __future__ import annotations

import json

import pytest

from tests.test_blue_green import ENV, FAST
from tests.test_blue_green import _release as release_of
from tests.test_blue_green import _weights as weights_of

pytestmark = pytest.mark.integration

APP = "bga"  # not "bg": a worker that also runs tests/test_blue_green.py keeps both stacks in its one local AWS
CLUSTER = f"{APP}-{ENV}"


def _weights(sandbox) -> dict[str, int]:
    return weights_of(sandbox, CLUSTER)


def _release(cli, version: str, *apply_args: str, expect: int = 0):
    return release_of(cli, version, *apply_args, expect=expect, app=APP)


@pytest.fixture(scope="module")
def bg(aws_sandbox, cli_factory):
    """This module's own stack: the app's first release, everything on blue."""
    cli = cli_factory("bluegreen-alarms")
    _release(cli, "1.0.0")
    return cli


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
