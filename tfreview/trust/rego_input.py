"""Which top-level keys of `input` the Rego modules can read, and the input the engine gets (pure functions).

Rules reach the plan only through `input` (and `import input...`). When every reference to `input` in every
module is followed by a constant key (`input.resource_changes`, `input["planned_values"]`, `import input.foo as
f`), the engine needs only those top-level keys of the plan, and taking a big plan as input (the engine's JSON
parse) costs in proportion to what it is given. Anything else gives the whole document, exactly as before: a
bare or dynamic reference (`x := input`, `input[k]`, `walk(input, ...)`, `object.get(input, ...)`, `import
input`, `import input as tfplan`), or a module whose source names `input` more often than its syntax tree shows
(a reference the walk does not understand). The targets of `with input as ...` / `with input.k as ...` replace
the input rather than read it, so they add nothing (the reads under them are references of their own).

The keys are read from the engine's own syntax tree (regorus' `get_ast_as_json`); the input is cut from the
plan's own bytes (msgspec reads the top-level object into raw, undecoded values: what is kept is byte for byte
what the plan says; duplicate keys resolve as the engine resolves them, the last one wins). A key absent from
the plan stays absent (undefined to the rules), never null. A document that is not a JSON object, or not valid
JSON, is given whole (the engine then fails as before). docs/design-notes.md, "Rego: the engine reads only what
the rules read".
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Collection, Iterable, Mapping

import orjson

# Rego tokens that may hide the word `input` without being a reference: strings, raw strings, comments; then
# identifiers. Matched left to right, so a `#` inside a string is not a comment, nor a quote inside a comment.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*', re.S)
# Cutting pays only when it drops a real share of the document (else the copy costs more than the parse saves).
MIN_DROPPED_SHARE = 0.1
# Parts of the syntax tree that hold no code: positions, indexes, the module's text (read by source_mentions).
_NOT_CODE = frozenset({"span", "eidx", "sidx", "qidx", "source"})


def source_mentions(source: str) -> int:
    """How often the identifier `input` appears in a module's code (strings, raw strings and comments skipped)."""
    return sum(1 for m in _TOKEN.finditer(source) if m.group() == "input")


def _field(node: Any) -> str | None:
    """The name of a RefDot's field (`[span, "name"]` in the syntax tree)."""
    field = node.get("field") if isinstance(node, dict) else None
    if isinstance(field, list) and field and isinstance(field[-1], str):
        return field[-1]
    return None


def _is_input(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == {"Var"} and isinstance(node["Var"], dict) \
        and node["Var"].get("value") == "input"


def _constant_key(kind: str, body: dict[str, Any]) -> str | None:
    """The key of `input.<key>` / `input["key"]` / input[`key`]; None for a dynamic index."""
    if kind == "RefDot":
        return _field(body)
    index = body.get("index")
    if isinstance(index, dict) and len(index) == 1:
        (literal, value), = index.items()
        if literal in ("String", "RawString") and isinstance(value, dict) and isinstance(value.get("value"), str):
            return str(value["value"])
    return None


def read_keys(ast: Any) -> tuple[frozenset[str] | None, int]:
    """The top-level keys of `input` that the modules' syntax tree (`get_ast_as_json`, decoded) reads (None: the
    whole document), and how many times it names the identifier `input` (for the check against the sources)."""
    keys: set[str] = set()
    whole = False
    named = 0
    stack: list[Any] = [ast]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for kind, body in node.items():
            if kind in _NOT_CODE:
                continue
            if kind == "with_mods" and isinstance(body, list):
                for mod in body:  # `with <target> as <value>`: the target's root replaces the input, never reads it
                    if not isinstance(mod, dict):
                        stack.append(mod)
                        continue
                    target = mod.get("refr")
                    while isinstance(target, dict) and len(target) == 1 and next(iter(target)) in ("RefDot",
                                                                                                  "RefBrack"):
                        (ref_kind, ref), = target.items()
                        if not isinstance(ref, dict):
                            break
                        named += ref_kind == "RefDot" and _field(ref) == "input"
                        stack.append(ref.get("index"))
                        target = ref.get("refr")
                    if _is_input(target):
                        named += 1
                    else:
                        stack.append(target)
                    stack.extend(v for k, v in mod.items() if k != "refr")
                continue
            if not isinstance(body, dict):
                stack.append(body)
                continue
            if kind == "Var" and body.get("value") == "input":  # bare: `x := input`, `walk(input, ...)`, imports
                named += 1
                whole = True
                continue
            if kind in ("RefDot", "RefBrack"):
                named += kind == "RefDot" and _field(body) == "input"  # `x.input`: a field, not the document
                if _is_input(body.get("refr")):
                    named += 1
                    key = _constant_key(kind, body)
                    if key is None:
                        whole = True
                    else:
                        keys.add(key)
                    stack.extend(v for k, v in body.items() if k != "refr")
                    continue
            stack.append(body)
    return (None if whole else frozenset(keys)), named


def needed_keys(ast_json: str, sources: Iterable[str]) -> frozenset[str] | None:
    """The top-level keys the modules can read, or None for the whole document: when a reference is bare or
    dynamic, or the sources name `input` more often than the syntax tree accounts for."""
    try:
        keys, named = read_keys(orjson.loads(ast_json))
    except (ValueError, RecursionError):
        return None
    if keys is None or named != sum(source_mentions(s) for s in sources):
        return None
    return keys


def decoder() -> Any:
    """msgspec's reader of a top-level object into raw values (made before the engine process forks: it imports
    nothing after that)."""
    import msgspec

    return msgspec.json.Decoder(dict[str, msgspec.Raw])


def input_text(plan_text: str, keys: frozenset[str] | None, reader: Any,
               min_dropped_share: float = MIN_DROPPED_SHARE) -> tuple[str, tuple[str, ...] | None]:
    """The JSON text the engine takes as input, and the top-level keys it holds (None: the whole document):
    `plan_text` itself when `keys` is None, when the document is not a JSON object (or not JSON), or when the
    other keys are less than `min_dropped_share` of it; else an object of `keys`' values (those present), each
    byte for byte as the plan wrote it. `reader` is `decoder()`'s."""
    if keys is None:
        return plan_text, None
    parts = _parts(plan_text, reader)
    return (plan_text, None) if parts is None else _cut(plan_text, parts, keys, min_dropped_share)


def engine_input(plan_text: str, sources: Collection[str], ast_json: Callable[[], str], reader: Any,
                 min_dropped_share: float = MIN_DROPPED_SHARE) -> tuple[str, tuple[str, ...] | None]:
    """`input_text` with the keys the modules (`sources`, and `ast_json()` their syntax tree) read. The tree is
    not even asked for when cutting cannot pay: the biggest top-level value is nearly all of the document and
    its name appears in the modules (bench/make_synthetic.py's plans, where `resource_changes` is 99.9%)."""
    parts = _parts(plan_text, reader)
    if parts is None:
        return plan_text, None
    total = len(plan_text)
    if parts:
        biggest = max(parts, key=lambda k: len(parts[k]))
        if total - len(parts[biggest]) < min_dropped_share * total and any(biggest in s for s in sources):
            return plan_text, None
    try:
        tree = ast_json()
    except Exception:  # noqa: BLE001 - the engine could not show its syntax tree: the whole document, as before
        return plan_text, None
    keys = needed_keys(tree, sources)
    return (plan_text, None) if keys is None else _cut(plan_text, parts, keys, min_dropped_share)


def _parts(plan_text: str, reader: Any) -> Mapping[str, Any] | None:
    """The document's top-level values, raw; None when it is not a JSON object (or not JSON)."""
    try:
        parts: Mapping[str, Any] = reader.decode(plan_text)
    except Exception:  # noqa: BLE001 - msgspec's DecodeError/ValidationError: not a JSON object, given whole
        return None
    return parts


def _cut(plan_text: str, parts: Mapping[str, Any], keys: frozenset[str],
         min_dropped_share: float) -> tuple[str, tuple[str, ...] | None]:
    kept = sorted(k for k in keys if k in parts)
    raws = [bytes(parts[k]) for k in kept]
    total = len(plan_text)  # characters against bytes: the share only decides whether cutting pays
    if total and total - sum(len(r) for r in raws) < min_dropped_share * total:
        return plan_text, None
    body = b",".join(json.dumps(k).encode() + b":" + raw for k, raw in zip(kept, raws, strict=True))
    return "{" + body.decode() + "}", tuple(kept)
