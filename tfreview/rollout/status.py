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
    """One colour as AWS sees it: production weight (percent), the task definition ARN its PRIMARY deployment runs
    (after a circuit-breaker rollback: the old one), that deployment's rolloutState, running / desired task counts,
    and `version`, the image tag of the service's container in that task definition (None when unknown)."""

    colour: str
    weight: int
    task_definition: str
    rollout_state: str | None
    running: int
    desired: int
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from tfreview.rollout.watch import short_td

        return {"version": self.version, "task_definition": short_td(self.task_definition),
                "rollout_state": self.rollout_state, "running": self.running, "desired": self.desired}


def explicit_tag(image: str) -> str | None:
    """The tag an image reference names ("repo/web:1.2.0" -> "1.2.0"), or None: no tag ("web", which Docker
    reads as latest, but no release is called that), a digest ("web@sha256:..."), a registry port ("host:5000/web")."""
    if "@" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[1] or None if ":" in name else None


def running_version(image: str, roles: Any = None) -> str | None:
    """The release version an image runs: the part `{version}` stands for in the app's `image` template (roles),
    else the image's explicit tag; None (unknown) when neither says it."""
    if roles is not None and bool(roles.image):
        version = roles.version_of(image)
        if version != image:
            return str(version)
    return explicit_tag(image)


def version_in(task_definition: Mapping[str, Any], container: str | None, roles: Any = None) -> str | None:
    """The release version `container` runs in a DescribeTaskDefinition `taskDefinition` (`running_version` of its
    image). The container: `container` (the service's load-balanced one), else the one whose image fits the app's
    `image` template, else the first; None when unknown."""
    containers = [c for c in task_definition.get("containerDefinitions") or [] if isinstance(c, dict)]
    chosen = next((c for c in containers if c.get("name") == container), None)
    if chosen is None and roles is not None and bool(roles.image):
        chosen = next((c for c in containers if roles.version_of(str(c.get("image", ""))) != c.get("image")), None)
    chosen = chosen or (containers[0] if containers else None)
    return running_version(str(chosen["image"]), roles) if chosen and chosen.get("image") else None


def differing(recorded: Mapping[str, Any], running: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Colours whose service runs another version than the state records (sorted); a version unknown on either
    side never differs (we say "unknown", never a disagreement we cannot show)."""
    return sorted(c for c, r in running.items()
                  if r.get("version") is not None and recorded.get(c) is not None and str(recorded[c]) != r["version"])


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


def colour_status(ecs: Any, elbv2: Any | None, outputs: Mapping[str, Any], roles: Any = None) -> dict[str, ColourStatus]:
    """Colour -> ColourStatus for every colour of the environment: one DescribeServices, one DescribeTaskDefinition
    per distinct revision run, and (with `elbv2` and a listener) one DescribeListeners."""
    from tfreview.aws import translated

    values = plain_outputs(outputs)
    services: Mapping[str, str] = values.get("services") or {}
    weights = colour_weights(elbv2, values) if elbv2 is not None and values.get("listener_arn") else {}
    with translated("ecs:DescribeServices", resource=str(values.get("cluster_name"))):
        described = ecs.describe_services(cluster=values["cluster_name"], services=list(services.values()))
    by_name = {s["serviceName"]: s for s in described.get("services", [])}
    versions: dict[tuple[str, str | None], str | None] = {}
    out: dict[str, ColourStatus] = {}
    for colour, name in services.items():
        s = by_name.get(name, {})
        primary: dict[str, Any] = next((d for d in s.get("deployments", []) if d.get("status") == "PRIMARY"), {})
        arn = str(primary.get("taskDefinition") or s.get("taskDefinition") or "")
        container = next((lb.get("containerName") for lb in s.get("loadBalancers") or [] if lb.get("containerName")),
                         None)
        if arn and (arn, container) not in versions:
            with translated("ecs:DescribeTaskDefinition", resource=arn):
                td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            versions[(arn, container)] = version_in(td, container, roles)
        out[colour] = ColourStatus(colour=colour, weight=weights.get(colour, 0), task_definition=arn,
                                   rollout_state=primary.get("rolloutState"),
                                   running=int(primary.get("runningCount", s.get("runningCount", 0)) or 0),
                                   desired=int(primary.get("desiredCount", s.get("desiredCount", 0)) or 0),
                                   version=versions.get((arn, container)))
    return out
