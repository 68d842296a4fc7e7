"""Decoding JSON that tfreview did not just write (plans, JSON strings inside them, store files), never deeper
than `MAX_NESTING` levels.

`orjson.loads` accepts 1,024 levels and `json.loads` about 1,000, but `orjson.dumps` stops at 255 and Python's
recursion at 1,000 frames, so a hostile document nesting deeper crashed whatever walked it later (redaction, the
diff, canonical JSON for a signature check). Neither Terraform nor tfreview writes anything close; deeper is
refused here, at the edge, as `TooDeep`: a `ValueError` (and a JSONDecodeError), so every caller that handles
text that is not JSON handles this too.
"""
from __future__ import annotations

import json
from typing import Any

import orjson

MAX_NESTING = 255  # orjson.dumps' own limit: whatever `loads` returns can be written again


class TooDeep(orjson.JSONDecodeError):
    """A JSON document nesting deeper than `MAX_NESTING` levels (a JSONDecodeError: callers that treat invalid
    JSON text as a plain string do the same with this)."""

    def __init__(self) -> None:
        ValueError.__init__(self, f"nests deeper than {MAX_NESTING} levels")


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


def loads_std(data: bytes | str) -> Any:
    """`json.loads(data)` (the standard library's values: the store's records are read as they were written),
    raising `TooDeep` when the value nests deeper than `MAX_NESTING` levels."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise TooDeep() from None
    if isinstance(value, (dict, list)) and _may_nest(data) and _deeper_than(value, MAX_NESTING):
        raise TooDeep()
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests more than `limit` levels of objects and lists (a loop, not a recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


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
