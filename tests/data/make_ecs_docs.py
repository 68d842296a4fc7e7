#!/usr/bin/env python3
"""Writes the hand-made ECS plan documents of tests/data/*.json, in `terraform show -json` shape (format 1.2,
Terraform 1.11, hashicorp/aws 5.100 attribute sets), for the module terraform/modules/ecs-webapp.

Regenerate: .venv/bin/python tests/data/make_ecs_docs.py
Secrets seeded here are listed in SECRETS (tests assert none of them is ever rendered).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ACCOUNT = "123456789012"
REGION = "us-east-1"
M = "module.webapp"
PROVIDER = "registry.terraform.io/hashicorp/aws"

SECRETS = {
    "db_password": "hunter2-db-password-9f3a",
    "api_token": "tok_live_51HplainNotMarked",
    "output": "s3cr3t-output-value-77",
    "signing_key": "sig-key-value-0042",
}


def tg_arn(colour: str) -> str:
    ids = {"blue": "1a2b3c4d5e6f7a8b", "green": "9f8e7d6c5b4a3210"}
    return f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/shop-prod-{colour}/{ids[colour]}"


def container(version: str, env: dict[str, str], *, aws_shape: bool, extra: dict | None = None, env_order=None,
              secrets: dict[str, str] | None = None, cpu: int | None = None, memory: int | None = None) -> dict:
    names = env_order or sorted(env)
    c: dict = {
        "name": "web",
        "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/shop:{version}",
        "essential": True,
        "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
        "environment": [{"name": k, "value": env[k]} for k in names],
        "secrets": [{"name": k, "valueFrom": v} for k, v in sorted((secrets or {}).items())],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": "/ecs/shop-prod", "awslogs-region": REGION, "awslogs-stream-prefix": "web"},
        },
    }
    if cpu is not None:
        c["cpu"] = cpu
    if memory is not None:
        c["memory"] = memory
    if aws_shape:
        # What AWS returns (and the state holds): defaults filled in, host ports echoed, empty lists present.
        c.setdefault("cpu", 0)
        c["mountPoints"] = []
        c["volumesFrom"] = []
        c["systemControls"] = []
        c["portMappings"] = [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]
    if extra:
        c.update(extra)
    return c


def task_def(colour: str, containers: list[dict], revision: int, cpu: str = "256", memory: str = "512") -> dict:
    family = f"shop-prod-{colour}"
    return {
        "arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}",
        "arn_without_revision": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}",
        "container_definitions": json.dumps(containers, separators=(",", ":"), sort_keys=True),
        "cpu": cpu,
        "enable_fault_injection": False,
        "ephemeral_storage": [],
        "execution_role_arn": f"arn:aws:iam::{ACCOUNT}:role/shop-prod-execution",
        "family": family,
        "id": family,
        "inference_accelerator": [],
        "ipc_mode": None,
        "memory": memory,
        "network_mode": "awsvpc",
        "pid_mode": None,
        "placement_constraints": [],
        "proxy_configuration": [],
        "requires_compatibilities": ["FARGATE"],
        "revision": revision,
        "runtime_platform": [],
        "skip_destroy": False,
        "tags": None,
        "tags_all": {},
        "task_role_arn": None,
        "track_latest": False,
        "volume": [],
    }


def td_after(before: dict, containers: list[dict], **changes) -> dict:
    after = dict(before)
    after["container_definitions"] = json.dumps(containers, separators=(",", ":"), sort_keys=True)
    for key in ("arn", "arn_without_revision", "id", "revision"):
        after.pop(key)
    after.update(changes)
    return after


TD_UNKNOWN = {"arn": True, "arn_without_revision": True, "ephemeral_storage": [], "id": True, "inference_accelerator": [],
              "placement_constraints": [], "proxy_configuration": [], "requires_compatibilities": [False],
              "revision": True, "runtime_platform": [], "tags_all": True, "volume": []}


def service(colour: str, revision: int) -> dict:
    return {
        "alarms": [],
        "availability_zone_rebalancing": None,
        "capacity_provider_strategy": [],
        "cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/shop-prod",
        "deployment_circuit_breaker": [{"enable": True, "rollback": True}],
        "deployment_controller": [{"type": "ECS"}],
        "deployment_maximum_percent": 200,
        "deployment_minimum_healthy_percent": 100,
        "desired_count": 2,
        "enable_ecs_managed_tags": False,
        "enable_execute_command": False,
        "force_delete": None,
        "force_new_deployment": None,
        "health_check_grace_period_seconds": 30,
        "iam_role": "/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
        "id": f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/shop-prod/shop-prod-{colour}",
        "launch_type": "FARGATE",
        "load_balancer": [{"container_name": "web", "container_port": 8080, "elb_name": "", "target_group_arn": tg_arn(colour)}],
        "name": f"shop-prod-{colour}",
        "network_configuration": [{"assign_public_ip": True, "security_groups": ["sg-0service"], "subnets": ["subnet-0a", "subnet-0b"]}],
        "ordered_placement_strategy": [],
        "placement_constraints": [],
        "platform_version": "LATEST",
        "propagate_tags": "NONE",
        "scheduling_strategy": "REPLICA",
        "service_connect_configuration": [],
        "service_registries": [],
        "tags": None,
        "tags_all": {},
        "task_definition": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/shop-prod-{colour}:{revision}",
        "timeouts": None,
        "triggers": {},
        "volume_configuration": [],
        "vpc_lattice_configurations": [],
        "wait_for_steady_state": False,
    }


def listener(name: str, port: int, weights: dict[str, int] | None = None, target: str | None = None) -> dict:
    action = {
        "authenticate_cognito": [], "authenticate_oidc": [], "fixed_response": [], "forward": [], "order": 1,
        "redirect": [], "target_group_arn": "", "type": "forward",
    }
    if weights is not None:
        action["forward"] = [{
            "stickiness": [{"duration": 0, "enabled": False}],
            "target_group": [{"arn": tg_arn(c), "weight": w} for c, w in weights.items()],
        }]
    else:
        assert target is not None, "a listener forwards by weights or to one target"
        action["target_group_arn"] = tg_arn(target)
    return {
        "alpn_policy": None,
        "arn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener/app/shop-prod/50dc6c495c0c9188/{name}{port}",
        "certificate_arn": None,
        "default_action": [action],
        "id": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener/app/shop-prod/50dc6c495c0c9188/{name}{port}",
        "load_balancer_arn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/shop-prod/50dc6c495c0c9188",
        "mutual_authentication": [],
        "port": port,
        "protocol": "HTTP",
        "routing_http_request_x_amzn_mtls_clientcert_header_name": None,
        "ssl_policy": "",
        "tags": None,
        "tags_all": {},
        "tcp_idle_timeout_seconds": None,
        "timeouts": None,
    }


def target_group(colour: str, port: int = 8080) -> dict:
    return {
        "arn": tg_arn(colour), "deregistration_delay": "30", "health_check": [{
            "enabled": True, "healthy_threshold": 2, "interval": 15, "matcher": "200", "path": "/health",
            "port": "traffic-port", "protocol": "HTTP", "timeout": 5, "unhealthy_threshold": 3}],
        "id": tg_arn(colour), "name": f"shop-prod-{colour}", "port": port, "protocol": "HTTP", "target_type": "ip",
        "vpc_id": "vpc-0abc", "tags": None, "tags_all": {},
    }


def security_group(ingress: list[dict]) -> dict:
    return {
        "arn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0alb", "description": "Managed by Terraform",
        "egress": [{"cidr_blocks": ["0.0.0.0/0"], "description": "", "from_port": 0, "ipv6_cidr_blocks": [],
                    "prefix_list_ids": [], "protocol": "-1", "security_groups": [], "self": False, "to_port": 0}],
        "id": "sg-0alb", "ingress": ingress, "name": "shop-prod-alb", "name_prefix": "", "owner_id": ACCOUNT,
        "revoke_rules_on_delete": False, "tags": None, "tags_all": {}, "timeouts": None, "vpc_id": "vpc-0abc",
    }


def rule(cidrs: list[str], port: int, v6: list[str] | None = None) -> dict:
    return {"cidr_blocks": cidrs, "description": "", "from_port": port, "ipv6_cidr_blocks": v6 or [],
            "prefix_list_ids": [], "protocol": "tcp", "security_groups": [], "self": False, "to_port": port}


def rc(kind: str, name: str, key, actions, before, after, *, after_unknown=None, before_sensitive=None,
       after_sensitive=None, **extra) -> dict:
    index = f'["{key}"]' if isinstance(key, str) else (f"[{key}]" if key is not None else "")
    out: dict[str, Any] = {
        "address": f"{M}.{kind}.{name}{index}",
        "module_address": M,
        "mode": "managed",
        "type": kind,
        "name": name,
        "provider_name": PROVIDER,
        "change": {
            "actions": actions,
            "before": before,
            "after": after,
            "after_unknown": after_unknown or {},
            "before_sensitive": before_sensitive if before_sensitive is not None else ({} if before is not None else False),
            "after_sensitive": after_sensitive if after_sensitive is not None else ({} if after is not None else False),
        },
    }
    if key is not None:
        out["index"] = key
    out["change"].update({k: v for k, v in extra.items() if k in ("replace_paths", "importing")})
    out.update({k: v for k, v in extra.items() if k not in ("replace_paths", "importing")})
    return out


def noop(kind: str, name: str, key, value: dict) -> dict:
    return rc(kind, name, key, ["no-op"], value, value)


def document(changes: list[dict], *, variables: dict | None = None, sensitive_vars: tuple = (), outputs: dict | None = None,
             drift: list[dict] | None = None, checks: list | None = None, extra: dict | None = None) -> dict:
    variables = variables or {"app": "shop", "blue_version": "1.0.0", "green_version": "1.0.0"}
    doc = {
        "format_version": "1.2",
        "terraform_version": "1.11.4",
        "variables": {k: {"value": v} for k, v in variables.items()},
        "planned_values": {"root_module": {"child_modules": [{"address": M, "resources": []}]}},
        "resource_changes": changes,
        "output_changes": outputs or {},
        "prior_state": {"format_version": "1.0", "terraform_version": "1.11.4", "values": {"root_module": {}}},
        "configuration": {
            "provider_config": {"aws": {"name": "aws", "full_name": PROVIDER}},
            "root_module": {
                "variables": {k: ({"sensitive": True} if k in sensitive_vars else {}) for k in variables},
                "outputs": {k: {"sensitive": True, "expression": {"references": ["module.webapp"]}} for k in (outputs or {}) if k.startswith("secret")},
                "module_calls": {"webapp": {"source": "../../modules/ecs-webapp"}},
            },
        },
        "timestamp": "2026-11-26T10:00:00Z",
        "applyable": True,
        "complete": True,
        "errored": False,
    }
    if drift:
        doc["resource_drift"] = drift
    if checks:
        doc["checks"] = checks
    if extra:
        doc.update(extra)
    return doc


BASE_ENV = {"LOG_LEVEL": "info", "REGION": REGION}
LIVE = {"blue": 100, "green": 0}


def steady(colours=("blue", "green"), weights=LIVE, test_target="green", rev=3) -> list[dict]:
    """The untouched resources of a healthy blue/green environment (no-op entries, as terraform lists them)."""
    out = [noop("aws_lb_target_group", "app", c, target_group(c)) for c in colours]
    out.append(noop("aws_lb_listener", "production", None, listener("production", 80, weights)))
    out.append(noop("aws_lb_listener", "test", 0, listener("test", 8080, target=test_target)))
    return out


def deploy(colour: str, old: list[dict], new: list[dict], rev: int = 3, **td_changes) -> list[dict]:
    before = task_def(colour, old, rev)
    after = td_after(before, new, **td_changes)
    td = rc("aws_ecs_task_definition", "app", colour, ["delete", "create"], before, after, after_unknown=dict(TD_UNKNOWN),
            replace_paths=[["container_definitions"]] + ([[k] for k in td_changes]), action_reason="replace_because_cannot_update")
    svc_before = service(colour, rev)
    svc_after = dict(svc_before)
    svc_after.pop("task_definition")
    svc = rc("aws_ecs_service", "app", colour, ["update"], svc_before, svc_after, after_unknown={"task_definition": True})
    return [td, svc]


def build() -> dict[str, dict]:
    docs: dict[str, dict] = {}
    old = [container("1.0.0", BASE_ENV, aws_shape=True)]

    # 1. image bump of the idle colour (green) with one new environment variable.
    new = [container("1.1.0", {**BASE_ENV, "FEATURE_X": "on"}, aws_shape=False)]
    docs["ecs_image_bump"] = document(
        [*deploy("green", old, new), *steady()],
        variables={"app": "shop", "blue_version": "1.0.0", "green_version": "1.1.0"},
    )

    # 2. env reordered and defaults restated: nothing really changes.
    reordered = [container("1.0.0", BASE_ENV, aws_shape=False, env_order=["REGION", "LOG_LEVEL"])]
    docs["ecs_env_reorder"] = document([*deploy("green", old, reordered), *steady()])

    # 3. container_definitions sensitive as a whole (an env var from a sensitive variable), image bump.
    sec_old = [container("1.0.0", {**BASE_ENV, "DB_PASSWORD": SECRETS["db_password"]}, aws_shape=True)]
    sec_new = [container("1.2.0", {**BASE_ENV, "DB_PASSWORD": SECRETS["db_password"]}, aws_shape=False,
                         secrets={"STRIPE_KEY": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/shop/{SECRETS['signing_key']}"})]
    changes = deploy("green", sec_old, sec_new)
    changes[0]["change"]["before_sensitive"] = {"container_definitions": True}
    changes[0]["change"]["after_sensitive"] = {"container_definitions": True}
    docs["ecs_sensitive_definitions"] = document(
        [*changes, *steady()],
        variables={"app": "shop", "green_version": "1.2.0", "db_password": SECRETS["db_password"]},
        sensitive_vars=("db_password",),
        outputs={"secret_dsn": {"actions": ["update"], "before": "postgres://old", "after": SECRETS["output"],
                                "after_unknown": False, "before_sensitive": True, "after_sensitive": True},
                 "url": {"actions": ["no-op"], "before": "http://shop-prod", "after": "http://shop-prod",
                         "after_unknown": False, "before_sensitive": False, "after_sensitive": False}},
    )

    # 4. a secret-looking env var that is NOT marked sensitive, rotated; plus a sidecar container added.
    plain_old = [container("1.1.0", {**BASE_ENV, "API_TOKEN": "tok_old_value_rotated"}, aws_shape=True)]
    plain_new = [
        container("1.1.0", {**BASE_ENV, "API_TOKEN": SECRETS["api_token"]}, aws_shape=False),
        {"name": "envoy", "image": "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29.6.0-prod", "essential": False,
         "memory": 128},
    ]
    docs["ecs_secret_env_sidecar"] = document([*deploy("green", plain_old, plain_new), *steady()])

    # 5. image rolled back to an older tag, with a cpu/memory change at task level.
    rb_old = [container("1.10.0", BASE_ENV, aws_shape=True)]
    rb_new = [container("1.9.3", BASE_ENV, aws_shape=False)]
    docs["ecs_rollback_cpu"] = document([*deploy("green", rb_old, rb_new, cpu="512", memory="1024"), *steady()])

    # 6. traffic shift: production weights blue 100/green 0 -> 0/100; the test listener now reaches blue.
    prod_b = listener("production", 80, {"blue": 100, "green": 0})
    prod_a = listener("production", 80, {"blue": 0, "green": 100})
    test_b = listener("test", 8080, target="green")
    test_a = listener("test", 8080, target="blue")
    docs["traffic_shift"] = document([
        noop("aws_lb_target_group", "app", "blue", target_group("blue")),
        noop("aws_lb_target_group", "app", "green", target_group("green")),
        rc("aws_lb_listener", "production", None, ["update"], prod_b, prod_a),
        rc("aws_lb_listener", "test", 0, ["update"], test_b, test_a),
    ])

    # 7. unsafe: deploys to the live colour (blue).
    docs["unsafe_live_colour"] = document([*deploy("blue", old, new), *steady()])

    # 8. unsafe: deploy to green and shift traffic in one plan.
    docs["unsafe_deploy_and_shift"] = document([
        *deploy("green", old, new),
        noop("aws_lb_target_group", "app", "blue", target_group("blue")),
        noop("aws_lb_target_group", "app", "green", target_group("green")),
        rc("aws_lb_listener", "production", None, ["update"], prod_b, prod_a),
    ])

    # 9. risky infrastructure: TG replaced (port), SG opened to the world, IAM change, log group destroyed,
    # a service removed, a moved and an imported resource, drift, a failing check.
    tg_b = target_group("green")
    tg_a = {k: v for k, v in target_group("green", 9090).items() if k not in ("arn", "id")}
    sg_b = security_group([rule(["10.0.0.0/16"], 80)])
    sg_a = security_group([rule(["10.0.0.0/16"], 80), rule(["0.0.0.0/0"], 22, ["::/0"])])
    role_b: dict[str, Any] = {"arn": f"arn:aws:iam::{ACCOUNT}:role/shop-prod-execution", "assume_role_policy": json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}),
        "id": "shop-prod-execution", "managed_policy_arns": [], "name": "shop-prod-execution", "tags": None, "tags_all": {}}
    role_a = dict(role_b)
    role_a["assume_role_policy"] = json.dumps({"Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": ["ecs-tasks.amazonaws.com", "ec2.amazonaws.com"]}}], "Version": "2012-10-17"})
    log_b = {"arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/shop-old", "id": "/ecs/shop-old", "kms_key_id": "",
             "log_group_class": "STANDARD", "name": "/ecs/shop-old", "retention_in_days": 30, "skip_destroy": False, "tags": None, "tags_all": {}}
    cluster: dict[str, Any] = {"arn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/shop-prod", "id": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/shop-prod",
               "name": "shop-prod", "configuration": [], "service_connect_defaults": [], "setting": [{"name": "containerInsights", "value": "disabled"}],
               "tags": None, "tags_all": {}}
    moved = rc("aws_ecs_cluster", "this", None, ["no-op"], cluster, cluster, previous_address=f"{M}.aws_ecs_cluster.main")
    imported = rc("aws_cloudwatch_log_group", "app", None, ["no-op"], dict(log_b, name="/ecs/shop-prod", id="/ecs/shop-prod"),
                  dict(log_b, name="/ecs/shop-prod", id="/ecs/shop-prod"), importing={"id": "/ecs/shop-prod"})
    drifted_b = dict(service("blue", 3), desired_count=2)
    drifted_a = dict(service("blue", 3), desired_count=5)
    docs["risky_infrastructure"] = document(
        [
            rc("aws_lb_target_group", "app", "green", ["create", "delete"], tg_b, tg_a, after_unknown={"arn": True, "id": True},
               replace_paths=[["port"]], action_reason="replace_because_cannot_update"),
            rc("aws_security_group", "alb", None, ["update"], sg_b, sg_a),
            rc("aws_iam_role", "execution", None, ["update"], role_b, role_a),
            rc("aws_cloudwatch_log_group", "old", None, ["delete"], log_b, None, action_reason="delete_because_no_resource_config"),
            rc("aws_ecs_service", "legacy", None, ["delete"], dict(service("blue", 2), name="shop-prod-legacy"), None,
               action_reason="delete_because_no_resource_config"),
            moved,
            imported,
            noop("aws_lb_target_group", "app", "blue", target_group("blue")),
            noop("aws_lb_listener", "production", None, listener("production", 80, LIVE)),
        ],
        drift=[rc("aws_ecs_service", "app", "blue", ["update"], drifted_b, drifted_a)],
        checks=[{"address": {"to_display": f"{M}.check.health", "kind": "check", "module": M, "name": "health"},
                 "status": "fail", "instances": [{"address": {"to_display": f"{M}.check.health", "module": M}, "status": "fail",
                                                  "problems": [{"message": "health endpoint returned 503"}]}]}],
    )

    # 10. no changes at all.
    docs["no_changes"] = document(steady())
    return docs


def main() -> None:
    for name, doc in build().items():
        (HERE / f"{name}.json").write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    (HERE / "secrets.json").write_text(json.dumps(sorted(SECRETS.values()), indent=2) + "\n")


if __name__ == "__main__":
    main()
