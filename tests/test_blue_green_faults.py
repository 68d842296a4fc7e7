"""Blue/green releases that fail, on the local AWS: every injected ECS fault (and a failing verify command) is
detected, the release is a failed one, traffic never moves onto the failed colour and the reasons tasks stopped are
told; a good release after them drains the failed deployments; only a successful release can be promoted.

On its own stack (app "bgf"), so it runs beside tests/test_blue_green.py in `make test`'s workers."""
from __future__ import annotations

import json

import pytest

from tests.test_blue_green import ENV, FAST
from tests.test_blue_green import _images as images_of
from tests.test_blue_green import _release as release_of
from tests.test_blue_green import _weights as weights_of

pytestmark = pytest.mark.integration

APP = "bgf"  # not "bg": a worker that also runs tests/test_blue_green.py keeps both stacks in its one local AWS
CLUSTER = f"{APP}-{ENV}"


def _weights(sandbox) -> dict[str, int]:
    return weights_of(sandbox, CLUSTER)


def _images(sandbox) -> dict[str, str]:
    return images_of(sandbox, CLUSTER)


def _release(cli, version: str, *apply_args: str, expect: int = 0):
    return release_of(cli, version, *apply_args, expect=expect, app=APP)


@pytest.fixture(scope="module")
def bg(aws_sandbox, cli_factory):
    """This module's own stack: the app's first release, everything on blue."""
    cli = cli_factory("bluegreen-faults")
    _release(cli, "1.0.0")
    return cli


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
    assert f"release of {APP}" in proc.stderr and "failed" in proc.stderr
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


def test_a_good_release_after_the_failed_ones_succeeds_and_drains_them(bg, aws_sandbox):
    before = _weights(aws_sandbox)
    live = max(before, key=before.get)
    idle = "green" if live == "blue" else "blue"
    _release(bg, "2.1.0")
    assert _weights(aws_sandbox) == {live: 0, idle: 100}
    assert _images(aws_sandbox)[idle] == "2.1.0"
    service = aws_sandbox.client("ecs").describe_services(cluster=CLUSTER, services=[f"{CLUSTER}-{idle}"])["services"][0]
    assert [d["status"] for d in service["deployments"]] == ["PRIMARY"]  # the failed deployments were drained


def test_promote_requires_a_successful_release_in_the_previous_env(bg):
    refused = bg("promote", "--app", APP, "--version", "2.0.1", "--from", ENV, "--to", "qa")
    assert refused.returncode == 3 and "not released successfully" in refused.stderr
    rec = json.loads(bg.ok("promote", "--app", APP, "--version", "2.1.0", "--from", ENV, "--to", "qa",
                           "--format", "json").stdout)
    assert rec["env"] == "qa" and rec["version"] == "2.1.0" and rec["counts"]["add"] > 10
