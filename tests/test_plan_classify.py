"""Release classification of blue/green and rolling plans."""
from __future__ import annotations

import copy
import json

import pytest

from tests.data.corpus import DATA, FIXTURES
from tfreview.plan import classify, parse_plan, review_plan


def doc(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


@pytest.mark.parametrize(
    "name,kind,target",
    [
        ("ecs_image_bump", "deploy-to-idle", "green"),
        ("traffic_shift", "traffic-shift", "green"),
        ("unsafe_live_colour", "unsafe", "blue"),
        ("unsafe_deploy_and_shift", "unsafe", "green"),
        ("risky_infrastructure", "infrastructure", None),
        ("no_changes", "no-changes", None),
    ],
)
def test_kinds(name, kind, target):
    result = classify(parse_plan(doc(name)))
    assert (result.kind, result.target_colour) == (kind, target)
    assert result.live_colours == ("blue",)
    assert result.reasons


def test_review_and_plan_classify_alike():
    review = review_plan(doc("ecs_image_bump"))
    assert classify(review) == review.classification


def test_live_colour_comes_from_prior_weights():
    shifted = doc("ecs_image_bump")
    for rc in shifted["resource_changes"]:
        if rc["type"] == "aws_lb_listener" and rc["name"] == "production":
            for side in ("before", "after"):
                for tg in rc["change"][side]["default_action"][0]["forward"][0]["target_group"]:
                    tg["weight"] = 0 if "blue" in tg["arn"] else 100
    result = classify(parse_plan(shifted))
    assert result.live_colours == ("green",)
    assert result.kind == "unsafe"


def test_canary_split_makes_both_colours_live():
    canary = doc("ecs_image_bump")
    for rc in canary["resource_changes"]:
        if rc["name"] == "production":
            for side in ("before", "after"):
                for tg in rc["change"][side]["default_action"][0]["forward"][0]["target_group"]:
                    tg["weight"] = 50
    assert classify(parse_plan(canary)).kind == "unsafe"


def test_infrastructure_with_an_idle_deploy_stays_infrastructure():
    mixed = doc("ecs_image_bump")
    mixed["resource_changes"].append(copy.deepcopy(doc("risky_infrastructure")["resource_changes"][1]))
    result = classify(parse_plan(mixed))
    assert result.kind == "infrastructure" and result.target_colour == "green"


def test_rolling_strategy():
    rolling = json.dumps(doc("ecs_image_bump")).replace('"green"', '"main"').replace('[\\"green\\"]', '[\\"main\\"]')
    result = classify(parse_plan(rolling))
    assert result.kind == "rolling-deploy"


@pytest.mark.skipif(not (FIXTURES / "traffic_shift.json").is_file(), reason="fixtures/plans not generated")
def test_real_terraform_plans_classify():
    def kind(name):
        return classify(parse_plan((FIXTURES / f"{name}.json").read_bytes())).kind

    assert kind("image_bump") == "deploy-to-idle"
    assert kind("traffic_shift") == "traffic-shift"
    assert kind("no_changes") == "no-changes"
    assert kind("sg_opened") == "infrastructure"


@pytest.mark.parametrize("forward", [5, [5], True, [{"target_group": 5}]], ids=["number", "list-of-number", "bool", "groups-number"])
def test_a_malformed_listener_forward_block_is_classified_not_crashed(forward):
    """These reached the CLI's internal-error catch-all: a listener value no provider writes still classifies."""
    plan = doc("traffic_shift")
    for rc in plan["resource_changes"]:
        if rc["type"] == "aws_lb_listener":
            rc["change"]["after"]["default_action"][0]["forward"] = forward
    assert classify(parse_plan(plan)).kind in ("infrastructure", "unsafe", "traffic-shift")
