"""`terraform show -json` document -> `Plan` model.

Reads format_version 0.x and 1.x; refuses any other major version, and anything that is not a plan, with an
`InvalidPlan` error carrying a one-line message and a hint. Unknown fields are ignored. Raw values are kept by
reference (no copies), so parsing costs little beyond `orjson.loads`.
"""
from __future__ import annotations

from typing import Any, Iterable

import orjson

from tfreview.errors import InvalidPlan
from tfreview import jsontext
from tfreview.text import UNSAFE
from tfreview.plan.model import (
    ACTION_WORDS,
    CheckResult,
    DeferredChange,
    OutputChange,
    Plan,
    ResourceChange,
)

SUPPORTED_MAJORS = ("0", "1")
# A plan redacted by tfreview (plan/redact.py) names how many markers it holds: {"version": 1, "markers": N}.
REDACTION_KEY = "tfreview_redaction"
MAX_MARKERS = 1_000_000  # distinct secret values; far more than any real plan, few enough to hold in memory


def redaction_marker(n: int) -> str:
    """The marker that replaces the n-th distinct secret value of a redacted plan (n from 1)."""
    return f"(sensitive value #{n})"
HINT = "pass the output of `terraform show -json PLANFILE` (a plan, not a state)"


def load_document(doc: bytes | str | dict) -> dict:
    """Decode a plan document given as bytes, text or an already-decoded dict."""
    if isinstance(doc, dict):
        return doc
    if isinstance(doc, (bytes, bytearray, memoryview, str)):
        try:
            data = jsontext.loads(doc)
        except jsontext.TooDeep:
            raise InvalidPlan(f"broken plan: its values nest deeper than {jsontext.MAX_NESTING} levels, which no "
                              "Terraform plan does", HINT) from None
        except orjson.JSONDecodeError as exc:
            raise InvalidPlan(f"the plan is not valid JSON: {exc}", HINT) from None
        if not isinstance(data, dict):
            raise InvalidPlan("the plan is not a JSON object", HINT)
        return data
    raise InvalidPlan(f"cannot read a plan from a {type(doc).__name__}", HINT)


def check_format_version(data: dict) -> str:
    """Return the document's format_version, refusing missing or unsupported (major not 0 or 1) versions."""
    version = data.get("format_version")
    if not isinstance(version, str) or not version:
        raise InvalidPlan("not a Terraform JSON plan: no format_version", HINT)
    major = version.split(".", 1)[0]
    if major not in SUPPORTED_MAJORS:
        raise InvalidPlan(
            f"unsupported plan format_version {version} (this tfreview reads 0.x and 1.x)",
            "render it with the Terraform version that wrote it, or upgrade tfreview",
        )
    if "resource_changes" not in data and "planned_values" not in data:
        # Other Terraform JSON documents carry a format_version too: say which one it is.
        for key, what in (("values", "a Terraform state document"), ("provider_schemas", "`terraform providers "
                          "schema -json` output"), ("diagnostics", "`terraform validate -json` output")):
            if key in data:
                raise InvalidPlan(f"this is {what}, not a plan", HINT)
        raise InvalidPlan("not a plan: no planned_values nor resource_changes", HINT)
    return version


def parse_plan(doc: bytes | str | dict) -> Plan:
    """Parse and validate a plan document into the `Plan` model (raises InvalidPlan)."""
    data = load_document(doc)
    version = check_format_version(data)
    changes = tuple(_resource_change(rc, "resource_changes") for rc in _list(data, "resource_changes"))
    _unique(changes, "resource_changes")
    drift = tuple(_resource_change(rc, "resource_drift") for rc in _list(data, "resource_drift"))
    _unique(drift, "resource_drift")
    deferred = tuple(_deferred(d) for d in _list(data, "deferred_changes"))
    outputs = _outputs(data)
    sensitive = _sensitive_strings(data, changes, drift, outputs)
    return Plan(
        format_version=version,
        terraform_version=_str_or_none(data.get("terraform_version")),
        applyable=data.get("applyable") if isinstance(data.get("applyable"), bool) else None,
        complete=data.get("complete") if isinstance(data.get("complete"), bool) else None,
        errored=data.get("errored") is True,
        resource_changes=changes,
        resource_drift=drift,
        output_changes=outputs,
        checks=tuple(_check(c) for c in _list(data, "checks")),
        deferred=deferred,
        relevant_attributes=tuple(
            (str(a.get("resource", "")), _path(a.get("attribute") or [], "relevant_attributes"))
            for a in _list(data, "relevant_attributes")
            if isinstance(a, dict)
        ),
        timestamp=_str_or_none(data.get("timestamp")),
        sensitive_strings=sensitive,
    )


def sensitive_strings(doc: bytes | str | dict) -> frozenset[str]:
    """`parse_plan(doc).sensitive_strings` of a plan already known to parse (the policy checks scrub their messages
    of them), reading only the changes with a sensitivity mark: the others add nothing to the set, and building the
    model of every change of a 10,000-resource plan costs more than the policy checks themselves."""
    data = load_document(doc)
    check_format_version(data)

    def marked(section: str) -> tuple[ResourceChange, ...]:
        out = []
        for rc in _list(data, section):
            change = rc.get("change") if isinstance(rc, dict) else None
            if not isinstance(change, dict) or _any_mark(change.get("before_sensitive")) or \
                    _any_mark(change.get("after_sensitive")):
                out.append(_resource_change(rc, section))  # a broken entry raises here, as parse_plan does
        return tuple(out)

    return _sensitive_strings(data, marked("resource_changes"), marked("resource_drift"), _outputs(data))


def _unique(changes: tuple[ResourceChange, ...], section: str) -> None:
    """Terraform lists each resource instance once per section (a deposed object beside it has its own `deposed`
    key): a second entry for the same one would let a reviewer read one change while another is applied."""
    seen: set[tuple[str, Any]] = set()
    for rc in changes:
        key = (rc.address, rc.deposed)
        if key in seen:
            raise InvalidPlan(f"broken plan: {rc.address} is listed twice in `{section}`"
                              f"{f' (deposed {rc.deposed})' if rc.deposed else ''}", HINT)
        seen.add(key)


def _list(data: dict, key: str) -> list:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidPlan(f"broken plan: `{key}` is not a list", HINT)
    return value


def _path(steps: Any, where: str) -> tuple[str | int, ...]:
    """An attribute path as Terraform writes it: a list of keys (strings) and indexes (integers)."""
    if not isinstance(steps, list) or not all(isinstance(s, (str, int)) and not isinstance(s, bool) for s in steps):
        raise InvalidPlan(f"broken plan: {where} holds a path that is not a list of names and indexes", HINT)
    return tuple(steps)


def _table(data: dict, key: str) -> dict:
    """data[key] when it is an object ({} when absent); anything else is a plan no Terraform writes."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidPlan(f"broken plan: `{key}` is not an object", HINT)
    return value


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _actions(raw: Any, where: str) -> tuple[tuple[str, ...], str]:
    if not isinstance(raw, list) or not raw:
        raise InvalidPlan(f"broken plan: {where} has no actions list", HINT)
    actions = tuple(raw)
    try:
        word = ACTION_WORDS.get(actions)
    except TypeError:  # an unhashable entry: not an action list Terraform writes
        word = None
    if word is None:
        raise InvalidPlan(f"broken plan: {where} has unknown actions {list(actions)}", HINT)
    return actions, word


def _resource_change(rc: Any, section: str) -> ResourceChange:
    if not isinstance(rc, dict) or not isinstance(rc.get("address"), str):
        raise InvalidPlan(f"broken plan: an entry of `{section}` has no address", HINT)
    address = rc["address"]
    if not address or UNSAFE.search(address):  # Terraform quotes keys: its addresses are printable, one line
        raise InvalidPlan(f"broken plan: an entry of `{section}` has the address {address!r}, which no Terraform "
                          "writes", HINT)
    change = rc.get("change")
    if not isinstance(change, dict):
        raise InvalidPlan(f"broken plan: {address} in `{section}` has no change", HINT)
    actions, word = _actions(change.get("actions"), address)
    replace_paths = change.get("replace_paths")
    if replace_paths is not None and not isinstance(replace_paths, list):
        raise InvalidPlan(f"broken plan: {address} has a replace_paths that is not a list", HINT)
    get = rc.get
    importing = change.get("importing")
    rtype, name, mode = get("type"), get("name"), get("mode")
    module, provider = get("module_address"), get("provider_name")
    reason, previous, deposed = get("action_reason"), get("previous_address"), get("deposed")
    generated = change.get("generated_config")
    # Positional construction, inline type checks: this runs once per resource of plans with 50k of them.
    return ResourceChange(
        address,
        mode if mode.__class__ is str and mode else "managed",
        rtype if rtype.__class__ is str else str(rtype or ""),
        name if name.__class__ is str else str(name or ""),
        get("index"),
        module if module.__class__ is str else None,
        provider if provider.__class__ is str else str(provider or ""),
        actions,
        word,
        reason if reason.__class__ is str else None,
        previous if previous.__class__ is str else None,
        deposed if deposed.__class__ is str else None,
        importing if importing.__class__ is dict else None,
        tuple(_path(p, f"{address} replace_paths") for p in replace_paths) if replace_paths else (),
        generated if generated.__class__ is str else None,
        change.get("before"),
        change.get("after"),
        change.get("after_unknown"),
        change.get("before_sensitive"),
        change.get("after_sensitive"),
    )


def _deferred(entry: Any) -> DeferredChange:
    if not isinstance(entry, dict):
        raise InvalidPlan("broken plan: an entry of `deferred_changes` is not an object", HINT)
    return DeferredChange(
        reason=str(entry.get("reason") or "unknown"),
        change=_resource_change(entry.get("resource_change"), "deferred_changes"),
    )


def _outputs(data: dict) -> tuple[OutputChange, ...]:
    raw = data.get("output_changes") or {}
    if not isinstance(raw, dict):
        raise InvalidPlan("broken plan: `output_changes` is not an object", HINT)
    declared = _declared_sensitive_outputs(data)
    result = []
    for name, change in raw.items():
        if not isinstance(change, dict):
            raise InvalidPlan(f"broken plan: output {name} has no change", HINT)
        actions, word = _actions(change.get("actions"), f"output {name}")
        sensitive = (
            name in declared
            or change.get("before_sensitive") is True
            or change.get("after_sensitive") is True
        )
        result.append(
            OutputChange(
                name=name,
                actions=actions,
                action=word,
                sensitive=sensitive,
                before=change.get("before"),
                after=change.get("after"),
                after_unknown=change.get("after_unknown"),
                before_sensitive=True if sensitive else change.get("before_sensitive"),
                after_sensitive=True if sensitive else change.get("after_sensitive"),
            )
        )
    return tuple(sorted(result, key=lambda o: o.name))


def _declared_sensitive_outputs(data: dict) -> set[str]:
    """Outputs marked sensitive anywhere: configuration, planned values or prior state (old formats carry the
    mark only there, not on the output change)."""
    names: set[str] = set()
    root = _table(_table(data, "configuration"), "root_module")
    for name, out in _table(root, "outputs").items():
        if isinstance(out, dict) and out.get("sensitive"):
            names.add(name)
    for values in (_table(data, "planned_values"), _table(_table(data, "prior_state"), "values")):
        for name, out in _table(values, "outputs").items():
            if isinstance(out, dict) and out.get("sensitive"):
                names.add(name)
    return names


def _check(entry: Any) -> CheckResult:
    if not isinstance(entry, dict):
        raise InvalidPlan("broken plan: an entry of `checks` is not an object", HINT)
    addr = entry.get("address") or {}
    display = addr.get("to_display") if isinstance(addr, dict) else str(addr)
    failing = []
    problems = []
    for inst in _list(entry, "instances"):
        if not isinstance(inst, dict):
            continue
        if inst.get("status") in ("fail", "error"):
            iaddr = inst.get("address") or {}
            failing.append(str(iaddr.get("to_display") if isinstance(iaddr, dict) else iaddr))
        for problem in _list(inst, "problems"):
            if isinstance(problem, dict) and problem.get("message"):
                problems.append(str(problem["message"]))
    return CheckResult(
        address=str(display or "?"),
        kind=str(addr.get("kind") if isinstance(addr, dict) else "") or "check",
        status=str(entry.get("status") or "unknown"),
        failing_instances=tuple(failing),
        problems=tuple(problems),
    )


# --- sensitive values -----------------------------------------------------------------------------------------

def _sensitive_strings(
    data: dict,
    changes: Iterable[ResourceChange],
    drift: Iterable[ResourceChange],
    outputs: Iterable[OutputChange],
) -> frozenset[str]:
    """Every string known to be secret: values of sensitive root variables, values under sensitive marks of
    resource changes and drift, and sensitive outputs. Walks only the (small) sensitivity marks."""
    found: set[str] = set()
    root = _table(_table(data, "configuration"), "root_module")
    declared_vars = root.get("variables") or {}
    values = data.get("variables") or {}
    if isinstance(declared_vars, dict) and isinstance(values, dict):
        for name, decl in declared_vars.items():
            if isinstance(decl, dict) and decl.get("sensitive") and isinstance(values.get(name), dict):
                _collect_all(values[name].get("value"), found)
    for rc in (*changes, *drift):
        if _any_mark(rc.before_sensitive):
            _collect_marked(rc.before, rc.before_sensitive, found)
        if _any_mark(rc.after_sensitive):
            _collect_marked(rc.after, rc.after_sensitive, found)
    for out in outputs:
        if out.sensitive:
            _collect_all(out.before, found)
            _collect_all(out.after, found)
    redaction = data.get(REDACTION_KEY)
    if isinstance(redaction, dict) and isinstance(redaction.get("markers"), int):
        if not 0 <= redaction["markers"] <= MAX_MARKERS:
            raise InvalidPlan(f"broken plan: `{REDACTION_KEY}` claims {redaction['markers']} markers", HINT)
        found.update(redaction_marker(n) for n in range(1, redaction["markers"] + 1))
    found.discard("")
    return frozenset(found)


def _any_mark(marks: Any) -> bool:
    """True when a sensitivity mark structure holds at least one `true` (checked at C speed)."""
    if marks is True:
        return True
    if not marks:
        return False
    return b"true" in orjson.dumps(marks)


def _collect_all(value: Any, found: set[str]) -> None:
    if isinstance(value, str):
        # A sensitive JSON string (e.g. container_definitions) is masked whole; its inner strings are not
        # secrets by themselves (container names, images), the values that made it sensitive are collected
        # from the sensitive variables.
        found.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            _collect_all(v, found)
    elif isinstance(value, list):
        for v in value:
            _collect_all(v, found)
    elif value is not None and not isinstance(value, bool):
        found.add(str(value))


def _collect_marked(value: Any, marks: Any, found: set[str]) -> None:
    if marks is True:
        _collect_all(value, found)
    elif isinstance(marks, dict) and isinstance(value, dict):
        for key, mark in marks.items():
            if mark and key in value:
                _collect_marked(value[key], mark, found)
    elif isinstance(marks, list) and isinstance(value, list):
        for mark, item in zip(marks, value, strict=False):
            if mark:
                _collect_marked(item, mark, found)
