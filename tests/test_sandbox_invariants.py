"""Whatever happens to a service (new revisions, scaling, faults, time), the emulated ECS stays self-consistent the
way ECS is, and a deployment without a fault always ends COMPLETED with healthy targets. In-process (mock_aws) with a
clock the test drives, so it is exact and fast."""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfreview.sandbox import FAULTS, LIFECYCLE, ecs_lifecycle

STEP_S = 1.0

ops = st.lists(st.one_of(
    st.tuples(st.just("deploy"), st.sampled_from([None, None, *FAULTS])),
    st.tuples(st.just("scale"), st.integers(0, 3)),
    st.tuples(st.just("wait"), st.integers(1, 4)),
), max_size=8)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world():
    import boto3
    from moto import mock_aws

    clock = FakeClock()
    saved = LIFECYCLE.clock
    with mock_aws(), ecs_lifecycle(step_s=STEP_S):
        LIFECYCLE.clock = clock
        try:
            yield clock, boto3.client("ecs", region_name="us-east-1"), boto3.client("elbv2", region_name="us-east-1"), \
                boto3.client("ec2", region_name="us-east-1")
        finally:
            LIFECYCLE.clock = saved


def check_invariants(svc: dict[str, Any], health: list[dict[str, Any]]) -> None:
    primaries = [d for d in svc["deployments"] if d["status"] == "PRIMARY"]
    assert len(primaries) == 1, svc["deployments"]
    assert svc["taskDefinition"] == primaries[0]["taskDefinition"]
    assert svc["runningCount"] == sum(d["runningCount"] for d in svc["deployments"])
    assert svc["pendingCount"] == sum(d["pendingCount"] for d in svc["deployments"])
    assert all(d["status"] == "ACTIVE" for d in svc["deployments"][1:])
    # Every running task is one registered target (draining ones included), nothing else is.
    assert len(health) == svc["runningCount"], (health, svc["deployments"])
    ids = [e["id"] for e in svc["events"]]
    assert len(ids) == len(set(ids)) and len(ids) <= 100
    times = [e["createdAt"] for e in svc["events"]]
    assert times == sorted(times, reverse=True)  # newest first


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops, desired=st.integers(1, 3))
def test_the_emulated_service_stays_consistent_and_a_clean_deploy_always_completes(world, steps, desired):
    clock, ecs, elbv2, ec2 = world
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    tg = elbv2.create_target_group(Name=f"tg{int(clock.now)}", Protocol="HTTP", Port=8080, VpcId=vpc,
                                   TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    name = f"svc{int(clock.now)}"
    ecs.create_cluster(clusterName=name)
    revisions = iter(range(1, 100))

    def register() -> str:
        return ecs.register_task_definition(family=name, containerDefinitions=[
            {"name": "web", "image": f"web:{next(revisions)}", "memory": 128}])["taskDefinition"]["taskDefinitionArn"]

    ecs.create_service(cluster=name, serviceName=name, taskDefinition=register(), desiredCount=desired,
                       loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}])

    def look() -> dict[str, Any]:
        svc = ecs.describe_services(cluster=name, services=[name])["services"][0]
        check_invariants(svc, elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"])
        return svc

    for op, arg in steps:
        if op == "deploy":
            LIFECYCLE.set_fault(name, arg)
            ecs.update_service(cluster=name, service=name, taskDefinition=register())
        elif op == "scale":
            ecs.update_service(cluster=name, service=name, desiredCount=arg)
        else:
            clock.now += arg * STEP_S
        look()

    # Finally a clean deployment, given all the time it needs, always completes with every target healthy.
    LIFECYCLE.set_fault(name, None)
    expected = register()
    ecs.update_service(cluster=name, service=name, taskDefinition=expected)
    clock.now += 30 * STEP_S
    svc = look()
    assert [(d["status"], d["rolloutState"]) for d in svc["deployments"]] == [("PRIMARY", "COMPLETED")]
    assert svc["taskDefinition"] == expected and svc["runningCount"] == svc["desiredCount"]
    health = elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    assert [t["TargetHealth"]["State"] for t in health] == ["healthy"] * svc["desiredCount"]
