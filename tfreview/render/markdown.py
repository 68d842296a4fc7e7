"""Markdown renderer for pull-request comments: at most 65,536 characters (GitHub's comment limit).

When the per-resource diffs do not fit, the header, the counts, the risk table and a compact list of every
changed address (destroys and replaces first, each address clipped) still come first; only diff bodies are
dropped, with an explicit "truncated: N resources not shown" notice. Untrusted text is HTML- and
Markdown-escaped outside code (`_cell`), code spans and fences cannot be broken out of, and control characters
are shown escaped (`tfreview.text.visible`)."""
from __future__ import annotations

import re
from html import escape
from typing import Sequence

from tfreview.plan.review import ResourceDiff, Review
from tfreview.render.lines import Line, node_lines, resource_lines, select, summary_lines
from tfreview.text import visible

MAX_CHARS = 65_536
_NOTICE_RESERVE = 200
CLIP = 200  # characters of one address or reason in the header and the compact list
# The compact list's order: what a reviewer must not miss first.
_ORDER = ("delete", "replace", "replace-create-first", "replace-forget", "forget", "update", "create", "read")
# Markdown syntax in untrusted text; an underscore inside a word starts no emphasis (GFM) and stays readable.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~#!]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")


def _clip(text: str) -> str:
    return text if len(text) <= CLIP else f"{text[:CLIP]}…({len(text) - CLIP} more characters)"


def md_text(text: str) -> str:
    """Untrusted text in Markdown prose, lists and table cells: no HTML, no Markdown syntax, one line."""
    return _MD_SPECIAL.sub(r"\\\1", escape(text.replace("\r", " ").replace("\n", " "), quote=False))


def _cell(text: str) -> str:
    return md_text(_clip(text))


def _code(text: str, in_table: bool = False) -> str:
    """Untrusted text as an inline code span (no HTML is read inside it); backticks cannot close it early, nor
    (`in_table`) a pipe end the table cell."""
    code = "`" + _clip(text).replace("`", "'").replace("\r", " ").replace("\n", " ") + "`"
    return code.replace("|", "\\|") if in_table else code


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
    core, rest = visible(_head(review)), visible(_details(review))
    text = core + rest
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
        tail = visible("### Changes to outputs\n\n" + _fence(body))

    budget = max_chars - _NOTICE_RESERVE
    shown: list[tuple[bool, str]] = []
    size = len(text)
    for is_resource, section in sections():
        section = visible(section)
        if size + len(section) > budget:
            break
        shown.append((is_resource, section))
        size += len(section)
    else:
        if not tail or size + len(tail) <= budget:
            return text + "".join(part for _, part in shown) + tail
    # Too long: the counts and risks, then every changed address (compact), then what else fits: the ECS story,
    # checks and deferred changes, then diffs.
    compact = visible(_compact_list(chosen, budget - len(core)))
    text = core + compact
    if len(text) + len(rest) <= budget:
        text += rest
    elif rest:
        text += "_ECS revisions, failing checks and deferred changes not shown: too long for one comment._\n\n"
    shown_size = sum(len(part) for _, part in shown)
    while shown and len(text) + shown_size > budget:
        shown_size -= len(shown.pop()[1])
    missing = len(chosen) - sum(is_resource for is_resource, _ in shown)
    notice = f"\n> **truncated: {missing} resources not shown**"
    if tail:
        notice += " (output changes not shown)"
    notice += " — run `tfreview show` for the full review.\n"
    return (text + "".join(part for _, part in shown) + notice)[:max_chars]


def _head(review: Review) -> str:
    """Counts, release kind and risks: what always comes first and survives."""
    head: list[str] = ["## Terraform plan review", ""]
    summary = [_cell(line) for line in summary_lines(review)]
    head.append(f"**{summary[0]}**  ")
    head.extend(f"{line}  " for line in summary[1:])
    for reason in review.classification.reasons[:8]:
        head.append(f"- {_cell(reason)}")
    head.append("")
    if review.risks:
        head += [f"### Risks ({len(review.risks)})", "", "| Level | Resource | Why |", "|---|---|---|"]
        for flag in review.risks[:100]:
            head.append(f"| {_cell(flag.level)} | {_code(flag.address, in_table=True)} | {_cell(flag.reason)} |")
        if len(review.risks) > 100:
            head.append(f"| | | ... and {len(review.risks) - 100} more |")
        head.append("")
    return "\n".join(head) + "\n"


def _details(review: Review) -> str:
    """ECS revisions, failing checks, deferred changes: after the risks (after every address when cut)."""
    head: list[str] = []
    if review.ecs:
        head += ["### ECS revisions", ""]
        for story in review.ecs[:100]:
            head.append(f"- **{_cell(story.family)}**{_cell(story.revision_note)}: {_cell(story.verdict)}")
            for warning in story.flags:
                head.append(f"  - ⚠️ {_cell(warning)}")
            for svc in story.services:
                head.append(f"  - → {_code(svc.address)}: {_cell(svc.triggers)}")
        if len(review.ecs) > 100:
            head.append(f"- ... and {len(review.ecs) - 100} more task definitions")
        head.append("")
    failing = review.failing_checks
    if failing:
        head += ["### Failing checks", ""]
        for check in failing:
            problems = f" — {_cell('; '.join(check.problems))}" if check.problems else ""
            head.append(f"- {_code(check.address)}: {_cell(check.status)}{problems}")
        head.append("")
    if review.deferred:
        head += ["### Deferred changes", ""] + [f"- {_code(a)}: {_cell(r)}" for a, r in review.deferred] + [""]
    return "\n".join(head) + "\n" if head else ""


def _compact_list(chosen: Sequence[ResourceDiff], room: int) -> str:
    """Every changed address, grouped by action (destroys and replaces first), in at most `room` characters:
    when even that does not fit, the later groups say how many they hold."""
    groups: dict[str, list[str]] = {}
    for res in chosen:
        groups.setdefault(res.action, []).append(res.address)
    order = sorted(groups, key=lambda a: (_ORDER.index(a) if a in _ORDER else len(_ORDER), a))
    out = f"### Every changed resource ({len(chosen)})\n\n"
    for action in order:
        names = groups[action]
        line = f"- **{action}** ({len(names)}):"
        listed = 0
        for name in names:
            item = f" {_code(name)},"
            if len(out) + len(line) + len(item) + 40 > room:
                break
            line += item
            listed += 1
        line = line.rstrip(",")
        if listed < len(names):
            line += f" … and {len(names) - listed} more"
        out += line + "\n"
    return out + "\n"


def _resource_block(res: ResourceDiff, full: bool) -> str:
    lines = resource_lines(res, full=full)
    summary = lines[0].text.lstrip("# ")  # the headline
    return f"<details><summary>{escape(summary, quote=False)}</summary>\n\n{_fence(_diff_text(lines[1:]))}\n</details>\n\n"
