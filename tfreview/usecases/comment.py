"""`tfreview comment`: post a plan's review to a GitHub pull request or a GitLab merge request, and on the next
plan update that same comment (found by its hidden marker, as tfcmt does) instead of adding one.

Where to post comes from the CI's own variables (GitHub Actions, GitLab CI), each overridable by a flag so GitHub
Enterprise and self-hosted GitLab work. The API clients are the maintained libraries (PyGithub, python-gitlab),
imported only here. Errors never carry the token: messages are ours, not the client's.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from tfreview.errors import BadInput, NotFound, TfreviewError

TIMEOUT_S = 15


@dataclass(frozen=True)
class Target:
    """One pull/merge request: `project` is "owner/repo" (GitHub) or the project id or path (GitLab)."""

    forge: str
    api_url: str
    project: str
    number: int
    token: str = field(repr=False)
    token_header: str = "Authorization"  # GitLab: PRIVATE-TOKEN or JOB-TOKEN


@dataclass(frozen=True)
class Posted:
    action: str  # created | updated
    comment_id: int
    url: str


def _need(value: str | None, what: str, hint: str) -> str:
    if not value:
        raise BadInput(f"no {what}", hint)
    return value


def _number(value: str | int | None, what: str, hint: str) -> int:
    text = str(_need(None if value is None else str(value), what, hint))
    if not text.isdigit() or int(text) < 1:
        raise BadInput(f"{what} {text!r} is not a positive number", hint)
    return int(text)


def github_pr(env: Mapping[str, str]) -> str | None:
    """The pull request number of a GitHub Actions run: the event payload, else refs/pull/N/merge."""
    path = env.get("GITHUB_EVENT_PATH")
    if path:
        try:
            event = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            event = {}
        for key in ("pull_request", "issue"):  # pull_request*, issue_comment events
            number = (event.get(key) or {}).get("number") if isinstance(event, dict) else None
            if number:
                return str(number)
    m = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", env.get("GITHUB_REF", ""))
    return m.group(1) if m else None


def resolve_target(env: Mapping[str, str], *, forge: str | None = None, project: str | None = None,
                   number: int | None = None, api_url: str | None = None) -> Target:
    """Where to post, from the flags, else the CI's variables; BadInput (exit 2) says what is missing."""
    if forge is None:
        forge = "gitlab" if env.get("GITLAB_CI") else "github" if env.get("GITHUB_ACTIONS") else None
    if forge is None:
        raise BadInput("cannot tell whether to post to GitHub or GitLab (not in GitHub Actions nor GitLab CI)",
                       "pass --forge github or --forge gitlab")
    if forge == "github":
        return Target(
            "github", (api_url or env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/"),
            _need(project or env.get("GITHUB_REPOSITORY"), "GitHub repository", "set GITHUB_REPOSITORY or pass --repo OWNER/REPO"),
            _number(number or github_pr(env), "pull request number",
                    "run on a pull_request event or pass --pr N"),
            _need(env.get("GITHUB_TOKEN"), "GitHub token", "set GITHUB_TOKEN (permissions: pull-requests: write)"))
    token, header = env.get("GITLAB_TOKEN"), "PRIVATE-TOKEN"
    if not token:
        token, header = env.get("CI_JOB_TOKEN"), "JOB-TOKEN"
    return Target(
        "gitlab", (api_url or env.get("CI_API_V4_URL") or "https://gitlab.com/api/v4").rstrip("/"),
        _need(project or env.get("CI_PROJECT_ID"), "GitLab project", "set CI_PROJECT_ID or pass --repo ID_OR_PATH"),
        _number(number or env.get("CI_MERGE_REQUEST_IID"), "merge request number",
                "run in a merge request pipeline or pass --mr IID"),
        _need(token, "GitLab token", "set GITLAB_TOKEN (a token with the api scope) or run in GitLab CI"),
        header)


def upsert(target: Target, body: str, marker: str) -> Posted:
    """Update the comment holding `marker`, or create one; errors become one-line tfreview errors."""
    poster: Callable[[Target, str, str], Posted] = _github if target.forge == "github" else _gitlab
    try:
        return poster(target, body, marker)
    except TfreviewError:
        raise
    except Exception as exc:  # the clients' own errors: translated, never shown (they may echo requests)
        raise _translate(target, exc) from None


def _github(t: Target, body: str, marker: str) -> Posted:
    from github import Auth, Github

    gh = Github(base_url=t.api_url, auth=Auth.Token(t.token), timeout=TIMEOUT_S, retry=0, lazy=True)
    issue = gh.get_repo(t.project).get_issue(t.number)  # lazy: no request until the comments are listed
    for comment in issue.get_comments():
        if marker in (comment.body or ""):
            comment.edit(body)
            return Posted("updated", comment.id, comment.html_url or "")
    comment = issue.create_comment(body)
    return Posted("created", comment.id, comment.html_url or "")


def _gitlab(t: Target, body: str, marker: str) -> Posted:
    import gitlab

    job = t.token_header == "JOB-TOKEN"
    gl = gitlab.Gitlab(t.api_url.removesuffix("/api/v4"), timeout=TIMEOUT_S, private_token=None if job else t.token,
                       job_token=t.token if job else None)
    mr = gl.projects.get(t.project, lazy=True).mergerequests.get(t.number, lazy=True)
    web = f"merge request !{t.number} of {t.project}"
    for note in mr.notes.list(iterator=True):
        if marker in (note.body or ""):
            note.body = body
            note.save()
            return Posted("updated", note.id, web)
    note = mr.notes.create({"body": body})
    return Posted("created", note.id, web)


def _translate(t: Target, exc: Exception) -> TfreviewError:
    status = getattr(exc, "status", None) or getattr(exc, "response_code", None)
    where = f"{'pull request #' if t.forge == 'github' else 'merge request !'}{t.number} of {t.project}"
    api = f"{'GitHub' if t.forge == 'github' else 'GitLab'} API at {t.api_url}"
    token_var = "GITHUB_TOKEN" if t.forge == "github" else "GITLAB_TOKEN or CI_JOB_TOKEN"
    if status == 401:
        err: TfreviewError = BadInput(f"the {api} refused the token (401)", f"check {token_var}")
    elif status == 403:
        err = BadInput(f"the {api} does not let this token comment on {where} (403)",
                       f"give {token_var} write access to pull/merge request comments")
    elif status == 404:
        err = NotFound(f"{where} not found on the {api} (404)", "check --repo, --pr/--mr and --api-url")
    elif status:
        err = TfreviewError(f"the {api} answered {status} when commenting on {where}", "try again later")
    else:
        err = TfreviewError(f"cannot reach the {api} ({type(exc).__name__})", "check the network and --api-url")
    if t.token:  # belt and braces: nothing we print may hold the token
        err.message, err.hint = err.message.replace(t.token, "***"), err.hint.replace(t.token, "***")
    return err


def append_step_summary(path: str, text: str) -> str | None:
    """Append `text` to GitHub Actions' job summary file; returns a warning instead of failing the plan."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        return f"could not append the review to GITHUB_STEP_SUMMARY ({path}): {exc.strerror}"
    return None


__all__ = ["Posted", "Target", "append_step_summary", "resolve_target", "upsert"]
