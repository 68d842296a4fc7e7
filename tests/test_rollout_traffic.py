"""Release variables of a blue/green release: deploy to idle, traffic steps, rollback (pure, no terraform)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfreview.errors import BadInput
from tfreview.rollout.traffic import (
    idle_colour,
    next_release_vars,
    rollback_vars,
    shift_plan,
    shift_vars,
    traffic_state,
    weight_only_change,
    weight_steps,
)

# `terraform output -json` of an environment where blue (1.0.0) serves everything and green idles on 0.9.0.
OUTPUTS = {
    "strategy": {"sensitive": False, "type": "string", "value": "blue_green"},
    "live_color": {"sensitive": False, "type": "string", "value": "blue"},
    "versions": {"sensitive": False, "type": ["object", {}], "value": {"blue": "1.0.0", "green": "0.9.0"}},
    "weights": {"sensitive": False, "type": ["object", {}], "value": {"blue": 100, "green": 0}},
    "cluster_name": {"sensitive": False, "type": "string", "value": "web-qa"},
}


def test_weight_steps_parse_ascending_percents_ending_at_100():
    assert weight_steps("10,50,100") == [10, 50, 100]
    assert weight_steps(" 10%, 50 ,100% ") == [10, 50, 100]
    assert weight_steps(None) == weight_steps("") == weight_steps("all") == [100]


@pytest.mark.parametrize("bad, why", [
    ("10,50", "must end at 100"), ("50,10,100", "must go up"), ("10,10,100", "must go up"),
    ("0,100", "between 1 and 100"), ("10,150", "between 1 and 100"), ("ten,100", "whole percent"),
])
def test_weight_steps_refuse_what_would_surprise(bad, why):
    with pytest.raises(BadInput, match=why):
        weight_steps(bad)


def test_idle_colour_is_the_other_one():
    assert idle_colour("blue") == "green" and idle_colour("green") == "blue"
    with pytest.raises(BadInput):
        idle_colour("main")


def test_state_is_read_from_wrapped_or_plain_outputs_and_from_release_vars():
    wrapped = traffic_state(OUTPUTS)
    plain = traffic_state({k: v["value"] for k, v in OUTPUTS.items()})
    from_vars = traffic_state(next_release_vars(OUTPUTS, "1.0.0") | {"green_version": "0.9.0"})
    for state in (wrapped, plain, from_vars):
        assert (state.live_color, state.idle_color) == ("blue", "green")
        assert dict(state.versions) == {"blue": "1.0.0", "green": "0.9.0"}
        assert dict(state.weights) == {"blue": 100, "green": 0} and not state.split
    with pytest.raises(BadInput, match="no release state"):
        traffic_state({"cluster_name": "web-qa"})


def test_next_release_puts_the_new_version_on_the_idle_colour_and_keeps_the_weights():
    assert next_release_vars(OUTPUTS, "1.1.0") == {
        "strategy": "blue_green", "live_color": "blue", "blue_version": "1.0.0", "green_version": "1.1.0",
        "blue_weight": 100, "green_weight": 0}


def test_next_release_after_a_switch_goes_to_blue():
    after_switch = shift_vars(next_release_vars(OUTPUTS, "1.1.0"), "green", 100)
    assert next_release_vars(after_switch, "1.2.0")["blue_version"] == "1.2.0"
    assert next_release_vars(after_switch, "1.2.0")["green_version"] == "1.1.0"


def test_next_release_is_refused_while_traffic_is_split():
    canary = shift_vars(next_release_vars(OUTPUTS, "1.1.0"), "green", 10)
    with pytest.raises(BadInput, match="traffic is split"):
        next_release_vars(canary, "1.2.0")


def test_shift_moves_weights_only_and_switches_the_live_colour_at_100():
    deployed = next_release_vars(OUTPUTS, "1.1.0")
    canary = shift_vars(deployed, "green", 10)
    assert (canary["blue_weight"], canary["green_weight"], canary["live_color"]) == (90, 10, "blue")
    done = shift_vars(canary, "green", 100)
    assert (done["blue_weight"], done["green_weight"], done["live_color"]) == (0, 100, "green")
    assert weight_only_change(deployed, canary) and weight_only_change(canary, done)
    assert not weight_only_change(OUTPUTS_AS_VARS, deployed)  # the deploy itself changes a version


OUTPUTS_AS_VARS = {"strategy": "blue_green", "live_color": "blue", "blue_version": "1.0.0", "green_version": "0.9.0",
                   "blue_weight": 100, "green_weight": 0}


def test_shift_plan_gives_one_weight_only_step_per_percent():
    steps = shift_plan(next_release_vars(OUTPUTS, "1.1.0"), "green", "10,50,100")
    assert [(s["blue_weight"], s["green_weight"]) for s in steps] == [(90, 10), (50, 50), (0, 100)]
    assert [s["live_color"] for s in steps] == ["blue", "blue", "green"]


def test_shift_refuses_a_colour_that_runs_nothing():
    with pytest.raises(BadInput, match="runs no version"):
        shift_vars({"live_color": "blue", "blue_version": "1.0.0", "green_version": None,
                    "blue_weight": 100, "green_weight": 0}, "green", 100)


def test_rollback_after_a_good_release_returns_all_traffic_to_the_previous_colour():
    released = shift_vars(next_release_vars(OUTPUTS, "1.1.0"), "green", 100)
    back = rollback_vars(released)
    assert (back["blue_weight"], back["green_weight"], back["live_color"]) == (100, 0, "blue")
    assert back["blue_version"] == "1.0.0" and weight_only_change(released, back)


def test_rollback_of_a_failed_canary_returns_all_traffic_to_the_colour_that_served_before():
    canary = shift_vars(next_release_vars(OUTPUTS, "1.1.0"), "green", 50)
    back = rollback_vars(canary)
    assert (back["blue_weight"], back["green_weight"], back["live_color"]) == (100, 0, "blue")


def test_rolling_environments_move_no_traffic():
    with pytest.raises(BadInput, match="blue_green"):
        next_release_vars({"strategy": "rolling", "versions": {"main": "1.0.0"}, "weights": {"main": 100}}, "1.1")


@given(st.lists(st.integers(1, 99), unique=True, max_size=5).map(sorted), st.sampled_from(["blue", "green"]))
def test_every_step_keeps_weights_summing_to_100_and_changes_weights_only(percents, target):
    start = OUTPUTS_AS_VARS | {"green_version": "1.1.0"}
    state = start
    for step in shift_plan(start, target, [*percents, 100]):
        assert step["blue_weight"] + step["green_weight"] == 100
        assert weight_only_change(state, step)
        state = step
    assert state[f"{target}_weight"] == 100 and state["live_color"] == target


def test_status_reads_the_version_from_the_service_container_image_and_says_which_colours_differ():
    from tfreview.rollout.status import differing, version_in

    td = {"containerDefinitions": [{"name": "envoy", "image": "envoyproxy/envoy:v1.29"},
                                   {"name": "web", "image": "registry.local:5000/web:1.1.0"}]}
    assert version_in(td, "web") == "1.1.0" and version_in(td, None) == "v1.29"
    assert version_in({"containerDefinitions": []}, "web") is None
    recorded = {"blue": "1.1.0", "green": "2.0.2"}
    running = {"blue": {"version": "1.1.0"}, "green": {"version": "1.1.0"}}
    assert differing(recorded, running) == ["green"]
    assert differing(recorded, {"green": {"version": None}}) == []  # unknown is not a difference
