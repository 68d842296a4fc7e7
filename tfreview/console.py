"""The CLI's rich console: everything it prints passes `tfreview.text.visible` first.

Strings are made visible before rich measures them (tables and panels keep their widths); `Text` objects are
copied with their styles; segments yielded directly by renderables (diff blocks) are made visible on the way
out. rich's own control segments (cursor moves of the live display) are left alone.
"""
from __future__ import annotations

import errno
import threading
from typing import Any, Iterable, Iterator

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Text

from tfreview.text import UNSAFE_IN_LINES, visible


class SafeConsole(Console):
    """A rich Console that never writes a terminal control sequence taken from the text it prints. Console markup
    is off by default: `[link=...]` in a name would otherwise become an OSC 8 hyperlink written by rich itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        super().__init__(*args, **kwargs)

    def on_broken_pipe(self) -> None:
        """A closed pipe is reported in one line by the CLI (rich would exit 1 silently)."""
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(visible(text), **kwargs)

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        if isinstance(renderable, Text) and UNSAFE_IN_LINES.search(renderable.plain):
            renderable = _visible_text(renderable)
        if getattr(_outermost, "active", False):  # the outermost render() checks every segment once, on the way out
            return super().render(renderable, options)
        return self._visible_segments(renderable, options)

    def _visible_segments(self, renderable: RenderableType, options: ConsoleOptions | None) -> Iterator[Segment]:
        _outermost.active = True
        try:
            for segment in super().render(renderable, options):
                if not segment.control and UNSAFE_IN_LINES.search(segment.text):
                    segment = Segment(visible(segment.text), segment.style, None)
                yield segment
        finally:
            _outermost.active = False


_outermost = threading.local()  # per thread: rich's live display renders from its own thread


def _visible_text(text: Text) -> Text:
    """A copy of `text` with unsafe characters made visible, each keeping the styles it had."""
    plain = text.plain
    cuts = sorted({i for m in UNSAFE_IN_LINES.finditer(plain) for i in (m.start(), m.end())})
    out = text.blank_copy()
    for part in text.divide(cuts):
        if len(part) == 1 and UNSAFE_IN_LINES.match(part.plain):
            escaped = Text(visible(part.plain), style=part.style)
            for span in part.spans:
                escaped.stylize(span.style)
            part = escaped
        out.append_text(part)
    return out
