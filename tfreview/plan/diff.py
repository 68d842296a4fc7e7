"""The renderer-independent diff tree: one `Node` per attribute, built once per resource, on demand.

Sensitive and unknown are values in the tree (`SENSITIVE`, `UNKNOWN`), not flags renderers must remember to
check: a renderer cannot leak a secret it never receives. Values that are masked:
- anything Terraform marks sensitive (`before_sensitive` / `after_sensitive`);
- any string equal to a value known to be sensitive elsewhere in the plan (`Plan.sensitive_strings`);
- values of environment variables whose names look secret (PASSWORD, SECRET, TOKEN, KEY...), even unmarked.
JSON strings (`jsonencode(...)`, e.g. container_definitions or IAM policies) are diffed structurally.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Callable, Iterable, NamedTuple

import orjson

from tfreview import jsontext
from tfreview.plan.markers import COMPLEX, COMPLEX_LIST, SENSITIVE, UNKNOWN

SECRET_NAME_RE = re.compile(
    r"PASSW|PASSPHRASE|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH|PWD|CERT|SIGNATURE|SALT|DSN|COOKIE|SESSION",
    re.IGNORECASE,
)
# Object keys whose members are environment variables (maps of NAME -> value).
ENV_CONTAINER_KEYS = frozenset({"environment", "variables", "env", "environment_variables"})
# Levels of nesting the tree shows, those inside JSON strings included (Terraform's own values stay under 20).
# Deeper objects and lists become one `{...}` / `[...]` value with a note: a hostile plan nesting JSON strings
# in JSON strings cannot make the walks recurse without bound.
MAX_DEPTH = 100
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels: not shown"


# The same pattern without IGNORECASE, for names in ASCII upper-cased first: for ASCII text the two match alike, and
# a case-insensitive regex folds every character's case as it scans (a big review asks this of every object's name).
_SECRET_NAME_UPPER_RE = re.compile(SECRET_NAME_RE.pattern)
_SECRET_NAMES: dict[str, bool] = {}  # names seen (they repeat: "name", environment keys), up to _SECRET_NAMES_MAX
_SECRET_NAMES_MAX = 16384


def looks_secret(name: Any) -> bool:
    """True when an environment variable name suggests a secret value (PASSWORD, API_KEY, TOKEN...)."""
    if not isinstance(name, str):
        return False
    known = _SECRET_NAMES.get(name)
    if known is not None:
        return known
    if name.isascii():
        found = _SECRET_NAME_UPPER_RE.search(name.upper()) is not None
    else:  # other letters fold their case in ways `upper` does not mirror (the Kelvin sign is a "k")
        found = SECRET_NAME_RE.search(name) is not None
    if len(_SECRET_NAMES) < _SECRET_NAMES_MAX:
        _SECRET_NAMES[name] = found
    return found


class Node(NamedTuple):
    """One attribute of a change (immutable; a NamedTuple because a big plan builds millions of them and a frozen
    dataclass costs several times more to construct).

    action: "create" | "delete" | "update" | "no-op"
    kind: "value" (primitive), "object", "list", "json" (a JSON string, child 0 is the parsed diff),
          "sensitive" (masked), "unknown" (known after apply)
    before / after: primitives or `Marker`s for value-like kinds; None for containers or when absent
    children: (key, Node) pairs; keys are attribute names, map keys or list indexes
    forces_replacement: Terraform lists this path in `replace_paths`
    note: a short explanation shown beside the value ("sensitivity changed", "formatting only"...)
    """

    action: str
    kind: str
    before: Any = None
    after: Any = None
    children: tuple[tuple[Any, "Node"], ...] = ()
    forces_replacement: bool = False
    note: str = ""
    collapsed: bool = False  # an unchanged object, list or JSON string whose children were not built (see build_tree)

    @property
    def changed(self) -> bool:
        return self.action != "no-op"


@dataclass(frozen=True, slots=True)
class _Ctx:
    secrets: frozenset[str]
    replace_paths: frozenset[tuple]
    normalizers: dict
    keyed: bool = False  # inside a JSON string: lists of objects with a unique "name" match by name
    collapse: bool = False  # unchanged objects/lists become childless `collapsed` nodes
    depth: int = 0  # the depth of this document's root: 0, or that of the JSON string holding it


_ABSENT = object()
# `Node`s of the hot paths are made as `_new(Node, (all eight fields))`: the tuple made directly, without the Python
# frame of a NamedTuple's `__new__` (about 3x cheaper; a 10,000-resource review makes some 350,000 nodes).
_new = tuple.__new__


def _context(secrets: frozenset[str], replace_paths: Iterable[tuple],
             json_normalizers: dict[tuple, Callable[[Any], Any]] | None, collapse: bool) -> _Ctx:
    """The walk's context from `build_tree`'s options (also what `one_side` and `two_side` hand a renderer)."""
    return _Ctx(secrets=secrets, replace_paths=frozenset(tuple(p) for p in replace_paths),
                normalizers=json_normalizers or {}, collapse=collapse)


def build_tree(
    before: Any,
    after: Any,
    after_unknown: Any = None,
    before_sensitive: Any = None,
    after_sensitive: Any = None,
    *,
    secrets: frozenset[str] = frozenset(),
    replace_paths: Iterable[tuple] = (),
    json_normalizers: dict[tuple, Callable[[Any], Any]] | None = None,
    collapse_unchanged: bool = False,
) -> Node:
    """Build the diff tree of one resource (or output) change from its raw before/after values and marks.
    `before`/`after` of None mean the object does not exist on that side (create / delete).
    `json_normalizers` maps an attribute path holding a JSON string to a function cleaning its decoded value
    (e.g. ECS container definitions without AWS defaults) before the structural diff.
    `collapse_unchanged`: unchanged objects, lists and JSON strings keep no children (`Node.collapsed`); renderers hide
    unchanged attributes anyway, so this is the cheap tree for everything but `--full`."""
    ctx = _context(secrets, replace_paths, json_normalizers, collapse_unchanged)
    b = _ABSENT if before is None else before
    a = _ABSENT if after is None and after_unknown is not True else after
    return _node(b, a, after_unknown, before_sensitive, after_sensitive, ctx, (), False, None)


class OneSide(NamedTuple):
    """A created or deleted object whose tree `build_tree` would make through `_one_sided` alone (see `one_side`):
    what a renderer needs to write its lines straight from the values, and to hand back to `subtree` every
    attribute that is not a plain value, object or list (anything marked, named like a secret, equal to a
    sensitive value, JSON text, or nested near `MAX_DEPTH`), so masking stays decided here."""

    values: dict
    created: bool  # `values` is the after side (else the before side)
    after_unknown: Any
    before_sensitive: Any
    after_sensitive: Any
    ctx: _Ctx


def one_side(
    before: Any,
    after: Any,
    after_unknown: Any = None,
    before_sensitive: Any = None,
    after_sensitive: Any = None,
    *,
    secrets: frozenset[str] = frozenset(),
    replace_paths: Iterable[tuple] = (),
    json_normalizers: dict[tuple, Callable[[Any], Any]] | None = None,
    collapse_unchanged: bool = False,
) -> OneSide | None:
    """`build_tree`'s arguments as a `OneSide` when its root is an object on one side only (a created or deleted
    resource, nothing forcing a replacement, the whole object neither sensitive nor unknown); else None."""
    if replace_paths or before_sensitive is True or after_sensitive is True or after_unknown is True:
        return None
    if before is None and isinstance(after, dict):
        values, created = after, True
    elif after is None and isinstance(before, dict):
        values, created = before, False
    else:
        return None
    ctx = _context(secrets, (), json_normalizers, collapse_unchanged)
    return OneSide(values, created, after_unknown, before_sensitive, after_sensitive, ctx)


class TwoSide(NamedTuple):
    """An object on both sides (an update or a replacement) whose collapsed tree `build_tree` would make through
    `_object` (see `two_side`): what a renderer needs to write its lines without a `Node` for each unchanged
    attribute (`collapsed_root`)."""

    before: dict
    after: dict
    after_unknown: Any
    before_sensitive: Any
    after_sensitive: Any
    ctx: _Ctx


def two_side(
    before: Any,
    after: Any,
    after_unknown: Any = None,
    before_sensitive: Any = None,
    after_sensitive: Any = None,
    *,
    secrets: frozenset[str] = frozenset(),
    replace_paths: Iterable[tuple] = (),
    json_normalizers: dict[tuple, Callable[[Any], Any]] | None = None,
    collapse_unchanged: bool = False,
) -> TwoSide | None:
    """`build_tree`'s arguments as a `TwoSide` when its tree is collapsed (`collapse_unchanged`) and its root is
    an object on both sides, the whole object neither sensitive nor unknown; else None."""
    if not collapse_unchanged or before_sensitive is True or after_sensitive is True or after_unknown is True:
        return None
    if not isinstance(before, dict) or not isinstance(after, dict):
        return None
    ctx = _context(secrets, replace_paths, json_normalizers, True)
    return TwoSide(before, after, after_unknown, before_sensitive, after_sensitive, ctx)


def collapsed_root(side: TwoSide) -> tuple[list[tuple[Any, Node]], int]:
    """The root's children that a collapsed rendering shows, in the tree's order, and how many it hides: the
    changed attributes (their subtrees as `build_tree` makes them) and, when anything changed, an unchanged
    "name" (it says which object changed); every other unchanged attribute is only counted, no `Node` made for
    it. `_object`'s loop at the root (no parent key: no environment map), with `_children`'s rule of what shows."""
    bd, ad, au, bs, as_, ctx = side
    keys = sorted_names(bd, ad, au)
    name_secret = looks_secret(bd.get("name")) or looks_secret(ad.get("name"))
    au_get, bs_get, as_get = _marks_getter(au), _marks_getter(bs), _marks_getter(as_)
    shown: list[tuple[Any, Node]] = []
    hidden = 0
    name_at = -1
    name_node: Node | None = None
    name_value: Any = None
    name_secret_value = False
    for key in keys:
        cb = bd.get(key)
        ca = ad.get(key)
        cau = au_get(key)
        if cb is None:
            cb = _ABSENT
        if ca is None and cau is not True:
            ca = _ABSENT
        if cb is _ABSENT and ca is _ABSENT:
            continue
        secret = name_secret and key == "value"
        cbs = bs_get(key)
        cas = as_get(key)
        if (cb is not _ABSENT and cb == ca and not (cau and _has_marks(cau)) and not (cbs and _has_marks(cbs))
                and not (cas and _has_marks(cas))):
            # Unchanged (`_object`'s fast path: `_unchanged` makes a no-op node): hidden, unless it is "name".
            if key == "name":
                name_at, name_value, name_secret_value = len(shown), ca, secret
            else:
                hidden += 1
            continue
        child = _node(cb, ca, cau, cbs, cas, ctx, (key,), secret, key)
        if child.action == "no-op":
            if key == "name":
                name_at, name_node = len(shown), child
            else:
                hidden += 1
            continue
        shown.append((key, child))
    if name_at >= 0:
        if shown:  # the root is an update: its "name" shows (`lines._children`)
            if name_node is None:
                name_node = _unchanged(name_value, ctx, name_secret_value, "name", ctx.depth + 1)
            shown.insert(name_at, ("name", name_node))
        else:
            hidden += 1
    return shown, hidden


# How many attribute names the fold of a replacement's empty attributes lists before "and N more".
FOLD_NAMES = 6


def _empty(value: Any) -> bool:
    """"", [], {} or false: a value a replacement dropping it (or leaving it to the provider) loses nothing of."""
    return value is False or (type(value) in (str, list, dict) and not value)


def folds(child: Node, before: Any) -> bool:
    """A top-level attribute of a replacement's tree that `review.fold_empty_unset` folds: its old value (`before`) is
    empty and it becomes unset or known after apply, neither forcing the replacement nor carrying a note."""
    to_unset = child.action == "delete" and child.kind in ("value", "list", "object") and not child.children
    return (to_unset or child.kind == "unknown") and not child.forces_replacement and not child.note and _empty(before)


def split_folds(children: Iterable[tuple[Any, Node]], before: Any) -> tuple[list[tuple[Any, Node]], list[str], bool]:
    """A replacement's top-level `children` split by `folds` (`before`: the old object): (the ones kept, the names
    folded, whether one of those becomes known after apply)."""
    kept: list[tuple[Any, Node]] = []
    folded: list[str] = []
    unknown = False
    for key, child in children:
        if folds(child, before.get(key)):
            folded.append(str(key))
            unknown = unknown or child.kind == "unknown"
        else:
            kept.append((key, child))
    return kept, folded, unknown


def fold_note(folded: list[str], unknown: bool) -> str:
    """The root's note naming the folded attributes (`unknown`: one of them becomes known after apply)."""
    names = ", ".join(folded[:FOLD_NAMES]) + (f" and {len(folded) - FOLD_NAMES} more" if len(folded) > FOLD_NAMES else "")
    become = "become" if len(folded) > 1 else "becomes"
    become += " unset or known after apply" if unknown else " unset"
    return f"{len(folded)} empty attribute{'s' if len(folded) > 1 else ''} {become}: {names}"


ABSENT = _ABSENT  # a side that does not exist, for `subtree` (None is a value: JSON null)


def subtree(b: Any, a: Any, au: Any, bs: Any, as_: Any, side: OneSide, path: tuple, secret: bool, key: Any) -> Node:
    """The tree `build_tree` makes for the attribute at `path` of a `OneSide` (`b` / `a`: its values, `ABSENT`
    for a missing side; `secret`: named like a secret by its parent; `key`: its name)."""
    return _node(b, a, au, bs, as_, side.ctx, path, secret, key)


def sorted_names(before: dict, after: dict, after_unknown: Any) -> list:
    """The attribute names of an object in the order its tree lists them (names known only after apply too)."""
    names: Iterable[Any]
    if isinstance(after_unknown, dict) and after_unknown:
        names = before.keys() | after.keys() | {k for k, v in after_unknown.items() if v is True}
    else:  # no set to build for a created or deleted object (a dict's keys are distinct already)
        names = after.keys() if not before else before.keys() if not after else before.keys() | after.keys()
    try:
        return sorted(names)  # object keys are strings (JSON)
    except TypeError:
        return sorted(names, key=str)


def marks_getter(marks: Any) -> Callable[[Any], Any]:
    """`lambda key: marks[key]` for the marks of an object (True, a dict, or nothing), None when absent."""
    return _marks_getter(marks)


def sub_marks(marks: Any, key: Any) -> Any:
    """The marks of `key` (an attribute name or a list index) within `marks`."""
    return _sub(marks, key)


def _action(b: Any, a: Any) -> str:
    if b is _ABSENT:
        return "create"
    if a is _ABSENT:
        return "delete"
    return "update"


def _is_json_text(value: Any) -> bool:
    if not isinstance(value, str) or len(value) < 2:
        return False
    head = value[0]
    if head == "{" or head == "[":
        return True
    # Only text starting with whitespace needs stripping (most values start with neither).
    return head.isspace() and value.lstrip()[:1] in ("{", "[")


def _parse_json(value: Any) -> Any:
    if value is _ABSENT:
        return _ABSENT
    try:
        return jsontext.loads(value)
    except orjson.JSONDecodeError:  # TooDeep too: shown as the string it is
        return None


def _node(b, a, au, bs, as_, ctx: _Ctx, path: tuple, secret_name: bool, parent_key: Any) -> Node:
    forces = bool(ctx.replace_paths) and path in ctx.replace_paths
    # Sensitive (marked, or named like a secret): never look at the values beyond equality.
    if bs is True or as_ is True or secret_name:
        if b is not _ABSENT and a is not _ABSENT:
            marks_changed = (bs is True) != (as_ is True)
            action = "no-op" if (b == a and not marks_changed) and au is not True else "update"
            note = ""
            if action == "update":
                note = "sensitivity changed" if b == a and au is not True else "changed"
        else:
            action = _action(b, a)
            note = ""
        return Node(
            action,
            "sensitive",
            None if b is _ABSENT else SENSITIVE,
            None if a is _ABSENT else (UNKNOWN if au is True else SENSITIVE),
            forces_replacement=forces,
            note=note,
        )
    # Unknown after apply.
    if au is True and a is not _ABSENT:
        shown = None if b is _ABSENT else _plain(b, bs, ctx)
        return Node(_action(b, a) if b is _ABSENT else "update", "unknown", shown, UNKNOWN, forces_replacement=forces)
    bv = None if b is _ABSENT else b
    av = None if a is _ABSENT else a
    if len(path) + ctx.depth >= MAX_DEPTH and (_container(bv) or _container(av)):
        return _too_deep(b, a, bs, as_, ctx, forces)
    if isinstance(bv, dict) or isinstance(av, dict):
        if (bv is None or isinstance(bv, dict)) and (av is None or isinstance(av, dict)):
            return _object(b, a, au, bs, as_, ctx, path, forces, parent_key)
    if isinstance(bv, list) or isinstance(av, list):
        if (bv is None or isinstance(bv, list)) and (av is None or isinstance(av, list)):
            return _list(b, a, au, bs, as_, ctx, path, forces)
    if (bv is None or _is_json_text(bv)) and (av is None or _is_json_text(av)) and (bv or av):
        jb = _parse_json(b)
        ja = jb if a == b else _parse_json(a)  # unchanged JSON text (most of it) is decoded once
        if jb is not None and ja is not None and not isinstance(jb, (str, int, float, bool)):
            normalize = ctx.normalizers.get(path)
            quiet = "formatting only"
            if normalize is not None:
                jb = jb if jb is _ABSENT else normalize(jb)
                ja = ja if ja is _ABSENT else normalize(ja)
                quiet = "only ordering/defaults changed"
            inner_ctx = _Ctx(ctx.secrets, frozenset(), {}, True, ctx.collapse, ctx.depth + len(path) + 1)
            inner = _node(jb, ja, None, None, None, inner_ctx, (), False, parent_key)
            if b is not _ABSENT and a is not _ABSENT:
                if b == a:
                    action, note = "no-op", ""
                elif inner.action == "no-op":
                    action, note = "update", quiet
                else:
                    action, note = "update", ""
            else:
                action, note = _action(b, a), ""
            return Node(action, "json", children=((None, inner),), forces_replacement=forces, note=note)
    # Primitive (or a type change, shown as a whole value).
    if (isinstance(bv, str) and bv in ctx.secrets) or (isinstance(av, str) and av in ctx.secrets):
        if b is not _ABSENT and a is not _ABSENT:
            action = "no-op" if b == a else "update"
        else:
            action = _action(b, a)
        return Node(
            action,
            "sensitive",
            None if b is _ABSENT else SENSITIVE,
            None if a is _ABSENT else SENSITIVE,
            forces_replacement=forces,
            note="equals a sensitive value",
        )
    if b is not _ABSENT and a is not _ABSENT:
        action = "no-op" if (b == a and type(b) is type(a)) else "update"
    else:
        action = _action(b, a)
    return _new(Node, (action, "value", None if b is _ABSENT else _plain(b, bs, ctx),
                       None if a is _ABSENT else _plain(a, as_, ctx), (), forces, "", False))


def _unchanged(value: Any, ctx: _Ctx, secret: bool, parent_key: Any, depth: int) -> Node:
    """The no-op subtree of a value equal on both sides, with no sensitivity or unknown marks, at `depth`
    (counted from the plan's value, as `_node` does): the same tree `_node` builds (same masking rules), built
    with fewer checks."""
    if secret:
        return Node("no-op", "sensitive", SENSITIVE, SENSITIVE)
    if isinstance(value, str):  # the most common value first
        if value in ctx.secrets:
            return Node("no-op", "sensitive", SENSITIVE, SENSITIVE, note="equals a sensitive value")
        if _is_json_text(value):
            if ctx.collapse and parent_key != "name":
                # An unchanged JSON string (a task definition's container JSON in an update, a policy): hidden
                # like any unchanged attribute, so not decoded and diffed only to be counted. Kept whole under
                # "name", which a changed list element shows (`lines._children`).
                return Node("no-op", "json", collapsed=True)
            here = _Ctx(ctx.secrets, ctx.replace_paths, ctx.normalizers, ctx.keyed, ctx.collapse, depth)
            return _node(value, value, None, None, None, here, (), False, parent_key)
        return _new(Node, ("no-op", "value", value, value, (), False, "", False))
    if _container(value):
        if ctx.collapse:
            return _new(Node, ("no-op", "object" if isinstance(value, dict) else "list", None, None, (), False, "",
                               True))
        if depth >= MAX_DEPTH:
            return _too_deep(value, value, None, None, ctx, False)
    if isinstance(value, dict):
        env_map = parent_key in ENV_CONTAINER_KEYS
        name_secret = looks_secret(value.get("name"))
        return _new(Node, ("no-op", "object", None, None, tuple(
            (k, _unchanged(value[k], ctx, (env_map and looks_secret(k)) or (name_secret and k == "value"), k,
                           depth + 1))
            for k in sorted(value, key=str)
            if value[k] is not None
        ), False, "", False))
    if isinstance(value, list):
        return _new(Node, ("no-op", "list", None, None, tuple(
            (i, _unchanged(x, ctx, False, None, depth + 1)) for i, x in enumerate(value) if x is not None
        ), False, "", False))
    return _new(Node, ("no-op", "value", value, value, (), False, "", False))


def _container(value: Any) -> bool:
    """A non-empty object or list (an empty one has no depth to show)."""
    return bool(value) and isinstance(value, (dict, list))


def _too_deep(b: Any, a: Any, bs: Any, as_: Any, ctx: _Ctx, forces: bool) -> Node:
    """What is `MAX_DEPTH` levels down, when it still nests: one `{...}` / `[...]` value per side (a primitive
    on the other side is masked as `_plain` does), and whether it changed (equality only: nothing below is
    shown, so nothing below can leak)."""
    if b is not _ABSENT and a is not _ABSENT:
        action = "no-op" if b == a else "update"
    else:
        action = _action(b, a)
    return Node(action, "value", None if b is _ABSENT else _plain(b, bs, ctx),
                None if a is _ABSENT else _plain(a, as_, ctx), forces_replacement=forces, note=TOO_DEEP)


def _plain(value: Any, marks: Any, ctx: _Ctx) -> Any:
    """A value shown whole (type change or before of an unknown): primitives pass, containers collapse."""
    if marks is True:
        return SENSITIVE
    if isinstance(value, dict):
        return COMPLEX
    if isinstance(value, list):
        return COMPLEX_LIST
    if isinstance(value, str) and value in ctx.secrets:
        return SENSITIVE
    return value


def _sub(marks: Any, key: Any) -> Any:
    if marks is True:
        return True
    if isinstance(marks, dict):
        return marks.get(key)
    if isinstance(marks, list) and isinstance(key, int) and key < len(marks):
        return marks[key]
    return None


def _object(b, a, au, bs, as_, ctx, path, forces, parent_key) -> Node:
    bd = b if isinstance(b, dict) else _NO_ATTRIBUTES
    ad = a if isinstance(a, dict) else _NO_ATTRIBUTES
    keys = sorted_names(bd, ad, au)  # in name order, as Terraform prints them (unknown-only attributes included)
    env_map = parent_key in ENV_CONTAINER_KEYS
    name_secret = looks_secret(bd.get("name")) or looks_secret(ad.get("name"))
    # The hottest loops of a review, kept lean for speed: one lookup function per marks (`_sub` without its checks
    # per attribute), and leaves built here rather than through `_node`.
    au_get, bs_get, as_get = _marks_getter(au), _marks_getter(bs), _marks_getter(as_)
    if b is _ABSENT or a is _ABSENT:
        one_side = _one_sided(keys, ad if b is _ABSENT else bd, b is _ABSENT, au_get, bs_get, as_get, ctx, path, env_map,
                              name_secret)
        return _new(Node, (_action(b, a), "object", None, None, one_side, forces, "", False))
    children = []
    changed = False
    for key in keys:
        cb = bd.get(key)
        ca = ad.get(key)
        cau = au_get(key)
        if cb is None:
            cb = _ABSENT
        if ca is None and cau is not True:
            ca = _ABSENT
        if cb is _ABSENT and ca is _ABSENT:
            continue
        secret = (env_map and looks_secret(key)) or (name_secret and key == "value")
        cbs = bs_get(key)
        cas = as_get(key)
        # Falsy marks (None, False, {}, []) never hold a mark: `_has_marks` only for the others.
        if (cb is not _ABSENT and cb == ca and not (cau and _has_marks(cau)) and not (cbs and _has_marks(cbs))
                and not (cas and _has_marks(cas))):
            # Fast path: most attributes of an update do not change.
            child = _unchanged(ca, ctx, secret, key, ctx.depth + len(path) + 1)
        elif (cb is _ABSENT or ca is _ABSENT) and not secret and cau is not True and cbs is not True \
                and cas is not True and _plain_primitive(ca if cb is _ABSENT else cb, ctx):
            # Fast path: a primitive added or removed with no mark is shown as it is (what `_node` decides too).
            leaf_forces = bool(ctx.replace_paths) and path + (key,) in ctx.replace_paths
            # Positional arguments: a little faster than keywords, for hundreds of thousands of leaves.
            child = (_new(Node, ("create", "value", None, ca, (), leaf_forces, "", False)) if cb is _ABSENT
                     else _new(Node, ("delete", "value", cb, None, (), leaf_forces, "", False)))
        else:
            child = _node(cb, ca, cau, cbs, cas, ctx, path + (key,), secret, key)
        if not changed and child.action != "no-op":
            changed = True
        children.append((key, child))
    return _new(Node, ("update" if changed else "no-op", "object", None, None, tuple(children), forces, "", False))


def _one_sided(keys: list, values: dict, created: bool, au_get: Callable[[Any], Any], bs_get: Callable[[Any], Any],
               as_get: Callable[[Any], Any], ctx: _Ctx, path: tuple, env_map: bool, name_secret: bool) -> tuple:
    """The children of a created (`created`) or deleted object: `_object`'s loop when `values` (after, or before)
    is the only side, with the checks that cannot apply left out (most objects of a big plan are such)."""
    children = []
    secrets = ctx.secrets
    for key in keys:
        value = values.get(key)
        cau = au_get(key)
        if value is None and (not created or cau is not True):  # absent (a created one may be known after apply)
            continue
        secret = (env_map and looks_secret(key)) or (name_secret and key == "value")
        cbs = bs_get(key)
        cas = as_get(key)
        kind = type(value)
        if (not secret and cau is not True and cbs is not True and cas is not True and kind in _PRIMITIVES
                and not (kind is str and (value in secrets or _is_json_text(value)))):  # `_plain_primitive`
            # A primitive with no mark is shown as it is (what `_node` decides too).
            leaf_forces = bool(ctx.replace_paths) and path + (key,) in ctx.replace_paths
            child = (_new(Node, ("create", "value", None, value, (), leaf_forces, "", False)) if created
                     else _new(Node, ("delete", "value", value, None, (), leaf_forces, "", False)))
        elif created:
            child = _node(_ABSENT, value, cau, cbs, cas, ctx, path + (key,), secret, key)
        else:
            child = _node(value, _ABSENT, cau, cbs, cas, ctx, path + (key,), secret, key)
        children.append((key, child))
    return tuple(children)


_NO_ATTRIBUTES: dict = {}
_NO_MARKS = _NO_ATTRIBUTES.get


def _all_marked(key: Any) -> bool:
    return True


def _marks_getter(marks: Any) -> Callable[[Any], Any]:
    """`lambda key: _sub(marks, key)` for the marks of an object (True, a dict, or nothing), without the checks."""
    if marks is True:
        return _all_marked
    return marks.get if isinstance(marks, dict) and marks else _NO_MARKS


_PRIMITIVES = frozenset({str, int, float, bool})


def is_json_text(value: Any) -> bool:
    """A string that may hold a JSON object or list (the tree decodes and diffs it structurally)."""
    return _is_json_text(value)


def _plain_primitive(value: Any, ctx: _Ctx) -> bool:
    """A number, boolean, or a string that is neither JSON text nor a known sensitive value."""
    kind = type(value)
    return kind in _PRIMITIVES and not (kind is str and (value in ctx.secrets or _is_json_text(value)))


def _is_primitive_list(items: list) -> bool:
    return all(not isinstance(x, (dict, list)) for x in items)


def _list(b, a, au, bs, as_, ctx, path, forces) -> Node:
    bl = b if isinstance(b, list) else []
    al = a if isinstance(a, list) else []
    if not bl and not al and not (isinstance(au, list) and au):
        # No element on either side (a third of the lists of a big plan): what the general case below returns.
        return _new(Node, ("no-op" if b is not _ABSENT and a is not _ABSENT else _action(b, a), "list", None, None, (),
                           forces, "", False))
    children: list[tuple[Any, Node]] = []
    simple = (
        b is not _ABSENT
        and a is not _ABSENT
        and _is_primitive_list(bl)
        and _is_primitive_list(al)
        and not _has_marks(au)
        and not _has_marks(bs)
        and not _has_marks(as_)
    )
    if not simple and ctx.keyed and b is not _ABSENT and a is not _ABSENT:
        by_name = _by_name(bl), _by_name(al)
        if by_name[0] is not None and by_name[1] is not None:
            return _keyed_list(bl, al, by_name[0], by_name[1], ctx, path, forces)
    if simple and bl == al:
        depth = ctx.depth + len(path) + 1
        children = [(i, _unchanged(x, ctx, False, None, depth)) for i, x in enumerate(al) if x is not None]
    elif simple:
        # Longest common subsequence, as Terraform does for lists of primitives.
        matcher = SequenceMatcher(None, [_hashable(x) for x in bl], [_hashable(x) for x in al], autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                for k in range(j2 - j1):
                    children.append((j1 + k, _node(bl[i1 + k], al[j1 + k], None, None, None, ctx, path + (j1 + k,), False, None)))
                continue
            for i in range(i1, i2):
                children.append((i, _node(bl[i], _ABSENT, None, None, None, ctx, path + (i,), False, None)))
            for j in range(j1, j2):
                children.append((j, _node(_ABSENT, al[j], None, None, None, ctx, path + (j,), False, None)))
    else:
        length = max(len(bl), len(al), len(au) if isinstance(au, list) else 0)
        for i in range(length):
            cb = bl[i] if i < len(bl) and b is not _ABSENT else _ABSENT
            cau = _sub(au, i) if au else None  # falsy marks hold nothing (saves the call)
            ca = al[i] if i < len(al) and a is not _ABSENT else (_ABSENT if cau is not True else None)
            if cb is None:
                cb = _ABSENT
            if ca is None and cau is not True:
                ca = _ABSENT
            if cb is _ABSENT and ca is _ABSENT:
                continue
            cbs = _sub(bs, i) if bs else None
            cas = _sub(as_, i) if as_ else None
            children.append((i, _node(cb, ca, cau, cbs, cas, ctx, path + (i,), False, None)))
    if b is _ABSENT or a is _ABSENT:
        action = _action(b, a)
    else:
        action = "update" if any(c.action != "no-op" for _, c in children) else "no-op"
    return _new(Node, (action, "list", None, None, tuple(children), forces, "", False))


def _by_name(items: list) -> dict | None:
    """name -> index when every item is an object with a distinct string "name", else None."""
    if not items:
        return None
    out = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or item["name"] in out:
            return None
        out[item["name"]] = i
    return out


def _keyed_list(bl: list, al: list, bnames: dict, anames: dict, ctx: _Ctx, path: tuple, forces: bool) -> Node:
    """Lists of named objects (containers, environment variables) matched by name, not position."""
    children: list[tuple[Any, Node]] = []
    for j, item in enumerate(al):
        i = bnames.get(item["name"])
        before = bl[i] if i is not None else _ABSENT
        children.append((j, _node(before, item, None, None, None, ctx, path + (j,), False, None)))
    for name, i in bnames.items():
        if name not in anames:
            children.append((i, _node(bl[i], _ABSENT, None, None, None, ctx, path + (i,), False, None)))
    changed = any(c.action != "no-op" for _, c in children)
    return Node("update" if changed else "no-op", "list", children=tuple(children), forces_replacement=forces)


def _hashable(value: Any) -> Any:
    return (type(value).__name__, value)


def _has_marks(marks: Any) -> bool:
    if marks is True:
        return True
    if isinstance(marks, dict):
        marks = marks.values()
    elif not isinstance(marks, list):
        return False
    # A loop rather than any(generator), and no call for falsy marks (False, {}, []): Terraform's marks mirror
    # every attribute, so this runs often.
    for v in marks:
        if v is True or (v and _has_marks(v)):
            return True
    return False


def scrub(text: str, secrets: frozenset[str]) -> str:
    """`text` with every occurrence of a known sensitive string (4+ characters) replaced by a marker."""
    return Scrubber(secrets)(text)


class Scrubber:
    """`scrub` for many texts and many secrets: the secrets indexed once by their first four characters, so a text
    costs one look-up per character, not one search per secret (a plan's policy messages against thousands of
    hidden values). Every character of every occurrence is hidden, overlapping occurrences included: each run of
    hidden characters becomes one marker."""

    MARKER = "(sensitive value)"

    def __init__(self, secrets: frozenset[str] | set[str]) -> None:
        self._by_prefix: dict[str, list[str]] = {}
        for secret in secrets:
            if len(secret) >= 4:
                self._by_prefix.setdefault(secret[:4], []).append(secret)

    def __call__(self, text: str) -> str:
        if not self._by_prefix or len(text) < 4:
            return text
        get = self._by_prefix.get
        spans: list[list[int]] = []
        for i in range(len(text) - 3):
            candidates = get(text[i:i + 4])
            if not candidates:
                continue
            end = max((i + len(s) for s in candidates if text.startswith(s, i)), default=i)
            if end == i:
                continue
            if spans and i < spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([i, end])
        if not spans:
            return text
        out, at = [], 0
        for start, end in spans:
            out.append(text[at:start])
            out.append(self.MARKER)
            at = end
        out.append(text[at:])
        return "".join(out)


def path_text(path: Iterable[Any]) -> str:
    """Terraform-style attribute path: `container_definitions`, `ingress[0].cidr_blocks`, `tags["Name"]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out
