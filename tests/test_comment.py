"""`tfreview comment`: the review posted to a pull/merge request, updated in place on the next plan.

The forges are FAKES on loopback (tests/fake_forges.py: the documented endpoints only); the CLI and the real client
libraries (PyGithub, python-gitlab) run as in CI. Plans are recorded as `tfreview plan` records them (no terraform).
"""
from __future__ import annotations

import json
import socket

import pytest

from tests.fake_forges import FakeForge
from tests.helpers import assert_one_line_error
from tests.test_cli_contract import ALICE, APP, BOB, assert_documented, record_plan

GH_TOKEN = "ghs_FAKEtoken0123456789abcdefghijklmnop"
GL_TOKEN = "glpat-FAKEtoken0123456789abc"
NOT_CI = {"GITHUB_ACTIONS": "", "GITLAB_CI": "", "GITHUB_TOKEN": "", "GITLAB_TOKEN": "", "CI_JOB_TOKEN": "",
          "GITHUB_REPOSITORY": "", "GITHUB_EVENT_PATH": "", "GITHUB_REF": "", "CI_PROJECT_ID": "",
          "CI_MERGE_REQUEST_IID": "", "GITHUB_API_URL": "", "CI_API_V4_URL": "", "GITHUB_STEP_SUMMARY": ""}


@pytest.fixture(scope="module")
def cli(cli_factory):
    c = cli_factory("comment")
    c.ok("package", "--app", APP, "--version", "1.0.0", "--source", str(c.cwd / "terraform"))
    return c


@pytest.fixture
def github():
    forge = FakeForge("github", "acme/webapp", 7, GH_TOKEN).start()
    yield forge
    forge.stop()


@pytest.fixture
def gitlab():
    forge = FakeForge("gitlab", "acme/platform/webapp", 12, GL_TOKEN).start()
    yield forge
    forge.stop()


def github_env(forge: FakeForge, tmp_path, **extra: str) -> dict[str, str]:
    """GitHub Actions' variables for a pull_request run (the PR number comes from the event payload)."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": forge.number,
                                 "pull_request": {"number": forge.number}}))
    return {**NOT_CI, "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": forge.project, "GITHUB_API_URL": forge.url,
            "GITHUB_EVENT_PATH": str(event), "GITHUB_REF": "refs/heads/main", "GITHUB_TOKEN": forge.token, **extra}


def gitlab_env(forge: FakeForge, **extra: str) -> dict[str, str]:
    return {**NOT_CI, "GITLAB_CI": "true", "CI_PROJECT_ID": forge.project, "CI_MERGE_REQUEST_IID": str(forge.number),
            "CI_API_V4_URL": forge.url, "GITLAB_TOKEN": forge.token, **extra}


def test_github_comment_is_created_then_updated_in_place(cli, github, tmp_path):
    env = github_env(github, tmp_path)
    first = record_plan(cli.store, env="qa")
    out = cli.ok("comment", first, env=env)
    assert "created comment" in out.stdout
    assert len(github.comments) == 1
    body = next(iter(github.comments.values()))["body"]
    assert body.startswith(f"<!-- tfreview:app={APP};env=qa -->")
    head = body[:body.index("## Terraform plan review")]
    for fact in (APP, "1.0.0", "qa", first, "deploy-to-idle", "0 of 1 approval(s)", f"tfreview approve {first}"):
        assert fact in head, f"{fact!r} not in the comment's head:\n{head}"
    assert "image 1.0.0 → 1.1.0" in body or "r/webapp:1.1.0" in body  # the review itself follows

    cli.ok("approve", first, "--yes", user=BOB)
    second = record_plan(cli.store, env="qa")  # the next plan of the same app and env
    updated = cli.ok("comment", second, "--format", "json", env=env)
    doc = assert_documented("comment", updated)
    assert (doc["action"], doc["forge"], doc["plan_id"]) == ("updated", "github", second)
    assert len(github.comments) == 1, "the next plan must update tfreview's comment, not add one"
    body = github.comments[doc["comment_id"]]["body"]
    assert second in body and first not in body

    cli.ok("approve", second, "--yes", user=BOB)
    cli.ok("comment", second, env=env)
    assert f"tfreview apply {second}" in github.comments[doc["comment_id"]]["body"]
    assert "1 of 1 approval(s) (by bob@example.com)" in github.comments[doc["comment_id"]]["body"]

    methods = [(m, p) for m, p, _ in github.requests]
    assert ("PATCH", f"/repos/acme/webapp/issues/comments/{doc['comment_id']}") in methods
    assert methods.count(("POST", "/repos/acme/webapp/issues/7/comments")) == 1
    assert all(h.get("authorization", "").endswith(GH_TOKEN) for _, _, h in github.requests)


def test_comment_refuses_a_review_json_changed_after_planning_and_posts_nothing(cli, github, tmp_path):
    pid = record_plan(cli.store, env="qa")
    (cli.store / "plans" / pid / "plan.json").write_text('{"format_version": "1.2", "resource_changes": []}')
    proc = cli("comment", pid, env=github_env(github, tmp_path))
    assert proc.returncode == 3 and "the stored review JSON does not match the plan record" in proc.stderr, proc.stderr
    assert github.comments == {} and not [m for m, _, _ in github.requests if m in ("POST", "PATCH")]


def test_another_environment_gets_its_own_comment(cli, github, tmp_path):
    env = github_env(github, tmp_path)
    cli.ok("comment", record_plan(cli.store, env="qa"), env=env)
    cli.ok("comment", record_plan(cli.store, env="prod"), env=env)
    markers = sorted(c["body"].splitlines()[0] for c in github.comments.values())
    assert markers == [f"<!-- tfreview:app={APP};env=prod -->", f"<!-- tfreview:app={APP};env=qa -->"]


def test_github_enterprise_by_flags_outside_actions(cli, github):
    pid = record_plan(cli.store, env="qa")
    env = {**NOT_CI, "GITHUB_TOKEN": GH_TOKEN}
    cli.ok("comment", pid, "--forge", "github", "--repo", "acme/webapp", "--pr", "7", "--api-url", github.url, env=env)
    assert len(github.comments) == 1


def test_gitlab_note_is_created_then_updated(cli, gitlab):
    env = gitlab_env(gitlab)
    cli.ok("comment", record_plan(cli.store, env="qa"), env=env)
    second = record_plan(cli.store, env="qa")
    doc = json.loads(cli.ok("comment", second, "--format", "json", env=env).stdout)
    assert doc["action"] == "updated" and len(gitlab.comments) == 1
    assert second in gitlab.comments[doc["comment_id"]]["body"]
    assert [m for m, _, _ in gitlab.requests] == ["GET", "POST", "GET", "PUT"]
    assert all(h.get("private-token") == GL_TOKEN for _, _, h in gitlab.requests)


def test_gitlab_job_token_and_self_hosted_api_url(cli, gitlab):
    env = {**NOT_CI, "CI_JOB_TOKEN": GL_TOKEN}
    cli.ok("comment", record_plan(cli.store, env="qa"), "--forge", "gitlab", "--repo", gitlab.project, "--mr", "12",
           "--api-url", gitlab.url, env=env)
    assert len(gitlab.comments) == 1
    assert all(h.get("job-token") == GL_TOKEN and "private-token" not in h for _, _, h in gitlab.requests)


# -- refusals and failures: one line, the right exit code, never the token -----------------------------------------
def test_wrong_token_is_exit_2_and_never_printed(cli, github, gitlab, tmp_path):
    pid = record_plan(cli.store, env="qa")
    bad_gh = "ghs_WRONGtoken_must_not_leak_0001"
    line = assert_one_line_error(cli("comment", pid, env=github_env(github, tmp_path, GITHUB_TOKEN=bad_gh)), 2, "401")
    assert bad_gh not in line and "GITHUB_TOKEN" in line
    bad_gl = "glpat-WRONG_must_not_leak_0002"
    line = assert_one_line_error(cli("comment", pid, env=gitlab_env(gitlab, GITLAB_TOKEN=bad_gl)), 2, "401")
    assert bad_gl not in line
    assert not github.comments and not gitlab.comments


def test_unknown_pull_request_is_exit_2(cli, github, gitlab, tmp_path):
    pid = record_plan(cli.store, env="qa")
    assert_one_line_error(cli("comment", pid, "--pr", "99", env=github_env(github, tmp_path)), 2, "404")
    assert_one_line_error(cli("comment", pid, "--repo", "acme/other", env=gitlab_env(gitlab)), 2, "not found")


def test_unreachable_api_is_exit_1_without_the_token(cli, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pid = record_plan(cli.store, env="qa")
    env = {**NOT_CI, "GITHUB_TOKEN": GH_TOKEN}
    line = assert_one_line_error(cli("comment", pid, "--forge", "github", "--repo", "acme/webapp", "--pr", "7",
                                     "--api-url", f"http://127.0.0.1:{port}", env=env), 1, "cannot reach")
    assert GH_TOKEN not in line


@pytest.mark.parametrize("env,args,contains", [
    (NOT_CI, (), "--forge"),
    ({**NOT_CI, "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "a/b", "GITHUB_TOKEN": "x"}, (), "--pr"),
    ({**NOT_CI, "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "a/b"}, ("--pr", "3"), "GITHUB_TOKEN"),
    ({**NOT_CI, "GITLAB_CI": "true", "CI_PROJECT_ID": "5", "GITLAB_TOKEN": "x"}, (), "--mr"),
    ({**NOT_CI, "GITLAB_CI": "true", "CI_PROJECT_ID": "5"}, ("--mr", "1"), "GITLAB_TOKEN"),
], ids=["no-ci", "github-no-pr", "github-no-token", "gitlab-no-mr", "gitlab-no-token"])
def test_missing_settings_are_usage_errors(cli, env, args, contains):
    assert_one_line_error(cli("comment", record_plan(cli.store, env="qa"), *args, env=env), 2, contains)


def test_unknown_plan_is_refused_before_any_request(cli, github, tmp_path):
    assert_one_line_error(cli("comment", "nope-123", env=github_env(github, tmp_path)), 2, "nope-123")
    assert github.requests == []


# -- the body (pure) ----------------------------------------------------------------------------------------------
def test_comment_body_respects_githubs_limit_and_escapes_untrusted_text():
    from tfreview.plan import review_plan
    from tfreview.render.comment import ApprovalProgress, render_comment

    changes = [{"address": f"aws_s3_object.o{i}", "mode": "managed", "type": "aws_s3_object", "name": f"o{i}",
                "provider_name": "registry.terraform.io/hashicorp/aws",
                "change": {"actions": ["create"], "before": None, "after": {"key": "k" * 200 + str(i)},
                           "after_unknown": {}, "before_sensitive": False, "after_sensitive": {}}}
               for i in range(2000)]
    review = review_plan({"format_version": "1.2", "terraform_version": "1.11.4", "resource_changes": changes})
    record = {"id": "webapp-qa-1", "app": "webapp", "env": "qa", "version": "<script>x</script>",
              "planner": "eve `rm -rf`|x", "created_at": "2026-11-29T10:00:00Z"}
    body = render_comment(record, review, ApprovalProgress(2, (ALICE,)))
    assert len(body) <= 65_536
    assert "truncated:" in body and "1 of 2 approval(s)" in body
    assert "<script>" not in body and "`rm -rf`" not in body


# -- where to post, from the CI's variables (pure) ------------------------------------------------------------------
def test_target_from_github_ref_when_the_event_has_no_pull_request(tmp_path):
    from tfreview.usecases.comment import resolve_target

    event = tmp_path / "event.json"
    event.write_text(json.dumps({"ref": "refs/heads/main"}))  # e.g. a push event
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/webapp", "GITHUB_EVENT_PATH": str(event),
           "GITHUB_REF": "refs/pull/42/merge", "GITHUB_TOKEN": GH_TOKEN}
    target = resolve_target(env)
    assert (target.forge, target.project, target.number, target.api_url) == ("github", "acme/webapp", 42,
                                                                            "https://api.github.com")
    assert GH_TOKEN not in repr(target)


def test_gitlab_prefers_a_project_token_to_the_job_token():
    from tfreview.usecases.comment import resolve_target

    env = {"GITLAB_CI": "true", "CI_PROJECT_ID": "5", "CI_MERGE_REQUEST_IID": "3",
           "CI_API_V4_URL": "https://git.example.com/api/v4/", "GITLAB_TOKEN": GL_TOKEN, "CI_JOB_TOKEN": "job"}
    target = resolve_target(env)
    assert (target.token, target.token_header, target.api_url) == (GL_TOKEN, "PRIVATE-TOKEN",
                                                                    "https://git.example.com/api/v4")
    assert resolve_target({**env, "GITLAB_TOKEN": ""}).token_header == "JOB-TOKEN"


def test_step_summary_that_cannot_be_written_only_warns(tmp_path):
    from tfreview.usecases.comment import append_step_summary

    summary = tmp_path / "summary.md"
    assert append_step_summary(str(summary), "## review") is None
    assert append_step_summary(str(summary), "## again") is None
    assert summary.read_text() == "## review\n## again\n"  # appended, as GitHub expects
    warning = append_step_summary(str(tmp_path / "missing" / "summary.md"), "x")
    assert warning and "GITHUB_STEP_SUMMARY" in warning


def test_an_edited_approval_is_refused_not_reported_as_approved(cli, github, tmp_path):
    pid = record_plan(cli.store, env="qa")
    cli.ok("approve", pid, "--yes", "-m", "lgtm", user=BOB)
    (approval,) = (cli.store / "approvals" / pid).glob("*.json")
    doc = json.loads(approval.read_text())
    approval.write_text(json.dumps({**doc, "comment": "edited in the store"}))
    assert_one_line_error(cli("comment", pid, env=github_env(github, tmp_path)), 3, pid)
    assert github.comments == {}
