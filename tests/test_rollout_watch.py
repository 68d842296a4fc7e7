"""The rollout watcher's pure core on AWS-shaped DescribeServices / DescribeTargetHealth payloads, and its polling
loop on scripted fake clients (no AWS, no moto)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfreview.errors import AwsError
from tfreview.rollout.watch import (
    FAILED,
    IN_PROGRESS,
    SUCCEEDED,
    LogLine,
    assess,
    changes,
    observe,
    same_task_definition,
    short_td,
    watch_deployment,
)

ACCOUNT = "arn:aws:ecs:us-east-1:123456789012"
OLD_TD = f"{ACCOUNT}:task-definition/web-qa-green:6"
NEW_TD = f"{ACCOUNT}:task-definition/web-qa-green:7"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-qa-green/0123456789abcdef"
T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=timezone.utc)


def deployment(dep_id: str, td: str, status: str = "PRIMARY", state: str | None = "IN_PROGRESS", *,
               desired: int = 2, running: int = 0, pending: int = 0, failed: int = 0, reason: str | None = None,
               created: datetime = T0) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": dep_id, "status": status, "taskDefinition": td, "desiredCount": desired, "runningCount": running,
        "pendingCount": pending, "failedTasks": failed, "createdAt": created, "updatedAt": created,
        "launchType": "FARGATE",
    }
    if state is not None:
        d["rolloutState"] = state
        d["rolloutStateReason"] = reason or (f"ECS deployment {dep_id} completed." if state == "COMPLETED"
                                             else f"ECS deployment {dep_id} in progress.")
    return d


def service(*deployments: dict[str, Any], events: Sequence[tuple[int, str]] = (), status: str = "ACTIVE",
            rollback: bool = True) -> dict[str, Any]:
    """A DescribeServices `services[0]`; `events` are (seconds after T0, message), given oldest first."""
    primary = next(d for d in deployments if d["status"] == "PRIMARY")
    return {
        "serviceName": "web-qa-green", "clusterArn": f"{ACCOUNT}:cluster/web-qa", "status": status,
        "taskDefinition": primary["taskDefinition"], "desiredCount": primary["desiredCount"],
        "runningCount": sum(d["runningCount"] for d in deployments),
        "pendingCount": sum(d["pendingCount"] for d in deployments),
        "deployments": list(deployments),
        "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": True, "rollback": rollback},
                                    "maximumPercent": 200, "minimumHealthyPercent": 100},
        "loadBalancers": [{"targetGroupArn": TG, "containerName": "web", "containerPort": 8080}],
        "events": [{"id": f"e{i}", "createdAt": T0 + timedelta(seconds=at), "message": f"(service web-qa-green) {m}"}
                   for i, (at, m) in reversed(list(enumerate(events)))],  # ECS: newest first
    }


def targets(*states: str | tuple[str, str]) -> list[dict[str, Any]]:
    """TargetHealthDescriptions: each state is "healthy" or (state, reason); ids 10.0.1.1, 10.0.1.2..."""
    out = []
    for i, s in enumerate(states, start=1):
        state, reason = (s, "") if isinstance(s, str) else s
        health: dict[str, Any] = {"State": state}
        if reason:
            health["Reason"] = reason
        out.append({"Target": {"Id": f"10.0.1.{i}", "Port": 8080}, "HealthCheckPort": "8080", "TargetHealth": health})
    return out


COMPLETED_NEW = deployment("ecs-svc/2", NEW_TD, state="COMPLETED", running=2)


# -- assess: success means exactly one thing --------------------------------------------------------------------


def test_success_when_primary_runs_expected_revision_completed_and_all_targets_healthy():
    result = assess(service(COMPLETED_NEW), targets("healthy", "healthy"), NEW_TD)
    assert result.state == SUCCEEDED and result.ok
    assert "web-qa-green:7" in result.reason


def test_expected_revision_may_be_given_as_family_and_revision():
    assert assess(service(COMPLETED_NEW), targets("healthy", "healthy"), "web-qa-green:7").ok


def test_in_progress_while_new_tasks_are_pending():
    new = deployment("ecs-svc/2", NEW_TD, pending=2)
    old = deployment("ecs-svc/1", OLD_TD, status="ACTIVE", state="COMPLETED", running=2)
    result = assess(service(new, old), targets("healthy", "healthy"), NEW_TD)
    assert result.state == IN_PROGRESS
    assert "0/2 running, 2 pending" in result.reason and "older deployment" in result.reason


def test_completed_rollout_with_targets_still_initial_is_not_yet_a_success():
    result = assess(service(COMPLETED_NEW), targets(("initial", "Elb.RegistrationInProgress"), "healthy"), NEW_TD)
    assert result.state == IN_PROGRESS
    assert "1 of 2 targets not healthy" in result.reason and "Elb.RegistrationInProgress" in result.reason


def test_fewer_healthy_targets_than_desired_tasks_is_not_a_success():
    assert assess(service(COMPLETED_NEW), targets("healthy"), NEW_TD).state == IN_PROGRESS


def test_draining_targets_of_the_old_tasks_do_not_block_success():
    assert assess(service(COMPLETED_NEW), targets("healthy", "healthy", "draining"), NEW_TD).ok


def test_an_old_active_deployment_still_running_is_not_yet_a_success():
    old = deployment("ecs-svc/1", OLD_TD, status="ACTIVE", state="COMPLETED", running=2)
    assert assess(service(COMPLETED_NEW, old), targets("healthy", "healthy"), NEW_TD).state == IN_PROGRESS


def test_running_below_desired_is_not_a_success_even_if_completed():
    short = deployment("ecs-svc/2", NEW_TD, state="COMPLETED", running=1)
    assert assess(service(short), targets("healthy"), NEW_TD).state == IN_PROGRESS


def test_failed_deployment_is_a_failed_release_with_the_circuit_breaker_reason():
    new = deployment("ecs-svc/2", NEW_TD, state="FAILED", failed=3,
                     reason="ECS deployment circuit breaker: tasks failed to start.")
    old = deployment("ecs-svc/1", OLD_TD, status="ACTIVE", state="COMPLETED", running=2)
    result = assess(service(new, old, rollback=False), targets("healthy", "healthy"), NEW_TD)
    assert result.state == FAILED and not result.ok
    assert "tasks failed to start" in result.reason and "3 tasks failed" in result.reason
    assert "rolls the service back" not in result.reason


def test_failed_deployment_with_rollback_enabled_says_where_the_service_goes_back_to():
    new = deployment("ecs-svc/2", NEW_TD, state="FAILED", failed=3,
                     reason="ECS deployment circuit breaker: tasks failed to start.")
    old = deployment("ecs-svc/1", OLD_TD, status="ACTIVE", state="COMPLETED", running=2)
    result = assess(service(new, old), targets("healthy", "healthy"), NEW_TD)
    assert result.state == FAILED and "rolls the service back to web-qa-green:6" in result.reason


def test_stable_on_the_old_revision_after_a_circuit_breaker_rollback_is_a_failed_release():
    # Everything looks green - COMPLETED, 2/2 running, targets healthy - but on the OLD task definition.
    back = deployment("ecs-svc/3", OLD_TD, state="COMPLETED", running=2)
    svc = service(back, events=[(1, "(deployment ecs-svc/2) deployment failed: tasks failed to start."),
                                (2, "rolling back to deployment ecs-svc/1."),
                                (5, "has reached a steady state.")])
    result = assess(svc, targets("healthy", "healthy"), NEW_TD)
    assert result.state == FAILED
    assert "rolled back to web-qa-green:6" in result.reason and "stable" in result.reason
    assert "web-qa-green:7 is not running" in result.reason


def test_rollback_in_progress_is_already_a_failed_release():
    back = deployment("ecs-svc/3", OLD_TD, reason="ECS deployment circuit breaker: rolling back to deploymentId "
                                                  "ecs-svc/1.")
    failed = deployment("ecs-svc/2", NEW_TD, status="ACTIVE", state="FAILED", failed=3,
                        reason="ECS deployment circuit breaker: tasks failed to start.")
    result = assess(service(back, failed), targets("healthy", "healthy"), NEW_TD)
    assert result.state == FAILED and "rollback in progress" in result.reason
    assert "after ecs-svc/2 failed" in result.reason


def test_primary_on_another_revision_without_rollback_evidence_is_a_failed_release():
    other = deployment("ecs-svc/9", f"{ACCOUNT}:task-definition/web-qa-green:8", state="COMPLETED", running=2)
    result = assess(service(other), targets("healthy", "healthy"), NEW_TD)
    assert result.state == FAILED and "runs web-qa-green:8, not web-qa-green:7" in result.reason


def test_missing_or_draining_service_is_a_failed_release():
    assert assess(None, None, NEW_TD).state == FAILED
    assert "DRAINING" in assess(service(COMPLETED_NEW, status="DRAINING"), [], NEW_TD).reason


def test_without_circuit_breaker_a_single_deployment_at_desired_count_is_complete():
    plain = deployment("ecs-svc/2", NEW_TD, state=None, running=2)
    assert assess(service(plain), targets("healthy", "healthy"), NEW_TD).ok
    plain_old = deployment("ecs-svc/1", OLD_TD, status="ACTIVE", state=None, running=2)
    assert assess(service(plain, plain_old), targets("healthy", "healthy"), NEW_TD).state == IN_PROGRESS


def test_a_service_without_target_group_is_judged_on_the_deployment_alone():
    assert assess(service(COMPLETED_NEW), None, NEW_TD).ok


_states = st.sampled_from(["IN_PROGRESS", "COMPLETED", "FAILED", None])
_tds = st.sampled_from([OLD_TD, NEW_TD])
_health = st.sampled_from(["healthy", "initial", "unhealthy", "draining", "unused"])


@settings(max_examples=150, deadline=None)
@given(primary_td=_tds, primary_state=_states, other=st.one_of(st.none(), st.tuples(_tds, _states)),
       desired=st.integers(0, 3), running=st.integers(0, 3), health=st.lists(_health, max_size=4))
def test_success_means_primary_on_expected_revision_alone_and_healthy_failure_means_it_failed(
        primary_td, primary_state, other, desired, running, health):
    deps = [deployment("ecs-svc/2", primary_td, state=primary_state, desired=desired, running=running)]
    if other:
        deps.append(deployment("ecs-svc/1", other[0], status="ACTIVE", state=other[1], running=1))
    result = assess(service(*deps), targets(*health), NEW_TD)
    if result.ok:
        assert primary_td == NEW_TD and primary_state in ("COMPLETED", None) and running == desired
        assert other is None
        assert all(h in ("healthy", "draining") for h in health)
        assert sum(h == "healthy" for h in health) >= desired
    # A release fails exactly when the watched revision is not the PRIMARY or its deployment FAILED; a FAILED
    # deployment left over from an earlier release only delays success until it is drained.
    assert (result.state == FAILED) == (primary_td != NEW_TD or primary_state == "FAILED")


# -- short names ------------------------------------------------------------------------------------------------


def test_task_definition_names():
    assert short_td(NEW_TD) == "web-qa-green:7"
    assert same_task_definition(NEW_TD, "web-qa-green:7")
    assert not same_task_definition(NEW_TD, OLD_TD)
    assert not same_task_definition("", "")


# -- changes: a line only when something changed ----------------------------------------------------------------


def test_the_same_observation_twice_logs_nothing_the_second_time():
    obs = observe(service(COMPLETED_NEW, events=[(0, "has reached a steady state.")]), targets("healthy"))
    assert changes(None, obs, 0.0)
    assert changes(obs, obs, 5.0) == []


def test_the_log_tells_the_story_pending_started_healthy_drained():
    old = deployment("ecs-svc/1", OLD_TD, status="ACTIVE", state="COMPLETED", running=1, desired=1)
    new = dict(deployment("ecs-svc/2", NEW_TD, desired=1))
    frames = [
        service(new, old),
        service(dict(new, pendingCount=1), old, events=[(1, "has started 1 tasks: (task abc).")]),
        service(dict(new, runningCount=1), old, events=[(1, "has started 1 tasks: (task abc)."),
                                                        (2, f"registered 1 targets in (target-group {TG})")]),
        service(dict(new, runningCount=1, rolloutState="COMPLETED",
                     rolloutStateReason="ECS deployment ecs-svc/2 completed."),
                events=[(1, "has started 1 tasks: (task abc)."), (2, f"registered 1 targets in (target-group {TG})"),
                        (4, "has stopped 1 running tasks: (task old)."), (5, "has reached a steady state.")]),
    ]
    healths = [targets("healthy"), targets("healthy"),
               targets("draining", ("initial", "Elb.RegistrationInProgress")), [targets("healthy")[0] | {
                   "Target": {"Id": "10.0.1.2", "Port": 8080}}]]
    lines: list[str] = []
    before = None
    for i, (frame, health) in enumerate(zip(frames, healths, strict=False)):
        now = observe(frame, health)
        lines += [line.text for line in changes(before, now, float(i), since=T0)]
        before = now
    story = "\n".join(lines)
    assert story.index("0/1 running, 1 pending") < story.index("has started 1 tasks") \
        < story.index("10.0.1.2:8080 initial") < story.index("10.0.1.2:8080 initial -> healthy") \
        < story.index("ecs-svc/1 (web-qa-green:6) is gone") < story.index("has reached a steady state")
    assert story.count("has started 1 tasks") == 1  # events are reported once
    assert "10.0.1.1:8080 healthy -> draining" in story and "10.0.1.1:8080 deregistered" in story


def test_events_older_than_the_deployment_are_not_replayed():
    svc = service(COMPLETED_NEW, events=[(-60, "has reached a steady state."), (1, "has started 2 tasks: (task a).")])
    texts = [line.text for line in changes(None, observe(svc, []), 0.0, since=T0) if line.kind == "event"]
    assert texts == ["(service web-qa-green) has started 2 tasks: (task a)."]


def test_same_time_events_keep_ecs_order():
    svc = service(COMPLETED_NEW, events=[(1, "(deployment ecs-svc/2) deployment completed."),
                                         (1, "has reached a steady state.")])
    texts = [e.message for e in observe(svc, []).events]
    assert texts[0].endswith("deployment completed.") and texts[1].endswith("steady state.")


# -- the polling loop, on fake clients ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class ScriptedAws:
    """ecs + elbv2 stand-in that plays one (service, targets) frame per poll, repeating the last one."""

    def __init__(self, frames: list[tuple[dict[str, Any] | Exception, list[dict[str, Any]]]],
                 stopped: list[dict[str, Any]] | None = None) -> None:
        self.frames = frames
        self.polls = 0
        self.stopped = stopped or []  # DescribeTasks descriptions of the service's stopped tasks

    def list_tasks(self, cluster: str, serviceName: str, desiredStatus: str) -> dict[str, Any]:  # noqa: N803
        assert desiredStatus == "STOPPED"
        return {"taskArns": [t["taskArn"] for t in self.stopped]}

    def describe_tasks(self, cluster: str, tasks: list[str]) -> dict[str, Any]:
        return {"tasks": [t for t in self.stopped if t["taskArn"] in tasks], "failures": []}

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        frame, _ = self.frames[min(self.polls, len(self.frames) - 1)]
        self.polls += 1
        if isinstance(frame, Exception):
            raise frame
        return {"services": [frame], "failures": []}

    def describe_target_health(self, TargetGroupArn: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        assert TargetGroupArn == TG
        return {"TargetHealthDescriptions": self.frames[min(self.polls - 1, len(self.frames) - 1)][1]}


def test_watch_ends_with_success_and_streams_each_change_once():
    new = deployment("ecs-svc/2", NEW_TD, pending=2)
    aws = ScriptedAws([(service(new), []), (service(new), []),
                       (service(COMPLETED_NEW, events=[(3, "has reached a steady state.")]),
                        targets("healthy", "healthy"))])
    clock, seen = FakeClock(), []
    result = watch_deployment(aws, aws, "web-qa", "web-qa-green", NEW_TD, timeout_s=60, poll_s=5,
                              on_event=seen.append, clock=clock, sleep=clock.sleep)
    assert result.ok and result.state == SUCCEEDED and result.task_definition == NEW_TD
    assert aws.polls == 3 and result.duration_s == 10.0
    assert seen == list(result.events) and seen[-1].kind == "result"
    assert sum("0/2 running, 2 pending" in line.text for line in seen) == 1
    assert result.to_dict()["log"][-1].endswith("SUCCEEDED: " + result.reason)


def test_watch_times_out_as_a_failure_saying_how_long_and_where_it_stuck():
    stuck = deployment("ecs-svc/2", NEW_TD, pending=2)
    aws = ScriptedAws([(service(stuck), [])])
    clock = FakeClock()
    result = watch_deployment(aws, aws, "web-qa", "web-qa-green", NEW_TD, timeout_s=30, poll_s=10,
                              clock=clock, sleep=clock.sleep)
    assert not result.ok and result.state == FAILED
    assert result.reason.startswith("did not finish in 30 s") and "2 pending" in result.reason
    assert clock.now == 30.0


def test_watch_stops_at_the_first_failed_deployment():
    failed = deployment("ecs-svc/2", NEW_TD, state="FAILED", reason="ECS deployment circuit breaker: tasks failed "
                                                                     "to start.")
    aws = ScriptedAws([(service(failed), [])])
    clock = FakeClock()
    result = watch_deployment(aws, aws, "web-qa", "web-qa-green", NEW_TD, timeout_s=600, poll_s=5,
                              clock=clock, sleep=clock.sleep)
    assert result.state == FAILED and aws.polls == 1 and "tasks failed to start" in result.reason


def test_watch_survives_a_transient_aws_error_but_not_three_in_a_row():
    from botocore.exceptions import EndpointConnectionError

    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    aws = ScriptedAws([(down, []), (service(COMPLETED_NEW), targets("healthy", "healthy"))])
    clock = FakeClock()
    result = watch_deployment(aws, aws, "web-qa", "web-qa-green", NEW_TD, poll_s=1, clock=clock, sleep=clock.sleep)
    assert result.ok and any(line.kind == "error" for line in result.events)

    with pytest.raises(AwsError, match="lost AWS while watching web-qa-green"):
        watch_deployment(ScriptedAws([(down, [])]), None, "web-qa", "web-qa-green", NEW_TD, poll_s=1,
                         clock=clock, sleep=clock.sleep)


def test_watch_replays_events_since_the_given_time_only():
    svc = service(COMPLETED_NEW, events=[(-60, "has reached a steady state."), (-5, "has started 2 tasks: (task a)."),
                                         (1, "has reached a steady state.")])
    aws = ScriptedAws([(svc, targets("healthy", "healthy"))])
    clock = FakeClock()
    result = watch_deployment(aws, aws, "web-qa", "web-qa-green", NEW_TD, poll_s=1, clock=clock, sleep=clock.sleep,
                              since=(T0 - timedelta(seconds=10)).replace(tzinfo=None))  # naive UTC is fine too
    events = [line.text for line in result.events if line.kind == "event"]
    assert events == ["(service web-qa-green) has started 2 tasks: (task a).",
                      "(service web-qa-green) has reached a steady state."]


# -- display ------------------------------------------------------------------------------------------------------


def test_the_display_renders_deployments_targets_and_verdict_without_a_terminal():
    import io

    from rich.console import Console

    from tfreview.rollout.display import LiveRollout, log_line, rollout_panel

    old = deployment("ecs-svc/1", OLD_TD, status="ACTIVE", state="COMPLETED", running=2)
    obs = observe(service(deployment("ecs-svc/2", NEW_TD, running=1, pending=1), old),
                  targets("healthy", ("initial", "Elb.RegistrationInProgress")))
    out = io.StringIO()
    console = Console(file=out, width=140, color_system=None)
    console.print(rollout_panel(obs, assess(obs, None, NEW_TD), 12.0))
    text = out.getvalue()
    assert "ecs-svc/2" in text and "web-qa-green:7" in text and "IN_PROGRESS" in text and "1/2" in text
    assert "10.0.1.2:8080 initial" in text and "in progress" in text and "(12 s)" in text

    aws = ScriptedAws([(service(COMPLETED_NEW), targets("healthy", "healthy"))])
    clock = FakeClock()
    with LiveRollout(console) as live:  # not a terminal: log lines only
        watch_deployment(aws, aws, "web-qa", "web-qa-green", NEW_TD, on_event=live.on_event, on_poll=live.on_poll,
                         clock=clock, sleep=clock.sleep)
    assert "SUCCEEDED: web-qa-green:7 is live" in out.getvalue()
    assert log_line(LogLine(1.5, "event", "hello")).plain == "   1.5s  event   hello"


def test_event_lines_name_target_groups_instead_of_quoting_their_arns():
    svc = service(COMPLETED_NEW, events=[(1, f"registered 1 targets in (target-group {TG})")])
    texts = [line.text for line in changes(None, observe(svc, []), 0.0) if line.kind == "event"]
    assert texts == ["(service web-qa-green) registered 1 targets in (target-group web-qa-green)"]


def test_a_failed_deployment_left_by_the_previous_release_does_not_fail_the_next_one():
    leftover = deployment("ecs-svc/2", OLD_TD, status="ACTIVE", state="FAILED", failed=3,
                          reason="ECS deployment circuit breaker: tasks failed to start.")
    serving = deployment("ecs-svc/1", f"{ACCOUNT}:task-definition/web-qa-green:5", status="ACTIVE",
                         state="COMPLETED", running=2)
    new = deployment("ecs-svc/3", NEW_TD, pending=2)
    assert assess(service(new, leftover, serving), targets("healthy", "healthy"), NEW_TD).state == IN_PROGRESS
    done = deployment("ecs-svc/3", NEW_TD, state="COMPLETED", running=2)
    assert assess(service(done, leftover), targets("healthy", "healthy"), NEW_TD).state == IN_PROGRESS  # draining
    assert assess(service(done), targets("healthy", "healthy"), NEW_TD).ok


def test_an_older_failed_deployment_of_the_same_revision_does_not_fail_a_forced_redeploy():
    earlier = deployment("ecs-svc/2", NEW_TD, status="ACTIVE", state="FAILED", failed=3,
                         reason="ECS deployment circuit breaker: tasks failed to start.")
    retry = deployment("ecs-svc/3", NEW_TD, pending=2)
    assert assess(service(retry, earlier), targets(), NEW_TD).state == IN_PROGRESS


# -- why tasks stopped -------------------------------------------------------------------------------------------


def stopped_task(task: str, started_by: str, stop_code: str, reason: str, exit_code: int | None = None,
                 container_reason: str = "") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web", "lastStatus": "STOPPED"}
    if exit_code is not None:
        container["exitCode"] = exit_code
    if container_reason:
        container["reason"] = container_reason
    return {"taskArn": f"arn:aws:ecs:us-east-1:123456789012:task/web-qa/{task}", "startedBy": started_by,
            "lastStatus": "STOPPED", "stopCode": stop_code, "stoppedReason": reason, "containers": [container]}


def test_a_failed_deployment_says_once_per_distinct_reason_why_its_tasks_stopped():
    pull = "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref x:2: not found"
    tasks = [stopped_task(f"t{i}", "ecs-svc/2", "TaskFailedToStart", pull, container_reason=pull) for i in range(3)]
    tasks += [stopped_task("t9", "ecs-svc/2", "EssentialContainerExited", "Essential container in task exited", 137),
              stopped_task("old", "ecs-svc/1", "ServiceSchedulerInitiated", "Scaling activity initiated by "
                                                                             "(deployment ecs-svc/2)", 143)]
    growing = deployment("ecs-svc/2", NEW_TD, pending=1)
    failed = deployment("ecs-svc/2", NEW_TD, state="FAILED", reason="ECS deployment circuit breaker: tasks failed "
                                                                     "to start.")
    aws = ScriptedAws([(service(growing), []), (service(failed), [])], stopped=tasks)
    clock, seen = FakeClock(), []
    result = watch_deployment(aws, aws, "web-qa", "web-qa-green", NEW_TD, timeout_s=60, poll_s=5,
                              on_event=seen.append, clock=clock, sleep=clock.sleep)
    reasons = [line.text for line in seen if line.kind == "reason"]
    assert reasons == [f"task stopped: {pull} [TaskFailedToStart]",
                       "task stopped: Essential container in task exited [EssentialContainerExited]; "
                       "container web exit code 137"]
    assert [(s["reason"].split(":")[0], s["count"]) for s in result.stopped] == [
        ("CannotPullContainerError", 3), ("Essential container in task exited [EssentialContainerExited]; container "
                                          "web exit code 137", 1)]
    assert not any("Scaling activity" in line.text for line in seen)  # the old deployment's tasks are not ours


def test_unhealthy_targets_give_their_reason_code_once():
    unhealthy = {"Target": {"Id": "10.0.0.5", "Port": 8080},
                 "TargetHealth": {"State": "unhealthy", "Reason": "Target.FailedHealthChecks",
                                  "Description": "Health checks failed"}}
    running = deployment("ecs-svc/2", NEW_TD, running=2)
    aws = ScriptedAws([(service(running), [unhealthy]), (service(running), [unhealthy])])
    clock, seen = FakeClock(), []
    result = watch_deployment(aws, aws, "web-qa", "web-qa-green", NEW_TD, timeout_s=10, poll_s=5,
                              on_event=seen.append, clock=clock, sleep=clock.sleep)
    assert [line.text for line in seen if line.kind == "reason"] == [
        "target health Target.FailedHealthChecks: Health checks failed"]
    assert result.stopped == ({"kind": "target", "reason": "target health Target.FailedHealthChecks: Health checks "
                                                           "failed", "count": 1},)


def test_a_gate_stops_the_watch_as_failed_with_its_reason():
    pending = deployment("ecs-svc/2", NEW_TD, pending=1)
    aws = ScriptedAws([(service(pending), [])])
    clock, calls = FakeClock(), []

    def gate() -> dict[str, Any] | None:
        calls.append(clock.now)
        return {"reason": "alarm web-5xx is in ALARM"} if len(calls) == 2 else None

    result = watch_deployment(aws, aws, "web-qa", "web-qa-green", NEW_TD, timeout_s=60, poll_s=5, gate=gate,
                              clock=clock, sleep=clock.sleep)
    assert result.state == FAILED and result.reason == "alarm web-5xx is in ALARM" and aws.polls == 2
    assert result.gate == {"reason": "alarm web-5xx is in ALARM"}


def test_after_a_circuit_breaker_rollback_only_this_releases_tasks_give_reasons():
    from tfreview.rollout.watch import Reasons, StoppedTask

    def task(name: str, started_by: str, td: str, reason: str) -> StoppedTask:
        return StoppedTask(name, started_by, "TaskFailedToStart", reason, (), td)

    # The failed deployment is gone (rolled back): its tasks still ran the revision this release deploys.
    stopped = [task("a", "ecs-svc/gone", NEW_TD, "CannotPullContainerError: new"),
               task("b", "ecs-svc/older", OLD_TD, "CannotPullContainerError: an earlier release's")]
    assert Reasons().tasks(stopped, [], NEW_TD) == ["CannotPullContainerError: new [TaskFailedToStart]"]


@pytest.mark.parametrize("start", [0.0, 12_345.678, 98_765.4321, 1e9 + 0.1])
def test_a_brief_watch_on_a_driven_clock_ends_whatever_the_clock_reads(start):
    """A 0.01 s watch on a clock that moves only by its sleeps ends after its time, however large the clock's
    reading: the remainder left by float rounding (1e-12 s) is never slept forever (the sandbox's driven clock hung
    a test this way)."""
    aws = ScriptedAws([(service(deployment("ecs-svc/2", NEW_TD, pending=2)), [])])
    clock = FakeClock()
    clock.now = start
    result = watch_deployment(aws, aws, "web-qa", "web-qa-green", NEW_TD, timeout_s=0.01, poll_s=0.05,
                              clock=clock, sleep=clock.sleep)
    assert not result.ok and result.reason.startswith("did not finish in 0.01 s")
    assert aws.polls <= 3
