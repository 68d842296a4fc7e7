"""Format-specific promises: Markdown fits a PR comment, filters narrow the diffs, HTML is self-contained,
JSON is versioned."""
from __future__ import annotations

import copy
import json

import pytest

from tests.data.corpus import DATA
from tfreview.errors import BadInput
from tfreview.plan import review_plan
from tfreview.render import render
from tfreview.render.markdown import MAX_CHARS


def doc(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def big_plan(n: int) -> dict:
    """n copies of the image-bump task definition change, each under its own address."""
    base = doc("ecs_image_bump")
    td = base["resource_changes"][0]
    changes = []
    for i in range(n):
        rc = copy.deepcopy(td)
        rc["address"] = f'module.webapp.aws_ecs_task_definition.app["c{i}"]'
        rc["index"] = f"c{i}"
        changes.append(rc)
    base["resource_changes"] = changes
    return base


def test_markdown_is_capped_with_an_explicit_truncation_notice():
    review = review_plan(big_plan(400))
    out = render(review, "markdown")
    assert len(out) <= MAX_CHARS
    shown = out.count("<details>")
    assert 0 < shown < 400
    assert f"truncated: {400 - shown} resources not shown" in out


def test_small_markdown_is_not_truncated():
    out = render(review_plan(doc("ecs_image_bump")), "markdown")
    assert "truncated" not in out
    assert "web: image 1.0.0 → 1.1.0; env +FEATURE_X" in out


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json"])
def test_filters_by_action_type_and_address(fmt):
    review = review_plan(doc("risky_infrastructure"))
    only_deletes = render(review, fmt, actions=["delete"])
    assert "aws_ecs_service.legacy" in only_deletes
    assert "aws_iam_role.execution will be updated" not in only_deletes
    by_type = render(review, fmt, types=["aws_iam_*"])
    assert "aws_cloudwatch_log_group.old will be destroyed" not in by_type
    by_address = render(review, fmt, addresses=["module.webapp.aws_security_group.*"])
    assert "aws_iam_role.execution will be updated" not in by_address
    if fmt == "json":
        assert [r["address"] for r in json.loads(by_address)["resources"]] == ["module.webapp.aws_security_group.alb"]


def test_html_is_self_contained():
    out = render(review_plan(doc("ecs_image_bump")), "html")
    assert out.startswith("<!DOCTYPE html>")
    assert "<script" not in out
    for needle in ("http://", "https://", "src=", "@import", "url("):
        assert needle not in out
    assert "@media print" in out


def test_json_is_versioned_and_documented_fields_are_present():
    data = json.loads(render(review_plan(doc("ecs_image_bump")), "json"))
    assert data["schema_version"] == 1
    assert data["counts"]["summary"] == "Plan: 1 to add, 1 to change, 1 to destroy."
    assert data["classification"]["kind"] == "deploy-to-idle"
    assert data["ecs"][0]["verdict"] == "web: image 1.0.0 → 1.1.0; env +FEATURE_X"
    assert {r["action"] for r in data["resources"]} == {"replace", "update"}


def test_unknown_format_is_bad_input():
    with pytest.raises(BadInput, match="unknown format"):
        render(review_plan(doc("no_changes")), "pdf")


def test_headlines_say_what_terraform_says():
    def rc(address, actions, **extra):
        rtype, name = address.split(".")[-2:]
        change = {"actions": actions, "before": {"id": "x"} if actions != ["create"] else None,
                  "after": {"id": "x"} if "create" in actions or actions == ["update"] else None}
        return dict({"address": address, "mode": "managed", "type": rtype, "name": name, "change": change}, **extra)

    review = review_plan({"format_version": "1.2", "resource_changes": [
        rc("aws_lb.old", ["delete"], deposed="0a1b2c3d"),
        rc("aws_lb.cbd", ["create", "delete"]),
        rc("aws_s3_bucket.kept", ["forget"]),
        rc("aws_s3_bucket.renamed", ["update"], previous_address="aws_s3_bucket.legacy"),
    ]})
    out = render(review, "text")
    assert "# aws_lb.old (deposed object 0a1b2c3d) will be destroyed" in out
    assert "# aws_lb.cbd must be replaced (create before destroy)" in out
    assert "# aws_s3_bucket.kept will no longer be managed by Terraform" in out
    assert "# aws_s3_bucket.renamed will be updated in-place (moved from aws_s3_bucket.legacy)" in out
    assert review.counts.summary_line() == "Plan: 1 to add, 1 to change, 2 to destroy, 1 to forget."


@pytest.mark.parametrize("name", ["risky_infrastructure", "ecs_sensitive_definitions", "ecs_secret_env_sidecar"])
def test_plain_text_diffs_equal_what_the_console_prints(name):
    import io

    from rich.console import Console

    from tfreview.render.terminal import render_resources, resources_plain

    review = review_plan(doc(name))
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None, no_color=True, highlight=False).print(
        render_resources(review, full=True), soft_wrap=True
    )
    assert resources_plain(review, full=True) == buffer.getvalue()


def test_plain_text_keeps_no_tree_it_built_and_uses_one_already_built():
    from tfreview.render.terminal import resources_plain

    review = review_plan(doc("risky_infrastructure"))
    first = resources_plain(review)
    assert all(res._tree is None and res._full_tree is None for res in review.changed_resources)
    trees = [res.tree for res in review.changed_resources]  # built and kept by another renderer
    assert resources_plain(review) == first
    assert [res.tree for res in review.changed_resources] == trees
    assert all(res.tree_for(False, keep=False) is res.tree for res in review.changed_resources)


def test_summary_json_is_to_json_without_attribute_trees():
    review = review_plan(doc("risky_infrastructure"))
    summary, whole = review.summary_json(), review.to_json()
    for key in ("schema_version", "counts", "classification", "risks", "ecs"):
        assert summary[key] == whole[key]
    assert [r["address"] for r in summary["resources"]] == [r["address"] for r in whole["resources"]]
    assert all("changes" not in r for r in summary["resources"])


def _destroy(address: str, value: str = "x") -> dict:
    return {"address": address, "mode": "managed", "type": "aws_s3_bucket", "name": "b",
            "provider_name": "registry.terraform.io/hashicorp/aws",
            "change": {"actions": ["delete"], "before": {"bucket": value}, "after": None, "after_unknown": {},
                       "before_sensitive": {}, "after_sensitive": False}}


def test_truncated_markdown_lists_every_changed_address_destroys_first():
    plan = big_plan(400)
    plan["resource_changes"].append(_destroy("aws_s3_bucket.keep_me"))
    out = render(review_plan(plan), "markdown")
    assert len(out) <= MAX_CHARS
    assert "truncated:" in out
    compact = out[out.index("### Every changed resource (401)"):out.index("### Resource changes")]
    assert compact.index("**delete** (1): `aws_s3_bucket.keep_me`") < compact.index("**replace**")
    for i in range(400):
        assert f'app["c{i}"]' in compact


def test_one_huge_address_or_value_never_hides_a_destroy():
    plan = doc("ecs_image_bump")
    plan["resource_changes"] = [
        _destroy("aws_s3_bucket.a" + "x" * 100_000),  # a huge address...
        _destroy("aws_s3_bucket.data", "v" * 200_000),  # ...and a huge value
        *plan["resource_changes"],
    ]
    out = render(review_plan(plan), "markdown")
    assert len(out) <= MAX_CHARS
    assert "to destroy" in out and "**delete** (2)" in out
    assert "`aws_s3_bucket.data`" in out
    assert "aws_s3_bucket.axxxx" in out and "more characters)" in out, "the huge address is clipped, not dropped"
    assert "| critical |" in out or "| high |" in out, "the risk table survives"


def test_many_failing_checks_give_way_to_the_list_of_addresses():
    plan = big_plan(400)
    plan["checks"] = [{"address": {"kind": "resource", "to_display": f"aws_s3_bucket.c{i}"}, "status": "fail",
                       "instances": [{"address": {"to_display": f"aws_s3_bucket.c{i}"}, "status": "fail",
                                      "problems": [{"message": "bucket policy is wrong " * 20}]}]}
                      for i in range(2000)]
    plan["resource_changes"].append(_destroy("aws_s3_bucket.keep_me"))
    out = render(review_plan(plan), "markdown")
    assert len(out) <= MAX_CHARS
    assert "### Every changed resource (401)" in out and "`aws_s3_bucket.keep_me`" in out
    assert "failing checks and deferred changes not shown" in out
    assert out.rstrip().endswith("for the full review.")
