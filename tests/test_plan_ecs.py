"""The ECS revision story: one-line verdicts a reviewer can approve from."""
from __future__ import annotations

import pytest

from tests.data.corpus import DATA, FIXTURES
from tfreview.plan import review_plan
from tfreview.plan.ecs import version_key


def review(name: str, **kw):
    return review_plan((DATA / f"{name}.json").read_bytes(), **kw)


def test_image_bump_is_one_line_verdict():
    story = review("ecs_image_bump").ecs[0]
    assert story.line == "shop-prod-green: web: image 1.0.0 → 1.1.0; env +FEATURE_X"
    assert story.flags == ()


def test_env_reorder_is_ordering_only_not_a_change():
    r = review("ecs_env_reorder")
    assert r.ecs[0].verdict == "only ordering/defaults changed"
    assert "new revision with no image change" in r.ecs[0].flags
    tree = dict(r.changed_resources[0].tree.children)["container_definitions"]
    assert tree.note == "only ordering/defaults changed"
    assert tree.children[0][1].action == "no-op"


def test_story_links_the_services_running_the_family():
    story = review("ecs_image_bump").ecs[0]
    (link,) = story.services
    assert link.address == 'module.webapp.aws_ecs_service.app["green"]'
    assert link.triggers.startswith("new deployment")
    assert "min 100% / max 200%" in link.triggers and "circuit breaker with rollback" in link.triggers


def test_rollback_to_an_older_tag_and_cpu_memory_change_are_flagged():
    story = review("ecs_rollback_cpu").ecs[0]
    assert any("rolled back" in f and "1.10.0 → 1.9.3" in f for f in story.flags)
    assert "cpu/memory change" in story.flags
    assert "task cpu 256 → 512" in story.verdict


def test_sidecar_added_and_rotated_secret_env_named_without_value():
    story = review("ecs_secret_env_sidecar").ecs[0]
    assert "web: env ~API_TOKEN" in story.verdict
    assert "envoy: container added" in story.verdict
    assert "tok_" not in story.verdict


def test_sensitive_definitions_still_tell_the_story_without_secrets():
    story = review("ecs_sensitive_definitions").ecs[0]
    assert story.sensitive
    assert story.line == "shop-prod-green: web: image 1.0.0 → 1.2.0; secrets +STRIPE_KEY"


def test_reveal_policy_can_be_switched_off():
    story = review("ecs_sensitive_definitions", reveal_ecs_safe_fields=False).ecs[0]
    assert "1.2.0" not in story.verdict and "web" not in story.verdict
    assert "sensitive" in story.verdict


def test_image_changes_summarise_container_old_and_new_image():
    (change,) = review("ecs_image_bump").image_changes
    assert change[0] == "web" and change[1].endswith(":1.0.0") and change[2].endswith(":1.1.0")


@pytest.mark.parametrize(
    "older,newer",
    [("1.9.3", "1.10.0"), ("v1.2.0", "v1.2.1"), ("1.2.0-rc1", "1.2.0"), ("1.2.0-rc2", "1.2.0-rc10"), ("2", "10")],
)
def test_versions_compare_semantically(older, newer):
    assert version_key(older) < version_key(newer)


def test_non_version_tags_are_not_compared():
    assert version_key("latest") is None and version_key("sha-3f2a9c") is None


@pytest.mark.skipif(not (FIXTURES / "image_bump.json").is_file(), reason="fixtures/plans not generated")
def test_real_terraform_image_bump_and_reorder():
    bump = review_plan((FIXTURES / "image_bump.json").read_bytes())
    assert [s.line for s in bump.ecs] == ["webapp-green: web: image 1.1.0 → 1.2.0"]
    reorder = review_plan((FIXTURES / "env_reordered.json").read_bytes())
    assert reorder.counts.summary_line().startswith("No changes")


def test_sensitive_definitions_name_env_changes_never_values():
    import orjson

    doc = orjson.loads((DATA / "ecs_sensitive_definitions.json").read_bytes())
    td = next(rc for rc in doc["resource_changes"] if rc["type"] == "aws_ecs_task_definition")
    after = orjson.loads(td["change"]["after"]["container_definitions"])
    after[0]["environment"] = [{"name": "DB_PASSWORD", "value": "rotated-db-password-77aa"},
                               {"name": "FEATURE_X", "value": "on"}, {"name": "REGION", "value": "us-east-1"}]
    td["change"]["after"]["container_definitions"] = orjson.dumps(after).decode()
    story = review_plan(orjson.dumps(doc)).ecs[0]
    assert story.sensitive
    assert "env +FEATURE_X, -LOG_LEVEL, ~DB_PASSWORD (value hidden)" in story.verdict
    assert "secrets +STRIPE_KEY" in story.verdict
    for value in ("hunter2", "rotated-db-password", "info", "sig-key-value"):
        assert value not in story.line


@pytest.mark.skipif(not (FIXTURES / "secret_env_rotated.json").is_file(), reason="fixtures/plans not generated")
def test_real_terraform_sensitive_definitions_name_the_rotated_variable():
    story = review_plan((FIXTURES / "secret_env_rotated.json").read_bytes()).ecs[0]
    assert story.sensitive and story.verdict == "worker: env ~API_TOKEN (value hidden)"
