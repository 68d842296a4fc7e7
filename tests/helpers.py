"""Helpers shared by several test modules (conftest.py holds the fixtures; it cannot be imported from tests)."""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

# -- plans recorded as `tfreview plan` records them -----------------------------------------------------------------

_seq = iter(range(1, 10_000))


def record_plan(store: Any, plan_doc: dict[str, Any], app: str, version: str, env: str, planner: str,
                escalation: list[str] | None = None) -> str:
    """Store a plan the way `tfreview plan` does (record, private binary and JSON, latest-plan head, audit): a real
    review of `plan_doc` for `app` `version` (already packaged in `store`) in `env`; returns the plan id."""
    from tfreview.plan import review_plan
    from tfreview.store.audit import append_event
    from tfreview.store.base import dumps
    from tfreview.config import Settings
    from tfreview.workflow import (Context, backend_config, iso, new_plan_id, now_utc, plan_keys, review_summary,
                                   state_location)

    manifest = json.loads(store.read(f"packages/{app}/{version}/manifest.json"))
    created = now_utc()
    plan_id = f"{new_plan_id(app, env, created)}-{next(_seq)}"
    plan_json = json.dumps(plan_doc).encode()
    binary = b"tfplan binary of " + plan_id.encode()
    summary = review_summary(review_plan(plan_json))
    record = {"kind": "plan", "id": plan_id, "plan_kind": "deploy", "release_id": None, "app": app, "env": env,
              "version": version, "plan_sha256": hashlib.sha256(binary).hexdigest(),
              "json_sha256": hashlib.sha256(plan_json).hexdigest(), "package_sha256": manifest["sha256"],
              "state_lineage": "", "state_serial": 0,
              "state_location": state_location(*backend_config(Context(Settings(store=store.url), store, planner),
                                                               app, env)),
              "prior_outputs": {}, "release_vars": {},
              "terraform_version": "1.11.4", "planner": planner, "identity": {"user": planner},
              "created_at": iso(created), "summary": summary, "risky": bool(escalation),
              "risk_reasons": summary["risk_reasons"], "escalation_reasons": escalation or []}
    keys = plan_keys(plan_id)
    store.create(keys["binary"], binary, private=True)
    store.create(keys["json"], plan_json, private=True)
    store.create(keys["record"], dumps(record))
    store.write(f"heads/{app}/{env}/latest-plan.json", dumps({"plan_id": plan_id, "created_at": record["created_at"]}))
    append_event(store, "plan", planner, app=app, env=env, version=version, plan_id=plan_id)
    return plan_id


# -- S3 on the session's local AWS (the `s3_endpoint` fixture of conftest.py) ----------------------------------------


def new_bucket(endpoint: str) -> str:
    """Create a fresh, empty bucket with no default encryption (so what we see on objects is what we asked for)."""
    from tfreview.aws import client

    name = f"tfr-{uuid.uuid4().hex[:16]}"
    client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


# -- web apps in the sandbox (the `sandbox` fixture of conftest.py) ------------------------------------------------

SANDBOX_STEP_S = 0.05  # seconds per ECS deployment step for the modules using the `sandbox` fixture


@dataclass
class WebApp:
    """One colour of a web app in the sandbox: cluster, service, its target group and two task definitions."""

    ecs: Any
    elbv2: Any
    cluster: str
    service: str
    target_group: str
    td_v1: str
    td_v2: str

    def describe(self) -> dict[str, Any]:
        return self.ecs.describe_services(cluster=self.cluster, services=[self.service])["services"][0]

    def targets(self) -> dict[str, str]:
        health = self.elbv2.describe_target_health(TargetGroupArn=self.target_group)["TargetHealthDescriptions"]
        return {t["Target"]["Id"]: t["TargetHealth"]["State"] for t in health}

    def deploy_v2(self) -> None:
        self.ecs.update_service(cluster=self.cluster, service=self.service, taskDefinition=self.td_v2)

    def wait(self, condition: Callable[[dict[str, Any]], bool], timeout_s: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            svc = self.describe()
            if condition(svc):
                return svc
            assert time.monotonic() < deadline, f"condition not met in {timeout_s} s: {svc['deployments']}"
            time.sleep(SANDBOX_STEP_S / 2)


def make_webapp(sandbox: Any, desired: int = 1, *, settle: bool = True) -> WebApp:
    """Create a VPC, a target group (target_type ip), a cluster, two revisions and a FARGATE service on v1."""
    name = f"web-{uuid.uuid4().hex[:8]}"
    ec2, ecs, elbv2 = sandbox.client("ec2"), sandbox.client("ecs"), sandbox.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=name, Description="web", VpcId=vpc)["GroupId"]
    tg = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, VpcId=vpc,
                                   TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    ecs.create_cluster(clusterName=name)
    tds = [ecs.register_task_definition(
        family=name, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "web", "image": f"registry.local/web:{v}", "portMappings": [
            {"containerPort": 8080}]}])["taskDefinition"]["taskDefinitionArn"] for v in ("1.0.0", "1.1.0")]
    ecs.create_service(
        cluster=name, serviceName=name, taskDefinition=tds[0], desiredCount=desired, launchType="FARGATE",
        loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}],
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                                 "maximumPercent": 200, "minimumHealthyPercent": 100})
    app = WebApp(ecs, elbv2, name, name, tg, tds[0], tds[1])
    if settle:
        app.wait(lambda s: s["deployments"][0]["rolloutState"] == "COMPLETED")
    return app


def primary(svc: dict[str, Any]) -> dict[str, Any]:
    return next(d for d in svc["deployments"] if d["status"] == "PRIMARY")
