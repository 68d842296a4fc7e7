"""Renderers over the same review: terminal (rich), text (terminal without colour), markdown, html, json.

They only walk the sanitized review; adding a format never touches the diff. Their output passes
`tfreview.text` here, the one edge: control characters from plans are shown escaped, never written raw.
"""
from __future__ import annotations

import io
from typing import Sequence

from tfreview import native

native.use(__path__, __name__)  # compiled `lines`, when built and fresh (tfreview/native.py)

from tfreview.errors import BadInput
from tfreview.plan.pause import paused_gc
from tfreview.plan.review import Review

FORMATS = ("text", "markdown", "html", "json")
TEXT_WIDTH = 120


def render_text(review: Review, *, width: int = TEXT_WIDTH, **options) -> str:
    """The terminal rendering captured as plain text (no colour, no control codes), `width` columns wide."""
    with paused_gc():  # the per-resource trees are built here (lazily): millions of small, acyclic objects
        return _render_text(review, width, options)


def _render_text(review: Review, width: int, options: dict) -> str:
    from rich.console import Console

    from tfreview.render.terminal import render_summary, resources_plain

    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, color_system=None, force_terminal=False, no_color=True, highlight=False,
        emoji=False, markup=False, legacy_windows=False,
    )
    summary_only = options.pop("summary_only", False)
    console.print(render_summary(review), crop=False)  # a word wider than the box runs on, never split
    if summary_only:
        return buffer.getvalue()
    # Diff lines are never folded (addresses and values stay greppable) and carry no colour here, so they are
    # written as plain text: the same characters the console would print, much faster.
    return buffer.getvalue() + resources_plain(review, **options)


def render(
    review: Review,
    fmt: str,
    *,
    full: bool = False,
    actions: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    addresses: Sequence[str] | None = None,
) -> str:
    """Render `review` as text | markdown | html | json (see each module); raises BadInput for other formats."""
    with paused_gc():
        return _render(review, fmt, {"full": full, "actions": actions, "types": types, "addresses": addresses})


def _render(review: Review, fmt: str, options: dict) -> str:
    from tfreview.text import json_safe, visible

    if fmt == "text":
        return visible(render_text(review, **options))
    if fmt == "markdown":
        from tfreview.render.markdown import render_markdown

        return render_markdown(review, **options)  # escapes as it goes: its length limit counts the escapes
    if fmt == "html":
        from tfreview.render.html import render_html

        return visible(render_html(review, **options))
    if fmt == "json":
        from tfreview.render.json import render_json

        return json_safe(render_json(review, **options))
    raise BadInput(f"unknown format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
