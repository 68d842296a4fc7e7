"""Created and deleted resources written straight from their values (`lines._one_side_text`, issue 21): the same
bytes as the diff tree's lines, and nothing the tree masks is ever written. The tree (`lines._resource`) is the
reference everywhere: every document of the corpus, hand-made hostile resources, then random ones (hypothesis)."""
from __future__ import annotations

import string

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.data.corpus import data_plans, fixture_plans, peer_plans
from tfreview.plan import review_plan
from tfreview.plan.diff import MAX_DEPTH
from tfreview.render import render
from tfreview.render.lines import _resource, _text_line, resource_text

SECRET = "hunter2-correct-horse"  # a sensitive variable's value: masked wherever it appears
ENV_SECRET = "s3cr3t-env-value-0042"


def _tree_text(res, full: bool) -> str:
    """The reference: the resource's lines made from its diff tree."""
    return "\n".join(_resource(res, full, _text_line, False))


def _one_sided(review):
    return [res for res in (*review.drift, *review.resources) if res.one_side(False) is not None]


def _assert_same_as_tree(review) -> int:
    """Every created/deleted resource of `review` writes the same text as its tree; how many were checked."""
    checked = 0
    for res in (*review.drift, *review.resources):
        for full in (False, True):
            if res.one_side(full) is None:
                continue
            assert resource_text(res, full=full) == _tree_text(res, full), (res.address, full)
            checked += 1
    return checked


def _doc(changes: list[dict], variables: dict | None = None) -> dict:
    return {
        "format_version": "1.2",
        "terraform_version": "1.11.0",
        "variables": {"db_password": {"value": SECRET}, **(variables or {})},
        "configuration": {"root_module": {"variables": {"db_password": {"sensitive": True}}}},
        "resource_changes": changes,
    }


def _change(address: str, actions: list[str], before, after, *, unknown=None, bs=None, as_=None, rtype="aws_thing",
            mode="managed") -> dict:
    name = address.rsplit(".", 1)[1]
    return {"address": address, "mode": mode, "type": rtype, "name": name,
            "provider_name": "registry.terraform.io/hashicorp/aws",
            "change": {"actions": actions, "before": before, "after": after, "after_unknown": unknown or {},
                       "before_sensitive": bs if bs is not None else ({} if before is not None else False),
                       "after_sensitive": as_ if as_ is not None else ({} if after is not None else False)}}


@pytest.mark.parametrize("path", data_plans() + fixture_plans() + peer_plans(),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_one_sided_resources_are_written_as_their_tree(path):
    try:
        review = review_plan(path.read_bytes())
    except Exception:  # noqa: BLE001  (peer documents tfreview refuses are the parser's tests)
        pytest.skip("not a plan tfreview reviews")
    _assert_same_as_tree(review)


def test_the_corpus_really_has_one_sided_resources():
    # Guard against a vacuous comparison above: the fast path is taken for many resources of the corpus.
    checked = sum(_assert_same_as_tree(review_plan(p.read_bytes())) for p in data_plans() + fixture_plans())
    assert checked >= 50


def _hostile_doc() -> dict:
    """Created and deleted resources holding everything the tree masks or treats apart."""
    container = [{"name": "web", "image": "repo/web:1.0", "cpu": 0, "essential": True, "environment": [
        {"name": "DB_PASSWORD", "value": ENV_SECRET}, {"name": "MODE", "value": "on"}], "mountPoints": [],
        "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}]}]
    values = {
        "name": "svc",
        "tags": {"Name": "x", "weird key": "needs quotes", "1st": True, "ratio": 1.5, "count": 3.0},
        "password": SECRET,  # equals a sensitive variable's value: masked though unmarked
        "marked": "plain-looking but marked sensitive",
        "unknown_list": ["a"],
        "environment": {"variables": {"API_TOKEN": ENV_SECRET, "REGION": "eu-west-1"}},  # secret by its name
        "pair": {"name": "SESSION_KEY", "value": ENV_SECRET},  # name/value: the value of a secret-named pair
        "policy": orjson.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}).decode(),
        "not_json": "{ not json",
        "spaced_json": '  {"a": [1, 2]}',
        "empty_map": {}, "empty_list": [], "nulls": [None, "x", None], "nested": [[], [{}], [[1, [2, {"k": None}]]]],
        "multi": "line one\nline two",
        "escapes": "tab\there \"quoted\" \u00e9 \u2028",
        "deep": _deep(MAX_DEPTH + 5),
        "almost_deep": _deep(MAX_DEPTH - 3),
    }
    marks = {"marked": True, "nested": [True, [], [[False, [True]]]]}
    created = dict(values, container_definitions=orjson.dumps(container).decode())
    return _doc([
        _change("aws_thing.created", ["create"], None, created, as_=marks,
                unknown={"id": True, "unknown_list": [False, True], "tags": {"late": True}}),
        _change("aws_thing.deleted", ["delete"], values, None, bs=marks),
        _change("aws_ecs_task_definition.gone", ["delete"], {"family": "web", "container_definitions":
                orjson.dumps(container).decode()}, None, rtype="aws_ecs_task_definition"),
        _change("aws_thing.all_secret", ["create"], None, {"a": "b"}, as_=True),
        _change("aws_thing.all_unknown", ["create"], None, {"a": "b"}, unknown=True),
        _change("data.aws_thing.read", ["read"], None, {"id": "r-1", "list": [1, 2]}, mode="data"),
        _change("aws_thing.forgotten", ["forget"], {"id": "f-1"}, None),
        _change("aws_thing.deleted_unknown", ["delete"], {"list": ["x", None]}, None, unknown={"list": [True, True]}),
    ])


def _deep(levels: int):
    value: object = "bottom"
    for i in range(levels):
        value = {"k": value} if i % 2 else [value]
    return value


def test_hostile_created_and_deleted_resources_are_written_as_their_tree():
    review = review_plan(_hostile_doc())
    assert _assert_same_as_tree(review) >= 10
    text = resource_text(next(r for r in review.resources if r.address == "aws_thing.deleted"))
    for line in ('          - "weird key" = "needs quotes" -> null', "          - count = 3 -> null", "      - empty_map = {}",
                 "      - empty_list = []", '          - "x" -> null', "      - policy = jsonencode("):
        assert line in text.splitlines(), line


@pytest.mark.parametrize("address", ["aws_thing.created", "aws_thing.deleted", "aws_ecs_task_definition.gone"])
def test_one_sided_resources_write_no_secret(address):
    review = review_plan(_hostile_doc())
    res = next(r for r in review.resources if r.address == address)
    assert res.one_side(False) is not None, "the fast path should be taken for this resource"
    text = resource_text(res)
    assert SECRET not in text and ENV_SECRET not in text and "plain-looking" not in text
    assert "(sensitive value)" in text
    if address != "aws_ecs_task_definition.gone":
        assert "password = (sensitive value)" in text  # equal to a sensitive variable
        assert "API_TOKEN = (sensitive value)" in text  # named like a secret in an environment map
        assert "marked" in text and "nested deeper than" in text
    else:
        assert '"DB_PASSWORD"' in text  # the container's env, decoded and named, its value masked


def test_the_fast_path_is_not_taken_where_the_tree_decides_more():
    doc = _hostile_doc()
    doc["resource_changes"].append(_change("aws_thing.replaced", ["delete", "create"], {"a": ""}, None))
    doc["resource_changes"].append(_change("aws_thing.updated", ["update"], {"a": "1"}, {"a": "2"}))
    review = review_plan(doc)
    by_address = {r.address: r for r in review.resources}
    for address in ("aws_thing.replaced", "aws_thing.updated", "aws_thing.all_secret", "aws_thing.all_unknown"):
        assert by_address[address].one_side(False) is None, address
    res = by_address["aws_thing.created"]
    assert res.tree.action == "create"  # built and kept: written from the tree
    assert res.one_side(False) is None and res.one_side(True) is not None


def test_text_render_of_the_hostile_plan_has_no_secret():
    out = render(review_plan(_hostile_doc()), "text")
    assert "aws_thing.created will be created" in out and "aws_thing.deleted will be destroyed" in out
    assert SECRET not in out and ENV_SECRET not in out


# --- property-based: random created and deleted resources, with random marks -----------------------------------

KEYS = st.sampled_from(["name", "value", "environment", "variables", "id", "tags", "API_KEY", "list", "a b", "x"])
primitives = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(allow_nan=False, width=32),
                       st.sampled_from([SECRET, ENV_SECRET, '{"j": [1, {"PASSWORD": "' + ENV_SECRET + '"}]}', "[1]",
                                        " [", "", "plain", "line\nbreak", "\x1b[31mred"]),
                       st.text(string.printable, max_size=8))
values = st.recursive(primitives, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(KEYS, inner, max_size=4)), max_leaves=16)


def _marks_like(draw, value, chance):
    """Random marks mirroring `value`'s shape (True here and there, sometimes a mark where no value is)."""
    if draw(st.integers(0, 99)) < chance:
        return True
    if isinstance(value, dict):
        return {k: _marks_like(draw, v, chance) for k, v in value.items() if draw(st.booleans())}
    if isinstance(value, list):
        return [_marks_like(draw, v, chance) for v in value] + ([True] if draw(st.integers(0, 9)) == 0 else [])
    return False


@st.composite
def one_sided_plans(draw):
    changes = []
    for i in range(draw(st.integers(1, 4))):
        values_ = draw(st.dictionaries(KEYS, values, max_size=6))
        created = draw(st.booleans())
        sensitive = _marks_like(draw, values_, 8) if draw(st.booleans()) else {}
        unknown = _marks_like(draw, values_, 8) if draw(st.booleans()) else {}
        if sensitive is True or unknown is True:
            sensitive, unknown = {}, {}
        rtype = draw(st.sampled_from(["aws_thing", "aws_ecs_task_definition"]))
        if created:
            changes.append(_change(f"{rtype}.r{i}", ["create"], None, values_, unknown=unknown, as_=sensitive,
                                   rtype=rtype))
        else:
            changes.append(_change(f"{rtype}.r{i}", ["delete"], values_, None, unknown=unknown, bs=sensitive,
                                   rtype=rtype))
    return _doc(changes)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_sided_plans())
def test_random_one_sided_resources_are_written_as_their_tree(doc):
    review = review_plan(doc)
    assert _assert_same_as_tree(review) >= 1
    for res in review.resources:
        assert SECRET not in resource_text(res)
