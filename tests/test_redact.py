"""The stored review JSON (plan/redact.py): no secret in it, and the review reads exactly as from the original.

Every golden plan (peer corpus, tests/data, real fixtures) is redacted and reviewed again: each renderer, summary
and full, gives the same text as the original, so the golden files hold for the stored JSON too."""
from __future__ import annotations

import hashlib
import json

import orjson
import pytest

from tests.data.corpus import data_plans, fixture_plans, peer_plans, seeded_secrets
from tests.helpers import deep_json
from tfreview.plan import parse_plan, review_plan
from tfreview.plan.redact import redact_plan
from tfreview.render import FORMATS, render

PLANS = peer_plans() + data_plans() + fixture_plans()


def _id(path) -> str:
    return f"{path.parent.name}/{path.stem}"


@pytest.mark.parametrize("path", PLANS, ids=_id)
def test_redacted_plan_reviews_exactly_as_the_original(path):
    raw = path.read_bytes()
    original, redacted = review_plan(raw), review_plan(redact_plan(raw))
    for fmt in FORMATS:
        for full in (False, True):
            assert render(redacted, fmt, full=full) == render(original, fmt, full=full), (fmt, full)


@pytest.mark.parametrize("path", PLANS, ids=_id)
def test_redacted_plan_holds_no_sensitive_value(path):
    raw = path.read_bytes()
    redacted = redact_plan(raw)
    secrets = [s for s in parse_plan(raw).sensitive_strings if len(s) >= 4]
    secrets += [s for s in seeded_secrets() if s.encode() in raw]  # also env values named like secrets
    assert not [s for s in secrets if json.dumps(s)[1:-1].encode() in redacted]


def test_redaction_is_canonical_and_deterministic():
    path = next(p for p in data_plans() if p.stem == "ecs_sensitive_definitions")
    doc = orjson.loads(path.read_bytes())
    shuffled = json.dumps(dict(reversed(list(doc.items()))), indent=3).encode()  # same plan, other bytes
    assert redact_plan(path.read_bytes()) == redact_plan(shuffled)
    assert redact_plan(path.read_bytes()) == orjson.dumps(orjson.loads(redact_plan(shuffled)), option=orjson.OPT_SORT_KEYS)


def _update(before: dict, after: dict, sensitive: dict) -> bytes:
    """A plan updating one terraform_data whose attributes `sensitive` marks sensitive on both sides."""
    return orjson.dumps({"format_version": "1.2", "resource_changes": [{
        "address": "terraform_data.x", "type": "terraform_data", "name": "x", "mode": "managed",
        "change": {"actions": ["update"], "before": before, "after": after,
                   "before_sensitive": sensitive, "after_sensitive": sensitive}}]})


def test_markers_keep_equality_so_a_changed_secret_still_reads_changed():
    def change(before: str, after: str) -> bytes:
        return _update({"input": before}, {"input": after}, {"input": True})

    changed, same = change("old-secret", "new-secret"), change("same-one", "same-one")
    assert b"secret" not in redact_plan(changed) and b"same-one" not in redact_plan(same)
    texts = [render(review_plan(redact_plan(doc)), "text", full=True) for doc in (changed, same)]
    assert texts == [render(review_plan(doc), "text", full=True) for doc in (changed, same)]
    assert "~ input = (sensitive value)  # changed" in texts[0] and "    input = (sensitive value)\n" in texts[1]
    # One marker per distinct value: the same secret in two plans gets the same number, never its hash.
    assert hashlib.sha256(b"old-secret").hexdigest().encode() not in changed


def test_terraform_listing_references_in_another_order_gives_the_same_json():
    # `terraform show -json` of one plan binary lists the references of dynamic blocks in varying order (seen on
    # the ECS module's security group); apply must still derive the reviewed bytes.
    def plan(references: list[str]) -> bytes:
        return orjson.dumps({"format_version": "1.2", "resource_changes": [], "configuration": {"root_module": {
            "resources": [{"address": "aws_security_group.web", "expressions": {
                "ingress": {"references": references}}}]}}})

    refs = ["var.allowed_cidrs", "var.listener_port", "var.listener_port"]
    assert redact_plan(plan(refs)) == redact_plan(plan(list(reversed(refs))))


def test_a_document_claiming_absurdly_many_markers_is_refused():
    from tfreview.errors import InvalidPlan

    with pytest.raises(InvalidPlan, match="claims 1000000000 markers"):
        review_plan(b'{"format_version": "1.2", "resource_changes": [], "tfreview_redaction": {"version": 1, "markers": 1000000000}}')


@pytest.mark.parametrize("text", ['{"note": "s3cr3t-value-9", "broken": ', deep_json(300, '"s3cr3t-value-9"')],
                         ids=["not-json-after-all", "nested-too-deep"])
def test_a_secret_inside_json_text_that_cannot_be_walked_is_still_hidden(text):
    """JSON-looking text holding a sensitive value, that does not decode (or nests deeper than tfreview walks),
    kept the value in the stored plan: it is hidden as text."""
    doc = _update({"secret": "s3cr3t-value-9", "blob": "{}"}, {"secret": "s3cr3t-value-9", "blob": text},
                  {"secret": True})
    assert b"s3cr3t-value-9" not in redact_plan(doc)


def test_json_strings_nested_in_json_strings_are_redacted_to_a_depth_then_as_text():
    """8 JSON strings, each 200 levels deep, inside one another: each is within the 255-level bound, but walking
    them all (1,600 levels) raised RecursionError when the plan was stored."""
    text = '"s3cr3t-value-9"'
    for _ in range(8):
        text = json.dumps("[" * 200 + text + "]" * 200)
    doc = _update({"secret": "s3cr3t-value-9", "blob": "{}"}, {"secret": "s3cr3t-value-9", "blob": json.loads(text)},
                  {"secret": True})
    assert b"s3cr3t-value-9" not in redact_plan(doc)
