"""The sandbox: moto on loopback, with the ECS deployment lifecycle and injectable faults, seen through boto3 only."""
from __future__ import annotations

import time
from typing import Any

import pytest

from tests.helpers import SANDBOX_STEP_S as STEP_S
from tests.helpers import driven_clock, make_webapp, primary
from tfreview.errors import BadInput
from tfreview.sandbox import LIFECYCLE, parse_faults, set_remote_fault, start_sandbox

pytestmark = pytest.mark.usefixtures("no_faults_left_behind")


def messages(svc: dict[str, Any]) -> list[str]:
    return [e["message"] for e in reversed(svc["events"])]  # oldest first


# -- the server ---------------------------------------------------------------------------------------------------


def test_sandbox_listens_on_a_free_loopback_port_and_prints_its_environment(sandbox):
    assert sandbox.endpoint == f"http://127.0.0.1:{sandbox.port}" and sandbox.port > 0
    assert sandbox.env()["AWS_ENDPOINT_URL"] == sandbox.endpoint
    assert sandbox.env()["AWS_ACCESS_KEY_ID"] == "testing"


def test_aws_managed_iam_policies_exist_as_on_aws(sandbox):
    """Real modules attach AmazonECSTaskExecutionRolePolicy: moto knows it only when the sandbox asks it to load
    AWS's managed policies (MOTO_IAM_LOAD_MANAGED_POLICIES, set before moto starts)."""
    iam = sandbox.client("iam")
    arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    assert iam.get_policy(PolicyArn=arn)["Policy"]["PolicyName"] == "AmazonECSTaskExecutionRolePolicy"


def test_sandbox_refuses_to_listen_beyond_loopback():
    with pytest.raises(BadInput, match="not a loopback address"):
        start_sandbox(host="0.0.0.0")


def test_sandbox_reports_a_busy_port_as_bad_input(sandbox):
    with pytest.raises(BadInput, match="cannot listen"):
        start_sandbox(port=sandbox.port)


# -- the lifecycle ------------------------------------------------------------------------------------------------


def test_create_service_starts_a_deployment_that_completes_with_healthy_targets(sandbox):
    with driven_clock():  # no step before the first look, however slow the machine
        app = make_webapp(sandbox, desired=2, settle=False)
        first = app.describe()
        assert primary(first)["rolloutState"] == "IN_PROGRESS" and first["runningCount"] == 0
        done = app.wait(lambda s: primary(s)["rolloutState"] == "COMPLETED")
    assert done["runningCount"] == 2 and primary(done)["runningCount"] == 2
    assert sorted(app.targets().values()) == ["healthy", "healthy"]
    assert messages(done)[-1] == f"(service {app.service}) has reached a steady state."


def test_a_new_task_definition_makes_a_new_primary_and_demotes_the_old_one_to_active(sandbox):
    with driven_clock():  # no step before the look, however slow the machine
        app = make_webapp(sandbox)
        app.deploy_v2()
        svc = app.describe()
    assert svc["taskDefinition"] == app.td_v2
    assert [(d["status"], d["taskDefinition"], d["rolloutState"]) for d in svc["deployments"]] == [
        ("PRIMARY", app.td_v2, "IN_PROGRESS"), ("ACTIVE", app.td_v1, "COMPLETED")]
    assert svc["runningCount"] == 1  # the old task keeps serving (minimum healthy 100 %)


def test_the_deployment_starts_registers_drains_and_completes_in_that_order(sandbox):
    app = make_webapp(sandbox)
    old_ips = set(app.targets())
    seen_states: set[str] = set()
    with driven_clock() as clock:  # time moves one step between two looks: every step is seen, on any machine
        app.deploy_v2()
        svc = app.describe()
        for _ in range(40):  # a deployment of one task takes 5 steps
            if primary(svc)["rolloutState"] == "COMPLETED":
                break
            seen_states |= {f"{ip in old_ips}:{state}" for ip, state in app.targets().items()}
            clock.sleep(0.25)
            svc = app.describe()
    assert [d["status"] for d in svc["deployments"]] == ["PRIMARY"]
    assert primary(svc)["taskDefinition"] == app.td_v2 and primary(svc)["runningCount"] == 1
    assert primary(svc)["rolloutStateReason"] == f"ECS deployment {primary(svc)['id']} completed."
    new_targets = app.targets()
    assert not old_ips & set(new_targets) and list(new_targets.values()) == ["healthy"]
    assert {"False:initial", "False:healthy", "True:draining"} <= seen_states

    story = [m.split(") ", 1)[1] for m in messages(svc)]
    since_update = story[story.index("has reached a steady state.") + 1:]
    kinds = [s.split(" ")[0] + " " + s.split(" ")[1] for s in since_update]
    completed = f"(deployment {primary(svc)['id']})"
    assert kinds == ["has started", "registered 1", "has begun", "deregistered 1", "has stopped", completed,
                     "has reached"]


def test_deployment_configuration_round_trips_like_ecs(sandbox):
    app = make_webapp(sandbox)
    config = app.describe()["deploymentConfiguration"]
    assert config["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert (config["minimumHealthyPercent"], config["maximumPercent"]) == (100, 200)


def test_scaling_without_a_new_revision_keeps_the_deployment(sandbox):
    app = make_webapp(sandbox)
    before = primary(app.describe())["id"]
    app.ecs.update_service(cluster=app.cluster, service=app.service, desiredCount=3)
    svc = app.describe()
    assert primary(svc)["id"] == before and svc["runningCount"] == 3 and len(app.targets()) == 3


def test_force_new_deployment_rolls_the_same_revision(sandbox):
    with driven_clock():  # no step before the look, however slow the machine
        app = make_webapp(sandbox)
        before = primary(app.describe())["id"]
        app.ecs.update_service(cluster=app.cluster, service=app.service, forceNewDeployment=True)
        svc = app.describe()
    assert primary(svc)["id"] != before and primary(svc)["taskDefinition"] == app.td_v1
    assert [d["status"] for d in svc["deployments"]] == ["PRIMARY", "ACTIVE"]


# -- faults -------------------------------------------------------------------------------------------------------


def test_fault_failed_ends_in_a_failed_deployment_while_the_old_one_keeps_serving(sandbox):
    app = make_webapp(sandbox)
    sandbox.set_fault(app.service, "failed")
    app.deploy_v2()
    svc = app.wait(lambda s: primary(s)["rolloutState"] == "FAILED")
    assert primary(svc)["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert primary(svc)["failedTasks"] >= 3 and primary(svc)["runningCount"] == 0
    old = next(d for d in svc["deployments"] if d["status"] == "ACTIVE")
    assert old["taskDefinition"] == app.td_v1 and old["runningCount"] == 1
    assert list(app.targets().values()) == ["healthy"]
    assert any("deployment failed: tasks failed to start." in m for m in messages(svc))


def test_fault_circuit_breaker_rollback_ends_stable_on_the_old_revision(sandbox):
    app = make_webapp(sandbox)
    sandbox.set_fault(app.service, "circuit-breaker-rollback")
    app.deploy_v2()
    svc = app.wait(lambda s: len(s["deployments"]) == 1 and primary(s)["taskDefinition"] == app.td_v1
                   and primary(s)["rolloutState"] == "COMPLETED")
    assert svc["taskDefinition"] == app.td_v1 and svc["runningCount"] == 1
    assert any("rolling back to deployment" in m for m in messages(svc))
    assert messages(svc)[-1].endswith("has reached a steady state.")
    assert list(app.targets().values()) == ["healthy"]


def test_fault_unhealthy_targets_runs_tasks_whose_targets_fail_health_checks(sandbox):
    seen: set[str] = set()
    with driven_clock() as clock:  # time moves one step between two looks: every step is seen, on any machine
        app = make_webapp(sandbox)
        sandbox.set_fault(app.service, "unhealthy-targets")
        app.deploy_v2()
        for _ in range(80):
            if primary(app.describe())["rolloutState"] != "IN_PROGRESS":
                break
            seen |= set(app.targets().values())
            clock.sleep(0.25)
        svc = app.describe()
    assert "unhealthy" in seen
    assert primary(svc)["rolloutState"] == "FAILED" and primary(svc)["failedTasks"] >= 3
    assert any("is unhealthy in (target-group" in m for m in messages(svc))


def test_fault_never_finishes_stays_in_progress_with_pending_tasks(sandbox):
    app = make_webapp(sandbox)
    sandbox.set_fault(app.service, "never-finishes")
    app.deploy_v2()
    time.sleep(STEP_S * 10)
    svc = app.describe()
    assert primary(svc)["rolloutState"] == "IN_PROGRESS" and primary(svc)["pendingCount"] == 1
    assert [d["status"] for d in svc["deployments"]] == ["PRIMARY", "ACTIVE"]


def test_a_fault_only_touches_the_service_it_names(sandbox):
    sick, well = make_webapp(sandbox), make_webapp(sandbox)
    sandbox.set_fault(sick.service, "failed")
    well.deploy_v2()
    assert primary(well.wait(lambda s: primary(s)["rolloutState"] != "IN_PROGRESS"))["rolloutState"] == "COMPLETED"


def test_faults_can_be_set_over_http_by_another_process(sandbox):
    app = make_webapp(sandbox)
    assert set_remote_fault(sandbox.endpoint, app.service, "never-finishes") == {app.service: "never-finishes"}
    assert LIFECYCLE.faults[app.service] == "never-finishes"
    assert set_remote_fault(sandbox.endpoint, app.service, None) == {}
    with pytest.raises(BadInput, match="unknown sandbox fault"):
        set_remote_fault(sandbox.endpoint, app.service, "meteor-strike")
    with pytest.raises(BadInput, match="loopback"):
        set_remote_fault("http://example.com:5000", app.service, "failed")


def test_fault_specs_from_the_environment_variable():
    assert parse_faults("web-qa-green=failed, web-qa-blue=never-finishes,") == {
        "web-qa-green": "failed", "web-qa-blue": "never-finishes"}
    with pytest.raises(BadInput, match="bad sandbox fault") as bad:
        parse_faults("web-qa-green")
    assert "SERVICE=FAULT" in bad.value.hint
    with pytest.raises(BadInput, match="unknown sandbox fault"):
        parse_faults("web=slow")


def test_environment_faults_are_loaded_at_start(monkeypatch, sandbox):
    monkeypatch.setenv("TFREVIEW_SANDBOX_FAULTS", "web-env=unhealthy-targets")
    with start_sandbox() as second:
        assert second.port != sandbox.port
        assert LIFECYCLE.faults["web-env"] == "unhealthy-targets"
    assert LIFECYCLE.enabled  # the module's sandbox still runs


def test_run_sandbox_prints_the_exports_serves_faults_and_stops_on_ctrl_c():
    import json as _json
    import signal
    import subprocess
    import sys
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-c", "from tfreview.sandbox import run_sandbox; run_sandbox(port=0)"],
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(8)]  # 6 exports, where it listens, how to inject faults
        exports = dict(line.removeprefix("export ").strip().split("=", 1)
                       for line in lines if line.startswith("export"))
        endpoint = exports["AWS_ENDPOINT_URL"]
        assert endpoint.startswith("http://127.0.0.1:") and exports["AWS_ACCESS_KEY_ID"] == "testing"
        assert any("/_tfreview/faults" in line for line in lines)
        assert set_remote_fault(endpoint, "web-x", "failed") == {"web-x": "failed"}
        with urllib.request.urlopen(endpoint + "/_tfreview/faults", timeout=5) as response:
            assert _json.loads(response.read()) == {"faults": {"web-x": "failed"}}
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_a_second_sandbox_does_not_change_the_pace_of_the_first_once_stopped(sandbox):
    with start_sandbox(step_s=1.5):
        assert sandbox.step_s == 1.5  # one emulator per process: the pace is shared while both run
    assert sandbox.step_s == STEP_S


def test_the_lifecycle_also_works_in_process_under_mock_aws():
    # Last in this file: mock_aws resets moto's (process-global) backends, the module sandbox's state included.
    import boto3
    from moto import mock_aws

    from tfreview.sandbox import ecs_lifecycle

    with mock_aws(), ecs_lifecycle(step_s=0.01):
        ecs = boto3.client("ecs", region_name="us-east-1")
        ecs.create_cluster(clusterName="inproc")
        td = ecs.register_task_definition(family="inproc", containerDefinitions=[
            {"name": "web", "image": "web:1", "memory": 128}])["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(cluster="inproc", serviceName="inproc", taskDefinition=td, desiredCount=1)
        time.sleep(0.1)
        svc = ecs.describe_services(cluster="inproc", services=["inproc"])["services"][0]
        assert primary(svc)["rolloutState"] == "COMPLETED" and svc["runningCount"] == 1


# -- stopped tasks say why, as ECS's DescribeTasks does -----------------------------------------------------------


def stopped(app: Any, deployment_id: str) -> list[dict[str, Any]]:
    """DescribeTasks of the service's STOPPED tasks started by `deployment_id` (ListTasks, then DescribeTasks)."""
    arns = app.ecs.list_tasks(cluster=app.cluster, serviceName=app.service, desiredStatus="STOPPED")["taskArns"]
    if not arns:
        return []
    tasks = app.ecs.describe_tasks(cluster=app.cluster, tasks=arns)["tasks"]
    return [t for t in tasks if t["startedBy"] == deployment_id]


@pytest.mark.parametrize("fault,stop_code,reason,exit_code", [
    ("failed", "TaskFailedToStart", "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
                                    "failed to resolve ref registry.local/web:1.1.0: not found", None),
    ("container-exits", "EssentialContainerExited", "Essential container in task exited", 137),
    ("unhealthy-targets", "ServiceSchedulerInitiated", "Task failed ELB health checks in (target-group ", 143),
])
def test_each_fault_stops_the_new_deployments_tasks_with_the_reason_ecs_gives(sandbox, fault, stop_code, reason,
                                                                             exit_code):
    app = make_webapp(sandbox)
    sandbox.set_fault(app.service, fault)
    app.deploy_v2()
    svc = app.wait(lambda s: primary(s)["rolloutState"] == "FAILED")
    tasks = stopped(app, primary(svc)["id"])
    assert len(tasks) == primary(svc)["failedTasks"] >= 3
    for task in tasks:
        assert task["stopCode"] == stop_code and task["stoppedReason"].startswith(reason)
        assert task["lastStatus"] == "STOPPED" and task["taskDefinitionArn"] == app.td_v2
        container = task["containers"][0]
        assert container["name"] == "web" and container.get("exitCode") == exit_code
    if fault == "unhealthy-targets":
        assert app.target_group in tasks[0]["stoppedReason"]
    if fault == "failed":
        assert tasks[0]["containers"][0]["reason"] == tasks[0]["stoppedReason"]


def test_a_good_deployment_stops_the_old_tasks_as_scaling_activity_and_lists_running_ones(sandbox):
    app = make_webapp(sandbox)
    first = primary(app.describe())["id"]
    app.deploy_v2()
    svc = app.wait(lambda s: len(s["deployments"]) == 1 and primary(s)["taskDefinition"] == app.td_v2)
    old = stopped(app, first)
    assert [t["stoppedReason"] for t in old] == [f"Scaling activity initiated by (deployment {primary(svc)['id']})"]
    running = app.ecs.list_tasks(cluster=app.cluster, serviceName=app.service)["taskArns"]
    assert [t["startedBy"] for t in app.ecs.describe_tasks(cluster=app.cluster, tasks=running)["tasks"]] == [
        primary(svc)["id"]]


# -- CloudWatch alarms, set at a chosen moment ----------------------------------------------------------------------


def new_alarm(sandbox: Any) -> str:
    import uuid

    name = f"web-5xx-{uuid.uuid4().hex[:8]}"
    sandbox.client("cloudwatch").put_metric_alarm(
        AlarmName=name, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold")
    return name


def alarm_of(sandbox: Any, name: str) -> dict[str, Any]:
    return sandbox.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]


def test_an_alarm_state_can_be_set_now_or_after_the_next_traffic_shift(sandbox):
    from tfreview.sandbox import set_remote_alarm

    name = new_alarm(sandbox)
    assert alarm_of(sandbox, name)["StateValue"] == "OK"
    set_remote_alarm(sandbox.endpoint, name, "ALARM", "Threshold Crossed: 9 errors", after_shifts=1)
    assert alarm_of(sandbox, name)["StateValue"] == "OK"  # nothing moved yet
    # A listener whose forward weights change is a traffic shift: the alarm fires then.
    elbv2, ec2 = sandbox.client("elbv2"), sandbox.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"us-east-1{z}")[
        "Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    lb = elbv2.create_load_balancer(Name=name[:32], Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tgs = [elbv2.create_target_group(Name=f"{name[:28]}-{c}", Protocol="HTTP", Port=80, VpcId=vpc,
                                     TargetType="ip")["TargetGroups"][0]["TargetGroupArn"] for c in "ab"]

    def forward(weights: tuple[int, int]) -> list[dict[str, Any]]:
        return [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": tg, "Weight": w} for tg, w in zip(tgs, weights, strict=True)]}}]

    listener = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                                     DefaultActions=forward((100, 0)))["Listeners"][0]["ListenerArn"]
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=forward((100, 0)))  # same weights: no shift
    assert alarm_of(sandbox, name)["StateValue"] == "OK"
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=forward((50, 50)))
    fired = alarm_of(sandbox, name)
    assert fired["StateValue"] == "ALARM" and fired["StateReason"] == "Threshold Crossed: 9 errors"
    sandbox.set_alarm(name, "OK", "back to normal")
    assert alarm_of(sandbox, name)["StateValue"] == "OK"


def test_setting_an_unknown_alarm_or_state_is_refused(sandbox):
    from tfreview.sandbox import set_remote_alarm

    with pytest.raises(BadInput, match="no CloudWatch alarm named"):
        set_remote_alarm(sandbox.endpoint, "no-such-alarm", "ALARM")
    with pytest.raises(BadInput, match="unknown alarm state"):
        set_remote_alarm(sandbox.endpoint, new_alarm(sandbox), "RED")
