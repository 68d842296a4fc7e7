"""An app's own Terraform: release classification and release variables follow `[apps.<app>]` roles (pure)."""
from __future__ import annotations

import json

import pytest

from tests.data.corpus import DATA
from tfreview.errors import BadInput
from tfreview.plan import classify, parse_plan
from tfreview.plan.roles import Roles
from tfreview.rollout.traffic import next_release_vars, rollback_vars, shift_vars
from tfreview.usecases.workspace import deploy_vars

# A team module: one resource per colour, "stable"/"canary", an https listener and a preview listener.
TEAM = Roles.from_dict({
    "colours": ["stable", "canary"],
    "service": "aws_ecs_service.web_{colour}",
    "task_definition": "aws_ecs_task_definition.web_{colour}",
    "target_group": "aws_lb_target_group.web_{colour}",
    "production_listener": "aws_lb_listener.https",
    "test_listener": "aws_lb_listener.preview",
})


def team_doc(name: str) -> dict:
    """A bundled-module plan of tests/data with the team's resource names and colours."""
    text = (DATA / f"{name}.json").read_text()
    for colour, new in (("blue", "stable"), ("green", "canary")):
        for rtype in ("aws_ecs_service", "aws_ecs_task_definition", "aws_lb_target_group"):
            text = text.replace(f'{rtype}.app[\\"{colour}\\"]', f"{rtype}.web_{new}")
        text = text.replace(f"-{colour}", f"-{new}")  # names and ARNs
    return json.loads(text.replace("aws_lb_listener.production", "aws_lb_listener.https")
                      .replace("aws_lb_listener.test[0]", "aws_lb_listener.preview"))


@pytest.mark.parametrize("name,kind,target", [
    ("ecs_image_bump", "deploy-to-idle", "canary"),
    ("traffic_shift", "traffic-shift", "canary"),
    ("unsafe_live_colour", "unsafe", "stable"),
    ("unsafe_deploy_and_shift", "unsafe", "canary"),
    ("no_changes", "no-changes", None),
])
def test_a_differently_named_module_classifies_as_the_bundled_one(name, kind, target):
    result = classify(parse_plan(team_doc(name)), TEAM)
    assert (result.kind, result.target_colour) == (kind, target)
    assert result.live_colours == ("stable",)


def test_without_its_roles_the_team_module_is_not_read_as_blue_green():
    """No role matches: no live colour is claimed; its only ECS change, a service on a new revision, reads as
    the rolling deploy it is (issue 21), not as a deploy to an idle colour."""
    result = classify(parse_plan(team_doc("ecs_image_bump")))
    assert (result.kind, result.live_colours, result.target_colour) == ("rolling-deploy", (), None)
    assert result.headline.startswith("rolling deploy of web: image 1.0.0 → 1.1.0")


def test_a_single_service_stack_releases_rolling():
    text = (DATA / "ecs_image_bump.json").read_text()
    text = text.replace('aws_ecs_service.app[\\"green\\"]', "aws_ecs_service.web")
    text = text.replace('aws_ecs_task_definition.app[\\"green\\"]', "aws_ecs_task_definition.web")
    roles = Roles.from_dict({"service": "aws_ecs_service.web", "task_definition": "aws_ecs_task_definition.web"})
    assert roles.single_service
    result = classify(parse_plan(json.loads(text)), roles)
    assert (result.kind, result.target_colour) == ("rolling-deploy", "main")
    assert deploy_vars("web", "2.0.0", {}, "blue_green", roles) == {"app": "web", "strategy": "rolling",
                                                                     "app_version": "2.0.0"}


# Two weight variables, no live-colour variable, colours a/b.
AB = Roles.from_dict({"colours": ["a", "b"], "version_variable": "image_tag_{colour}",
                      "weight_variable": "weight_{colour}", "live_variable": ""})


def test_weights_only_module_release_variables():
    first = deploy_vars("web", "1.0.0", {}, "blue_green", AB)
    assert first == {"app": "web", "strategy": "blue_green", "image_tag_a": "1.0.0", "image_tag_b": "1.0.0",
                     "weight_a": 100, "weight_b": 0}
    outputs = {"versions": {"a": "1.0.0", "b": "1.0.0"}, "weights": {"a": 100, "b": 0}}
    deploy = next_release_vars({**outputs, "app": "web"}, "1.1.0", AB)
    assert deploy["image_tag_b"] == "1.1.0" and deploy["image_tag_a"] == "1.0.0" and "live_color" not in deploy
    half = shift_vars(deploy, "b", 50, AB)
    assert (half["weight_a"], half["weight_b"]) == (50, 50)
    back = rollback_vars(half, roles=AB)
    assert (back["weight_a"], back["weight_b"]) == (100, 0)


def test_stable_canary_names_in_release_variables():
    outputs = {"versions": {"stable": "1", "canary": "1"}, "weights": {"stable": 100, "canary": 0},
               "live_color": "stable"}
    deploy = next_release_vars(outputs, "2", TEAM)
    assert deploy["canary_version"] == "2" and deploy["live_color"] == "stable"
    done = shift_vars(deploy, "canary", 100, TEAM)
    assert done["live_color"] == "canary" and done["canary_weight"] == 100


@pytest.mark.parametrize("table,contains", [
    ({"colours": ["blue"]}, "colours must be two different names"),
    ({"colours": ["x", "x"]}, "colours must be two different names"),
    ({"service": "not an address"}, "service 'not an address' is not a valid resource address"),
    ({"weight_variable": 3}, "weight_variable must be a string"),
    ({"rolling_colour": "blue"}, "is also a colour"),
])
def test_bad_roles_are_bad_config(table, contains):
    with pytest.raises(BadInput, match=contains):
        Roles.from_dict(table, "apps.web")


def test_options_line_is_one_printable_line():
    from tfreview.plan.options import options_line, parse_options, record_options

    opts = parse_options(["msg=a\nb\x1b[31mred", "token=s3cret"], targets=['aws_ecs_service.app["blue"]'])
    line = options_line(record_options(opts, frozenset({"token"}), {}))
    assert line == ('Terraform options: -target=aws_ecs_service.app["blue"] -var msg=a\\x0ab\\x1b[31mred '
                    "-var token=(sensitive value)")
