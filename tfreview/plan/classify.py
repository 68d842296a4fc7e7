"""Release classification of a plan of an ECS stack (blue/green or rolling), its parts found by `Roles`.

kinds:
- "no-changes"      nothing to apply (drift and no-op outputs aside)
- "deploy-to-idle"  only the task definition / service of colours that take no production traffic change
- "traffic-shift"   only the production listener's weights change (and maybe where the test listener points)
- "rolling-deploy"  rolling strategy (the rolling colour, "main", or a single-service stack): only its task
                    definition / service change. A plan that matches no role at all (a team's own or a public
                    module, no `[apps]` roles) is a rolling deploy when its only changes are ECS services getting a
                    new task-definition revision (and the task definitions that make it)
- "infrastructure"  anything else that does not touch a live colour's task definition or service
- "unsafe"          touches a live colour's task definition or service, or deploys and shifts weights at once

Every classification carries a `headline`: one line telling the release ("rolling deploy of web: image 1.0.0 →
1.1.0", "deploy to idle colour green: ...", "3 infrastructure changes: 1 listener, 1 target group, 1 security
group"); changes that are not a release are summarised by kind with counts (`infrastructure`), never listed one per
line (the resource list follows in every format).

Live colours are those whose target group has weight > 0 in the production listener's prior (before) state.
The roles (which resource is the production listener, each colour's service, task definition and target group,
the colour names) are data: `Roles()` matches the bundled module, `[apps.<app>]` describes a team's own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tfreview.plan.ecs import EcsStory, ecs_stories, family_of
from tfreview.plan.model import REPLACE_ACTIONS, Plan, ResourceChange
from tfreview.plan.roles import DEFAULT_ROLES, Roles

# How many kinds an infrastructure summary names before "and N more kinds".
MAX_KINDS = 8


@dataclass(frozen=True, slots=True)
class Classification:
    """What kind of release a plan is, why, which colours serve traffic now, and which colour it targets."""

    kind: str
    reasons: tuple[str, ...]
    live_colours: tuple[str, ...]
    target_colour: str | None
    headline: str = ""
    # (label, count) of the changes that are not a release step, most frequent first ("listener", 1)
    infrastructure: tuple[tuple[str, int], ...] = ()

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "headline": self.headline or (self.reasons[0] if self.reasons else self.kind),
            "reasons": list(self.reasons),
            "infrastructure": [{"label": label, "count": n} for label, n in self.infrastructure],
            "live_colours": list(self.live_colours),
            "target_colour": self.target_colour,
        }


# Labels of resource types a reviewer knows by another name (the rest: the type without its provider prefix).
_LABELS = {
    "aws_lb": "load balancer", "aws_alb": "load balancer", "aws_lb_listener": "listener", "aws_alb_listener": "listener",
    "aws_lb_target_group": "target group", "aws_alb_target_group": "target group",
    "aws_ecs_service": "ECS service", "aws_ecs_task_definition": "task definition", "aws_ecs_cluster": "ECS cluster",
    "aws_iam_role": "IAM role", "aws_iam_role_policy": "IAM role policy", "aws_iam_policy": "IAM policy",
    "aws_iam_role_policy_attachment": "IAM policy attachment", "aws_vpc": "VPC", "aws_ssm_parameter": "SSM parameter",
    "aws_s3_bucket": "S3 bucket", "aws_kms_key": "KMS key", "aws_ecr_repository": "ECR repository",
    "aws_cloudwatch_log_group": "log group", "aws_cloudwatch_metric_alarm": "CloudWatch alarm",
    "aws_route53_record": "DNS record", "aws_acm_certificate": "certificate",
}
_ACRONYMS = frozenset({"iam", "ecs", "ecr", "vpc", "ssm", "s3", "kms", "sns", "sqs", "ec2", "rds", "alb", "lb", "acm",
                       "dns", "efs", "eks", "waf", "api", "ip", "nat", "tls", "id"})


# Cloud providers whose type prefix says nothing a reviewer needs (`aws_security_group` is a security group); the
# types of other providers read best whole (`null_resource`, `random_string`, `terraform_data`).
_CLOUDS = frozenset({"aws", "google", "azurerm", "azuread", "kubernetes", "helm", "github", "cloudflare", "datadog"})


def type_label(rtype: str, provider_name: str = "") -> str:
    """What a reviewer calls a resource type: `aws_lb_listener` -> "listener", `aws_security_group` -> "security
    group", `terraform_data` -> "terraform_data" (the type itself unless a cloud provider's prefix can go)."""
    if rtype in _LABELS:
        return _LABELS[rtype]
    provider = provider_name.rsplit("/", 1)[-1]
    if provider not in _CLOUDS or not rtype.startswith(provider + "_"):
        return rtype
    words = rtype[len(provider) + 1:].split("_")
    return " ".join(w.upper() if w in _ACRONYMS else w for w in words)


def _plural(label: str, n: int) -> str:
    if n == 1 or label.endswith("_") or "_" in label:
        return label
    if label.endswith(("s", "x", "ch", "sh")):
        return label + "es"
    if label.endswith("y") and label[-2:-1] not in ("a", "e", "i", "o", "u"):
        return label[:-1] + "ies"
    return label + "s"


def tally(changes: list[ResourceChange]) -> tuple[tuple[str, int], ...]:
    """(label, count) of `changes` by kind of resource, most frequent first, then by label."""
    counts: dict[str, int] = {}
    for rc in changes:
        label = type_label(rc.type, rc.provider_name)
        counts[label] = counts.get(label, 0) + 1
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def tally_text(kinds: tuple[tuple[str, int], ...], noun: str = "infrastructure change") -> str:
    """ "3 infrastructure changes: 1 listener, 2 security groups" (at most MAX_KINDS kinds named)."""
    total = sum(n for _, n in kinds)
    named = ", ".join(f"{n} {_plural(label, n)}" for label, n in kinds[:MAX_KINDS])
    if len(kinds) > MAX_KINDS:
        named += f" and {len(kinds) - MAX_KINDS} more kinds"
    return f"{total} {noun}{'' if total == 1 else 's'}: {named}"


def _few(addresses: list[str], limit: int = 5) -> str:
    """`a, b, c` or `a, b, c, d, e and 12 more`: reasons stay one readable line on huge plans."""
    shown = ", ".join(addresses[:limit])
    return shown + (f" and {len(addresses) - limit} more" if len(addresses) > limit else "")


def _changed(rc: ResourceChange) -> bool:
    return rc.is_managed and rc.noteworthy


def _seq(value: Any) -> list:
    """A nested block list of a planned value; anything else (a malformed plan) is an empty list."""
    return value if isinstance(value, list) else []


def _forward_weights(listener: Any) -> dict[str, int]:
    """target group ARN -> weight of a listener value's forward actions (a plain target_group_arn weighs 1)."""
    weights: dict[str, int] = {}
    if not isinstance(listener, dict):
        return weights
    for action in _seq(listener.get("default_action")):
        if not isinstance(action, dict):
            continue
        if isinstance(action.get("target_group_arn"), str) and action["target_group_arn"]:
            weights[action["target_group_arn"]] = max(weights.get(action["target_group_arn"], 0), 1)
        for forward in _seq(action.get("forward")):
            if not isinstance(forward, dict):
                continue
            for tg in _seq(forward.get("target_group")):
                if isinstance(tg, dict) and isinstance(tg.get("arn"), str):
                    weight = tg.get("weight")
                    weights[tg["arn"]] = int(weight) if isinstance(weight, (int, float)) else 1
    return weights


def _strip_routing(listener: Any) -> Any:
    """A listener value without its target groups and weights (what must stay equal in a pure shift)."""
    if not isinstance(listener, dict):
        return listener
    out = {k: v for k, v in listener.items() if k not in ("default_action", "tags_all")}
    actions = []
    for action in _seq(listener.get("default_action")):
        if isinstance(action, dict):
            actions.append({k: v for k, v in action.items() if k not in ("forward", "target_group_arn")})
    out["default_action"] = actions
    return out


def _colour_of_arn(arn: str, tg_arns: dict[str, str], colours: tuple[str, ...]) -> str | None:
    if arn in tg_arns:
        return tg_arns[arn]
    for colour in colours:
        if re.search(rf"[-_/]{colour}(?:[-_/]|$)", arn):
            return colour
    return None


def _role_types(roles: Roles) -> frozenset[str]:
    """The resource types the roles name (a template's type never holds `{colour}`: roles.py's `_TEMPLATE`)."""
    templates = (roles.service, roles.task_definition, roles.target_group, roles.production_listener, roles.test_listener)
    return frozenset(t.split(".", 1)[0] for t in templates if t)


def _new_revision(rc: ResourceChange) -> bool:
    """An ECS service updated in place to run another task-definition revision (a rolling deployment)."""
    if rc.type != "aws_ecs_service" or rc.action != "update":
        return False
    before = rc.before if isinstance(rc.before, dict) else {}
    after = rc.after if isinstance(rc.after, dict) else {}
    unknown = isinstance(rc.after_unknown, dict) and rc.after_unknown.get("task_definition") is True
    return unknown or before.get("task_definition") != after.get("task_definition")


def _generic_rolling(changes: list[ResourceChange]) -> tuple[list[str], list[ResourceChange]]:
    """For a plan no role matches: (addresses of the rolling deployment, the other changes). A deployment is a
    service getting a new revision with the task definitions it runs (made or replaced in this plan)."""
    services = [rc for rc in changes if _new_revision(rc)]
    if not services:
        return [], changes
    families = set()
    for svc in services:
        for side in (svc.before, svc.after):
            if isinstance(side, dict):
                families.add(family_of(side.get("task_definition")))
    deploy = {rc.address for rc in services}
    for rc in changes:
        if rc.type != "aws_ecs_task_definition" or rc.action not in ("create", *REPLACE_ACTIONS):
            continue
        after = rc.after if isinstance(rc.after, dict) else {}
        before = rc.before if isinstance(rc.before, dict) else {}
        if {after.get("family"), before.get("family")} & families or rc.module_address in {s.module_address for s in services}:
            deploy.add(rc.address)
    return [rc.address for rc in changes if rc.address in deploy], [rc for rc in changes if rc.address not in deploy]


def _story_text(story: EcsStory) -> str:
    """`web: image 1.0.0 → 1.1.0` when the verdict names its containers, else `family: verdict`."""
    if any(c.change in ("changed", "added", "removed") for c in story.containers) and not story.verdict.startswith("new "):
        return story.verdict
    return f"{story.family}: {story.verdict}"


def _release_text(addresses: list[str], stories: tuple[EcsStory, ...], changes: list[ResourceChange]) -> str:
    """What a deployment of `addresses` ships: the ECS story of its task definitions (or of the services it
    moves to another revision), `and N more` beyond the first."""
    wanted = set(addresses)
    told = [s for s in stories if s.address in wanted or any(link.address in wanted for link in s.services)]
    if told:
        text = _story_text(told[0])
        return text + (f" (and {len(told) - 1} more task definitions)" if len(told) > 1 else "")
    services = [rc for rc in changes if rc.address in wanted and rc.type == "aws_ecs_service"]
    names = []
    for svc in services:
        after = svc.after if isinstance(svc.after, dict) else {}
        name = after.get("name") if isinstance(after.get("name"), str) else svc.address
        revision = after.get("task_definition")
        names.append(f"{name}: task definition → {revision.rsplit('/', 1)[-1]}" if isinstance(revision, str) and revision
                     else f"{name}: new task definition revision")
    return _few(names, 3) if names else _few(addresses)


def classify(plan: Any, roles: Roles = DEFAULT_ROLES, stories: tuple[EcsStory, ...] | None = None) -> Classification:
    """Classify a `Plan` (or a `Review`, whose plan and ECS stories are used) as a release step; see the module
    docstring. `stories`: the plan's ECS stories when the caller has them (`ecs_stories`), for the headline."""
    if stories is None:
        stories = getattr(plan, "ecs", None)
    plan = getattr(plan, "plan", plan)
    if not isinstance(plan, Plan):
        raise TypeError("classify() takes a Plan or a Review")
    if stories is None:
        stories = ecs_stories(plan.resource_changes)
    return _classify(plan, roles, stories)


def _classify(plan: Plan, roles: Roles, stories: tuple[EcsStory, ...]) -> Classification:
    colours = roles.colours
    changes = [rc for rc in plan.resource_changes if _changed(rc)]
    tg_arns: dict[str, str] = {}
    production = test = None
    keys_seen: set[str] = set()
    deploy_colour: dict[str, str] = {}
    role_types = _role_types(roles)
    for rc in plan.resource_changes:
        if rc.type not in role_types:  # most resources of a big plan: no role to look for (4x fewer matches)
            continue
        colour = roles.deploy_colour(rc.address)
        if colour:
            keys_seen.add(colour)
            deploy_colour[rc.address] = colour
        tg_colour = roles.colour_of("target_group", rc.address)
        if tg_colour in colours:
            for side in (rc.before, rc.after):
                if isinstance(side, dict) and isinstance(side.get("arn"), str):
                    tg_arns[side["arn"]] = tg_colour
        if roles.is_production_listener(rc.address):
            production = rc
        if roles.is_test_listener(rc.address):
            test = rc
    live: list[str] = []
    if production is not None:
        for arn, weight in _forward_weights(production.before).items():
            colour = _colour_of_arn(arn, tg_arns, colours)
            if colour and weight > 0 and colour not in live:
                live.append(colour)
    live_colours = tuple(c for c in colours if c in live)
    if not changes:
        return Classification("no-changes", ("no resource changes",), live_colours, None, "no changes")

    if not keys_seen and production is None and test is None:
        # No role matches anything in this plan (a team's own or a public module, no [apps] roles).
        deployed, others = _generic_rolling(changes)
        if not deployed:
            kinds = tally(others)
            text = tally_text(kinds)
            return Classification("infrastructure", (text,), live_colours, None, text, kinds)
        release = f"rolling deploy of {_release_text(deployed, stories, changes)}"
        if not others:
            return Classification("rolling-deploy", (release,), live_colours, None, release)
        kinds = tally(others)
        text = tally_text(kinds)
        return Classification("infrastructure", (text, f"also {release}"), live_colours, None,
                              f"{text}; also {release}", kinds)

    rolling = roles.rolling_colour in keys_seen and not (keys_seen & set(colours))
    deploys: dict[str, list[str]] = {}
    shift = False
    infra: list[ResourceChange] = []
    shift_target: str | None = None
    for rc in changes:
        key = deploy_colour.get(rc.address)
        if key is not None and (rc.action not in ("delete", "forget") or key in live_colours):
            deploys.setdefault(key, []).append(rc.address)
            continue
        if rc is production and rc.action == "update" and _strip_routing(rc.before) == _strip_routing(rc.after):
            shift = True
            before_w = {_colour_of_arn(a, tg_arns, colours): w for a, w in _forward_weights(rc.before).items()}
            after_w = {_colour_of_arn(a, tg_arns, colours): w for a, w in _forward_weights(rc.after).items()}
            gained = [c for c in colours if after_w.get(c, 0) > before_w.get(c, 0)]
            shift_target = gained[0] if gained else shift_target
            continue
        if rc is test and rc.action == "update" and _strip_routing(rc.before) == _strip_routing(rc.after):
            shift = True
            continue
        infra.append(rc)
    kinds = tally(infra)
    infra_text = tally_text(kinds) if infra else ""

    if rolling:
        addresses = sorted(a for c in deploys for a in deploys[c])
        release = f"rolling deploy of {_release_text(addresses, stories, changes)}" if deploys else ""
        if deploys and not infra and not shift:
            return Classification("rolling-deploy", (release,), live_colours, roles.rolling_colour, release)
        reasons = tuple(r for r in (infra_text or "listener change", release and f"also {release}") if r)
        return Classification("infrastructure", reasons, live_colours, roles.rolling_colour if deploys else None,
                              "; ".join(reasons), kinds)

    touched_live = [c for c in deploys if c in live_colours]
    if touched_live:
        addresses = [a for c in touched_live for a in deploys[c]]
        why = (tuple(f"touches the live colour {c}: {_few(deploys[c])}" for c in touched_live)
               + ("deploy to the idle colour first, then shift traffic in a separate plan",))
        return Classification("unsafe", why, live_colours, touched_live[0] if len(addresses) else None,
                              f"unsafe: touches the live colour {', '.join(touched_live)}", kinds)
    idle_targets = sorted(deploys)
    if deploys and shift:
        return Classification(
            "unsafe",
            (f"deploys to {', '.join(idle_targets)} and shifts traffic in one plan",
             "apply the deploy, watch it become healthy, then shift traffic in a separate plan"),
            live_colours,
            idle_targets[0],
            f"unsafe: deploys to {', '.join(idle_targets)} and shifts traffic in one plan",
            kinds,
        )
    deploy_texts = {c: _release_text(deploys[c], stories, changes) for c in idle_targets}
    if infra:
        parts: tuple[str, ...] = (infra_text,)
        if deploys:
            parts += (f"also deploys to the idle colour {', '.join(idle_targets)}: "
                        + "; ".join(deploy_texts[c] for c in idle_targets),)
        if shift:
            parts += ("also changes listener routing",)
        return Classification("infrastructure", parts, live_colours, idle_targets[0] if deploys else None,
                              "; ".join(parts), kinds)
    if shift:
        target = shift_target
        reason = f"only listener routing changes{f': traffic moves towards {target}' if target else ''}"
        return Classification("traffic-shift", (reason,), live_colours, target,
                              f"traffic shift towards {target}" if target else "traffic shift")
    idle = tuple(f"deploy to idle colour {c}: {deploy_texts[c]}" for c in idle_targets)
    return Classification("deploy-to-idle", idle, live_colours, idle_targets[0] if len(idle_targets) == 1 else None,
                          "; ".join(idle))
