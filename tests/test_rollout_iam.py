"""The permissions of docs/rollout.md, enforced: moto with IAM authorisation on plays AWS, and a user holding exactly
the documented policy runs a release's watch (with its stopped-task reasons and alarm gate), the alarm checks and
`status`'s AWS calls; a user missing one documented action is refused. The policy is read from the document, so
the document cannot drift from what is tested."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.helpers import make_webapp, primary

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("no_faults_left_behind")


def documented_policy() -> dict[str, Any]:
    text = (REPO / "docs" / "rollout.md").read_text()
    match = re.search(r"<!-- policy:rollout -->\s*```json\n(.*?)```", text, re.S)
    assert match, "docs/rollout.md has no rollout policy"
    return json.loads(match.group(1))


def without(policy: dict[str, Any], action: str) -> dict[str, Any]:
    statements = [{**s, "Action": [a for a in s["Action"] if a != action]} for s in policy["Statement"]]
    return {**policy, "Statement": [s for s in statements if s["Action"]]}


@pytest.fixture
def world(sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A service whose new deployment fails to pull its image, a weighted production listener, an alarm, and two IAM
    users (the documented policy; the same without ecs:ListTasks); then IAM is enforced until the test ends."""
    import boto3
    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin

    app = make_webapp(sandbox)
    elbv2, ec2 = sandbox.client("elbv2"), sandbox.client("ec2")
    name = app.service[:24]
    vpc = elbv2.describe_target_groups(TargetGroupArns=[app.target_group])["TargetGroups"][0]["VpcId"]
    other = elbv2.create_target_group(Name=f"{name}-b", Protocol="HTTP", Port=8080, VpcId=vpc,
                                      TargetType="ip")["TargetGroups"][0]
    zones = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{200 + i}.0/24", AvailabilityZone=f"us-east-1{z}")[
        "Subnet"]["SubnetId"] for i, z in ((0, "a"), (1, "b"))]
    lb = elbv2.create_load_balancer(Name=name, Subnets=zones)["LoadBalancers"][0]["LoadBalancerArn"]
    listener = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[
        {"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": app.target_group, "Weight": 100},
            {"TargetGroupArn": other["TargetGroupArn"], "Weight": 0}]}}])["Listeners"][0]["ListenerArn"]
    alarm = f"{name}-5xx"
    sandbox.client("cloudwatch").put_metric_alarm(
        AlarmName=alarm, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold")
    sandbox.set_fault(app.service, "failed")
    app.deploy_v2()

    iam = sandbox.client("iam")
    users = {}
    for who, policy in (("rollout", documented_policy()), ("no-list-tasks", without(documented_policy(),
                                                                                    "ecs:ListTasks"))):
        user = f"{who}-{name}"
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="tfreview-rollout", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        users[who] = boto3.session.Session(aws_access_key_id=key["AccessKeyId"],
                                           aws_secret_access_key=key["SecretAccessKey"], region_name="us-east-1")
    # From here on moto authorises every call like AWS does (undone by monkeypatch after the test).
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
    yield {"app": app, "listener": listener, "alarm": alarm, "users": users, "endpoint": sandbox.endpoint,
           "other_tg": other["TargetGroupArn"]}


def clients(session: Any, endpoint: str) -> dict[str, Any]:
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": 1})
    return {name: session.client(name, endpoint_url=endpoint, config=config)
            for name in ("ecs", "elbv2", "cloudwatch")}


def test_the_documented_policy_runs_a_watch_with_its_reasons_and_alarms_and_status(world):
    from tfreview.usecases.release import check_alarms_exist
    from tfreview.rollout.alarms import describe_alarms, firing
    from tfreview.rollout.status import colour_status
    from tfreview.rollout.watch import FAILED, watch_deployment

    app, aws = world["app"], clients(world["users"]["rollout"], world["endpoint"])
    check_alarms_exist((world["alarm"],), aws["cloudwatch"])  # apply's check before anything

    def gate() -> dict[str, Any] | None:
        up = firing([world["alarm"]], describe_alarms(aws["cloudwatch"], [world["alarm"]]))
        return {"reason": up[0].sentence()} if up else None

    result = watch_deployment(aws["ecs"], aws["elbv2"], app.cluster, app.service, app.td_v2, app.target_group,
                              timeout_s=20, poll_s=0.05, gate=gate)
    assert result.state == FAILED and "tasks failed to start" in result.reason
    assert not any(line.kind == "error" for line in result.events), [str(e) for e in result.events]
    assert result.stopped and result.stopped[0]["reason"].startswith("CannotPullContainerError")
    outputs = {"cluster_name": app.cluster, "services": {"blue": app.service},
               "target_groups": {"blue": app.target_group, "green": world["other_tg"]},
               "listener_arn": world["listener"]}
    status = colour_status(aws["ecs"], aws["elbv2"], outputs)
    assert status["blue"].weight == 100  # DescribeListeners
    assert status["blue"].version == "1.1.0" and status["blue"].rollout_state == "FAILED"  # DescribeTaskDefinition


def test_a_user_without_a_documented_action_is_refused_and_the_watch_says_so_in_one_line(world):
    from tfreview.rollout.watch import watch_deployment

    app, aws = world["app"], clients(world["users"]["no-list-tasks"], world["endpoint"])
    svc = aws["ecs"].describe_services(cluster=app.cluster, services=[app.service])["services"][0]
    assert primary(svc)["taskDefinition"] == app.td_v2  # the rest of the policy still works
    result = watch_deployment(aws["ecs"], aws["elbv2"], app.cluster, app.service, app.td_v2, app.target_group,
                              timeout_s=20, poll_s=0.05)
    errors = [line.text for line in result.events if line.kind == "error"]
    assert errors and all("cannot read the stopped tasks: access denied" in e and "ecs:ListTasks" in e
                          for e in errors)
    assert not result.stopped  # no reasons, but the watch itself still ends: failed, for the deployment's own reason
    assert "tasks failed to start" in result.reason
