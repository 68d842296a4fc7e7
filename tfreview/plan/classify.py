"""Release classification of a plan of an ECS stack (blue/green or rolling), its parts found by `Roles`.

kinds:
- "no-changes"      nothing to apply (drift and no-op outputs aside)
- "deploy-to-idle"  only the task definition / service of colours that take no production traffic change
- "traffic-shift"   only the production listener's weights change (and maybe where the test listener points)
- "rolling-deploy"  rolling strategy (the rolling colour, "main", or a single-service stack): only its task
                    definition / service change
- "infrastructure"  anything else that does not touch a live colour's task definition or service
- "unsafe"          touches a live colour's task definition or service, or deploys and shifts weights at once

Live colours are those whose target group has weight > 0 in the production listener's prior (before) state.
The roles (which resource is the production listener, each colour's service, task definition and target group,
the colour names) are data: `Roles()` matches the bundled module, `[apps.<app>]` describes a team's own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tfreview.plan.model import Plan, ResourceChange
from tfreview.plan.roles import DEFAULT_ROLES, Roles


@dataclass(frozen=True, slots=True)
class Classification:
    """What kind of release a plan is, why, which colours serve traffic now, and which colour it targets."""

    kind: str
    reasons: tuple[str, ...]
    live_colours: tuple[str, ...]
    target_colour: str | None

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "reasons": list(self.reasons),
            "live_colours": list(self.live_colours),
            "target_colour": self.target_colour,
        }


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


def classify(plan: Any, roles: Roles = DEFAULT_ROLES) -> Classification:
    """Classify a `Plan` (or a `Review`, whose plan is used) as a release step; see the module docstring."""
    plan = getattr(plan, "plan", plan)
    if not isinstance(plan, Plan):
        raise TypeError("classify() takes a Plan or a Review")
    colours = roles.colours
    changes = [rc for rc in plan.resource_changes if _changed(rc)]
    tg_arns: dict[str, str] = {}
    production = test = None
    keys_seen: set[str] = set()
    deploy_colour: dict[str, str] = {}
    for rc in plan.resource_changes:
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
        return Classification("no-changes", ("no resource changes",), live_colours, None)

    rolling = roles.rolling_colour in keys_seen and not (keys_seen & set(colours))
    deploys: dict[str, list[str]] = {}
    shift = False
    infra: list[str] = []
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
        infra.append(rc.address)

    if rolling:
        if deploys and not infra and not shift:
            return Classification("rolling-deploy", (f"rolling deploy of {_few(sorted(a for c in deploys for a in deploys[c]))}",), live_colours, roles.rolling_colour)
        reasons = tuple(f"infrastructure change: {a}" for a in infra[:20]) or ("listener change",)
        return Classification("infrastructure", reasons, live_colours, roles.rolling_colour if deploys else None)

    touched_live = [c for c in deploys if c in live_colours]
    if touched_live:
        addresses = [a for c in touched_live for a in deploys[c]]
        return Classification(
            "unsafe",
            tuple(f"touches the live colour {c}: {_few(deploys[c])}" for c in touched_live)
            + ("deploy to the idle colour first, then shift traffic in a separate plan",),
            live_colours,
            touched_live[0] if len(addresses) else None,
        )
    idle_targets = sorted(deploys)
    if deploys and shift:
        return Classification(
            "unsafe",
            (f"deploys to {', '.join(idle_targets)} and shifts traffic in one plan",
             "apply the deploy, watch it become healthy, then shift traffic in a separate plan"),
            live_colours,
            idle_targets[0],
        )
    if infra:
        reasons = tuple(f"infrastructure change: {a}" for a in infra[:20])
        if len(infra) > 20:
            reasons += (f"... and {len(infra) - 20} more",)
        if deploys:
            reasons += (f"also deploys to the idle colour {', '.join(idle_targets)}",)
        if shift:
            reasons += ("also changes listener routing",)
        return Classification("infrastructure", reasons, live_colours, idle_targets[0] if deploys else None)
    if shift:
        target = shift_target
        return Classification(
            "traffic-shift",
            (f"only listener routing changes{f': traffic moves towards {target}' if target else ''}",),
            live_colours,
            target,
        )
    return Classification(
        "deploy-to-idle",
        tuple(f"deploys to idle colour {c}: {_few(deploys[c])}" for c in idle_targets),
        live_colours,
        idle_targets[0] if len(idle_targets) == 1 else None,
    )
