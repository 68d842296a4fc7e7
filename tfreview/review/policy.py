"""Approval policy and apply preconditions (PURE: no I/O, no clock, no store).

An approval means: these people read this exact plan, and only this plan, applied to this exact state, can go
out. So an `Approval` repeats every fact that binds it (plan and package sha256, app/env/version, state lineage
and serial, terraform version, planner), and `check_apply` counts only approvals whose facts equal the plan's.

Rules come from the `[policy.<env>]` tables of the store's signed policy document (tfreview.trust.policy);
`[policy.default]` holds the values every environment inherits:

    [policy.default]
    required_approvals = 1
    approval_ttl_hours = 24          # 0 = approvals never expire

    [policy.prod]
    required_approvals = 2
    approvers = ["alice@example.com", "bob@example.com", "carol@example.com"]
    escalate_on_risk = 1             # one more approver when the plan destroys/replaces or touches IAM/SGs
    requires_success_in = "qa"       # promotion gate
    break_glass = ["oncall@example.com"]

Every decision raises `PolicyRefusal` (exit 3) with a one-line reason and a hint naming what to do. Decisions are
fed verified facts: the shell (tfreview.trust.verify) checked each approval's signature and gives its key's
fingerprint and AWS principal; identities are principal names from the policy, compared exactly.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Literal, Mapping, Sequence

from tfreview.errors import BadInput, PolicyRefusal

DEFAULT_KEY = "default"


# -- policy --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnvPolicy:
    """What one environment demands before a plan may be applied.

    required_approvals: distinct approvers needed (before escalation).
    allow_self_approval: the planner may approve their own plan.
    approvers: who may approve (None = anyone).
    approval_ttl_hours: hours an approval stays valid (None = forever).
    escalate_on_risk: extra approvers when the plan is risky (destroy/replace, IAM, security groups).
    requires_success_in: promotion gate: the version must have been applied successfully in that env first.
    break_glass: identities allowed to apply without approvals (`apply --break-glass --reason`).
    rollback_requires_approval: a rollback plan needs approvals like any other plan.
    destroy_approvals: distinct approvers a destroy plan (`plan --destroy`) needs (None = as any risky plan).
    destroy_approvers: who may approve a destroy plan (None = the env's approvers).
    checks: Rego files (glob patterns relative to the policy file) whose rules judge every plan of the env
        (tfreview.trust.rego; docs/policy-as-code.md).
    checks_namespaces: the packages whose deny/violation/warn rules count (conftest's --namespace).
    checks_timeout_seconds: seconds the checks of one plan may run before they block it.
    """

    required_approvals: int = 1
    allow_self_approval: bool = False
    approvers: tuple[str, ...] | None = None
    approval_ttl_hours: float | None = 24
    escalate_on_risk: int = 1
    requires_success_in: str | None = None
    break_glass: tuple[str, ...] = ()
    rollback_requires_approval: bool = False
    destroy_approvals: int | None = None
    destroy_approvers: tuple[str, ...] | None = None
    checks: tuple[str, ...] = ()
    checks_namespaces: tuple[str, ...] = ("main",)
    checks_timeout_seconds: float = 10.0

    def approvers_of(self, facts: "PlanFacts") -> tuple[str, ...] | None:
        """Who may approve this plan (None = anyone): the destroy approvers for a destroy plan, when listed."""
        return self.destroy_approvers if facts.destroy and self.destroy_approvers is not None else self.approvers


@dataclass(frozen=True)
class Policy:
    """Per-environment policies; environments without a table get `default`."""

    envs: Mapping[str, EnvPolicy] = field(default_factory=dict)
    default: EnvPolicy = EnvPolicy()

    def for_env(self, env: str) -> EnvPolicy:
        """The policy of `env` (the default one if `env` has no table)."""
        return self.envs.get(env, self.default)


_KEYS = {f.name for f in fields(EnvPolicy)}


def _bad(env: str, key: str, want: str) -> BadInput:
    return BadInput(
        f"policy: [policy.{env}] {key} must be {want}",
        f"fix {key} in the [policy.{env}] table of the policy file",
    )


def _identities(env: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _bad(env, key, 'a list of identities, e.g. ["alice@example.com"]')
    return tuple(v.strip() for v in value)


def _count(env: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(env, key, "a whole number >= 0")
    return value


def _flag(env: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(env, key, "true or false")
    return value


def _checks(env: str, key: str, value: Any) -> tuple[str, ...]:
    import re

    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise _bad(env, key, 'a list of strings, e.g. ["policy/*.rego"]' if key == "checks" else '["main"]')
    for v in value:
        if key == "checks" and (v.startswith("/") or ".." in v.split("/") or "\\" in v):
            raise _bad(env, key, f"relative glob patterns inside the policy file's folder (not {v!r})")
        if key == "checks_namespaces" and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", v):
            raise _bad(env, key, f"Rego package names such as main or terraform.aws (not {v!r})")
    return tuple(value)


def _env_policy(env: str, table: Any, base: EnvPolicy) -> EnvPolicy:
    if not isinstance(table, Mapping):
        raise BadInput(f"policy: policy.{env} must be a table", f"write it as [policy.{env}] with key = value lines")
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            close = difflib.get_close_matches(key, sorted(_KEYS), n=1)
            hint = f"did you mean {close[0]}?" if close else "known keys: " + ", ".join(sorted(_KEYS))
            raise BadInput(f"policy: unknown key {key!r} in [policy.{env}]", hint)
        if key in ("required_approvals", "escalate_on_risk", "destroy_approvals"):
            changes[key] = _count(env, key, value)
        elif key in ("allow_self_approval", "rollback_requires_approval"):
            changes[key] = _flag(env, key, value)
        elif key in ("approvers", "break_glass", "destroy_approvers"):
            changes[key] = _identities(env, key, value)
        elif key == "approval_ttl_hours":
            # TOML has no null: 0 or false means "approvals never expire".
            if value is False or value == 0:
                changes[key] = None
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise _bad(env, key, "a number of hours > 0 (0 = never expires)")
            else:
                changes[key] = float(value)
        elif key in ("checks", "checks_namespaces"):
            changes[key] = _checks(env, key, value)
        elif key == "checks_timeout_seconds":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
                raise _bad(env, key, "a number of seconds from 0 to 3600 (default 10)")
            changes[key] = float(value)
        elif key == "requires_success_in":
            if value is False or value == "":
                changes[key] = None
            elif not isinstance(value, str):
                raise _bad(env, key, 'an environment name, e.g. "qa"')
            else:
                changes[key] = value
    policy = replace(base, **changes)
    if policy.requires_success_in == env:
        raise _bad(env, "requires_success_in", "another environment than the one it gates")
    return policy


def policy_from_dict(d: Mapping[str, Any] | None) -> Policy:
    """Parse the `policy` tables of a policy document ({env: {key: value}}) into a `Policy`.

    `default` is inherited by every environment; each `[policy.<env>]` overrides only the keys it names.
    Raises BadInput (with a hint) on unknown keys and wrong types.
    """
    if d is None:
        return Policy()
    if not isinstance(d, Mapping):
        raise BadInput("policy: policy must be a table of environments", "write [policy.<env>] tables")
    default = _env_policy(DEFAULT_KEY, d.get(DEFAULT_KEY, {}), EnvPolicy())
    envs = {env: _env_policy(env, table, default) for env, table in d.items() if env != DEFAULT_KEY}
    return Policy(envs=envs, default=default)


# -- facts ---------------------------------------------------------------------------------------------------
def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(value: str | datetime) -> datetime:
    """An ISO-8601 timestamp (a trailing Z allowed) as an aware UTC datetime; naive times are taken as UTC."""
    t = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


@dataclass(frozen=True)
class BoundFacts:
    """The plan facts an approval binds to, first fields of both `PlanFacts` and `Approval`.

    state_lineage/state_serial: terraform state identity at plan time ("" and 0 for an empty state).
    """

    plan_id: str
    plan_sha256: str
    package_sha256: str
    app: str
    env: str
    version: str
    state_lineage: str
    state_serial: int
    terraform_version: str
    planner: str


def _empty_state(kw: dict[str, Any]) -> dict[str, Any]:
    """`from_dict` keywords with a missing/null state identity as an empty state's ("" and 0)."""
    kw["state_lineage"] = kw.get("state_lineage") or ""
    kw["state_serial"] = int(kw.get("state_serial") or 0)
    return kw


@dataclass(frozen=True)
class PlanFacts(BoundFacts):
    """Everything an approval binds to, as recorded when the plan was made (`BoundFacts` first).

    risky: the plan destroys/replaces or touches IAM or security groups; risk_reasons says which, one line each.
    destroy: a destroy plan (`plan --destroy`), under the env's destroy rule.
    planner_key: fingerprint of the key that signed the plan record (set by the shell once verified).
    planner_arn: the AWS principal the (signed) plan record names as the planner's (S3 mode; "" elsewhere).
    rule_approvals: the demands of the policy's Rego `approvals` rules, from the signed record's `policy_checks`
        (tfreview.review.rego_approvals): more approvers, or approvers from named people, never fewer.
    """

    created_at: datetime
    risky: bool = False
    risk_reasons: tuple[str, ...] = ()
    destroy: bool = False
    planner_key: str = ""
    planner_arn: str = ""
    rule_approvals: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (times as ISO-8601 UTC)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["created_at"] = _iso(self.created_at)
        d["risk_reasons"] = list(self.risk_reasons)
        d["rule_approvals"] = [r.to_json() for r in self.rule_approvals]
        d.pop("planner_key")
        d.pop("planner_arn")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PlanFacts":
        """Inverse of `to_dict` (unknown keys ignored); from a plan record, `rule_approvals` are read from its
        `policy_checks`."""
        from tfreview.review.rego_approvals import RuleApproval, demands_of

        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        kw["created_at"] = parse_time(kw["created_at"])
        kw["risk_reasons"] = tuple(kw.get("risk_reasons", ()))
        kw["rule_approvals"] = (tuple(RuleApproval.from_json(r) for r in kw["rule_approvals"])
                                if "rule_approvals" in kw else demands_of(d.get("policy_checks")))
        return cls(**_empty_state(kw))


ApprovalKind = Literal["approve", "reject"]


@dataclass(frozen=True)
class Approval(BoundFacts):
    """One reviewer's decision on one plan, repeating the plan facts it was given for (so it binds to them).

    key/aws_arn: fingerprint of the verified signing key and the AWS principal recorded with it (set by the
    shell after verification; not part of the statement)."""

    approver: str
    comment: str
    approved_at: datetime
    kind: ApprovalKind = "approve"
    key: str = ""
    aws_arn: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (times as ISO-8601 UTC), the statement's fields only."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("key", "aws_arn")}
        d["approved_at"] = _iso(self.approved_at)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Approval":
        """Inverse of `to_dict` (unknown keys ignored)."""
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d and f.name not in ("key", "aws_arn")}
        kw["approved_at"] = parse_time(kw["approved_at"])
        return cls(**_empty_state(kw))


def make_approval(facts: PlanFacts, approver: str, comment: str, now: datetime, kind: ApprovalKind = "approve") -> Approval:
    """An approval (or rejection) of `facts` by `approver` at `now`, bound to every fact of the plan."""
    bound = {f.name: getattr(facts, f.name) for f in fields(BoundFacts)}
    return Approval(**bound, approver=approver, comment=comment, approved_at=now, kind=kind)


@dataclass(frozen=True)
class CurrentFacts:
    """What is true right before apply, gathered by the shell.

    plan_sha256/package_sha256: sha256 of the stored plan binary and package as read now.
    state_lineage/state_serial: from `terraform state pull` now ("" and 0 for an empty state).
    latest_plan_id: the newest plan for the same app/env (None if unknown).
    succeeded_in: environments where this app/version was applied successfully.
    """

    plan_sha256: str
    package_sha256: str
    state_lineage: str
    state_serial: int
    latest_plan_id: str | None = None
    succeeded_in: frozenset[str] = frozenset()


# -- risk escalation -----------------------------------------------------------------------------------------
# A new task definition revision is how ECS deploys: its "replace" is routine, not a reason for more approvers.
ROUTINE_REPLACE_TYPES = frozenset({"aws_ecs_task_definition"})
SECURITY_TYPE_PREFIXES = ("aws_iam_", "aws_security_group", "aws_vpc_security_group_")
_REPLACES = ("replace", "replace-create-first", "replace-forget", "delete-create", "create-delete")


def escalation_reasons(changes: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """Why a plan needs `escalate_on_risk` more approvers, one line per resource (empty: it does not).

    `changes`: the plan's resource changes as dicts with address, type, action (tfreview's action names:
    create, update, delete, replace, replace-create-first, ...), and optionally mode and deposed.
    Escalates: any destroy; any replace but a task definition's new revision (that is how ECS deploys); any
    IAM or security-group object created, changed or removed (a first deploy creates roles and groups).
    """
    out = []
    for c in changes:
        if c.get("mode", "managed") != "managed" or c.get("deposed"):
            continue
        address, rtype, action = str(c.get("address", "")), str(c.get("type", "")), str(c.get("action", ""))
        if action == "delete":
            out.append(f"destroys {address}")
        elif action in _REPLACES and rtype not in ROUTINE_REPLACE_TYPES:
            out.append(f"replaces {address}")
        elif action in ("create", "update", *_REPLACES) and rtype.startswith(SECURITY_TYPE_PREFIXES):
            kind = "IAM" if rtype.startswith("aws_iam_") else "security group"
            verb = "creates" if action == "create" else "changes"
            out.append(f"{verb} {kind} {address}")
    return tuple(out)


# -- decisions -----------------------------------------------------------------------------------------------
def same_identity(a: str, b: str) -> bool:
    """Principals compare exactly: they are validated ASCII names from the policy, so a look-alike, a case
    variant or a zero-width character is another (unknown) principal, never the same person."""
    return a == b


def _in(who: str, people: Iterable[str]) -> bool:
    return any(same_identity(who, p) for p in people)


def required_approvals(env_policy: EnvPolicy, facts: PlanFacts) -> int:
    """Distinct approvers the plan needs: the env's count plus the escalation when the plan is risky; a destroy
    plan needs `destroy_approvals` when the env sets it; a Rego `approvals` rule may ask for more, never fewer."""
    from tfreview.review.rego_approvals import required_count

    return required_count(builtin_approvals(env_policy, facts), facts.rule_approvals)


def builtin_approvals(env_policy: EnvPolicy, facts: PlanFacts) -> int:
    """The count of the `[policy.<env>]` rules alone (escalation included)."""
    if facts.destroy and env_policy.destroy_approvals is not None:
        return env_policy.destroy_approvals
    return env_policy.required_approvals + (env_policy.escalate_on_risk if facts.risky else 0)


def _short(sha: str) -> str:
    return sha[:12]


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def _binds(a: Approval, facts: PlanFacts) -> str | None:
    """Which bound fact of approval `a` differs from the plan's (None: the approval is for exactly this plan)."""
    for f in fields(BoundFacts):
        if getattr(a, f.name) != getattr(facts, f.name):
            return f.name
    return None


def _rejection(decisions: Iterable[Approval]) -> Approval | None:
    """The first rejection among `decisions` (the decisions on one plan)."""
    return next((a for a in decisions if a.kind == "reject"), None)


def _refuse_if_rejected(facts: PlanFacts, decisions: Iterable[Approval]) -> None:
    """PolicyRefusal if one of `decisions` (the decisions on this plan) rejected it."""
    rejected = _rejection(decisions)
    if rejected is not None:
        raise PolicyRefusal(
            f"plan {facts.plan_id} was rejected by {rejected.approver}: {rejected.comment}",
            f"fix the change and make a new plan: tfreview plan --app {facts.app} --version {facts.version} "
            f"--env {facts.env}",
        )


def _expires_at(env_policy: EnvPolicy, a: Approval) -> datetime | None:
    if env_policy.approval_ttl_hours is None:
        return None
    return a.approved_at + timedelta(hours=env_policy.approval_ttl_hours)


def _live(env_policy: EnvPolicy, a: Approval, now: datetime) -> bool:
    expires = _expires_at(env_policy, a)
    return expires is None or now < expires


def check_can_approve(policy: Policy, plan_facts: PlanFacts, approvals_so_far: Iterable[Approval], who: str,
                      now: datetime, kind: ApprovalKind = "approve", key: str = "", aws_arn: str = "") -> None:
    """Raise PolicyRefusal unless `who` (signing with key fingerprint `key`, calling AWS as `aws_arn` in S3 mode)
    may approve (or, with kind="reject", reject) the plan at `now`.

    Refused: plan already rejected, self-approval (unless allowed), not in the env's approvers, or the same
    person already decided on this plan. The planner may always reject (withdraw) their own plan.
    """
    pid = plan_facts.plan_id
    decisions = [a for a in approvals_so_far if a.plan_id == pid]
    if kind == "reject" and same_identity(who, plan_facts.planner) and who.strip():
        done = _rejection(decisions)
        if done is not None:
            raise PolicyRefusal(f"plan {pid} was already rejected by {done.approver}",
                                "nothing to do: it can no longer be applied")
        return
    ep = policy.for_env(plan_facts.env)
    _refuse_if_rejected(plan_facts, decisions)
    if not who.strip():
        raise PolicyRefusal("cannot tell who is approving", "set TFREVIEW_USER (or git's user.email)")
    if same_identity(who, plan_facts.planner) and not ep.allow_self_approval:
        raise PolicyRefusal(
            f"{who} made plan {pid} and may not approve it (self-approval is not allowed in {plan_facts.env})",
            "ask another reviewer to run: tfreview approve " + pid,
        )
    if key and key == plan_facts.planner_key and not ep.allow_self_approval:
        raise PolicyRefusal(f"{who} signs with the planner's key and may not approve plan {pid} (signed with the "
                            f"planner's key {key})", "ask another reviewer to run: tfreview approve " + pid)
    if kind == "approve":
        _refuse_shared_aws_principal(ep, plan_facts, decisions, who, aws_arn)
    approvers = ep.approvers_of(plan_facts)
    if approvers is not None and not _in(who, approvers):
        destroy = approvers is not ep.approvers
        raise PolicyRefusal(
            f"{who} may not approve a destroy plan in {plan_facts.env}" if destroy
            else f"{who} is not an approver for {plan_facts.env}",
            f"ask one of: {', '.join(approvers) or '(nobody is listed)'} "
            f"({'destroy_approvers' if destroy else 'approvers'} are set in [policy.{plan_facts.env}] of the store's "
            "policy: tfreview policy show)",
        )
    previous = next((a for a in decisions if same_identity(a.approver, who)), None)
    if previous is not None:
        verb = "approved" if previous.kind == "approve" else "rejected"
        raise PolicyRefusal(
            f"{who} already {verb} plan {pid} at {_iso(previous.approved_at)}",
            "a second approval must come from a different person",
        )


def _refuse_shared_aws_principal(ep: Any, f: PlanFacts, decisions: Sequence[Approval], who: str, arn: str) -> None:
    """AWS principals mean people: an approval from the planner's AWS principal, or from one another approver
    already used, would not count (`aws_principal_not_counted`): refuse it when it is made."""
    why = aws_principal_not_counted(ep, f, [a for a in decisions if a.kind == "approve"], who, arn)
    if why:
        raise PolicyRefusal(f"{who} may not approve plan {f.plan_id}: {why}",
                            "approve with your own AWS credentials (each approver is a distinct AWS principal)")


def aws_principal_not_counted(ep: Any, f: PlanFacts, counted: Sequence[Approval], who: str, arn: str) -> str | None:
    """Why an approval by `who` from AWS principal `arn` does not count (None: it may), given the approvals
    `counted` before it: the planner's AWS principal, or another approver's."""
    if not arn:
        return None
    if f.planner_arn and arn == f.planner_arn and not ep.allow_self_approval:
        return f"its AWS principal {arn} is the planner's ({f.planner})"
    other = next((a for a in counted if a.aws_arn == arn and not same_identity(a.approver, who)), None)
    if other is not None:
        return f"its AWS principal {arn} is {other.approver}'s, who approved already"
    return None


def check_break_glass(policy: Policy, env: str, who: str, reason: str) -> None:
    """Raise unless `who` may break glass in `env`: PolicyRefusal if not listed, BadInput without a reason."""
    ep = policy.for_env(env)
    if not _in(who, ep.break_glass):
        raise PolicyRefusal(
            f"{who} may not break glass in {env}",
            f"break-glass identities are listed in break_glass of [policy.{env}] in the store's policy; "
            "otherwise get the plan approved",
        )
    if len(reason.strip()) < 3:
        raise BadInput("break-glass needs a reason", 'say why: tfreview apply ID --break-glass --reason "..."')


def check_apply(policy: Policy, plan_facts: PlanFacts, approvals: Iterable[Approval], now: datetime,
                current_facts: CurrentFacts, *, break_glass: bool = False) -> None:
    """Raise PolicyRefusal (one-line reason + what to do) unless the plan may be applied at `now`.

    Checked in order: plan bytes changed, package changed, superseded by a newer plan, state moved since plan,
    then (waived by `break_glass`, which the caller authorises with `check_break_glass`): rejected, promotion
    gate, not approved, approval for other plan bytes/facts, approval expired, not enough distinct approvers
    (counting risk escalation).
    """
    f, c = plan_facts, current_facts
    ep = policy.for_env(f.env)
    pid = f.plan_id
    replan = f"make a new plan: tfreview plan --app {f.app} --version {f.version} --env {f.env}"

    if c.plan_sha256 != f.plan_sha256:
        raise PolicyRefusal(
            f"plan {pid} changed since it was made (sha256 {_short(f.plan_sha256)} planned, "
            f"{_short(c.plan_sha256)} now)",
            "do not apply it; " + replan + " and get it approved",
        )
    if c.package_sha256 != f.package_sha256:
        raise PolicyRefusal(
            f"package {f.app} {f.version} changed since plan {pid} (sha256 {_short(f.package_sha256)} planned, "
            f"{_short(c.package_sha256)} now)",
            replan + " and get it approved",
        )
    if c.latest_plan_id is not None and c.latest_plan_id != pid:
        raise PolicyRefusal(
            f"plan {pid} is superseded by a newer plan {c.latest_plan_id} for {f.app}/{f.env}",
            f"review and apply the newer plan: tfreview show {c.latest_plan_id}",
        )
    if (c.state_lineage or "") != (f.state_lineage or "") or c.state_serial != f.state_serial:
        what = "lineage" if (c.state_lineage or "") != (f.state_lineage or "") else "serial"
        raise PolicyRefusal(
            f"state of {f.app}/{f.env} moved since plan {pid} ({what}: serial {f.state_serial} planned, "
            f"{c.state_serial} now)",
            replan,
        )
    if break_glass:
        return

    decisions = [a for a in approvals if a.plan_id == pid]
    _refuse_if_rejected(f, decisions)
    if ep.requires_success_in and ep.requires_success_in not in c.succeeded_in:
        gate = ep.requires_success_in
        raise PolicyRefusal(
            f"{f.app} {f.version} has not been applied successfully in {gate} ({f.env} requires it)",
            f"release it to {gate} first: tfreview plan --app {f.app} --version {f.version} --env {gate}",
        )

    approved = [a for a in decisions if a.kind == "approve"]
    need = required_approvals(ep, f)
    if need == 0:
        return
    if not approved:
        from tfreview.review.rego_approvals import demand_lines

        rules = "; ".join(demand_lines(f.rule_approvals))
        raise PolicyRefusal(
            f"plan {pid} is not approved ({need} approval{'s' if need != 1 else ''} required"
            + (f"; {rules}" if rules else "") + ")",
            f"ask a reviewer other than {f.planner} to run: tfreview approve {pid}",
        )
    bound = []
    for a in approved:
        mismatch = _binds(a, f)
        if mismatch == "plan_sha256":
            raise PolicyRefusal(
                f"plan {pid} changed after {a.approver} approved it (sha256 {_short(a.plan_sha256)} approved, "
                f"{_short(f.plan_sha256)} now)",
                "do not apply it; " + replan + " and get it approved",
            )
        if mismatch is None:
            bound.append(a)
    if not bound:
        raise PolicyRefusal(
            f"the approvals of plan {pid} were given for other plan facts",
            replan + " and get it approved",
        )
    # Count distinct, eligible, unexpired approvers: distinct people, keys and AWS principals, none the planner's.
    approvers = ep.approvers_of(f)
    eligible = [a for a in bound
                if (ep.allow_self_approval or (not same_identity(a.approver, f.planner)
                                               and not (a.key and a.key == f.planner_key)))
                and (approvers is None or _in(a.approver, approvers))]
    live = [a for a in eligible if _live(ep, a, now)]
    distinct: list[str] = []
    not_counted: list[str] = []
    seen: set[str] = set()
    counted: list[Approval] = []
    for a in live:
        shared = aws_principal_not_counted(ep, f, counted, a.approver, a.aws_arn)
        if shared:
            not_counted.append(f"{a.approver} ({shared})")
            continue
        marks = {f"who:{a.approver}", *([f"key:{a.key}"] if a.key else []), *([f"aws:{a.aws_arn}"] if a.aws_arn else [])}
        if not marks & seen:
            distinct.append(a.approver)
            counted.append(a)
        seen |= marks
    from tfreview.review.rego_approvals import shortfall_lines, unmet_from

    unmet = unmet_from(f.rule_approvals, distinct)
    if len(distinct) >= need and not unmet:
        return
    expired = [a for a in eligible if a not in live]
    if expired and not live:
        a = expired[0]
        exp = _expires_at(ep, a)
        assert exp is not None
        raise PolicyRefusal(
            f"approval of plan {pid} by {a.approver} expired at {_iso(exp)} ({_ago(now - exp)} ago; "
            f"approvals last {ep.approval_ttl_hours:g} h in {f.env})",
            f"ask for a fresh approval: tfreview approve {pid} (or {replan})",
        )
    why = ""
    if f.risky and ep.escalate_on_risk:
        reasons = "; ".join(f.risk_reasons) or "risky plan"
        why = f", {ep.escalate_on_risk} more because {reasons}"
    have = ", ".join(distinct) or "none valid"
    if expired:
        have += f"; expired: {', '.join(a.approver for a in expired)}"
    if not_counted:
        have += f"; not counted: {'; '.join(not_counted)}"
    missing = shortfall_lines(builtin_approvals(ep, f), f.rule_approvals, distinct)
    if missing:
        people = sorted({p for d in unmet for p in d.from_} - set(distinct))
        ask = f"ask {', '.join(people)}" if people else f"ask another reviewer (not {', '.join([f.planner, *distinct])})"
        raise PolicyRefusal(
            f"plan {pid} has {len(distinct)} of {need} required approvals{why}; {'; '.join(missing)} "
            f"(approved by: {have})",
            f"{ask} to run: tfreview approve {pid}",
        )
    raise PolicyRefusal(
        f"plan {pid} has {len(distinct)} of {need} required approvals{why} (approved by: {have})",
        f"ask another reviewer (not {', '.join([f.planner, *distinct])}) to run: tfreview approve {pid}",
    )
