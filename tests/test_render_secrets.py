"""No secret ever reaches a rendering: seeded sensitive variables, sensitive outputs and secret-looking env vars,
then random well-formed plan documents (hypothesis)."""
from __future__ import annotations

import string

import orjson

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.data.corpus import data_plans, fixture_plans, seeded_secrets
from tfreview.plan import review_plan
from tfreview.render import FORMATS, render
from tfreview.render.terminal import render_terminal


@pytest.mark.parametrize("path", data_plans() + fixture_plans(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_seeded_secrets_appear_in_no_format(path):
    secrets = seeded_secrets()
    review = review_plan(path.read_bytes())
    for fmt in FORMATS:
        for full in (False, True):
            out = render(review, fmt, full=full)
            leaked = [s for s in secrets if s in out]
            assert not leaked, (fmt, full, leaked)
    assert not [s for s in secrets if s in repr(review)]


def test_seeded_documents_really_contain_the_secrets():
    # Guard against a vacuous test: the raw documents hold every seeded value of tests/data.
    raw = b"".join(p.read_bytes() for p in data_plans())
    for secret in seeded_secrets():
        if not secret.startswith("fixture-"):
            assert secret.encode() in raw


def test_changed_sensitive_output_says_changed_only():
    path = next(p for p in data_plans() if p.stem == "ecs_sensitive_definitions")
    out = render(review_plan(path.read_bytes()), "text")
    assert "secret_dsn = (sensitive value)  # changed" in out
    assert "postgres://old" not in out


def test_terminal_renderable_has_no_secret_either():
    from rich.console import Console

    path = next(p for p in data_plans() if p.stem == "ecs_secret_env_sidecar")
    console = Console(record=True, width=100, color_system="truecolor", force_terminal=True)
    console.print(render_terminal(review_plan(path.read_bytes()), full=True))
    out = console.export_text(styles=True)
    assert "\x1b[" in out  # coloured for a live console
    assert not [s for s in seeded_secrets() if s in out]


# --- property-based: random well-formed plan documents -------------------------------------------------------

SECRET_ALPHABET = string.ascii_letters + string.digits
secret_values = st.text(SECRET_ALPHABET, min_size=12, max_size=20).map(lambda s: "SECRET" + s)
names = st.text(string.ascii_lowercase + "_", min_size=1, max_size=8)
primitives = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.text(SECRET_ALPHABET + " -/:", max_size=12))
values = st.recursive(
    primitives,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(names, inner, max_size=4)),
    max_leaves=12,
)
ACTIONS = [["create"], ["delete"], ["update"], ["no-op"], ["delete", "create"], ["create", "delete"], ["read"], ["forget"]]


@st.composite
def plan_documents(draw):
    """A plan whose sensitive parts hold values starting with SECRET: marked attributes, a sensitive
    variable, a sensitive output and a secret-looking env var."""
    secrets: list[str] = []
    changes = []
    for i in range(draw(st.integers(0, 5))):
        actions = draw(st.sampled_from(ACTIONS))
        attrs = draw(st.dictionaries(names, values, max_size=5))
        secret = draw(secret_values)
        secrets.append(secret)
        before = dict(attrs, password=secret) if actions not in (["create"], ["read"]) else None
        after_attrs = draw(st.dictionaries(names, values, max_size=5))
        new_secret = draw(secret_values)
        secrets.append(new_secret)
        env_secret = draw(secret_values)
        secrets.append(env_secret)
        after = None
        if actions not in (["delete"], ["forget"]):
            after = dict(after_attrs, password=new_secret,
                         environment=[{"variables": {"API_TOKEN": env_secret, "MODE": "x"}}])
        unknown = draw(st.dictionaries(names, st.just(True), max_size=2)) if after is not None else {}
        changes.append({
            "address": f"aws_thing.t{i}", "mode": "data" if actions == ["read"] else "managed",
            "type": "aws_thing", "name": f"t{i}", "provider_name": "registry.terraform.io/hashicorp/aws",
            "change": {
                "actions": actions, "before": before, "after": after, "after_unknown": unknown,
                "before_sensitive": {"password": True} if before is not None else False,
                "after_sensitive": {"password": True} if after is not None else False,
                "replace_paths": [["password"]] if "delete" in actions and "create" in actions else [],
            },
        })
    var_secret = draw(secret_values)
    out_secret = draw(secret_values)
    secrets += [var_secret, out_secret]
    doc = {
        "format_version": draw(st.sampled_from(["0.1", "0.2", "1.0", "1.2"])),
        "terraform_version": "1.11.0",
        "variables": {"db_password": {"value": var_secret}},
        "resource_changes": changes,
        "output_changes": {
            "token": {"actions": ["update"], "before": "x", "after": out_secret, "after_unknown": False,
                      "before_sensitive": True, "after_sensitive": True},
            "echo": {"actions": ["create"], "before": None, "after": var_secret, "after_unknown": False},
        },
        "configuration": {"root_module": {"variables": {"db_password": {"sensitive": True}}}},
    }
    return doc, secrets


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan_documents())
def test_random_plans_render_without_crash_or_secret(case):
    doc, secrets = case
    review = review_plan(doc)
    for fmt in FORMATS:
        out = render(review, fmt, full=True)
        leaked = [s for s in secrets if s in out]
        assert not leaked, (fmt, leaked)


env_names = st.text(string.ascii_uppercase + "_", min_size=1, max_size=10)


@st.composite
def task_definition_plans(draw):
    """A task-definition replacement whose container definitions hold random env vars with secret values;
    either the whole container_definitions is sensitive (values from a sensitive variable) or it is not and the
    secret values sit under secret-looking names."""
    whole_sensitive = draw(st.booleans())
    env = draw(st.dictionaries(env_names, secret_values, min_size=1, max_size=4))
    if not whole_sensitive:
        env = {f"{k}_TOKEN": v for k, v in env.items()}
    plain_env = draw(st.dictionaries(env_names.map(lambda n: "PLAIN_" + n), st.sampled_from(["on", "off", "1"]), max_size=3))

    def defs(tag, values):
        return orjson.dumps([{"name": "web", "image": f"repo/app:{tag}", "cpu": 256, "essential": True,
                              "environment": [{"name": k, "value": v} for k, v in {**values, **plain_env}.items()],
                              "secrets": [{"name": "DB", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/db"}]}]).decode()

    rotated = {k: draw(secret_values) for k in env}
    before, after = defs("1.0.0", env), defs("1.1.0", rotated)
    secrets = list(env.values()) + list(rotated.values())
    marks = {"container_definitions": True} if whole_sensitive else {}
    doc = {
        "format_version": "1.2",
        "variables": {"env": {"value": {"before": env, "after": rotated}}},
        "configuration": {"root_module": {"variables": {"env": {"sensitive": True}}}},
        "resource_changes": [{
            "address": 'aws_ecs_task_definition.app["green"]', "type": "aws_ecs_task_definition", "name": "app",
            "index": "green", "mode": "managed",
            "change": {"actions": ["delete", "create"], "before": {"family": "app-green", "container_definitions": before, "revision": 3},
                       "after": {"family": "app-green", "container_definitions": after}, "after_unknown": {"revision": True},
                       "before_sensitive": marks, "after_sensitive": marks, "replace_paths": [["container_definitions"]]},
        }],
    }
    return doc, secrets, whole_sensitive


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task_definition_plans(), st.booleans())
def test_random_task_definitions_tell_the_story_without_secrets(case, reveal):
    doc, secrets, whole_sensitive = case
    review = review_plan(doc, reveal_ecs_safe_fields=reveal)
    for fmt in FORMATS:
        out = render(review, fmt, full=True)
        assert not [s for s in secrets if s in out], fmt
    story = review.ecs[0]
    if reveal or not whole_sensitive:
        assert "image 1.0.0 → 1.1.0" in story.verdict
