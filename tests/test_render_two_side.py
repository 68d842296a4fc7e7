"""Updates and replacements written without a node per unchanged attribute (`lines._two_side_text`, issue 21): the
same bytes as the collapsed diff tree's lines (`lines._resource`, the reference), replacements' empty attributes
folded alike, and nothing the tree masks ever written. Every document of the corpus, hand-made hostile resources,
then random ones (hypothesis)."""
from __future__ import annotations

import string

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.data.corpus import data_plans, fixture_plans, peer_plans
from tests.test_render_one_side import ENV_SECRET, SECRET, _change, _deep, _doc, _marks_like
from tfreview.plan import review_plan
from tfreview.plan.diff import MAX_DEPTH
from tfreview.render import render
from tfreview.render.lines import _resource, _text_line, resource_text


def _tree_text(res) -> str:
    return "\n".join(_resource(res, False, _text_line, False))


def _assert_same_as_tree(review) -> int:
    """Every update or replacement of `review` taking the fast path writes its tree's text; how many were checked."""
    checked = 0
    for res in (*review.drift, *review.resources):
        if res.two_side(False) is None or res.one_side(False) is not None:
            continue
        assert resource_text(res) == _tree_text(res), res.address
        checked += 1
    return checked


@pytest.mark.parametrize("path", data_plans() + fixture_plans() + peer_plans(),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_updates_and_replacements_are_written_as_their_tree(path):
    try:
        review = review_plan(path.read_bytes())
    except Exception:  # noqa: BLE001  (peer documents tfreview refuses are the parser's tests)
        pytest.skip("not a plan tfreview reviews")
    _assert_same_as_tree(review)


def test_the_corpus_really_has_updates_and_replacements():
    # Guard against a vacuous comparison above: the fast path is taken for many resources of the corpus, some of
    # them replacements whose empty attributes fold.
    reviews = [review_plan(p.read_bytes()) for p in data_plans() + fixture_plans()]
    assert sum(_assert_same_as_tree(r) for r in reviews) >= 50
    folded = [res for r in reviews for res in r.resources
              if res.two_side(False) is not None and "empty attribute" in resource_text(res)]
    assert folded, "no replacement of the corpus folds its empty attributes"


CONTAINER = [{"name": "web", "image": "repo/web:1.0", "cpu": 0, "essential": True, "environment": [
    {"name": "DB_PASSWORD", "value": ENV_SECRET}, {"name": "MODE", "value": "on"}],
    "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}]}]


def _hostile_doc() -> dict:
    """Updates and replacements holding everything the tree masks or treats apart, changed and unchanged."""
    before = {
        "name": "svc", "id": "i-1", "tags": {"Name": "x"}, "password": "old-password",
        "same_secret": SECRET,  # unchanged and equal to a sensitive value: hidden (counted)
        "marked": "plain-looking but marked", "marked_same": "plain-looking too",
        "environment": {"variables": {"API_TOKEN": ENV_SECRET, "REGION": "eu-west-1"}},
        "policy": orjson.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:Get*"}]}).decode(),
        "multi": "line one\nline two", "escapes": "\x1b[31mred\x1b[0m <script>alert(1)</script>",
        "deep": _deep(MAX_DEPTH + 5), "list": ["a", "b"], "empty": "", "empty_list": [], "flag": False,
        "gone": "x", "number": 1, "float": 1.0,
    }
    after = dict(before, password=SECRET, marked="changed but marked", tags={"Name": "y", "New": "\x07bell"},
                 environment={"variables": {"API_TOKEN": ENV_SECRET + "-2", "REGION": "eu-west-2"}},
                 policy=orjson.dumps({"Statement": [{"Effect": "Deny", "Action": "s3:Get*"}]}).decode(),
                 multi="line one\nline 2", deep=_deep(MAX_DEPTH + 6), list=["a", "c"], number=1.0, float=2.5)
    del after["gone"], after["empty"], after["empty_list"], after["flag"]
    marks = {"marked": True, "marked_same": True}
    named_secret = {"name": "/app/DB_PASSWORD", "value": ENV_SECRET, "type": "SecureString"}
    td_before = {"family": "web", "cpu": "256", "container_definitions": orjson.dumps(CONTAINER).decode(),
                 "ipc_mode": "", "tags": {}, "arn": "arn:aws:ecs:task-definition/web:1", "revision": 1}
    container_after = [dict(CONTAINER[0], image="repo/web:2.0",
                            environment=[{"name": "DB_PASSWORD", "value": "new-" + ENV_SECRET}])]
    td_after = {"family": "web", "cpu": "512", "container_definitions": orjson.dumps(container_after).decode()}
    return _doc([
        _change("aws_thing.updated", ["update"], before, after, bs=marks, as_=marks,
                unknown={"id": True, "tags": {"Late": True}}),
        _change("aws_thing.replaced", ["delete", "create"], before, after, bs=marks, as_=marks, unknown={"id": True}),
        _change("aws_ssm_parameter.named", ["update"], named_secret, dict(named_secret, value=ENV_SECRET + "x")),
        _change("aws_thing.name_only", ["update"], {"name": "n", "a": 1}, {"name": "n", "a": 2}),
        _change("aws_thing.nothing", ["update"], {"name": "n", "a": 1}, {"name": "n", "a": 1}, bs={"a": True},
                as_={"a": True}),
        _change("aws_ecs_task_definition.web", ["create", "delete"], td_before, td_after,
                unknown={"arn": True, "revision": True}, rtype="aws_ecs_task_definition"),
        _change("aws_thing.whole_secret", ["update"], {"a": "1"}, {"a": "2"}, as_=True),
    ])


def test_hostile_updates_and_replacements_are_written_as_their_tree():
    review = review_plan(_hostile_doc())
    assert _assert_same_as_tree(review) >= 6
    text = resource_text(next(r for r in review.resources if r.address == "aws_thing.replaced"))
    assert "# (3 empty attributes become unset: empty, empty_list, flag)" in text.splitlines()[-2]
    assert "        name = \"svc\"" in text.splitlines()
    nothing = resource_text(next(r for r in review.resources if r.address == "aws_thing.nothing"))
    assert "name =" not in nothing and "# (2 unchanged attributes hidden)" in nothing


@pytest.mark.parametrize("address", ["aws_thing.updated", "aws_thing.replaced", "aws_ssm_parameter.named",
                                     "aws_ecs_task_definition.web"])
def test_updates_and_replacements_write_no_secret(address):
    review = review_plan(_hostile_doc())
    res = next(r for r in review.resources if r.address == address)
    assert res.two_side(False) is not None, "the fast path should be taken for this resource"
    text = resource_text(res)
    assert SECRET not in text and ENV_SECRET not in text and "plain-looking" not in text and "changed but" not in text
    assert "(sensitive value)" in text
    assert "\x1b" not in render(review, "text") and "\x07" not in render(review, "text")


def test_the_fast_path_is_not_taken_where_the_tree_decides_more():
    review = review_plan(_hostile_doc())
    by_address = {r.address: r for r in review.resources}
    assert by_address["aws_thing.whole_secret"].two_side(False) is None  # the whole object is sensitive
    res = by_address["aws_thing.updated"]
    assert res.two_side(True) is None  # --full shows every attribute: the full tree
    assert res.tree.action == "update"  # built and kept: written from the tree from now on
    assert res.two_side(False) is None


# --- property-based: random updates and replacements, with random marks ---------------------------------------

KEYS = st.sampled_from(["name", "value", "environment", "variables", "id", "tags", "API_KEY", "list", "a b", "x"])
primitives = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, 2.5]),
                       st.sampled_from([SECRET, ENV_SECRET, '{"j": [1, {"PASSWORD": "' + ENV_SECRET + '"}]}', "[1]",
                                        "", "plain", "line\nbreak", "\x1b[31mred", "db-password", "{}", "[]"]),
                       st.text(string.printable, max_size=4))
values = st.recursive(primitives, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(KEYS, inner, max_size=3)), max_leaves=12)


@st.composite
def two_sided_plans(draw):
    changes = []
    for i in range(draw(st.integers(1, 4))):
        before = draw(st.dictionaries(KEYS, values, max_size=6))
        after = dict(before)
        for key in draw(st.lists(KEYS, max_size=4)):  # a few keys changed, added or removed; the rest equal
            if draw(st.booleans()):
                after[key] = draw(values)
            else:
                after.pop(key, None)
        bs = _marks_like(draw, before, 8) if draw(st.booleans()) else {}
        as_ = _marks_like(draw, after, 8) if draw(st.booleans()) else {}
        unknown = _marks_like(draw, after, 8) if draw(st.booleans()) else {}
        if bs is True or as_ is True or unknown is True:
            bs, as_, unknown = {}, {}, {}
        rtype = draw(st.sampled_from(["aws_thing", "aws_ecs_task_definition"]))
        actions = draw(st.sampled_from([["update"], ["delete", "create"], ["create", "delete"]]))
        changes.append(_change(f"{rtype}.r{i}", actions, before, after, unknown=unknown, bs=bs, as_=as_,
                               rtype=rtype))
    return _doc(changes)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(two_sided_plans())
def test_random_updates_and_replacements_are_written_as_their_tree(doc):
    review = review_plan(doc)
    _assert_same_as_tree(review)
    for res in review.resources:
        assert SECRET not in resource_text(res)  # a sensitive variable's value, wherever it appears


# --- secret-looking names: upper-cased ASCII and a memo, the same answers as the case-insensitive pattern -------

NAME_CHARS = string.ascii_letters + string.digits + "_-./ " + "\u017f\u212a\u0131\u0130\u00df\u1e9e"


@settings(max_examples=300, deadline=None)
@given(st.text(NAME_CHARS, max_size=12) | st.sampled_from(["db_password", "Api_Key", "\u212aEY", "SE\u017fSION",
                                                            "tok\u0131en", "name", "PRIVATE", "x"]))
def test_looks_secret_answers_as_the_case_insensitive_pattern(name):
    from tfreview.plan.diff import SECRET_NAME_RE, looks_secret

    expected = SECRET_NAME_RE.search(name) is not None
    assert looks_secret(name) is expected
    assert looks_secret(name) is expected  # the second answer comes from the memo
