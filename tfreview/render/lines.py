"""Shared walk of the diff tree into Terraform-like lines, so every text-ish renderer frames values the same way.

Parents frame their children (indent, key, action symbol); a child renders only its value. Values arrive
already sanitized (sensitive and unknown are `Marker`s), so this walk cannot leak what the tree never held.
"""
from __future__ import annotations

import fnmatch
from typing import Any, Callable, NamedTuple, Sequence

import orjson

from tfreview.errors import BadInput
from tfreview.plan.diff import (ABSENT, ENV_CONTAINER_KEYS, MAX_DEPTH, Node, OneSide, TwoSide, collapsed_root,
                                fold_note, is_json_text, looks_secret, marks_getter, sorted_names, split_folds,
                                sub_marks, subtree)
from tfreview.plan.markers import UNKNOWN, Marker
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


_LABELS: dict[str, str] = {}
_LABELS_MAX = 16384  # distinct attribute names remembered (a hostile plan's endless names cannot grow it further)


def _label(key: Any) -> str:
    """`name = ` before a child's value (`""` for list elements and JSON roots); keys repeat across resources, so
    a name's label is made once (a plain dict: `lru_cache`'s wrapper cost more than the label, once per line)."""
    if type(key) is str:
        label = _LABELS.get(key)
        if label is None:
            label = _name_text(key) + " = "
            if len(_LABELS) < _LABELS_MAX:
                _LABELS[key] = label
        return label
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
    side = res.one_side(full)
    if side is not None:
        return _one_side_text(res, side)
    both = res.two_side(full)
    if both is not None:
        return _two_side_text(res, both)
    return "\n".join(_resource(res, full, _text_line, keep))


# --- updates and replacements, without a node per unchanged attribute ----------------------------------------------
# An update changes a few of its resource's attributes (a service's task definition, a listener's weights): the
# collapsed tree made a `Node` for each of the others only for `_children` to count them as hidden. Here the root's
# changed attributes get their subtrees (`diff.collapsed_root`: the tree decides what is shown and how it is
# masked) and the unchanged ones are counted; a replacement's empty attributes are folded as `fold_empty_unset`
# folds them. The same bytes as `_resource` (tests/test_render_two_side.py).
def _two_side_text(res: ResourceDiff, side: TwoSide) -> str:
    kind = "data" if res.mode == "data" else "resource"
    out = [_prefix(0, None) + headline(res),
           _prefix(0, SYMBOLS.get(res.action, "~")) + f'{kind} "{res.type}" "{res.name}" {{']
    shown, hidden = collapsed_root(side)
    folded: list[str] = []
    unknown = False
    if res.folds_empty:
        shown, folded, unknown = split_folds(shown, side.before)
    for key, child in shown:
        _node(key, child, 1, False, out, _text_line)
    note = _prefix(1, " ")
    if hidden:
        out.append(note + f"# ({hidden} unchanged {'attribute' if hidden == 1 else 'attributes'} hidden)")
    if folded:
        out.append(note + f"# ({fold_note(folded, unknown)})")
    out.append(_prefix(0, " ") + "}")
    return "\n".join(out)


# --- created and deleted resources, written straight from their values ------------------------------------------
# Most resources of a big plan are created or deleted whole: every attribute is shown, "+ name = value" (or
# "- name = value -> null"), nothing compared. Their text is written here from the values, without the tree's
# `Node`s (a 10,000-resource plan of deletions makes some 200,000 of them only to be printed once). Only plain
# values, objects and lists are written here; every other attribute (marked sensitive or unknown, named like a
# secret, equal to a sensitive value, JSON text, nested near `MAX_DEPTH`) is handed to the tree (`subtree`), so
# what is masked stays decided in `plan/diff.py`. The same bytes as `_resource` (tests/test_render_one_side.py).
_NO_VALUES: dict = {}
_UNKNOWN_TEXT = format_value(UNKNOWN)


def _one_side_text(res: ResourceDiff, side: OneSide) -> str:
    kind = "data" if res.mode == "data" else "resource"
    out = [_prefix(0, None) + headline(res),
           _prefix(0, SYMBOLS.get(res.action, "~")) + f'{kind} "{res.type}" "{res.name}" {{']
    _side_object(side, side.values, side.after_unknown, side.before_sensitive, side.after_sensitive, (), None, 1, out)
    out.append(_prefix(0, " ") + "}")
    return "\n".join(out)


def _side_object(side: OneSide, values: dict, au: Any, bs: Any, as_: Any, path: tuple, parent_key: Any, depth: int,
                 out: list) -> None:
    """The lines of the attributes of one object of a `OneSide` (`diff._object` and `_one_sided`, then `_node`)."""
    created = side.created
    keys = sorted_names(_NO_VALUES, values, au) if created else sorted_names(values, _NO_VALUES, au)
    env_map = parent_key in ENV_CONTAINER_KEYS
    name_secret = looks_secret(values.get("name"))
    au_get, bs_get, as_get = marks_getter(au), marks_getter(bs), marks_getter(as_)
    secrets = side.ctx.secrets
    pad = _prefix(depth, "+" if created else "-")
    tail = "" if created else " -> null"
    for key in keys:
        value = values.get(key)
        cau = au_get(key)
        if value is None and (not created or cau is not True):  # absent (a created one may be known after apply)
            continue
        secret = (env_map and looks_secret(key)) or (name_secret and key == "value")
        cbs = bs_get(key)
        cas = as_get(key)
        if not secret and cbs is not True and cas is not True:
            if cau is not True:
                kind = type(value)
                if kind is str:
                    if value not in secrets and not is_json_text(value):
                        out.append(pad + _label(key) + orjson.dumps(value).decode() + tail)
                        continue
                elif kind is int or kind is float or kind is bool:
                    out.append(pad + _label(key) + format_value(value) + tail)
                    continue
            elif created:  # known after apply, and not sensitive: what the tree's "unknown" node prints
                out.append(pad + _label(key) + _UNKNOWN_TEXT)
                continue
        _side_child(side, key, key, value, cau, cbs, cas, secret, path, depth, out)


def _side_list(side: OneSide, items: list, au: Any, bs: Any, as_: Any, path: tuple, depth: int, out: list) -> None:
    """The lines of the elements of one list of a `OneSide` (`diff._list`'s general case, then `_node`)."""
    created = side.created
    secrets = side.ctx.secrets
    pad = _prefix(depth, "+" if created else "-")
    tail = "" if created else " -> null"
    for i in range(max(len(items), len(au) if isinstance(au, list) else 0)):
        cau = sub_marks(au, i) if au else None
        cbs = sub_marks(bs, i) if bs else None
        cas = sub_marks(as_, i) if as_ else None
        value = items[i] if i < len(items) else None
        if created:
            if value is None and cau is not True:
                continue
        elif cau is True:  # a deleted element known after apply: compared, not one-sided (the tree decides)
            before = ABSENT if value is None else value
            _node(i, subtree(before, None, cau, cbs, cas, side, path + (i,), False, None), depth, True, out, _text_line)
            continue
        elif value is None:
            continue
        if cbs is not True and cas is not True:
            if cau is not True:
                kind = type(value)
                if kind is str:
                    if value not in secrets and not is_json_text(value):
                        out.append(pad + orjson.dumps(value).decode() + tail)
                        continue
                elif kind is int or kind is float or kind is bool:
                    out.append(pad + format_value(value) + tail)
                    continue
            else:  # created (a deleted one's went to the tree above): known after apply
                out.append(pad + _UNKNOWN_TEXT)
                continue
        _side_child(side, i, None, value, cau, cbs, cas, False, path, depth, out)


def _side_child(side: OneSide, key: Any, name: Any, value: Any, au: Any, bs: Any, as_: Any, secret: bool,
                parent_path: tuple, depth: int, out: list) -> None:
    """The lines of an attribute (`name` its key) or list element (`key` its index, `name` None) that is not a
    plain value: an object or list written here, anything else by the tree."""
    path = parent_path + (key,)
    kind = type(value)
    if (not secret and au is not True and bs is not True and as_ is not True and (kind is dict or kind is list)
            and len(path) < MAX_DEPTH):
        head = _prefix(depth, "+" if side.created else "-") + _label(key)
        start = len(out)
        out.append(head)  # the opening line, once it is known whether anything is inside
        if kind is dict:
            _side_object(side, value, au, bs, as_, path, name, depth + 1, out)
        else:
            _side_list(side, value, au, bs, as_, path, depth + 1, out)
        if len(out) == start + 1:
            out[start] = head + ("{}" if kind is dict else "[]")
        else:
            out[start] = head + ("{" if kind is dict else "[")
            out.append(_prefix(depth, " ") + ("}" if kind is dict else "]"))
        return
    tree = (subtree(ABSENT, value, au, bs, as_, side, path, secret, name) if side.created
            else subtree(value, ABSENT, au, bs, as_, side, path, secret, name))
    _node(key, tree, depth, True, out, _text_line)


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


# Indentation and action symbol of a line, by symbol then depth: a few dozen distinct ones, asked for once per line.
_PREFIXES: dict[str | None, list[str]] = {}


def _prefix(depth: int, symbol: str | None) -> str:
    """Indentation and action symbol of a line (`symbol` None: a header line)."""
    made = _PREFIXES.get(symbol)
    if made is None:
        made = _PREFIXES[symbol] = []
    if depth < len(made):
        return made[depth]
    mark = "  " if symbol is None else f"{symbol:>3} "
    if depth >= 256:  # deeper lines (the tree stops nesting at MAX_DEPTH) are made each time
        return ("    " * depth) + mark
    made.extend(("    " * d) + mark for d in range(len(made), depth + 1))
    return made[depth]


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
