"""What AWS says about an ecs-webapp environment right now: listener weights and the revision each colour runs.

Read-only boto3 calls (the imperative shell of `tfreview status` and of the release checks); outputs are the env
root's `terraform output -json` (wrapped in {"value": ...} or plain).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from tfreview.rollout.traffic import plain_outputs


@dataclass(frozen=True)
class ColourStatus:
    """One colour as AWS sees it: production weight (percent), the service's task definition ARN, its PRIMARY
    deployment's rolloutState, running / desired task counts."""

    colour: str
    weight: int
    task_definition: str
    rollout_state: str | None
    running: int
    desired: int


def listener_weights(elbv2: Any, listener_arn: str) -> dict[str, int]:
    """Target group ARN -> weight of the listener's default forward action (a plain forward weighs 100)."""
    from tfreview.aws import translated

    with translated("elasticloadbalancing:DescribeListeners", resource=listener_arn):
        listener = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]
    weights: dict[str, int] = {}
    for action in listener.get("DefaultActions", []):
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        if groups:
            for group in groups:
                weights[group["TargetGroupArn"]] = int(group.get("Weight", 1))
        elif action.get("TargetGroupArn"):
            weights[action["TargetGroupArn"]] = 100
    return weights


def colour_weights(elbv2: Any, outputs: Mapping[str, Any]) -> dict[str, int]:
    """Colour -> percent of production traffic, read from the production listener itself (not from the state)."""
    values = plain_outputs(outputs)
    by_arn = listener_weights(elbv2, values["listener_arn"])
    return {colour: by_arn.get(arn, 0) for colour, arn in (values.get("target_groups") or {}).items()}


def colour_status(ecs: Any, elbv2: Any, outputs: Mapping[str, Any]) -> dict[str, ColourStatus]:
    """Colour -> ColourStatus for every colour of the environment (one DescribeServices + one DescribeListeners)."""
    from tfreview.aws import translated

    values = plain_outputs(outputs)
    services: Mapping[str, str] = values.get("services") or {}
    weights = colour_weights(elbv2, values) if values.get("listener_arn") else {}
    with translated("ecs:DescribeServices", resource=str(values.get("cluster_name"))):
        described = ecs.describe_services(cluster=values["cluster_name"], services=list(services.values()))
    by_name = {s["serviceName"]: s for s in described.get("services", [])}
    out: dict[str, ColourStatus] = {}
    for colour, name in services.items():
        s = by_name.get(name, {})
        primary: dict[str, Any] = next((d for d in s.get("deployments", []) if d.get("status") == "PRIMARY"), {})
        out[colour] = ColourStatus(colour=colour, weight=weights.get(colour, 0),
                                   task_definition=str(s.get("taskDefinition", "")),
                                   rollout_state=primary.get("rolloutState"),
                                   running=int(s.get("runningCount", 0)), desired=int(s.get("desiredCount", 0)))
    return out
