"""Pure helpers for a blue/green release: which colour is idle, the release variables of each step, weight steps.

Release variables are the tfvars tfreview writes for the env root (tfreview.auto.tfvars.json):
  {"app", "strategy", "live_color", "blue_version", "green_version", "blue_weight", "green_weight"}
Weights are percents of production traffic (integers 0-100, blue + green = 100).

A release: `next_release_vars` (the new version on the idle colour, weights unchanged) -> watch -> `shift_vars` per
step of `weight_steps` (weights only; at 100 % the target colour becomes `live_color`) -> on failure
`rollback_vars` (all traffic back to the colour that served before). No I/O here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from tfreview.errors import BadInput

COLOURS = ("blue", "green")
WEIGHT_KEYS = ("blue_weight", "green_weight")


@dataclass(frozen=True)
class TrafficState:
    """Where traffic goes now: `live_color` (the colour meant to serve), version and weight (percent) per colour."""

    strategy: str
    live_color: str
    versions: Mapping[str, str | None]
    weights: Mapping[str, int]
    app: str | None = None

    @property
    def idle_color(self) -> str:
        return idle_colour(self.live_color)

    @property
    def serving(self) -> tuple[str, ...]:
        """Colours with production traffic (weight > 0), blue first."""
        return tuple(c for c in COLOURS if self.weights.get(c, 0) > 0)

    @property
    def split(self) -> bool:
        """Traffic is divided between both colours (a canary step)."""
        return len(self.serving) > 1


def idle_colour(live: str) -> str:
    """The other colour: "blue" -> "green", "green" -> "blue"."""
    if live not in COLOURS:
        raise BadInput(f"unknown colour {live!r}", "a colour is blue or green")
    return "green" if live == "blue" else "blue"


def plain_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Root outputs with `terraform output -json`'s {"value": ..., "type": ..., "sensitive": ...} wrappers removed
    (plain values are kept as they are). A wrapper has "value" and either "type" or no key but type/sensitive."""
    return {k: (v["value"] if isinstance(v, Mapping) and "value" in v and
                ("type" in v or set(v) <= {"value", "type", "sensitive"}) else v) for k, v in outputs.items()}


def traffic_state(current: Mapping[str, Any]) -> TrafficState:
    """Read the traffic state from root outputs (`terraform output -json`, wrapped in {"value": ...} or not) or
    from release variables; BadInput if neither shape is recognised."""
    values = plain_outputs(current)
    strategy = str(values.get("strategy") or "blue_green")
    if isinstance(values.get("versions"), Mapping):  # outputs
        versions = {c: values["versions"].get(c) for c in COLOURS}
        weights = {c: int((values.get("weights") or {}).get(c, 0) or 0) for c in COLOURS}
    elif any(f"{c}_version" in values for c in COLOURS) or any(k in values for k in WEIGHT_KEYS):  # release vars
        versions = {c: values.get(f"{c}_version") for c in COLOURS}
        weights = {c: int(values.get(f"{c}_weight", 100 if c == "blue" else 0) or 0) for c in COLOURS}
    else:
        raise BadInput("no release state (live colour, versions, weights) in the given outputs",
                       "is the environment deployed with the ecs-webapp module?")
    live = values.get("live_color")
    if live not in COLOURS:
        live = max(COLOURS, key=lambda c: weights[c])
    return TrafficState(strategy=strategy, live_color=str(live), versions=versions, weights=weights,
                        app=values.get("app"))


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


def release_vars(state: TrafficState, **changes: Any) -> dict[str, Any]:
    """The release variables of `state`, with `changes` (e.g. blue_weight=0) applied."""
    _blue_green(state)
    out: dict[str, Any] = {}
    if state.app:
        out["app"] = state.app
    out.update({
        "strategy": state.strategy,
        "live_color": state.live_color,
        "blue_version": state.versions.get("blue"),
        "green_version": state.versions.get("green"),
        "blue_weight": state.weights.get("blue", 0),
        "green_weight": state.weights.get("green", 0),
    })
    out.update(changes)
    return out


def next_release_vars(current_outputs: Mapping[str, Any], new_version: str) -> dict[str, Any]:
    """Deploy-to-idle: `new_version` on the idle colour; the live colour's version and all weights unchanged.

    Refuses (BadInput) while traffic is split between the colours: finish or roll back the running release first.
    """
    if not new_version:
        raise BadInput("no version to release", "give --version")
    state = _blue_green(traffic_state(current_outputs))
    if state.split:
        raise BadInput(f"traffic is split ({_weights(state)}): a release is still running",
                       "finish it (shift to 100) or roll it back before deploying another version")
    if state.weights.get(state.live_color, 0) != 100:
        raise BadInput(f"the live colour {state.live_color} has {state.weights.get(state.live_color, 0)} % of the "
                       "traffic", "roll back or shift traffic first")
    return release_vars(state, **{f"{state.idle_color}_version": new_version})


def shift_vars(current: Mapping[str, Any], target_colour: str, percent: int) -> dict[str, Any]:
    """Weights only: `percent` (1-100) of production traffic to `target_colour`, the rest to the other colour.
    At 100 the target becomes the live colour (so the test listener then reaches the other, now idle, colour)."""
    state = _blue_green(traffic_state(current))
    other = idle_colour(target_colour)
    if not 0 <= int(percent) <= 100:
        raise BadInput(f"traffic percent {percent} is not between 0 and 100", "use 0-100")
    percent = int(percent)
    if not state.versions.get(target_colour):
        raise BadInput(f"{target_colour} runs no version", "deploy to it before moving traffic")
    live = target_colour if percent == 100 else (other if percent == 0 else state.live_color)
    return release_vars(state, live_color=live, **{f"{target_colour}_weight": percent,
                                                   f"{other}_weight": 100 - percent})


def shift_plan(current: Mapping[str, Any], target_colour: str, steps: str | list[int] | None) -> list[dict[str, Any]]:
    """The release variables of every traffic step towards `target_colour` ("10,50,100" -> three dicts)."""
    percents = weight_steps(steps) if not isinstance(steps, list) else weight_steps(",".join(map(str, steps)))
    out: list[dict[str, Any]] = []
    state = current
    for percent in percents:
        step = shift_vars(state, target_colour, percent)
        out.append(step)
        state = step
    return out


def rollback_vars(current: Mapping[str, Any], to_colour: str | None = None) -> dict[str, Any]:
    """All production traffic back to `to_colour`, weights only.

    Default colour: while traffic is split (a canary failed) the live colour, which served before the release;
    otherwise the idle colour, which still runs the previous version (`tfreview rollback` after a good release).
    The caller checks that colour's version is the last known-good one.
    """
    state = traffic_state(current)
    if to_colour is None:
        to_colour = state.live_color if state.split or state.weights.get(state.live_color, 0) < 100 \
            else state.idle_color
    return shift_vars(current, to_colour, 100)


def weight_only_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether two release-variable sets differ in weights (and the live colour that follows them) only."""
    ignored = set(WEIGHT_KEYS) | {"live_color"}
    keys = (set(before) | set(after)) - ignored
    return all(before.get(k) == after.get(k) for k in keys)


def _weights(state: TrafficState) -> str:
    return ", ".join(f"{c} {state.weights.get(c, 0)} %" for c in COLOURS)
