"""The stored review JSON: a `terraform show -json` plan with its secrets replaced by markers. PURE.

`redact_plan(raw)` is what `tfreview plan` stores as `plans/<id>/plan.json`, hashes into the plan record and shows
to reviewers, and what `tfreview apply` derives again from the binary plan it is about to apply. Replaced by a
marker `(sensitive value #N)`:
- every value Terraform marks sensitive: before/after of resource changes, drift and deferred changes
  (`before_sensitive`/`after_sensitive`), resource values of `planned_values` and `prior_state`
  (`sensitive_values`), outputs marked or declared sensitive;
- the values (and configuration defaults) of root variables declared `sensitive`;
- any other string equal to one of those values (the review masks those too), and inside check messages every
  occurrence of one (as the review scrubs them).
A sensitive `container_definitions` of `aws_ecs_task_definition` keeps the fields the ECS story shows even then
(container names, images, cpu, memory, ports, and the names of environment variables and secrets; see
plan/ecs.py); every other field's values become markers.

Guarantees, each relied on elsewhere:
- deterministic: the same plan gives the same bytes (canonical JSON: sorted keys, compact, UTF-8; configuration
  `references` sorted, as Terraform lists them in varying order), so apply's re-derived JSON hashes like the
  reviewed one;
- equality-preserving: one marker per distinct value, numbered in a fixed walk order, so both sides of a change
  get the same marker exactly when the values were equal and the review still says changed / unchanged /
  sensitivity changed. It tells which secrets are equal, never what they are;
- review-preserving: the review of the redacted plan renders as the review of the original (the document names
  its markers under `tfreview_redaction`, and the review masks them wherever they appear). tests/test_redact.py
  checks it on every golden plan.
"""
from __future__ import annotations

from typing import Any

import orjson

from tfreview import jsontext
from tfreview.plan.diff import _sub as _sub_marks
from tfreview.plan.diff import ENV_CONTAINER_KEYS, MAX_DEPTH, SECRET_NAME_RE, looks_secret, scrub
from tfreview.plan.parse import (
    REDACTION_KEY,
    _any_mark,
    _collect_all,
    _declared_sensitive_outputs,
    check_format_version,
    load_document,
    parse_plan,
    redaction_marker,
)

REDACTION_VERSION = 1
# Container fields the ECS story reveals even from sensitive definitions: they carry no secret (plan/ecs.py).
_ECS_SAFE_FIELDS = frozenset({"name", "image", "cpu", "memory", "memoryReservation", "portMappings", "essential"})
_ECS_NAMED_LISTS = frozenset({"environment", "secrets"})  # their entries' names are kept, values hidden


def canonical(doc: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, compact, UTF-8 (the bytes that are hashed)."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def redact_plan(raw: bytes | str | dict) -> bytes:
    """The redacted, canonical JSON of the plan document `raw` (raises InvalidPlan for a document that is not a
    plan)."""
    return redact_plan_with_secrets(raw)[0]


def redact_plan_with_secrets(raw: bytes | str | dict) -> tuple[bytes, frozenset[str]]:
    """`redact_plan(raw)` and the secrets it hid (Terraform's sensitive strings, and the values hidden by their
    name, such as `SESSION_SECRET`'s, that Terraform did not mark), for a caller that scrubs other text of them too
    (`tfreview plan`'s policy check messages) without parsing the plan again: a rule that prints a secret's value
    shows no more of it than the review does."""
    data = load_document(raw)
    check_format_version(data)
    secrets = parse_plan(data).sensitive_strings
    redactor = _Redactor(secrets)
    out = redactor.document(data)
    out[REDACTION_KEY] = {"version": REDACTION_VERSION, "markers": redactor.count}
    return canonical(out), secrets | frozenset(redactor.hidden)


class _Redactor:
    def __init__(self, secrets: frozenset[str]) -> None:
        self.secrets = secrets
        self.markers: dict[tuple[str, str], str] = {}
        self.hidden: set[str] = set()  # the values hidden by their name only (not marked), as text

    @property
    def count(self) -> int:
        return len(self.markers)

    # -- markers ---------------------------------------------------------------------------------------------
    def marker(self, value: Any) -> Any:
        """The marker of `value` (one per distinct value); None stays None (absent is not a secret)."""
        if value is None:
            return None
        key = ("s", value) if isinstance(value, str) else ("j", canonical(value).decode())
        found = self.markers.get(key)
        if found is None:
            found = self.markers[key] = redaction_marker(len(self.markers) + 1)
        return found

    def leaves(self, value: Any) -> Any:
        """`value` with its structure kept and every scalar replaced by its marker."""
        if isinstance(value, dict):
            return {k: self.leaves(v) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [self.leaves(v) for v in value]
        return self.marker(value)

    # -- unmarked values -------------------------------------------------------------------------------------
    def scrub(self, value: Any, parent_key: Any = None, depth: int = 0) -> Any:
        """`value` with every string equal to a secret replaced by its marker, and the values the review masks by
        their name (environment variables named like secrets) too; JSON strings are looked into, down to the
        diff's `MAX_DEPTH` levels in all (JSON strings nest in JSON strings without bound), then hidden as text."""
        if isinstance(value, str):
            if value in self.secrets:
                return self.marker(value)
            if _is_json_text(value) and (SECRET_NAME_RE.search(value) or any(s in value for s in self.secrets)):
                if depth >= MAX_DEPTH:  # JSON strings in JSON strings, too deep to walk: hidden as text
                    return scrub(value, self.secrets)
                try:
                    inner = jsontext.loads(value)
                except orjson.JSONDecodeError:  # not JSON after all, or nested too deep to walk: hidden as text
                    return scrub(value, self.secrets)
                scrubbed = self.scrub(inner, parent_key, depth + 1)
                return value if scrubbed == inner else orjson.dumps(scrubbed, option=orjson.OPT_SORT_KEYS).decode()
            return value
        if isinstance(value, dict):
            named = _named_secret(parent_key, value.get("name"))
            return {k: self.by_name(v) if named(k) else self.scrub(v, k, depth + 1) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [self.scrub(v, None, depth + 1) for v in value]
        return value

    def by_name(self, value: Any) -> Any:
        """The marker of a value hidden because of its name; its strings are remembered (`hidden`)."""
        _collect_all(value, self.hidden)
        return self.marker(value)

    # -- marked values ---------------------------------------------------------------------------------------
    def hide(self, value: Any, ecs_definitions: bool = False) -> Any:
        if ecs_definitions and isinstance(value, str):
            return self.definitions(value)
        return self.marker(value)

    def definitions(self, text: str) -> Any:
        """Sensitive ECS container definitions: the safe fields kept (scrubbed), every other value a marker."""
        try:
            containers = jsontext.loads(text)
        except orjson.JSONDecodeError:
            return self.marker(text)
        if not isinstance(containers, list):
            return self.marker(text)
        out = []
        for c in containers:
            if not isinstance(c, dict):
                out.append(self.leaves(c))
                continue
            out.append({k: self.scrub(v) if k in _ECS_SAFE_FIELDS else
                        self.named_entries(v) if k in _ECS_NAMED_LISTS else self.leaves(v)
                        for k, v in sorted(c.items())})
        return orjson.dumps(out, option=orjson.OPT_SORT_KEYS).decode()

    def named_entries(self, items: Any) -> Any:
        """`environment` / `secrets` of a sensitive container: each entry's name kept (names are not secrets: the
        ECS story says `env +FEATURE_X, ~DB_PASSWORD (value hidden)`), every other value a marker."""
        if not isinstance(items, list):
            return self.leaves(items)
        return [{k: self.scrub(v) if k == "name" else self.leaves(v) for k, v in sorted(e.items())}
                if isinstance(e, dict) else self.leaves(e) for e in items]

    def marked(self, value: Any, marks: Any, path: tuple = (), ecs: bool = False) -> Any:
        """One value with its sensitivity marks (a planned or prior resource, one side of a change)."""
        if marks is True:
            return self.hide(value, ecs and path == ("container_definitions",))
        if not _any_mark(marks):
            return self.scrub(value, path[-1] if path else None)
        if isinstance(value, dict) and isinstance(marks, dict):
            named = _named_secret(path[-1] if path else None, value.get("name"))
            out = {}
            for k, v in sorted(value.items()):
                if named(k):  # hidden by its name whatever its marks: remembered as `by_name` does
                    _collect_all(v, self.hidden)
                out[k] = self.marked(v, True if named(k) else _sub_marks(marks, k), (*path, k), ecs)
            return out
        if isinstance(value, list) and isinstance(marks, list):
            return [self.marked(v, _sub_marks(marks, i), (*path, i), ecs) for i, v in enumerate(value)]
        return self.scrub(value, path[-1] if path else None)

    def pair(self, b: Any, a: Any, bs: Any, as_: Any, path: tuple = (), ecs: bool = False) -> tuple[Any, Any]:
        """Both sides of a change: where either side is sensitive, both are hidden (the review compares them)."""
        if bs is True or as_ is True:
            whole = ecs and path == ("container_definitions",)
            return self.hide(b, whole), self.hide(a, whole)
        if not _any_mark(bs) and not _any_mark(as_):
            parent = path[-1] if path else None
            return self.scrub(b, parent), self.scrub(a, parent)
        if isinstance(b, dict) and isinstance(a, dict):
            parent = path[-1] if path else None
            named_b, named_a = _named_secret(parent, b.get("name")), _named_secret(parent, a.get("name"))
            ob, oa = {}, {}
            for k in sorted(set(b) | set(a)):
                named = named_b(k) or named_a(k)  # as the review: a secret name on either side hides both
                if named:
                    _collect_all(b.get(k), self.hidden)
                    _collect_all(a.get(k), self.hidden)
                vb, va = self.pair(b.get(k), a.get(k), True if named else _sub_marks(bs, k),
                                   True if named else _sub_marks(as_, k), (*path, k), ecs)
                if k in b:
                    ob[k] = vb
                if k in a:
                    oa[k] = va
            return ob, oa
        if isinstance(b, list) and isinstance(a, list):
            n = max(len(b), len(a))
            pairs = [self.pair(b[i] if i < len(b) else None, a[i] if i < len(a) else None, _sub_marks(bs, i),
                               _sub_marks(as_, i), (*path, i), ecs) for i in range(n)]
            return [p[0] for p in pairs[:len(b)]], [p[1] for p in pairs[:len(a)]]
        return self.marked(b, bs, path, ecs), self.marked(a, as_, path, ecs)

    # -- the document ----------------------------------------------------------------------------------------
    # Only values are redacted: addresses, names, types and actions are structure (a resource may be named like
    # a secret value without being one).
    def document(self, data: dict) -> dict:
        sensitive_outputs = _declared_sensitive_outputs(data)
        sensitive_vars = _sensitive_variables(data)
        out = {k: v for k, v in data.items() if k != REDACTION_KEY}
        for key in ("resource_changes", "resource_drift"):
            if isinstance(data.get(key), list):
                out[key] = [self.resource_change(rc) for rc in data[key]]
        if isinstance(data.get("deferred_changes"), list):
            out["deferred_changes"] = [
                {**d, "resource_change": self.resource_change(d.get("resource_change"))} if isinstance(d, dict) else d
                for d in data["deferred_changes"]]
        if isinstance(data.get("output_changes"), dict):
            out["output_changes"] = {name: self.output_change(change, name in sensitive_outputs)
                                     for name, change in sorted(data["output_changes"].items())}
        if isinstance(data.get("planned_values"), dict):
            out["planned_values"] = self.values(data["planned_values"], sensitive_outputs)
        prior = data.get("prior_state")
        if isinstance(prior, dict) and isinstance(prior.get("values"), dict):
            out["prior_state"] = {**prior, "values": self.values(prior["values"], sensitive_outputs)}
        if isinstance(data.get("variables"), dict):
            out["variables"] = {name: {**v, "value": (self.marker if name in sensitive_vars else self.scrub)(v.get("value"))}
                                if isinstance(v, dict) and "value" in v else v
                                for name, v in sorted(data["variables"].items())}
        if isinstance(data.get("configuration"), dict):
            out["configuration"] = self.configuration(data["configuration"], sensitive_vars)
        if "checks" in data:
            out["checks"] = _map_strings(data["checks"], lambda s: scrub(s, self.secrets) if s not in self.secrets
                                         else self.marker(s))
        return out

    def resource_change(self, rc: Any) -> Any:
        if not isinstance(rc, dict) or not isinstance(rc.get("change"), dict):
            return rc
        change = rc["change"]
        ecs = rc.get("type") == "aws_ecs_task_definition"
        return {**rc, "change": self.sides(change, change.get("before_sensitive"), change.get("after_sensitive"), ecs)}

    def sides(self, change: dict, bs: Any, as_: Any, ecs: bool = False) -> dict:
        """A change with its before/after redacted (absent sides stay absent)."""
        before, after = self.pair(change.get("before"), change.get("after"), bs, as_, (), ecs)
        out = dict(change)
        if "before" in change:
            out["before"] = before
        if "after" in change:
            out["after"] = after
        return out

    def output_change(self, change: Any, declared_sensitive: bool) -> Any:
        if not isinstance(change, dict):
            return change
        bs, as_ = change.get("before_sensitive"), change.get("after_sensitive")
        if declared_sensitive or bs is True or as_ is True:
            bs = as_ = True
        return self.sides(change, bs, as_)

    def values(self, values: dict, sensitive_outputs: set[str]) -> dict:
        """planned_values, or prior_state.values: outputs and the module tree of resources."""
        out = dict(values)
        if isinstance(values.get("outputs"), dict):
            out["outputs"] = {
                name: {**o, "value": (self.marker if o.get("sensitive") or name in sensitive_outputs
                                      else self.scrub)(o["value"])} if isinstance(o, dict) and "value" in o else o
                for name, o in sorted(values["outputs"].items())}
        if isinstance(values.get("root_module"), dict):
            out["root_module"] = self.module(values["root_module"])
        return out

    def module(self, module: dict) -> dict:
        out = dict(module)
        if isinstance(module.get("resources"), list):
            out["resources"] = [
                {**r, "values": self.marked(r["values"], r.get("sensitive_values"), (),
                                            r.get("type") == "aws_ecs_task_definition")}
                if isinstance(r, dict) and "values" in r else r for r in module["resources"]]
        if isinstance(module.get("child_modules"), list):
            out["child_modules"] = [self.module(m) if isinstance(m, dict) else m for m in module["child_modules"]]
        return out

    def configuration(self, config: dict, sensitive_vars: set[str]) -> dict:
        """Literal values in the configuration (`constant_value`) scrubbed, `references` sorted; sensitive variables'
        defaults hidden."""
        out = self.constants(config)
        variables = (out.get("root_module") or {}).get("variables")
        if isinstance(variables, dict):
            for name in sorted(sensitive_vars):
                decl = variables.get(name)
                if isinstance(decl, dict) and "default" in decl:
                    variables[name] = {**decl, "default": self.marker(decl["default"])}
        return out

    def constants(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.scrub(v) if k == "constant_value" else _sorted_references(v) if k == "references"
                    else self.constants(v) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [self.constants(v) for v in value]
        return value


def _map_strings(value: Any, fn: Any) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    return value


def _sorted_references(value: Any) -> Any:
    """An expression's `references`, sorted: a set to Terraform, which lists some of them (those of dynamic blocks)
    in a different order from one `terraform show -json` to the next."""
    if isinstance(value, list) and all(isinstance(r, str) for r in value):
        return sorted(value)
    return value


def _named_secret(parent_key: Any, name: Any) -> Any:
    """Which keys of an object the review masks by name (as plan/diff.py): members of an environment map named
    like secrets, and the `value` of a {name, value} pair whose name looks secret."""
    env_map = parent_key in ENV_CONTAINER_KEYS
    name_secret = looks_secret(name)
    return lambda key: (env_map and looks_secret(key)) or (name_secret and key == "value")


def _sensitive_variables(data: dict) -> set[str]:
    root = ((data.get("configuration") or {}).get("root_module") or {})
    declared = root.get("variables") or {}
    if not isinstance(declared, dict):
        return set()
    return {name for name, decl in declared.items() if isinstance(decl, dict) and decl.get("sensitive")}


def _is_json_text(value: str) -> bool:
    return len(value) >= 2 and value.lstrip()[:1] in ("{", "[")
