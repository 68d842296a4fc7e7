"""Terminal renderer (rich): summary, risk panel, ECS panel, then per-resource diffs.

Returns renderables; the CLI owns the console (colour, pager, NO_COLOR). `render_summary` is the cheap part
(no per-resource trees are built), used alone for very large plans.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.panel import Panel
from rich.text import Text

from tfreview.plan.pause import paused_gc
from tfreview.plan.review import Review
from tfreview.render.lines import Line, node_lines, node_text, resource_lines, resource_text, select, summary_lines

# Rows of the risk and ECS panels; larger plans get a tally (the other formats list everything).
MAX_ROWS = 50
ACTION_STYLES = {
    "create": "green",
    "delete": "red",
    "update": "yellow",
    "replace": "bold magenta",
    "replace-create-first": "bold magenta",
    "replace-forget": "bold magenta",
    "read": "cyan",
    "forget": "blue",
    "no-op": "",
    "note": "dim",
    "header": "bold",
}
_STYLE = {name: Style.parse(spec) if spec else Style() for name, spec in ACTION_STYLES.items()}
_PLAIN = Style()
_BOLD = Style(bold=True)
LEVEL_STYLES = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan", "info": "dim"}
KIND_STYLES = {
    "no-changes": "green",
    "deploy-to-idle": "green",
    "traffic-shift": "cyan",
    "rolling-deploy": "green",
    "infrastructure": "yellow",
    "unsafe": "bold red",
}


def render_summary(review: Review) -> RenderableType:
    """Summary panel + risk panel + ECS panel (+ failing checks, deferred changes): what to read first."""
    parts: list[RenderableType] = []
    head = Text()
    lines = summary_lines(review)
    head.append(lines[0] + "\n", style="bold")
    for line in lines[1:]:
        style = KIND_STYLES.get(review.classification.kind, "") if line.startswith("Release kind") else ""
        head.append(line + "\n", style=style)
    for reason in review.classification.reasons[:8]:
        head.append(f"  - {reason}\n", style="dim")
    head.rstrip()
    parts.append(Panel(head, title="Plan", title_align="left"))
    if review.risks:
        # One small Text per flag rather than a rich Table: as readable, and cheap on very large plans.
        shown = review.risks[:MAX_ROWS]
        rows = []
        for flag in shown:
            row = Text(f"{flag.level:<8} ", style=LEVEL_STYLES.get(flag.level, ""))
            row.append(flag.address, style="bold")
            row.append(f"\n         {flag.reason}")
            rows.append(row)
        table = Group(*rows)
        body: RenderableType = table
        if len(review.risks) > len(shown):
            levels = Counter(flag.level for flag in review.risks)
            tally = ", ".join(f"{levels[level]} {level}" for level in LEVEL_STYLES if levels[level])
            body = Group(
                table,
                Text(f"... and {len(review.risks) - len(shown)} more risk flags (all: {tally}; "
                     "`--format json` lists every one)", style="dim"),
            )
        parts.append(Panel(body, title=f"Risks ({len(review.risks)})", title_align="left", border_style="red"))
    if review.ecs:
        texts = []
        for story in review.ecs[:MAX_ROWS]:
            text = Text()
            texts.append(text)
            text.append(f"{story.family}{story.revision_note}: ", style="bold")
            text.append(story.verdict + "\n")
            for warning in story.flags:
                text.append(f"  ! {warning}\n", style="yellow")
            for svc in story.services[:5]:
                text.append(f"  → {svc.address}: {svc.triggers}\n", style="dim")
            if len(story.services) > 5:
                text.append(f"  → ... and {len(story.services) - 5} more services\n", style="dim")
            text.rstrip()
        if len(review.ecs) > MAX_ROWS:
            texts.append(Text(f"... and {len(review.ecs) - MAX_ROWS} more task definitions", style="dim"))
        parts.append(Panel(Group(*texts), title="ECS revisions", title_align="left", border_style="cyan"))
    failing = review.failing_checks
    if failing:
        text = Text()
        for check in failing:
            text.append(f"{check.address}: {check.status}\n", style="red")
            for problem in check.problems:
                text.append(f"  {problem}\n")
        text.rstrip()
        parts.append(Panel(text, title="Failing checks", title_align="left", border_style="red"))
    if review.deferred:
        text = Text("\n".join(f"{a}: {r}" for a, r in review.deferred))
        parts.append(Panel(text, title="Deferred changes", title_align="left"))
    return Group(*parts)


class DiffBlock:
    """Diff lines as a rich renderable that yields segments directly: no measuring, no word wrapping, so a
    plan with thousands of changes prints quickly. Lines wider than the console are folded (never cropped);
    with `soft_wrap` (no_wrap) they are left whole, as Terraform prints them."""

    def __init__(self, lines: list[Line]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width, 20)
        fold = not options.no_wrap
        newline = Segment.line()
        for line in self.lines:
            if line.style == "blank":
                yield newline
                continue
            indent = "    " * line.depth
            if line.style == "header":
                prefix, prefix_style, text_style = f"{indent}  ", _BOLD, _BOLD
            else:
                prefix = f"{indent}{line.symbol:>3} "
                prefix_style = _STYLE.get(line.style, _PLAIN)
                text_style = _PLAIN if line.style in ("no-op", "update") else prefix_style
            text = line.text
            yield Segment(prefix, prefix_style)
            room = width - len(prefix)
            if fold and room > 10 and cell_len(text) > room:
                # Hard fold, continuation lines aligned under the text.
                pad = " " * len(prefix)
                first = True
                for chunk in _chunks(text, room):
                    if not first:
                        yield newline
                        yield Segment(pad)
                    yield Segment(chunk, text_style)
                    first = False
            else:
                yield Segment(text, text_style)
            yield newline


def _chunks(text: str, room: int) -> list[str]:
    if text.isascii():
        return [text[i:i + room] for i in range(0, len(text), room)]
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        w = cell_len(char)
        if used + w > room and current:
            chunks.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += w
    if current:
        chunks.append("".join(current))
    return chunks


def render_resources(
    review: Review,
    *,
    full: bool = False,
    actions: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    addresses: Sequence[str] | None = None,
) -> RenderableType:
    """Per-resource diffs (Terraform-like), drift apart, then output changes."""
    parts: list[RenderableType] = []
    chosen = select(review, actions=actions, types=types, addresses=addresses)
    # One Text per resource: rich wraps and measures small texts much faster than one huge one.
    blank = Line(0, "", "", "blank")
    if review.drift:
        parts.append(Text("Objects changed outside of Terraform (drift, not part of this plan's actions):\n", style="bold yellow"))
        parts.append(DiffBlock([line for res in review.drift for line in (*resource_lines(res, full=full), blank)]))
    if chosen:
        parts.append(Text("Resource changes:\n", style="bold"))
        parts.append(DiffBlock([line for res in chosen for line in (*resource_lines(res, full=full), blank)]))
    elif review.changed_resources:
        parts.append(Text("No resource matches the filters.\n", style="dim"))
    outputs = review.changed_outputs
    if outputs:
        parts.append(Text("Changes to Outputs:", style="bold"))
        parts.append(DiffBlock([line for out in outputs for line in node_lines(out.tree, key=out.name, full=full, depth=0)]))
        parts.append(Text(""))
    return Group(*parts)


def resources_plain(
    review: Review,
    *,
    full: bool = False,
    actions: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    addresses: Sequence[str] | None = None,
) -> str:
    """`render_resources` as plain text (what a console without colour prints), written without rich: the
    same characters, an order of magnitude faster on plans with thousands of changes. One pass: the trees it
    builds are not kept (`ResourceDiff.tree_for(keep=False)`), each is freed once written."""
    chunks: list[str] = []
    chosen = select(review, actions=actions, types=types, addresses=addresses)
    if review.drift:
        chunks.append("Objects changed outside of Terraform (drift, not part of this plan's actions):\n\n")
        chunks.extend(resource_text(res, full=full, keep=False) + "\n\n" for res in review.drift)
    if chosen:
        chunks.append("Resource changes:\n\n")
        chunks.extend(resource_text(res, full=full, keep=False) + "\n\n" for res in chosen)
    elif review.changed_resources:
        chunks.append("No resource matches the filters.\n\n")
    outputs = review.changed_outputs
    if outputs:
        chunks.append("Changes to Outputs:\n")
        chunks.extend(node_text(out.tree, key=out.name, full=full, depth=0) + "\n" for out in outputs)
        chunks.append("\n")
    return "".join(chunks)


def render_terminal(
    review: Review,
    *,
    full: bool = False,
    actions: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    addresses: Sequence[str] | None = None,
    summary_only: bool = False,
) -> RenderableType:
    """The whole review for a console: summary, risks, ECS story, then (unless summary_only) the diffs.
    `full` shows unchanged attributes too; filters narrow the per-resource diffs (see `lines.select`)."""
    with paused_gc():
        summary = render_summary(review)
        if summary_only:
            return summary
        return Group(summary, render_resources(review, full=full, actions=actions, types=types, addresses=addresses))
