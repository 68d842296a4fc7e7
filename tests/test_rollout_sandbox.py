"""The rollout watcher against the sandbox (moto + ECS lifecycle): a good deployment is watched to success, and
every injected fault is detected and never reported as a success."""
from __future__ import annotations

import pytest

from tests.helpers import DrivenClock, WebApp, driven_clock, make_webapp, primary
from tfreview.rollout.watch import FAILED, SUCCEEDED, LogLine, watch_deployment

POLL_S = 0.05

pytestmark = pytest.mark.usefixtures("no_faults_left_behind")


def watch(app: WebApp, expected: str, timeout_s: float = 10.0, lines: list[LogLine] | None = None,
          clock: DrivenClock | None = None):
    """watch_deployment of `app`'s service; with `clock` (helpers.driven_clock), on the sandbox's driven time."""
    on_event = lines.append if lines is not None else None
    if clock is None:
        return watch_deployment(app.ecs, app.elbv2, app.cluster, app.service, expected, app.target_group,
                                timeout_s=timeout_s, poll_s=POLL_S, on_event=on_event)
    return watch_deployment(app.ecs, app.elbv2, app.cluster, app.service, expected, app.target_group,
                            timeout_s=timeout_s, poll_s=POLL_S, on_event=on_event, clock=clock, sleep=clock.sleep)


def test_a_good_deployment_is_watched_to_success_and_the_log_tells_the_story(sandbox):
    app = make_webapp(sandbox)
    lines: list[LogLine] = []
    # The watcher's sleeps move the sandbox's time (5 polls per step): it sees every step, on any machine.
    with driven_clock() as clock:
        app.deploy_v2()
        result = watch(app, app.td_v2, lines=lines, clock=clock)
    assert result.ok and result.state == SUCCEEDED, result.reason
    assert result.task_definition == app.td_v2 and result.duration_s > 0
    story = "\n".join(line.text for line in lines)
    for order in (["1 pending", "initial", "-> healthy", "is gone: its tasks were drained", "steady state"],
                  ["has started 1 tasks", "-> healthy", "has stopped 1 running tasks", "steady state"]):
        positions = [story.index(marker) for marker in order]
        assert positions == sorted(positions), story
    assert story.count("has started 1 tasks") == 1


def test_the_initial_deployment_of_a_new_service_is_watched_too(sandbox):
    app = make_webapp(sandbox, desired=2, settle=False)
    result = watch(app, app.td_v1)
    assert result.ok, result.reason
    assert sorted(app.targets().values()) == ["healthy", "healthy"]


def test_fault_failed_is_a_failed_release(sandbox):
    app = make_webapp(sandbox)
    sandbox.set_fault(app.service, "failed")
    app.deploy_v2()
    result = watch(app, app.td_v2)
    assert not result.ok and result.state == FAILED
    assert "tasks failed to start" in result.reason


def test_fault_circuit_breaker_rollback_is_a_failed_release_even_once_the_service_is_stable_again(sandbox):
    app = make_webapp(sandbox)
    sandbox.set_fault(app.service, "circuit-breaker-rollback")
    app.deploy_v2()
    caught = watch(app, app.td_v2)
    # Caught while failing ("rolls the service back to") or while rolling back ("rolled back to"): failed either way.
    assert not caught.ok and " back to " in caught.reason and app.td_v1.rsplit("/", 1)[1] in caught.reason

    # Watching only after the rollback settled: the service is stable, healthy, COMPLETED - on the old revision.
    app.wait(lambda s: len(s["deployments"]) == 1 and primary(s)["rolloutState"] == "COMPLETED")
    late = watch(app, app.td_v2)
    assert not late.ok and late.state == FAILED
    assert "rolled back to" in late.reason and "is not running" in late.reason
    assert late.task_definition == app.td_v1


def test_fault_unhealthy_targets_is_a_failed_release(sandbox):
    app = make_webapp(sandbox)
    sandbox.set_fault(app.service, "unhealthy-targets")
    app.deploy_v2()
    lines: list[LogLine] = []
    result = watch(app, app.td_v2, lines=lines)
    assert not result.ok and result.state == FAILED
    # The ELB health-check failures are told (as a target state, or at least as ECS's service event).
    assert any(line.kind in ("target", "event") and "unhealthy" in line.text for line in lines)


def test_fault_unhealthy_targets_is_never_a_success_even_when_watched_too_briefly(sandbox):
    with driven_clock() as clock:  # no step between seeing it unhealthy and the brief watch, on any machine
        app = make_webapp(sandbox)
        sandbox.set_fault(app.service, "unhealthy-targets")
        app.deploy_v2()
        app.wait(lambda s: any(v == "unhealthy" for v in app.targets().values()))
        result = watch(app, app.td_v2, timeout_s=0.01, clock=clock)
    assert result.state == FAILED and result.reason.startswith("did not finish in 0.01 s")
    assert "older deployment(s) still running 1 tasks" in result.reason


def test_fault_never_finishes_is_a_failed_release_after_the_timeout(sandbox):
    app = make_webapp(sandbox)
    sandbox.set_fault(app.service, "never-finishes")
    app.deploy_v2()
    result = watch(app, app.td_v2, timeout_s=1.0)
    assert not result.ok and result.reason.startswith("did not finish in 1 s")
    assert "1 pending" in result.reason
    assert result.duration_s >= 1.0  # it waited the whole timeout (how much longer is make bench's business)


def outputs_of(app: WebApp, colour: str = "green", wrapped: bool = True) -> dict:
    plain = {"cluster_name": app.cluster, "services": {colour: app.service},
             "task_definitions": {colour: app.td_v2}, "target_groups": {colour: app.target_group}}
    return {k: {"sensitive": False, "type": "x", "value": v} for k, v in plain.items()} if wrapped else plain


def test_watch_colour_reads_what_to_watch_from_the_terraform_outputs(sandbox):
    from tfreview.rollout.watch import watch_colour

    app = make_webapp(sandbox)
    app.deploy_v2()
    result = watch_colour(outputs_of(app), "green", endpoint_url=sandbox.endpoint, timeout_s=10, poll_s=POLL_S)
    assert result.ok and result.task_definition == app.td_v2 and result.service == app.service


def test_watch_colour_refuses_outputs_without_that_colour(sandbox):
    from tfreview.errors import BadInput
    from tfreview.rollout.watch import watch_colour

    app = make_webapp(sandbox)
    with pytest.raises(BadInput, match="no ECS service for colour 'blue'"):
        watch_colour(outputs_of(app, wrapped=False), "blue", ecs=app.ecs, elbv2=app.elbv2)


def test_status_reads_weights_from_the_listener_and_revisions_from_the_services(sandbox):
    from tfreview.rollout.status import colour_status, colour_weights

    blue, green = make_webapp(sandbox), make_webapp(sandbox)
    ec2 = sandbox.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"][
        "SubnetId"] for i, az in ((1, "a"), (2, "b"))]
    lb = blue.elbv2.create_load_balancer(Name=f"lb-{blue.service}"[:32], Subnets=subnets)["LoadBalancers"][0]
    listener = blue.elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": blue.target_group, "Weight": 90},
            {"TargetGroupArn": green.target_group, "Weight": 10}]}}])["Listeners"][0]["ListenerArn"]
    # One cluster per WebApp here, so look at each colour through its own outputs.
    outputs = {"listener_arn": listener, "target_groups": {"blue": blue.target_group, "green": green.target_group}}
    assert colour_weights(blue.elbv2, outputs) == {"blue": 90, "green": 10}
    status = colour_status(blue.ecs, blue.elbv2, outputs | {"cluster_name": blue.cluster,
                                                            "services": {"blue": blue.service}})
    assert status["blue"].weight == 90 and status["blue"].task_definition == blue.td_v1
    assert (status["blue"].rollout_state, status["blue"].running, status["blue"].desired) == ("COMPLETED", 1, 1)


@pytest.mark.parametrize("fault", ["failed", "circuit-breaker-rollback", "unhealthy-targets", "never-finishes"])
def test_after_a_failed_release_the_next_good_one_is_watched_to_success(sandbox, fault):
    app = make_webapp(sandbox)
    sandbox.set_fault(app.service, fault)
    app.deploy_v2()
    assert not watch(app, app.td_v2, timeout_s=1.0 if fault == "never-finishes" else 10.0).ok
    sandbox.set_fault(app.service, None)
    td_v3 = app.ecs.register_task_definition(
        family=app.service, containerDefinitions=[{"name": "web", "image": "registry.local/web:1.2.0",
                                                   "memory": 512}])["taskDefinition"]["taskDefinitionArn"]
    app.ecs.update_service(cluster=app.cluster, service=app.service, taskDefinition=td_v3)
    result = watch(app, td_v3)
    assert result.ok, result.reason
    assert [d["status"] for d in app.describe()["deployments"]] == ["PRIMARY"]
