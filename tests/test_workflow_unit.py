"""Pure parts of the workflow and the release: no terraform, no AWS."""
from __future__ import annotations

from pathlib import Path

import pytest

from tfreview.errors import BadInput
from tfreview.usecases.release import services_to_watch
from tfreview.usecases.workspace import deploy_vars, env_default_strategy

REPO = Path(__file__).resolve().parent.parent


def test_strategy_default_is_read_from_the_environment_with_hcl2(tmp_path):
    assert env_default_strategy(REPO / "terraform" / "envs" / "prod") == "blue_green"
    env = tmp_path / "envs" / "qa"
    env.mkdir(parents=True)
    text = (REPO / "terraform" / "envs" / "qa" / "variables.tf").read_text()
    (env / "variables.tf").write_text(text.replace('default = "blue_green"', 'default = "rolling"'))
    assert env_default_strategy(env) == "rolling"


def test_unparsable_environment_is_bad_input(tmp_path):
    (tmp_path / "main.tf").write_text('variable "strategy" {\n  default = \n')
    with pytest.raises(BadInput, match="cannot parse main.tf"):
        env_default_strategy(tmp_path)


def test_first_release_puts_the_version_on_both_colours_with_blue_live():
    assert deploy_vars("web", "1.0.0", {}, "blue_green") == {
        "app": "web", "strategy": "blue_green", "live_color": "blue", "blue_version": "1.0.0",
        "green_version": "1.0.0", "blue_weight": 100, "green_weight": 0}


def test_next_release_goes_to_the_idle_colour_and_keeps_the_weights():
    outputs = {"strategy": "blue_green", "live_color": "green", "versions": {"blue": "1.0.0", "green": "1.1.0"},
               "weights": {"blue": 0, "green": 100}}
    got = deploy_vars("web", "1.2.0", outputs, "blue_green")
    assert got["blue_version"] == "1.2.0" and got["green_version"] == "1.1.0"
    assert (got["live_color"], got["blue_weight"], got["green_weight"]) == ("green", 0, 100)


def test_no_new_deploy_while_traffic_is_split_between_colours():
    outputs = {"strategy": "blue_green", "live_color": "blue", "versions": {"blue": "1.0.0", "green": "1.1.0"},
               "weights": {"blue": 50, "green": 50}}
    with pytest.raises(BadInput, match="split"):
        deploy_vars("web", "1.2.0", outputs, "blue_green")


def test_rolling_strategy_sets_the_one_version():
    assert deploy_vars("web", "2.0.0", {"strategy": "rolling"}, "blue_green") == {
        "app": "web", "strategy": "rolling", "app_version": "2.0.0"}


def test_services_to_watch_are_the_created_or_updated_ones():
    review = {"resources": [
        {"address": 'module.webapp.aws_ecs_service.app["green"]', "actions": ["update"]},
        {"address": 'module.webapp.aws_ecs_task_definition.app["green"]', "actions": ["delete", "create"]},
        {"address": 'module.webapp.aws_ecs_service.app["blue"]', "actions": ["delete"]},
    ]}
    assert services_to_watch(review) == ["green"]
