"""Pure helpers for a blue/green release: which colour is idle, the release variables of each step, weight steps.

Release variables are the tfvars tfreview writes for the env root (tfreview.auto.tfvars.json); with the default
`Roles` (the bundled module):
  {"app", "strategy", "live_color", "blue_version", "green_version", "blue_weight", "green_weight"}
A team's module names them in `[apps.<app>]` (`Roles`: its colours, `{colour}_version`-style templates, and maybe
no live-colour variable at all). Weights are percents of production traffic (integers 0-100, summing to 100).

A release: `next_release_vars` (the new version on the idle colour, weights unchanged) -> watch -> `shift_vars` per
step of `weight_steps` (weights only; at 100 % the target colour becomes the live one) -> on failure
`rollback_vars` (all traffic back to the colour that served before). No I/O here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from tfreview.errors import BadInput
from tfreview.plan.roles import DEFAULT_ROLES, Roles

COLOURS = DEFAULT_ROLES.colours


@dataclass(frozen=True)
class TrafficState:
    """Where traffic goes now: `live_color` (the colour meant to serve), version and weight (percent) per colour
    (of `roles.colours`)."""

    strategy: str
    live_color: str
    versions: Mapping[str, str | None]
    weights: Mapping[str, int]
    app: str | None = None
    roles: Roles = DEFAULT_ROLES

    @property
    def idle_color(self) -> str:
        return idle_colour(self.live_color, self.roles.colours)

    @property
    def serving(self) -> tuple[str, ...]:
        """Colours with production traffic (weight > 0), in the roles' order."""
        return tuple(c for c in self.roles.colours if self.weights.get(c, 0) > 0)

    @property
    def split(self) -> bool:
        """Traffic is divided between both colours (a canary step)."""
        return len(self.serving) > 1


def idle_colour(live: str, colours: tuple[str, str] = COLOURS) -> str:
    """The other colour: "blue" -> "green", "green" -> "blue" (or of the app's own two `colours`)."""
    if live not in colours:
        raise BadInput(f"unknown colour {live!r}", f"a colour is {colours[0]} or {colours[1]}")
    return colours[1] if live == colours[0] else colours[0]


def plain_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Root outputs with `terraform output -json`'s {"value": ..., "type": ..., "sensitive": ...} wrappers removed
    (plain values are kept as they are). A wrapper has "value" and either "type" or no key but type/sensitive."""
    return {k: (v["value"] if isinstance(v, Mapping) and "value" in v and
                ("type" in v or set(v) <= {"value", "type", "sensitive"}) else v) for k, v in outputs.items()}


def traffic_state(current: Mapping[str, Any], roles: Roles = DEFAULT_ROLES) -> TrafficState:
    """Read the traffic state from root outputs (`terraform output -json`, wrapped in {"value": ...} or not) or
    from release variables (named by `roles`); BadInput if neither shape is recognised."""
    values = plain_outputs(current)
    colours = roles.colours
    strategy = str(values.get("strategy") or "blue_green")
    if isinstance(values.get("versions"), Mapping):  # outputs
        versions = {c: roles.version_of(values["versions"].get(c)) for c in colours}
        weights = {c: int((values.get("weights") or {}).get(c, 0) or 0) for c in colours}
        live = values.get("live_color")
    elif any(roles.version_var(c) in values or roles.weight_var(c) in values for c in colours):  # release vars
        versions = {c: roles.version_of(values.get(roles.version_var(c))) for c in colours}
        weights = {c: int(values.get(roles.weight_var(c), 100 if c == colours[0] else 0) or 0) for c in colours}
        live = values.get(roles.live_variable) if roles.live_variable else None
    else:
        raise BadInput("no release state (live colour, versions, weights) in the given outputs",
                       "does the environment's root module have the outputs of docs/bring-your-own-terraform.md?")
    if live not in colours:
        live = max(colours, key=lambda c: weights[c])
    return TrafficState(strategy=strategy, live_color=str(live), versions=versions, weights=weights,
                        app=values.get("app"), roles=roles)


def weight_steps(steps: str | None) -> list[int]:
    """Parse "--steps" ("10,50,100"; "" or None or "all" = one step) into ascending percents ending at 100."""
    text = (steps or "").strip().lower()
    if text in ("", "all", "100", "100%"):
        return [100]
    out: list[int] = []
    for part in text.split(","):
        part = part.strip().rstrip("%").strip()
        try:
            value = int(part)
        except ValueError:
            raise BadInput(f"traffic step {part!r} is not a whole percent", "write steps like 10,50,100") from None
        if not 1 <= value <= 100:
            raise BadInput(f"traffic step {value} is not between 1 and 100", "write steps like 10,50,100")
        if out and value <= out[-1]:
            raise BadInput(f"traffic steps must go up: {value} after {out[-1]}", "write steps like 10,50,100")
        out.append(value)
    if out[-1] != 100:
        raise BadInput(f"traffic steps must end at 100 (they end at {out[-1]})", f"write {text},100")
    return out


def _blue_green(state: TrafficState) -> TrafficState:
    if state.strategy != "blue_green":
        raise BadInput(f"traffic moves only with the blue_green strategy (this environment is {state.strategy})",
                       "a rolling environment deploys in place: plan the new version instead")
    return state


def release_vars(state: TrafficState, *, live: str | None = None, versions: Mapping[str, str | None] | None = None,
                 weights: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The release variables of `state` (named by its roles), with the given live colour, versions or weights
    (per colour) replacing the state's."""
    _blue_green(state)
    roles = state.roles
    versions = {**state.versions, **(versions or {})}
    weights = {**state.weights, **(weights or {})}
    out: dict[str, Any] = {}
    if state.app:
        out["app"] = state.app
    out["strategy"] = state.strategy
    if roles.live_variable:
        out[roles.live_variable] = live or state.live_color
    for c in roles.colours:  # the version, or the image built from it (`image` of [apps.<app>])
        out[roles.version_var(c)] = roles.version_value(versions.get(c))
    for c in roles.colours:
        out[roles.weight_var(c)] = weights.get(c, 0)
    return out


def next_release_vars(current_outputs: Mapping[str, Any], new_version: str,
                      roles: Roles = DEFAULT_ROLES) -> dict[str, Any]:
    """Deploy-to-idle: `new_version` on the idle colour; the live colour's version and all weights unchanged.

    Refuses (BadInput) while traffic is split between the colours: finish or roll back the running release first.
    """
    if not new_version:
        raise BadInput("no version to release", "give --version")
    state = _blue_green(traffic_state(current_outputs, roles))
    if state.split:
        raise BadInput(f"traffic is split ({_weights(state)}): a release is still running",
                       "finish it (shift to 100) or roll it back before deploying another version")
    if state.weights.get(state.live_color, 0) != 100:
        raise BadInput(f"the live colour {state.live_color} has {state.weights.get(state.live_color, 0)} % of the "
                       "traffic", "roll back or shift traffic first")
    return release_vars(state, versions={state.idle_color: new_version})


def shift_vars(current: Mapping[str, Any], target_colour: str, percent: int,
               roles: Roles = DEFAULT_ROLES) -> dict[str, Any]:
    """Weights only: `percent` (1-100) of production traffic to `target_colour`, the rest to the other colour.
    At 100 the target becomes the live colour (so the test listener then reaches the other, now idle, colour)."""
    state = _blue_green(traffic_state(current, roles))
    other = idle_colour(target_colour, roles.colours)
    if not 0 <= int(percent) <= 100:
        raise BadInput(f"traffic percent {percent} is not between 0 and 100", "use 0-100")
    percent = int(percent)
    if not state.versions.get(target_colour):
        raise BadInput(f"{target_colour} runs no version", "deploy to it before moving traffic")
    live = target_colour if percent == 100 else (other if percent == 0 else state.live_color)
    return release_vars(state, live=live, weights={target_colour: percent, other: 100 - percent})


def shift_plan(current: Mapping[str, Any], target_colour: str, steps: str | list[int] | None,
               roles: Roles = DEFAULT_ROLES) -> list[dict[str, Any]]:
    """The release variables of every traffic step towards `target_colour` ("10,50,100" -> three dicts)."""
    percents = weight_steps(steps) if not isinstance(steps, list) else weight_steps(",".join(map(str, steps)))
    out: list[dict[str, Any]] = []
    state = current
    for percent in percents:
        step = shift_vars(state, target_colour, percent, roles)
        out.append(step)
        state = step
    return out


def rollback_vars(current: Mapping[str, Any], to_colour: str | None = None,
                  roles: Roles = DEFAULT_ROLES) -> dict[str, Any]:
    """All production traffic back to `to_colour`, weights only.

    Default colour: while traffic is split (a canary failed) the live colour, which served before the release;
    otherwise the idle colour, which still runs the previous version (`tfreview rollback` after a good release).
    The caller checks that colour's version is the last known-good one.
    """
    state = traffic_state(current, roles)
    if to_colour is None:
        to_colour = state.live_color if state.split or state.weights.get(state.live_color, 0) < 100 \
            else state.idle_color
    return shift_vars(current, to_colour, 100, roles)


def target_of(variables: Mapping[str, Any], roles: Roles = DEFAULT_ROLES) -> str:
    """The colour that serves all traffic under these release variables (the live one)."""
    return traffic_state(variables, roles).live_color


def weight_only_change(before: Mapping[str, Any], after: Mapping[str, Any], roles: Roles = DEFAULT_ROLES) -> bool:
    """Whether two release-variable sets differ in weights (and the live colour that follows them) only."""
    ignored = {roles.weight_var(c) for c in roles.colours} | {roles.live_variable}
    keys = (set(before) | set(after)) - ignored
    return all(before.get(k) == after.get(k) for k in keys)


def _weights(state: TrafficState) -> str:
    return ", ".join(f"{c} {state.weights.get(c, 0)} %" for c in state.roles.colours)
