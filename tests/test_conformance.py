"""Conformance over the peer corpus (hashicorp/terraform-json test data, Terraform 0.12 to 1.15): every valid
document renders in every format without error and without printing a sensitive value; broken ones are refused
with a clear one-line error."""
from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from tests.data.corpus import PEER, fixture_plans, peer_plans
from tfreview.errors import InvalidPlan
from tfreview.plan import parse_plan, review_plan
from tfreview.render import FORMATS, render

pytestmark = pytest.mark.skipif(not PEER.is_dir(), reason="peer corpus /work/shared/peer-plans missing")


def sensitive_values(path: Path) -> set[str]:
    """Values the document itself marks sensitive (4+ characters, so that common words stay testable)."""
    return {s for s in parse_plan(path.read_bytes()).sensitive_strings if len(s) >= 4}


def _shows(out: str, fmt: str, address: str) -> bool:
    if fmt == "json":
        return address in {r["address"] for r in json.loads(out)["resources"]}
    if fmt == "html":
        return html.escape(address) in out
    return address in out


@pytest.mark.parametrize("path", peer_plans(), ids=lambda p: str(p.relative_to(PEER)))
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_valid_peer_plan_renders_without_sensitive_values(path, fmt):
    review = review_plan(path.read_bytes())
    out = render(review, fmt, full=True)
    assert out
    for secret in sensitive_values(path):
        assert secret not in out
    for resource in review.changed_resources:
        assert _shows(out, fmt, resource.address)


@pytest.mark.parametrize("path", peer_plans() + fixture_plans(), ids=lambda p: p.name if PEER not in p.parents else str(p.relative_to(PEER)))
def test_every_resource_with_an_action_appears_in_every_format(path):
    review = review_plan(path.read_bytes())
    for fmt in FORMATS:
        out = render(review, fmt)
        for resource in review.changed_resources:
            assert _shows(out, fmt, resource.address), (fmt, resource.address)


def test_broken_json_is_refused_in_one_line():
    with pytest.raises(InvalidPlan) as err:
        review_plan((PEER / "testdata/invalid/plan.json").read_bytes())
    line = err.value.one_line()
    assert "not valid JSON" in line and "line 676" in line and "\n" not in line


def test_sanitizer_input_renders_without_its_secrets():
    # sanitize/testdata/basic.json is byte-identical to terraform-json's sanitizer test input: a well-formed plan
    # whose secrets are in clear text (sensitive variable "bar", sensitive output = null_resource.foo's id).
    path = PEER / "sanitize/testdata/basic.json"
    review = review_plan(path.read_bytes())
    for fmt in FORMATS:
        out = render(review, fmt, full=True)
        assert "7483449866618536328" not in out  # the sensitive output, also null_resource.foo's id
        assert '"bar"' not in out  # the sensitive variable's value
        assert "null_resource.qux" in out
