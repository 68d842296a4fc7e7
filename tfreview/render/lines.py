"""Shared walk of the diff tree into Terraform-like lines, so every text-ish renderer frames values the same way.

Parents frame their children (indent, key, action symbol); a child renders only its value. Values arrive
already sanitized (sensitive and unknown are `Marker`s), so this walk cannot leak what the tree never held.
"""
from __future__ import annotations

import fnmatch
from functools import lru_cache
from typing import Any, Callable, NamedTuple, Sequence

import orjson

from tfreview.errors import BadInput
from tfreview.plan.diff import Node
from tfreview.plan.markers import Marker
from tfreview.plan.model import ACTION_WORDS
from tfreview.plan.options import options_line
from tfreview.plan.review import ResourceDiff, Review

SYMBOLS = {
    "create": "+",
    "delete": "-",
    "update": "~",
    "no-op": " ",
    "replace": "-/+",
    "replace-create-first": "+/-",
    "replace-forget": "+/.",
    "read": "<=",
    "forget": ".",
}
_HEADLINES = {
    "create": "will be created",
    "delete": "will be destroyed",
    "update": "will be updated in-place",
    "replace": "must be replaced",
    "replace-create-first": "must be replaced (create before destroy)",
    "replace-forget": "must be replaced, the old object forgotten",
    "read": "will be read during apply",
    "forget": "will no longer be managed by Terraform",
    "no-op": "has no changes",
}


class Line(NamedTuple):
    """One rendered line: `symbol` (+ - ~ space ...), `depth` of indentation, `text`, and `style` (the action
    that colours it, or "note" / "header"). Immutable; a NamedTuple: cheap to make by the hundred thousand."""

    depth: int
    symbol: str
    text: str
    style: str


def headline(res: ResourceDiff) -> str:
    """Terraform's comment line for a resource: `# aws_x.y will be updated in-place` (+ move/import/reason)."""
    words = _HEADLINES.get(res.action, res.action)
    if res.action == "no-op" and res.moved:
        words = f"has moved to {res.address}"
        text = f"# {res.previous_address} {words}"
    else:
        subject = res.address + (f" (deposed object {res.deposed})" if res.deposed else "")
        text = f"# {subject} {words}"
        if res.moved:
            text += f" (moved from {res.previous_address})"
    if res.importing:
        text += " (imported" + (f" from id {format_value(res.importing_id)}" if res.importing_id else "") + ")"
    if res.reason:
        text += f" because {res.reason}"
    if res.is_drift:
        text = f"# {res.address} has changed outside of Terraform ({res.action})"
    return text


def format_value(value: Any) -> str:
    """A primitive as Terraform prints it: strings quoted, null, true/false; markers verbatim."""
    if type(value) is str:  # the most common value first (a `Marker` is a subclass: not this branch)
        return orjson.dumps(value).decode()
    if isinstance(value, Marker):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


@lru_cache(maxsize=8192, typed=True)
def _label(key: Any) -> str:
    """`name = ` before a child's value (`""` for list elements and JSON roots); keys repeat across resources."""
    if key is None or isinstance(key, int):
        return ""
    return _name_text(str(key)) + " = "


def _name_text(text: str) -> str:
    """An attribute name as Terraform prints it (bare when it is an identifier, else quoted)."""
    if text.replace("_", "").replace("-", "").isalnum() and not text[:1].isdigit():
        return text
    return orjson.dumps(text).decode()


# What the walk makes of each line: `Line` for the styled renderers, or the finished text line for plain text
# (`_text_line`: a big review makes hundreds of thousands of lines, and plain text needs no `Line` objects).
LineMaker = Callable[[int, str, str, str], Any]


def _text_line(depth: int, symbol: str, text: str, style: str) -> str:
    """The plain text of a line, Terraform style: indentation, then the action symbol, then the text."""
    return _prefix(depth, None if style == "header" else symbol) + text


def resource_lines(res: ResourceDiff, *, full: bool = False) -> list[Line]:
    """All lines of one resource: headline, `resource "type" "name" {`, attributes, closing brace."""
    return _resource(res, full, Line)


def resource_text(res: ResourceDiff, *, full: bool = False, keep: bool = True) -> str:
    """The plain text of `resource_lines(res, full=full)`, made without the `Line` objects; `keep=False`: the
    tree, when not built yet, is not kept (see `ResourceDiff.tree_for`)."""
    return "\n".join(_resource(res, full, _text_line, keep))


def _resource(res: ResourceDiff, full: bool, make: LineMaker, keep: bool = True) -> list:
    symbol = SYMBOLS.get(res.action, "~")
    out = [make(0, "", headline(res), "header")]
    kind = "data" if res.mode == "data" else "resource"
    out.append(make(0, symbol, f'{kind} "{res.type}" "{res.name}" {{', res.action))
    tree = res.tree_for(full, keep=keep)
    if tree.kind in ("object", "list"):
        _children(tree, 1, full or tree.action in ("create", "delete"), out, make)
        if tree.note:  # what the tree folded away (quiet replacements: `ResourceDiff.tree`)
            out.append(make(1, " ", f"# ({tree.note})", "note"))
    elif tree.kind == "json":
        _node(None, tree, 1, True, out, make)
    else:  # the whole object is sensitive or known only after apply
        out.append(make(1, SYMBOLS.get(tree.action, "~"), f"{_value_text(tree)}{_suffix(tree)}", tree.action))
    out.append(make(0, " ", "}", "no-op"))
    return out


def node_lines(node: Node, *, key: Any = None, full: bool = False, depth: int = 0) -> list[Line]:
    """Lines of one node (used for outputs): `key = value` or a framed container."""
    out: list[Line] = []
    _node(key, node, depth, full or node.action in ("create", "delete"), out, Line)
    return out


def node_text(node: Node, *, key: Any = None, full: bool = False, depth: int = 0) -> str:
    """The plain text of `node_lines(...)`, made without the `Line` objects."""
    out: list[str] = []
    _node(key, node, depth, full or node.action in ("create", "delete"), out, _text_line)
    return "\n".join(out)


def _suffix(node: Node) -> str:
    parts = []
    if node.forces_replacement:
        parts.append("# forces replacement")
    if node.note:
        parts.append(f"# {node.note}")
    return ("  " + " ".join(parts)) if parts else ""


def _value_text(node: Node) -> str:
    if node.action == "create":
        return format_value(node.after)
    if node.action == "delete":
        return f"{format_value(node.before)} -> null"
    if node.action == "no-op":
        return format_value(node.after if node.after is not None else node.before)
    before = "null" if node.before is None else format_value(node.before)
    after = "null" if node.after is None else format_value(node.after)
    if node.kind == "sensitive" and before == after:
        return after
    return f"{before} -> {after}"


_VALUE_KINDS = frozenset({"value", "sensitive", "unknown"})


def _node(key: Any, node: Node, depth: int, show_all: bool, out: list, make: LineMaker) -> None:
    """Append the lines of `node` (one per value, a frame around containers) to `out`."""
    action, kind, before, after, children, forces, note, _ = node  # one unpacking: this runs once per line
    symbol = SYMBOLS.get(action, "~")
    prefix = _label(key)
    # Most nodes carry neither a note nor "forces replacement": `_suffix` only for the others.
    suffix = _suffix(node) if forces or note else ""
    if kind in _VALUE_KINDS:
        if action == "delete":  # the most common value of a big plan (`_value_text` without its checks)
            text = format_value(before) + " -> null"
        elif action == "update" and isinstance(before, str) and isinstance(after, str) and (
                "\n" in before or "\n" in after):
            _multiline(prefix, node, depth, out, make)
            return
        else:
            text = _value_text(node)
        out.append(make(depth, symbol, prefix + text + suffix, action))
        return
    if kind == "json":
        inner = children[0][1] if children else Node("no-op", "value")
        out.append(make(depth, symbol, f"{prefix}jsonencode({suffix}", action))
        _node(None, inner, depth + 1, show_all or action in ("create", "delete"), out, make)
        out.append(make(depth, " ", ")", action))
        return
    opening, closing = ("[", "]") if kind == "list" else ("{", "}")
    if not children:
        out.append(make(depth, symbol, f"{prefix}{opening}{closing}{suffix}", action))
        return
    out.append(make(depth, symbol, f"{prefix}{opening}{suffix}", action))
    _children(node, depth + 1, show_all or action in ("create", "delete"), out, make)
    out.append(make(depth, " ", closing, action))


def _children(node: Node, depth: int, show_all: bool, out: list, make: LineMaker) -> None:
    hidden = 0
    keep_name = node.action == "update"
    for key, child in node.children:
        # A changed list element keeps its "name" visible: it says which container / variable changed.
        if child.action == "no-op" and not show_all and not (keep_name and key == "name"):
            hidden += 1
            continue
        _node(key, child, depth, show_all, out, make)
    if hidden:
        noun = "elements" if node.kind == "list" else "attributes"
        if hidden == 1:
            noun = noun[:-1]
        out.append(make(depth, " ", f"# ({hidden} unchanged {noun} hidden)", "note"))


def _multiline(prefix: str, node: Node, depth: int, out: list, make: LineMaker) -> None:
    out.append(make(depth, "~", f"{prefix}<<-EOT", "update"))
    before = str(node.before).split("\n")
    after = str(node.after).split("\n")
    from difflib import SequenceMatcher

    for tag, i1, i2, j1, j2 in SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag == "equal":
            out.extend(make(depth + 1, " ", line, "no-op") for line in after[j1:j2])
            continue
        out.extend(make(depth + 1, "-", line, "delete") for line in before[i1:i2])
        out.extend(make(depth + 1, "+", line, "create") for line in after[j1:j2])
    out.append(make(depth, " ", "EOT", "update"))


@lru_cache(maxsize=1024)
def _prefix(depth: int, symbol: str | None) -> str:
    """Indentation and action symbol of a line (`symbol` None: a header line); a few dozen distinct ones."""
    return ("    " * depth) + ("  " if symbol is None else f"{symbol:>3} ")


# --- filters ------------------------------------------------------------------------------------------------
FILTER_ACTIONS = frozenset(ACTION_WORDS.values()) | {"replace", "destroy", "import", "move"}


def select(
    review: Review,
    *,
    actions: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    addresses: Sequence[str] | None = None,
) -> tuple[ResourceDiff, ...]:
    """Noteworthy resources matching all filters: actions (create, update, delete, replace, read, forget, import,
    move, no-op), types (exact or glob) and addresses (a part of the address, e.g. `module.webapp` or
    `aws_ecs_service`, or a glob)."""
    wanted = {a.strip().lower() for a in actions or ()}
    unknown = sorted(wanted - FILTER_ACTIONS)
    if unknown:
        raise BadInput(f"unknown --action {unknown[0]!r}", f"use one of: {', '.join(sorted(FILTER_ACTIONS))}")
    chosen = []
    for res in review.changed_resources:
        if wanted and not _action_matches(res, wanted):
            continue
        if types and not any(fnmatch.fnmatchcase(res.type, t) for t in types):
            continue
        if addresses and not any(a in res.address or fnmatch.fnmatchcase(res.address, a) for a in addresses):
            continue
        chosen.append(res)
    return tuple(chosen)


def _action_matches(res: ResourceDiff, wanted: set[str]) -> bool:
    if res.action in wanted:
        return True
    if "replace" in wanted and res.action.startswith("replace"):
        return True
    if "destroy" in wanted and res.action in ("delete", "replace", "replace-create-first"):
        return True
    if "import" in wanted and res.importing:
        return True
    return "move" in wanted and res.moved


def summary_lines(review: Review) -> list[str]:
    """The few lines every format opens with: Terraform's summary, the release kind and the plan status."""
    counts = review.counts
    lines = [counts.summary_line()]
    extra = []
    if counts.replace:
        extra.append(f"{counts.replace} replaced")
    if counts.move:
        extra.append(f"{counts.move} moved")
    if counts.read:
        extra.append(f"{counts.read} data source(s) read")
    if counts.drift:
        extra.append(f"{counts.drift} changed outside Terraform")
    if counts.outputs_changed:
        extra.append(f"{counts.outputs_changed} output(s) changed")
    if extra:
        lines.append("(" + ", ".join(extra) + ")")
    c = review.classification
    colours = []
    if c.live_colours:
        colours.append(f"live colours: {', '.join(c.live_colours)}")
    if c.target_colour:
        colours.append(f"target colour: {c.target_colour}")
    lines.append(f"Release kind: {c.kind}" + (f" ({'; '.join(colours)})" if colours else ""))
    options = options_line(review.terraform_options)
    if options:
        lines.append(options)
    status = []
    if review.errored:
        status.append("ERRORED: planning failed")
    if review.applyable is False:
        status.append("not applyable")
    if review.complete is False:
        status.append("incomplete")
    if status:
        lines.append("Plan status: " + ", ".join(status))
    return lines
