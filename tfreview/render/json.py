"""JSON renderer: `Review.to_json()` (documented, versioned schema, `schema_version` 1) as indented text."""
from __future__ import annotations

from typing import Sequence

import orjson

from tfreview.plan.review import Review
from tfreview.render.lines import select


def render_json(
    review: Review,
    *,
    full: bool = False,
    actions: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    addresses: Sequence[str] | None = None,
) -> str:
    """The review as JSON text; filters narrow the `resources` list like in the other formats."""
    chosen = select(review, actions=actions, types=types, addresses=addresses)
    data = review.to_json(full=full, resources=chosen)
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
