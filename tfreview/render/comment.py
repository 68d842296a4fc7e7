"""The pull/merge request comment: a head (app, env, version, plan id, release kind, approval status, the next
command) over the Markdown review, with a hidden marker so the next plan finds and updates the same comment.

Pure: takes the stored plan record, its review and where its approvals stand; never longer than GitHub's
65,536-character comment limit (the Markdown review gets what the head leaves).
"""
from __future__ import annotations

from dataclasses import dataclass

from tfreview.plan.review import Review
from tfreview.render.markdown import MAX_CHARS, md_text, render_markdown
from tfreview.text import visible


@dataclass(frozen=True)
class ApprovalProgress:
    """Where a plan's approvals stand: `required` distinct approvers, who approved, who rejected."""

    required: int
    approved_by: tuple[str, ...] = ()
    rejected_by: tuple[str, ...] = ()

    @property
    def enough(self) -> bool:
        return not self.rejected_by and len(self.approved_by) >= self.required


def marker(app: str, env: str) -> str:
    """The hidden HTML comment that identifies tfreview's comment for one app and environment (tfcmt's way)."""
    return f"<!-- tfreview:app={_safe(app)};env={_safe(env)} -->"


def _safe(text: str) -> str:
    return text.replace("-->", "").replace(";", "_")


def status_text(progress: ApprovalProgress) -> str:
    if progress.rejected_by:
        return "rejected by " + ", ".join(progress.rejected_by)
    who = f" (by {', '.join(progress.approved_by)})" if progress.approved_by else ""
    return f"{len(progress.approved_by)} of {progress.required} approval(s){who}"


def next_command(record: dict, progress: ApprovalProgress) -> str:
    """What the reader runs next: approve, apply, or (rejected) plan again."""
    if progress.rejected_by:
        return f"tfreview plan --app {record['app']} --version {record['version']} --env {record['env']}"
    return f"tfreview {'apply' if progress.enough else 'approve'} {record['id']}"


def _md(text: str) -> str:
    """Untrusted text in a table cell: no HTML, no Markdown syntax, control characters shown escaped."""
    return visible(md_text(text))


def _code(text: str) -> str:
    """A code span that cannot be broken out of (names are checked; this is belt and braces)."""
    return "`" + visible(text).replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


def render_head(record: dict, review: Review, progress: ApprovalProgress) -> str:
    """The lines a reviewer reads first in the pull request."""
    kind = review.classification.kind
    return "\n".join([
        f"### tfreview: {_md(record['app'])} {_md(record['version'])} → {_md(record['env'])}",
        "",
        "| | |",
        "|---|---|",
        f"| plan id | {_code(record['id'])} |",
        f"| release kind | **{_md(kind)}** |",
        f"| release | {_md(review.classification.to_json()['headline'])} |",
        f"| changes | {_md(review.counts.summary_line())} |",
        f"| approvals | {_md(status_text(progress))} |",
        f"| planned by | {_md(record.get('planner', ''))} at {_md(record.get('created_at', ''))} |",
        "",
        f"Next: {_code(next_command(record, progress))}",
        "",
    ]) + "\n"


def render_comment(record: dict, review: Review, progress: ApprovalProgress, *, max_chars: int = MAX_CHARS) -> str:
    """Marker + head + the Markdown review, at most `max_chars` characters in all."""
    from tfreview.render.checks import markdown_section

    head = (marker(record["app"], record["env"]) + "\n" + render_head(record, review, progress)
            + markdown_section(record.get("policy_checks")))
    return head + render_markdown(review, max_chars=max_chars - len(head))


def render_summary(record: dict, review: Review, progress: ApprovalProgress) -> str:
    """The same text for a CI job summary (GitHub's $GITHUB_STEP_SUMMARY): no marker needed there."""
    from tfreview.render.checks import markdown_section

    return render_head(record, review, progress) + markdown_section(record.get("policy_checks")) + render_markdown(review)
