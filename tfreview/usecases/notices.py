"""What a notification says (pure): one short Notice per event, untrusted text made visible and @-mentions broken.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from tfreview.text import visible


_MENTION = re.compile(r"@(?=(?:channel|here|everyone|all)\b)|<!(?=channel|here|everyone)", re.IGNORECASE)
MAX_FIELD = 300  # characters of one untrusted field in a notice


# -- what is said (pure) -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Notice:
    """One message: `event` (one of EVENTS), the release it is about, a title and a few lines of plain text."""

    event: str
    app: str | None
    env: str | None
    version: str | None
    plan_id: str | None
    title: str
    lines: tuple[str, ...]

    @property
    def body(self) -> str:
        return "\n".join(self.lines)


def clean(value: Any, limit: int = MAX_FIELD) -> str:
    """Untrusted text (from a plan, a store or a person) on one line: control and bidi characters made visible,
    @channel-style mentions and Slack's <!channel> broken, at most `limit` characters. The target's markup is
    escaped by apprise (the body is sent as plain text)."""
    text = visible(str(value), keep_lines=False)
    text = _MENTION.sub(lambda m: m.group() + "\u2060" if m.group() == "@" else "<\u2060!", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _who(record: Mapping[str, Any]) -> str:
    return "app {app}, env {env}, version {version}, plan {plan}".format(
        app=clean(record.get("app")), env=clean(record.get("env")), version=clean(record.get("version")),
        plan=clean(record.get("plan_id") or record.get("id")))


def _notice(event: str, fields: Mapping[str, Any], title: str, *lines: str) -> Notice:
    def opt(key: str) -> str | None:
        value = fields.get(key) or (fields.get("id") if key == "plan_id" else None)
        return None if value is None else clean(value)

    return Notice(event, opt("app"), opt("env"), opt("version"), opt("plan_id"), title,
                  (_who(fields), *[line for line in lines if line]))


def _duration(start: Any, end: Any) -> str:
    from tfreview.review.policy import parse_time

    try:
        seconds = (parse_time(str(end)) - parse_time(str(start))).total_seconds()
    except (ValueError, TypeError):
        return ""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def plan_needs_approval(record: Mapping[str, Any], required: int, approved: int, approvers: Sequence[str] | None,
                        review_link: str | None = None) -> Notice:
    """A plan waits: how many approvals are missing, who may give them, the command to run, the review link."""
    missing = max(required - approved, 0)
    may = ", ".join(clean(a, 80) for a in approvers[:8]) if approvers is not None else "anyone but the planner"
    risks = [clean(r, 120) for r in (record.get("risk_reasons") or [])[:3]]
    summary = (record.get("summary") or {}).get("summary_line")
    return _notice("plan-needs-approval", record,
                   f"plan needs approval: {clean(record.get('app'))} {clean(record.get('version'))} -> "
                   f"{clean(record.get('env'))}",
                   f"planned by {clean(record.get('planner'))}: {clean(summary)}" if summary else
                   f"planned by {clean(record.get('planner'))}",
                   f"{missing} of {required} approval(s) missing; may approve: {may}",
                   f"risk: {'; '.join(risks)}" if risks else "",
                   f"approve with: tfreview approve {clean(record.get('id'))}",
                   f"review: {clean(review_link, 500)}" if review_link else
                   f"review with: tfreview show {clean(record.get('id'))}")


def decision(entry: Mapping[str, Any]) -> Notice:
    kind = "approved" if entry.get("event") == "approve" else "rejected"
    comment = (entry.get("details") or {}).get("comment")
    return _notice(kind, entry, f"plan {kind} by {clean(entry.get('actor'))}: {clean(entry.get('app'))} "
                   f"{clean(entry.get('version'))} -> {clean(entry.get('env'))}",
                   f"{'comment' if kind == 'approved' else 'reason'}: {clean(comment)}" if comment else "")


def apply_started(entry: Mapping[str, Any]) -> Notice:
    return _notice("apply-started", entry, f"apply started by {clean(entry.get('actor'))}: {clean(entry.get('app'))} "
                   f"{clean(entry.get('version'))} -> {clean(entry.get('env'))}")


def break_glass(entry: Mapping[str, Any]) -> Notice:
    reason = (entry.get("details") or {}).get("reason")
    return _notice("break-glass", entry, f"BREAK-GLASS apply by {clean(entry.get('actor'))}: "
                   f"{clean(entry.get('app'))} {clean(entry.get('version'))} -> {clean(entry.get('env'))}",
                   f"approvals bypassed; reason: {clean(reason)}")


def release_succeeded(entry: Mapping[str, Any], release: Mapping[str, Any] | None) -> Notice:
    release = release or {}
    colour = release.get("live_color")
    took = _duration(release.get("started_at"), release.get("finished_at"))
    return _notice("release-succeeded", entry, f"released: {clean(entry.get('app'))} {clean(entry.get('version'))} "
                   f"in {clean(entry.get('env'))}",
                   f"live colour: {clean(colour)}" if colour else "",
                   f"took {took}" if took else "", f"by {clean(entry.get('actor'))}")


def release_failed(entry: Mapping[str, Any], reason: Any, *, rolled_back: bool = False) -> Notice:
    what = "rolled back" if rolled_back else "release FAILED"
    return _notice("release-failed", entry, f"{what}: {clean(entry.get('app'))} {clean(entry.get('version'))} in "
                   f"{clean(entry.get('env'))}", f"reason: {clean(reason, 500)}" if reason else "",
                   f"by {clean(entry.get('actor'))}")


def policy_change(entry: Mapping[str, Any], activated: bool, quorum: int | None = None) -> Notice:
    details = entry.get("details") or {}
    version, sha = clean(details.get("version")), clean(str(details.get("policy_sha256") or "")[:12])
    if activated:
        return Notice("policy-activated", None, None, None, None, f"policy version {version} is active",
                      (f"signed in by {clean(entry.get('actor'))}; sha256 {sha}",))
    return Notice("policy-proposed", None, None, None, None, f"policy version {version} proposed",
                  (f"proposed by {clean(entry.get('actor'))}; sha256 {sha}",
                   f"needs {quorum} admin signature(s): tfreview policy approve {version}" if quorum else
                   f"admins sign it with: tfreview policy approve {version}"))


def review_link(environ: Mapping[str, str]) -> str | None:
    """The pull/merge request a CI run plans for (where `tfreview comment` posts), from the CI's variables."""
    if environ.get("GITLAB_CI") and environ.get("CI_MERGE_REQUEST_PROJECT_URL") and environ.get("CI_MERGE_REQUEST_IID"):
        return f"{environ['CI_MERGE_REQUEST_PROJECT_URL']}/-/merge_requests/{environ['CI_MERGE_REQUEST_IID']}"
    if environ.get("GITHUB_ACTIONS") and environ.get("GITHUB_REPOSITORY"):
        from tfreview.usecases.comment import github_pr

        number = github_pr(environ)
        if number:
            server = environ.get("GITHUB_SERVER_URL") or "https://github.com"
            return f"{server}/{environ['GITHUB_REPOSITORY']}/pull/{number}"
    return None
