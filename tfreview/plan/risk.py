"""Counts and risk flags of a plan, ordered so the most dangerous change is read first.

Counts follow Terraform's own summary line ("Plan: X to add, Y to change, Z to destroy."): a replace counts one
add and one destroy, data-source reads are not counted, imports and forgets are counted as Terraform prints
them. Risk flags never carry attribute values beyond CIDR ranges and ports.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from tfreview.plan.diff import path_text, scrub
from tfreview.plan.ecs import EcsStory
from tfreview.plan.model import REPLACE_ACTIONS, CheckResult, DeferredChange, Plan, ResourceChange

NO_CHANGES = "No changes. Your infrastructure matches the configuration."
LEVELS = ("critical", "high", "medium", "low", "info")
_LEVEL_RANK = {level: i for i, level in enumerate(LEVELS)}

# Resources whose replacement or removal cuts traffic.
TRAFFIC_TYPES = frozenset(
    {"aws_lb", "aws_alb", "aws_lb_listener", "aws_alb_listener", "aws_lb_target_group", "aws_alb_target_group",
     "aws_lb_listener_rule", "aws_alb_listener_rule"}
)
# Resources holding data: destroying one loses it.
STATEFUL_TYPES = frozenset(
    {"aws_db_instance", "aws_rds_cluster", "aws_s3_bucket", "aws_dynamodb_table", "aws_efs_file_system",
     "aws_elasticache_cluster", "aws_elasticache_replication_group", "aws_ebs_volume", "aws_kms_key",
     "aws_secretsmanager_secret", "aws_cloudwatch_log_group", "aws_ecr_repository"}
)
WORLD = ("0.0.0.0/0", "::/0")

_REASONS = {
    "replace_because_tainted": "the object is tainted",
    "replace_because_cannot_update": "the provider cannot update it in place",
    "replace_by_request": "replacement was requested (-replace)",
    "replace_by_triggers": "replace_triggered_by changed",
    "delete_because_no_resource_config": "its configuration was removed",
    "delete_because_no_module": "its module was removed",
    "delete_because_wrong_repetition": "count/for_each changed shape",
    "delete_because_count_index": "its count index is gone",
    "delete_because_each_key": "its for_each key is gone",
    "delete_because_no_move_target": "its moved target does not exist",
    "read_because_config_unknown": "its configuration is known only after apply",
    "read_because_dependency_pending": "a dependency has pending changes",
    "read_because_check_nested": "a nested check block reads it",
}


def reason_text(action_reason: str | None) -> str:
    """Plain-English reason for Terraform's `action_reason` code ("" when there is none)."""
    if not action_reason:
        return ""
    return _REASONS.get(action_reason, action_reason.replace("_", " "))


@dataclass(frozen=True, slots=True)
class Counts:
    """How many resource instances each action touches (managed resources only, reads apart)."""

    add: int = 0
    change: int = 0
    destroy: int = 0
    replace: int = 0
    import_: int = 0
    move: int = 0
    forget: int = 0
    read: int = 0
    no_op: int = 0
    drift: int = 0
    outputs_changed: int = 0

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy or self.import_ or self.move or self.forget or self.outputs_changed)

    def summary_line(self) -> str:
        """Terraform's summary line: "Plan: [N to import, ]X to add, Y to change, Z to destroy[, W to forget]."
        or, when no resource changes at all, "No changes. Your infrastructure matches the configuration."."""
        if not (self.add or self.change or self.destroy or self.import_ or self.forget or self.move):
            return NO_CHANGES
        head = f"Plan: {self.import_} to import, " if self.import_ else "Plan: "
        tail = f", {self.forget} to forget." if self.forget else "."
        return f"{head}{self.add} to add, {self.change} to change, {self.destroy} to destroy{tail}"

    def to_json(self) -> dict:
        return {
            "add": self.add, "change": self.change, "destroy": self.destroy, "replace": self.replace,
            "import": self.import_, "move": self.move, "forget": self.forget, "read": self.read,
            "no_op": self.no_op, "drift": self.drift, "outputs_changed": self.outputs_changed,
            "summary": self.summary_line(),
        }


def count_changes(plan: Plan, drift: tuple[ResourceChange, ...] | None = None) -> Counts:
    """Counts of `plan` with Terraform's semantics (see module docstring); `drift`: `relevant_drift(plan)` when
    the caller already has it."""
    add = change = destroy = replace = imports = moves = forget = read = no_op = 0
    for rc in plan.resource_changes:
        if not rc.is_managed:
            if rc.action == "read":
                read += 1
            continue
        action = rc.action
        if rc.importing is not None:
            imports += 1
        if rc.moved:
            moves += 1
        if action == "create":
            add += 1
        elif action == "update":
            change += 1
        elif action == "delete":
            destroy += 1
        elif action in ("replace", "replace-create-first"):
            add += 1
            destroy += 1
            replace += 1
        elif action == "replace-forget":
            add += 1
            forget += 1
            replace += 1
        elif action == "forget":
            forget += 1
        elif action == "no-op":
            no_op += 1
    outputs = sum(1 for o in plan.output_changes if o.action != "no-op")
    drifted = len(relevant_drift(plan) if drift is None else drift)
    return Counts(add, change, destroy, replace, imports, moves, forget, read, no_op, drifted, outputs)


def _at(value: Any, path: tuple) -> Any:
    for part in path:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            value = value[part]
        else:
            return None
    return value


def empty_value(value: Any) -> bool:
    """Null and empty count as equal (a provider reading back `{}` where the state had null)."""
    return value is None or value == {} or value == [] or value == ""


def relevant_drift(plan: Plan) -> tuple[ResourceChange, ...]:
    """Drift entries Terraform itself would show: with `relevant_attributes` present, only those whose relevant
    attributes (resource address matched exactly, as Terraform does) really changed; null and empty count as
    equal. Without `relevant_attributes` (older formats) every drift entry is relevant."""
    if not plan.relevant_attributes:
        return plan.resource_drift
    by_resource: dict[str, list[tuple]] = {}
    for resource, path in plan.relevant_attributes:
        by_resource.setdefault(resource, []).append(path)
    kept = []
    for rc in plan.resource_drift:
        for path in by_resource.get(rc.address, ()):
            b, a = _at(rc.before, path), _at(rc.after, path)
            if b != a and not (empty_value(b) and empty_value(a)):
                if not path and isinstance(b, dict) and isinstance(a, dict):
                    keys = set(b) | set(a)
                    if all(b.get(k) == a.get(k) or (empty_value(b.get(k)) and empty_value(a.get(k))) for k in keys):
                        continue
                kept.append(rc)
                break
    return tuple(kept)


@dataclass(frozen=True, slots=True)
class RiskFlag:
    """One reason to look twice. level: critical | high | medium | low | info."""

    level: str
    kind: str
    address: str
    reason: str

    def to_json(self) -> dict:
        return {"level": self.level, "kind": self.kind, "address": self.address, "reason": self.reason}


def assess(
    plan: Plan,
    stories: Iterable[EcsStory] = (),
    drift: tuple[ResourceChange, ...] | None = None,
    secrets: frozenset[str] = frozenset(),
) -> tuple[RiskFlag, ...]:
    """All risk flags of `plan`, most severe first, then by address. `drift`: `relevant_drift(plan)` when the
    caller already has it; `secrets`: strings masked in check flags (their problems are the plan's own text)."""
    flags: list[RiskFlag] = []
    if plan.errored:
        flags.append(RiskFlag("critical", "errored", "(plan)", "planning failed: this plan is incomplete and must not be applied"))
    if plan.applyable is False and any(rc.action not in ("no-op", "read") for rc in plan.resource_changes):
        flags.append(RiskFlag("high", "not-applyable", "(plan)", "Terraform says this plan cannot be applied"))
    if plan.complete is False:
        flags.append(RiskFlag("medium", "incomplete", "(plan)", "the plan is incomplete: another plan/apply round will be needed"))
    for rc in plan.resource_changes:
        if rc.is_managed:
            flags.extend(_resource_flags(rc))
    for rc in relevant_drift(plan) if drift is None else drift:
        flags.append(RiskFlag("medium", "drift", rc.address, f"changed outside Terraform ({rc.action})"))
    for check in plan.checks:
        flags.extend(_check_flags(check, secrets))
    for deferred in plan.deferred:
        flags.append(_deferred_flag(deferred))
    for story in stories:
        for flag in story.flags:
            level = "medium" if "rolled back" in flag else "low"
            flags.append(RiskFlag(level, "ecs", story.address, flag))
    return tuple(sorted(flags, key=lambda f: (_LEVEL_RANK[f.level], f.kind, f.address)))


def at_or_above(flags: Iterable[RiskFlag], level: str) -> tuple[RiskFlag, ...]:
    """The flags as severe as `level` or more (`--fail-on LEVEL`: the CI gate)."""
    return tuple(f for f in flags if _LEVEL_RANK[f.level] <= _LEVEL_RANK[level])


def _resource_flags(rc: ResourceChange) -> list[RiskFlag]:
    flags = []
    action = rc.action
    why = reason_text(rc.action_reason)
    if action in REPLACE_ACTIONS:
        forced = ", ".join(path_text(p) for p in rc.replace_paths)
        reason = "replaced"
        if action == "replace":
            reason += " (destroyed before the new one exists)"
        elif action == "replace-create-first":
            reason += " (new one created first)"
        if why:
            reason += f": {why}"
        if forced:
            reason += f"; forced by {forced}"
        level = "critical" if rc.type in TRAFFIC_TYPES and action == "replace" else "high"
        if rc.type == "aws_ecs_task_definition":
            # How every ECS deploy works: a new revision is registered, the old one deregistered.
            level = "low"
            reason = "new task definition revision (the old revision is deregistered)" + (f"; forced by {forced}" if forced else "")
        elif rc.type in TRAFFIC_TYPES:
            reason = "downtime: load balancing resource " + reason
        flags.append(RiskFlag(level, "replace", rc.address, reason))
    elif action == "delete":
        reason = "destroyed" + (f": {why}" if why else "") + (f" (deposed object {rc.deposed})" if rc.deposed else "")
        level = "critical" if rc.type in TRAFFIC_TYPES or rc.type in STATEFUL_TYPES else "high"
        if rc.deposed:
            level = "low"
        if rc.type in TRAFFIC_TYPES:
            reason = "downtime: load balancing resource " + reason
        flags.append(RiskFlag(level, "destroy", rc.address, reason))
    elif action == "forget":
        flags.append(RiskFlag("medium", "forget", rc.address, "removed from state; the real object keeps running unmanaged"))
    if rc.importing is not None:
        flags.append(RiskFlag("info", "import", rc.address, "imported into state"))
    if rc.moved:
        flags.append(RiskFlag("info", "move", rc.address, f"moved from {rc.previous_address}"))
    if action not in ("no-op", "read", "delete", "forget"):
        opened = _world_open(rc)
        if opened:
            level = "high" if rc.before is not None else "medium"
            flags.append(RiskFlag(level, "open-ingress", rc.address, f"ingress opened to {opened}"))
    if rc.type.startswith("aws_iam_") and action not in ("no-op", "read"):
        flags.append(RiskFlag("medium", "iam", rc.address, f"IAM change ({action})"))
    return flags


def _world_ranges(value: Any) -> set[str]:
    """Set of "CIDR port-range" strings of ingress rules open to the world in a security-group-ish value."""
    found: set[str] = set()
    if not isinstance(value, dict):
        return found
    rules = value.get("ingress")
    if isinstance(rules, list):
        for rule in rules:
            if isinstance(rule, dict):
                found |= _rule_world(rule)
    if value.get("type") == "ingress" or "cidr_ipv4" in value or "cidr_ipv6" in value:
        found |= _rule_world(value)
    return found


def _rule_world(rule: dict) -> set[str]:
    cidrs = []
    for key in ("cidr_blocks", "ipv6_cidr_blocks"):
        if isinstance(rule.get(key), list):
            cidrs.extend(rule[key])
    for key in ("cidr_ipv4", "cidr_ipv6"):
        if isinstance(rule.get(key), str):
            cidrs.append(rule[key])
    lo, hi = rule.get("from_port"), rule.get("to_port")
    ports = "all ports" if (lo in (None, 0, -1) and hi in (None, 0, 65535, -1)) or rule.get("ip_protocol") == "-1" else (
        f"port {lo}" if lo == hi else f"ports {lo}-{hi}"
    )
    return {f"{c} ({ports})" for c in cidrs if c in WORLD}


def _world_open(rc: ResourceChange) -> str:
    if rc.type not in ("aws_security_group", "aws_security_group_rule", "aws_vpc_security_group_ingress_rule"):
        return ""
    if rc.type == "aws_security_group_rule" and isinstance(rc.after, dict) and rc.after.get("type") != "ingress":
        return ""
    new = _world_ranges(rc.after) - _world_ranges(rc.before)
    return ", ".join(sorted(new))


def _check_flags(check: CheckResult, secrets: frozenset[str] = frozenset()) -> list[RiskFlag]:
    """The flag of a failed, errored or unknown check; its whole reason is scrubbed of `secrets`."""
    if check.status in ("fail", "error"):
        detail = "; ".join(check.problems) or ", ".join(check.failing_instances) or check.status
        what = "check" if check.kind == "check" else f"{check.kind} check"
        verb = "failed" if check.status == "fail" else "errored"
        return [RiskFlag("high", "check", check.address, scrub(f"{what} {verb}: {detail}", secrets))]
    if check.status == "unknown":
        return [RiskFlag("info", "check", check.address, scrub(f"{check.kind} check result known only after apply", secrets))]
    return []


def _deferred_flag(deferred: DeferredChange) -> RiskFlag:
    return RiskFlag("low", "deferred", deferred.change.address, f"change deferred to a later plan: {deferred.reason.replace('_', ' ')}")
