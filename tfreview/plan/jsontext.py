"""Decoding JSON from plans (the document, and JSON strings inside it), never deeper than `MAX_NESTING` levels.

`orjson.loads` accepts 1,024 levels, but `orjson.dumps` stops at 255 and Python's recursion at 1,000 frames, so
a hostile document nesting deeper would crash whatever walks it later (redaction, the diff, the JSON report).
Terraform's values stay far below this; what nests deeper is refused here, at the edge, in one place.
"""
from __future__ import annotations

from typing import Any

import orjson

MAX_NESTING = 255  # orjson.dumps' own limit: whatever `loads` returns can be written again


class TooDeep(orjson.JSONDecodeError):
    """A JSON document nesting deeper than `MAX_NESTING` levels (a JSONDecodeError: callers that treat invalid
    JSON text as a plain string do the same with this)."""

    def __init__(self) -> None:
        ValueError.__init__(self, f"its values nest deeper than {MAX_NESTING} levels, which no Terraform plan does")


def loads(text: bytes | bytearray | memoryview | str) -> Any:
    """`orjson.loads(text)`, raising `TooDeep` when the value nests deeper than `MAX_NESTING` levels."""
    value = orjson.loads(text)
    if not isinstance(value, (dict, list)) or not _may_nest(text):
        return value
    try:
        orjson.dumps(value)  # a walk at C speed (about 3 ms per MB), which stops at 255 levels
    except orjson.JSONEncodeError as exc:
        if "Recursion limit" in str(exc):
            raise TooDeep() from None
        raise
    return value


def _may_nest(text: bytes | bytearray | memoryview | str) -> bool:
    """Whether `text` holds enough brackets to nest `MAX_NESTING` levels (cheap on the small JSON strings of
    attributes, most of which cannot; a big document is simply checked)."""
    if len(text) <= 2 * MAX_NESTING:
        return False
    if isinstance(text, memoryview) or len(text) > 1 << 20:
        return True
    if isinstance(text, str):
        return text.count("{") + text.count("[") > MAX_NESTING
    return text.count(b"{") + text.count(b"[") > MAX_NESTING
