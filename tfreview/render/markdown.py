"""Markdown renderer for pull-request comments: at most 65,536 characters (GitHub's comment limit), with an
explicit "truncated: N resources not shown" notice when the per-resource diffs do not fit."""
from __future__ import annotations

import re
from html import escape
from typing import Sequence

from tfreview.plan.review import Review
from tfreview.render.lines import Line, node_lines, resource_lines, select, summary_lines

MAX_CHARS = 65_536
_NOTICE_RESERVE = 200


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _fence(body: str, lang: str = "diff") -> str:
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}\n"


def _diff_text(lines: list[Line]) -> str:
    # GitHub colours lines starting with + and -; "~" becomes "!" as other plan commenters do.
    out = []
    for line in lines:
        indent = "    " * line.depth
        if line.style == "header":
            out.append(f"  {indent}{line.text}")
            continue
        symbol = line.symbol.strip() or " "
        lead = {"~": "!", "-/+": "!", "+/-": "!", "<=": "#", ".": "#"}.get(symbol, symbol)
        out.append(f"{lead} {indent}{line.text}")
    return "\n".join(out)


def render_markdown(
    review: Review,
    *,
    full: bool = False,
    actions: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    addresses: Sequence[str] | None = None,
    max_chars: int = MAX_CHARS,
) -> str:
    """The review as GitHub-flavoured Markdown, never longer than `max_chars` characters."""
    head: list[str] = ["## Terraform plan review", ""]
    summary = summary_lines(review)
    head.append(f"**{summary[0]}**  ")
    head.extend(f"{line}  " for line in summary[1:])
    for reason in review.classification.reasons[:8]:
        head.append(f"- {reason}")
    head.append("")
    if review.risks:
        head += [f"### Risks ({len(review.risks)})", "", "| Level | Resource | Why |", "|---|---|---|"]
        for flag in review.risks[:100]:
            head.append(f"| {flag.level} | {_cell(_code(flag.address))} | {_cell(flag.reason)} |")
        if len(review.risks) > 100:
            head.append(f"| | | ... and {len(review.risks) - 100} more |")
        head.append("")
    if review.ecs:
        head += ["### ECS revisions", ""]
        for story in review.ecs[:100]:
            head.append(f"- **{_cell(story.family)}**{story.revision_note}: {_cell(story.verdict)}")
            for flag in story.flags:
                head.append(f"  - ⚠️ {_cell(flag)}")
            for svc in story.services:
                head.append(f"  - → {_code(svc.address)}: {_cell(svc.triggers)}")
        if len(review.ecs) > 100:
            head.append(f"- ... and {len(review.ecs) - 100} more task definitions")
        head.append("")
    failing = review.failing_checks
    if failing:
        head += ["### Failing checks", ""]
        for check in failing:
            head.append(f"- {_code(check.address)}: {check.status}" + (f" — {_cell('; '.join(check.problems))}" if check.problems else ""))
        head.append("")
    if review.deferred:
        head += ["### Deferred changes", ""] + [f"- {_code(a)}: {_cell(r)}" for a, r in review.deferred] + [""]
    text = "\n".join(head) + "\n"

    chosen = select(review, actions=actions, types=types, addresses=addresses)

    def sections():
        """(is_resource, text) in reading order, built lazily: nothing is rendered past the budget."""
        if review.drift:
            yield False, "### Changed outside of Terraform (drift)\n\n"
            for res in review.drift:
                yield False, _resource_block(res, full)
        if chosen:
            yield False, f"### Resource changes ({len(chosen)})\n\n"
        for res in chosen:
            yield True, _resource_block(res, full)

    outputs = review.changed_outputs
    tail = ""
    if outputs:
        body = "\n".join(_diff_text(node_lines(o.tree, key=o.name, full=full)) for o in outputs)
        tail = "### Changes to outputs\n\n" + _fence(body)

    budget = max_chars - _NOTICE_RESERVE
    shown_resources = 0
    parts = [text]
    size = len(text)
    for is_resource, section in sections():
        if size + len(section) > budget:
            break
        parts.append(section)
        size += len(section)
        shown_resources += is_resource
    else:
        if tail and size + len(tail) <= budget:
            parts.append(tail)
            tail = ""
    text = "".join(parts)
    missing = len(chosen) - shown_resources
    if missing > 0 or tail:
        notice = f"\n> **truncated: {missing} resources not shown**"
        if tail:
            notice += " (output changes not shown)"
        notice += " — run `tfreview show` for the full review.\n"
        text += notice
    return text[:max_chars]


def _resource_block(res, full: bool) -> str:
    lines = resource_lines(res, full=full)
    summary = lines[0].text.lstrip("# ")  # the headline
    return f"<details><summary>{escape(summary, quote=False)}</summary>\n\n{_fence(_diff_text(lines[1:]))}\n</details>\n\n"
