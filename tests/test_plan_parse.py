"""Parsing: which documents are plans we can read, and Terraform's own counting of their changes."""
from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from tests.data.corpus import DATA, PEER, fixture_plans
from tfreview.errors import InvalidPlan
from tfreview.plan import parse_plan, review_plan


def minimal(**extra) -> dict:
    doc = {"format_version": "1.2", "terraform_version": "1.11.4", "resource_changes": []}
    doc.update(extra)
    return doc


def change(address: str, actions: list[str], before=None, after=None, **extra) -> dict:
    rtype, name = address.split(".")[-2:]
    rc: dict[str, Any] = {"address": address, "mode": "managed", "type": rtype, "name": name, "provider_name": "p",
          "change": {"actions": actions, "before": before, "after": after, "after_unknown": {}}}
    rc["change"].update(extra.pop("change", {}))
    rc.update(extra)
    return rc


def test_refuses_unknown_major_format_version_with_a_hint():
    with pytest.raises(InvalidPlan) as err:
        review_plan(minimal(format_version="2.0"))
    assert "format_version 2.0" in err.value.message
    assert err.value.hint
    assert err.value.exit_code == 2


def test_reads_every_known_minor_version():
    for version in ("0.1", "0.2", "1.0", "1.1", "1.2", "1.9"):
        assert review_plan(minimal(format_version=version)).format_version == version


def test_refuses_broken_json_in_one_line():
    with pytest.raises(InvalidPlan) as err:
        review_plan(b'{"format_version": "1.2",}')
    assert "not valid JSON" in err.value.one_line()
    assert "\n" not in err.value.one_line()


def test_refuses_a_state_document():
    with pytest.raises(InvalidPlan, match="state"):
        review_plan({"format_version": "1.0", "values": {"root_module": {}}})


def test_refuses_documents_without_format_version():
    with pytest.raises(InvalidPlan, match="format_version"):
        review_plan({"resource_changes": []})
    with pytest.raises(InvalidPlan):
        review_plan(b"[1, 2]")


def test_refuses_unknown_actions_naming_the_resource():
    doc = minimal(resource_changes=[change("aws_s3_bucket.logs", ["explode"])])
    with pytest.raises(InvalidPlan, match="aws_s3_bucket.logs"):
        review_plan(doc)


def test_ignores_unknown_fields():
    doc = minimal(future_field={"x": 1}, resource_changes=[change("aws_s3_bucket.logs", ["create"], after={"bucket": "b"}, shiny=True)])
    assert review_plan(doc).counts.add == 1


def test_accepts_bytes_text_and_dicts_alike():
    doc = minimal(resource_changes=[change("aws_s3_bucket.logs", ["create"], after={"bucket": "b"})])
    for form in (doc, json.dumps(doc), orjson.dumps(doc)):
        assert review_plan(form).counts.summary_line() == "Plan: 1 to add, 0 to change, 0 to destroy."


def test_replace_counts_one_add_and_one_destroy():
    doc = minimal(resource_changes=[
        change("aws_lb.this", ["delete", "create"], before={"name": "a"}, after={"name": "b"}),
        change("aws_lb.that", ["create", "delete"], before={"name": "a"}, after={"name": "b"}),
        change("aws_s3_bucket.logs", ["update"], before={"acl": "a"}, after={"acl": "b"}),
    ])
    counts = review_plan(doc).counts
    assert counts.summary_line() == "Plan: 2 to add, 1 to change, 2 to destroy."
    assert counts.replace == 2


def test_imports_forgets_and_reads_are_counted_as_terraform_prints_them():
    doc = minimal(resource_changes=[
        change("aws_s3_bucket.a", ["no-op"], before={"x": 1}, after={"x": 1}, change={"importing": {"id": "a"}}),
        change("aws_s3_bucket.b", ["forget"], before={"x": 1}),
        dict(change("aws_region.current", ["read"], after={"name": "x"}), mode="data"),
    ])
    counts = review_plan(doc).counts
    assert counts.summary_line() == "Plan: 1 to import, 0 to add, 0 to change, 0 to destroy, 1 to forget."
    assert counts.read == 1


def test_no_changes_reads_like_terraform():
    assert review_plan(minimal()).counts.summary_line() == "No changes. Your infrastructure matches the configuration."


def test_every_peer_action_reason_and_move_is_read():
    reason = review_plan((PEER / "testdata/action_reason/plan.json").read_bytes())
    assert reason.resources[0].action == "replace"
    assert reason.resources[0].reason == "the object is tainted"
    moved = review_plan((PEER / "testdata/moved_block/plan.json").read_bytes())
    assert moved.changed_resources[0].previous_address == "random_id.test"
    assert moved.counts.move == 1


def test_checks_and_deferred_changes_are_read():
    doc = minimal(
        checks=[{"address": {"to_display": "check.up", "kind": "check"}, "status": "fail",
                 "instances": [{"address": {"to_display": "check.up"}, "status": "fail", "problems": [{"message": "down"}]}]}],
        deferred_changes=[{"reason": "provider_config_unknown", "resource_change": change("aws_s3_bucket.x", ["create"], after={})}],
    )
    review = review_plan(doc)
    assert review.checks[0].status == "fail" and review.checks[0].problems == ("down",)
    assert review.deferred == (("aws_s3_bucket.x", "provider_config_unknown"),)


@pytest.mark.parametrize("path", fixture_plans(), ids=lambda p: p.name)
def test_counts_equal_terraforms_own_summary_line(path):
    expected = json.loads(path.with_name(path.name.replace(".json", ".expected.json")).read_text())["summary"]
    line = review_plan(path.read_bytes()).counts.summary_line()
    if expected.startswith("No changes"):
        assert line.startswith("No changes")
    else:
        assert line == expected


def test_hand_made_documents_parse():
    for path in DATA.glob("*.json"):
        if path.name != "secrets.json":
            assert parse_plan(path.read_bytes()).format_version == "1.2"


def test_garbage_collector_state_is_restored_after_a_review():
    import gc

    from tfreview.plan.pause import paused_gc

    assert gc.isenabled()
    review_plan(minimal())
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
