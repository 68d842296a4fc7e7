"""Approval rules written in Rego (PURE: no I/O, no engine).

A check module may say how many approvals a plan needs and from whom, with a rule named `approvals` in one of the
environment's check namespaces (`main` by default):

    approvals contains {"required": 2, "from": ["security@example.com"], "msg": "the plan creates IAM"} if { ... }
    approvals := {"required": 3, "msg": "more than 50 resources change"} if { ... }   # one object also works

Each object is one demand; keys (any other key is refused, so a typo never loosens a rule):
- `required`: distinct approvers the plan needs in all (a whole number, 0 to 100; default 0);
- `from`: identities (policy principal names, compared exactly); at least `from_required` of the counted
  approvers must be among them (a list of 1 to 100 strings);
- `from_required`: how many of `from` (default 1 when `from` is given; at most the length of `from`);
- `msg`: why, shown wherever the missing approvals are reported (a string, scrubbed of the plan's secrets).
An object must demand something (`required` >= 1 or `from`).

Guarantees:
- never looser than the built-in rules: the count a plan needs is the maximum of the built-in count (escalation
  included) and every demand's `required` and `from_required`; every `from` demand must hold as well; approvals
  are counted exactly as before (distinct people, keys and AWS principals, eligible, bound, unexpired);
- fail closed: a value of another shape is an error (one line naming the rule and its modules), which blocks the
  plan like a failing check;
- the demands are part of the plan record's signed `policy_checks` (`approvals`), judged when the plan was made.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

RULE = "approvals"
MAX_REQUIRED = 100
MAX_FROM = 100
MAX_DEMANDS = 100
MAX_MSG_CHARS = 2000
_KEYS = ("required", "from", "from_required", "msg")


@dataclass(frozen=True)
class RuleApproval:
    """One demand of a Rego `approvals` rule: `required` approvers in all, `from_required` of them from `from_`."""

    namespace: str
    required: int = 0
    from_: tuple[str, ...] = ()
    from_required: int = 0
    msg: str = ""

    @property
    def rule(self) -> str:
        return f"{self.namespace}.{RULE}"

    @property
    def count(self) -> int:
        """The distinct approvers this demand needs in all."""
        return max(self.required, self.from_required)

    def why(self) -> str:
        """`main.approvals: the msg` (the rule alone without a message)."""
        return f"{self.rule}: {self.msg}" if self.msg else self.rule

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "rule": RULE, "required": self.required, "from": list(self.from_),
                "from_required": self.from_required, "msg": self.msg}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "RuleApproval":
        return cls(str(d.get("namespace", "main")), int(d.get("required") or 0), tuple(d.get("from") or ()),
                   int(d.get("from_required") or 0), str(d.get("msg") or ""))


def defining_modules(modules: Mapping[str, str], namespace: str) -> list[str]:
    """The module names that declare `package <namespace>` and mention the rule (for error lines)."""
    package = re.compile(rf"^\s*package\s+{re.escape(namespace)}\s*$", re.M)
    return [n for n, s in sorted(modules.items()) if package.search(s) and RULE in s]


def mentions_rule(modules: Mapping[str, str]) -> bool:
    """Whether any module could define the rule: a rule's name is in its source, so this never misses one."""
    return any(RULE in source for source in modules.values())


def _count(where: str, key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{where}: {key} must be a whole number from {low} to {high}, not {json.dumps(value)[:40]}")
    return value


def _demand(namespace: str, where: str, item: Any) -> RuleApproval:
    if not isinstance(item, dict):
        raise ValueError(f"{where} holds {json.dumps(item)[:80]}: each demand must be an object with required "
                         "and/or from (docs/policy-as-code.md)")
    unknown = sorted(set(item) - set(_KEYS))
    if unknown:
        raise ValueError(f"{where} has unknown key {unknown[0]!r} (known: {', '.join(_KEYS)})")
    required = _count(where, "required", item.get("required", 0), 0, MAX_REQUIRED)
    people: tuple[str, ...] = ()
    if "from" in item:
        raw = item["from"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_FROM or \
                not all(isinstance(p, str) and p.strip() and len(p) <= 200 for p in raw):
            raise ValueError(f"{where}: from must be a list of 1 to {MAX_FROM} identities, e.g. "
                             '["security@example.com"]')
        people = tuple(dict.fromkeys(raw))
    if "from_required" in item and not people:
        raise ValueError(f"{where}: from_required needs from (the identities it counts)")
    from_required = _count(where, "from_required", item.get("from_required", 1), 1, len(people)) if people else 0
    msg = item.get("msg", "")
    if not isinstance(msg, str):
        raise ValueError(f"{where}: msg must be a string")
    if required == 0 and not people:
        raise ValueError(f"{where} holds {json.dumps(item)[:80]}: a demand needs required >= 1 or from")
    return RuleApproval(namespace, required, people, from_required, msg[:MAX_MSG_CHARS])


def parse_demands(namespace: str, value: Any, modules: Iterable[str] = ()) -> list[RuleApproval]:
    """The demands of `data.<namespace>.approvals` (an object, or a set/array of objects); ValueError (one line
    naming the rule and the modules that define it) for any other shape."""
    names = list(modules)
    where = f"data.{namespace}.{RULE}" + (f" ({', '.join(names)})" if names else "")
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise ValueError(f"{where} is a {type(value).__name__}, not an object or a set of objects with required "
                         "and/or from")
    if len(items) > MAX_DEMANDS:
        raise ValueError(f"{where} holds {len(items)} demands (at most {MAX_DEMANDS})")
    return [_demand(namespace, where, item) for item in items]


def demands_of(checks: Mapping[str, Any] | None) -> tuple[RuleApproval, ...]:
    """The demands a plan record's signed `policy_checks` hold (none for plans made without them)."""
    return tuple(RuleApproval.from_json(d) for d in (checks or {}).get(RULE) or () if isinstance(d, Mapping))


def required_count(base: int, demands: Iterable[RuleApproval]) -> int:
    """Distinct approvers needed: the built-in count `base` or the strictest demand, whichever is higher."""
    return max([base, *(d.count for d in demands)])


def unmet_from(demands: Iterable[RuleApproval], counted: Iterable[str]) -> list[RuleApproval]:
    """The `from` demands that the counted approvers (distinct, eligible, live) do not meet."""
    approvers = set(counted)
    return [d for d in demands if d.from_ and len(approvers & set(d.from_)) < d.from_required]


def from_phrase(d: RuleApproval) -> str:
    """`an approval from erin@example.com` / `2 approvals from one of a, b, c`."""
    n = "an approval" if d.from_required == 1 else f"{d.from_required} approvals"
    people = d.from_[0] if len(d.from_) == 1 else "one of " + ", ".join(d.from_)
    return f"{n} from {people}"


def demand_lines(demands: Iterable[RuleApproval]) -> list[str]:
    """One line per demand, as `approve`, `show` and the reports state them."""
    out = []
    for d in demands:
        parts = [f"{d.count} approval{'s' if d.count != 1 else ''}"] if d.required else []
        parts += [from_phrase(d)] if d.from_ else []
        out.append(f"{' incl. '.join(parts)} (required by {d.why()})")
    return out


def shortfall_lines(base: int, demands: Iterable[RuleApproval], counted: list[str]) -> list[str]:
    """What the demands still miss given the `counted` approvers: the count when a demand raises it above the
    built-in `base` and it is not reached, then each unmet `from`; [] when the demands are met."""
    demands = list(demands)
    out = []
    top = max(demands, key=lambda d: d.count, default=None)
    if top is not None and top.count > base and len(counted) < top.count:
        out.append(f"{top.count - len(counted)} more approver(s) needed because {top.why()}")
    for d in unmet_from(demands, counted):
        out.append(f"{from_phrase(d)} needed because {d.why()}")
    return out
