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
    parts.append(Section(head, title="Plan", title_align="left"))
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
        parts.append(Section(body, title=f"Risks ({len(review.risks)})", title_align="left", border_style="red"))
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
        parts.append(Section(Group(*texts), title="ECS revisions", title_align="left", border_style="cyan"))
    failing = review.failing_checks
    if failing:
        text = Text()
        for check in failing:
            text.append(f"{check.address}: {check.status}\n", style="red")
            for problem in check.problems:
                text.append(f"  {problem}\n")
        text.rstrip()
        parts.append(Section(text, title="Failing checks", title_align="left", border_style="red"))
    if review.deferred:
        text = Text("\n".join(f"{a}: {r}" for a, r in review.deferred))
        parts.append(Section(text, title="Deferred changes", title_align="left"))
    return Group(*parts)


class DiffBlock:
    """Diff lines as a rich renderable that yields segments directly: no measuring, no word wrapping, so a
    plan with thousands of changes prints quickly. A line wider than the console runs on, as Terraform prints
    it: never split, so an ARN, a JSON string or `(known after apply)` reads, copies and greps whole (the console
    must print it uncropped: `crop=False`; the terminal folds it only on screen)."""

    def __init__(self, lines: list[Line]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
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
            yield Segment(prefix, prefix_style)
            yield Segment(line.text, text_style)
            yield newline


def wrap_at_spaces(text: Text, width: int) -> list[Text]:
    """The lines of `text` wrapped at spaces to `width` cells, each continuation indented like its line's text
    (its leading spaces and its bullet, `- `, `→ `, `! `; two spaces for a line without any). A word longer than
    the room is never split: it runs on, on a line of its own."""
    out: list[Text] = []
    for line in text.split("\n", allow_blank=True):
        plain = line.plain
        body = plain.lstrip(" ")
        hang = len(plain) - len(body)
        if body[:2] in ("- ", "→ ", "! "):
            hang += 2
        hang = hang or 2
        if cell_len(plain) <= width or width - hang < 8:
            out.append(line)
            continue
        head, rest = line[:hang], line[hang:]
        pieces = _words(rest, width - hang)
        out.append(Text.assemble(head, pieces[0]))
        out.extend(Text.assemble(" " * hang, piece) for piece in pieces[1:])
    return out


def _words(text: Text, room: int) -> list[Text]:
    """`text` cut at spaces into pieces of at most `room` cells (a longer word is a piece of its own)."""
    plain = text.plain
    pieces: list[Text] = []
    start = 0
    while cell_len(plain[start:]) > room:
        cut = plain.rfind(" ", start, start + room + 1)
        if cut <= start:  # the first word does not fit: it runs on whole
            cut = plain.find(" ", start + 1)
            if cut < 0:
                break
        pieces.append(text[start:cut])
        start = cut + 1
        while start < len(plain) and plain[start] == " ":
            start += 1
    pieces.append(text[start:])
    return pieces


class Section(Panel):
    """A panel whose text is wrapped at spaces, never inside a word (`wrap_at_spaces`). When a word is wider than
    the box, the box opens on the right and that line runs on (the console prints it uncropped) rather than
    splitting the word or cropping it. `cli._unboxed` reads it as a Panel (title over body) for pipes."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width, 20)
        inner = width - 4
        border = console.get_style(self.border_style) if isinstance(self.border_style, str) else self.border_style
        lines: list[Text] = []
        for part in _texts(self.renderable):
            lines.extend(wrap_at_spaces(part, inner))
        closed = all(cell_len(line.plain) <= inner for line in lines)
        title = self.title if isinstance(self.title, str) else str(self.title or "")
        top = f"╭─ {title} " if title else "╭"
        yield Segment(top + "─" * max(width - cell_len(top) - (1 if closed else 0), 0) + ("╮" if closed else ""), border)
        yield Segment.line()
        for line in lines:
            yield Segment("│ ", border)
            yield from line.render(console)
            if closed:
                yield Segment(" " * (inner - cell_len(line.plain)) + " ")
                yield Segment("│", border)
            yield Segment.line()
        yield Segment("╰" + "─" * (width - 2) + ("╯" if closed else "─"), border)
        yield Segment.line()


class Wrapped:
    """Texts wrapped at spaces to the console's width (`wrap_at_spaces`), without a box: a section's body in
    piped output. Lines with a word wider than the console run on (print with `crop=False`)."""

    def __init__(self, renderable: RenderableType) -> None:
        self.texts = _texts(renderable)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width, 20)
        for part in self.texts:
            for line in wrap_at_spaces(part, width):
                yield from line.render(console)
                yield Segment.line()


def unboxed(panel: Panel) -> RenderableType:
    """A section for pipes and logs: its title as a heading over its body (no box drawing), wrapped at spaces."""
    title = panel.title if isinstance(panel.title, str) else str(panel.title or "")
    return Group(Text(title, style="bold"), Wrapped(panel.renderable), Text(""))


def _texts(renderable: RenderableType) -> list[Text]:
    """The Texts of a section's body (a Text or a Group of them; anything else as its string)."""
    if isinstance(renderable, Text):
        return [renderable]
    if isinstance(renderable, Group):
        return [t for r in renderable.renderables for t in _texts(r)]
    return [Text(str(renderable))]


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
