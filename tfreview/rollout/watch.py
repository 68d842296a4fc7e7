"""Watch one ECS service's deployment to its end, the way AWS documents it, and tell the story as it happens.

Pure core: `observe` turns a DescribeServices service and DescribeTargetHealth descriptions (AWS shapes, dicts) into
an `Observation`; `assess` decides from it whether the release succeeded, failed or is still in progress;
`changes` compares two observations and returns the log lines worth printing (deduplicated: a line only when
something changed). Imperative shell: `watch_deployment` polls boto3 clients until `assess` says done or time runs out.

Success means, and only means (ARCHITECTURE.md, "Blue/green, the testable and correct way"): the PRIMARY deployment
runs the expected task definition ARN, its rolloutState is COMPLETED, runningCount == desiredCount, no deployment is
FAILED, no older deployment is left, and every target of that service's target group (the colour's) is healthy.
A service that is stable on another revision - the deployment circuit breaker rolled back - is a failed release.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from tfreview.errors import AwsError, BadInput, TfreviewError
from tfreview.rollout.traffic import plain_outputs

IN_PROGRESS = "in_progress"
SUCCEEDED = "succeeded"
FAILED = "failed"

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_POLL_S = 5.0
# The shortest wait worth a sleep: a watch with less time left than this has timed out. (Without it, a remainder
# of 1e-12 s on a clock reading 1e5 adds nothing to that clock, and a driven clock never reaches the timeout.)
MIN_WAIT_S = 0.001
MAX_CONSECUTIVE_ERRORS = 3  # polls in a row that may fail (after botocore's own retries) before we give up


# --------------------------------------------------------------------------------------------------------------
# The data (frozen, AWS-shaped in, plain out)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """One entry of a service's `deployments` (counts are numbers of tasks)."""

    id: str
    status: str  # PRIMARY | ACTIVE | INACTIVE
    task_definition: str
    rollout_state: str | None  # IN_PROGRESS | COMPLETED | FAILED; None when the circuit breaker is off
    rollout_state_reason: str
    desired: int
    running: int
    pending: int
    failed_tasks: int
    created_at: datetime | None = None

    @staticmethod
    def from_aws(d: dict[str, Any]) -> "Deployment":
        return Deployment(
            id=str(d.get("id", "")),
            status=str(d.get("status", "")),
            task_definition=str(d.get("taskDefinition", "")),
            rollout_state=d.get("rolloutState"),
            rollout_state_reason=str(d.get("rolloutStateReason", "") or ""),
            desired=int(d.get("desiredCount", 0) or 0),
            running=int(d.get("runningCount", 0) or 0),
            pending=int(d.get("pendingCount", 0) or 0),
            failed_tasks=int(d.get("failedTasks", 0) or 0),
            created_at=_as_datetime(d.get("createdAt")),
        )


@dataclass(frozen=True)
class Target:
    """One DescribeTargetHealth description: `id` (IP or instance), `port`, `state` (initial, healthy, unhealthy,
    unused, draining, unavailable), and AWS's reason code / description."""

    id: str
    port: int | None
    state: str
    reason: str = ""
    description: str = ""

    @property
    def key(self) -> str:
        return f"{self.id}:{self.port}" if self.port is not None else self.id

    @staticmethod
    def from_aws(d: dict[str, Any]) -> "Target":
        target = d.get("Target", {}) or {}
        health = d.get("TargetHealth", {}) or {}
        port = target.get("Port")
        return Target(
            id=str(target.get("Id", "")),
            port=int(port) if port is not None else None,
            state=str(health.get("State", "unavailable")),
            reason=str(health.get("Reason", "") or ""),
            description=str(health.get("Description", "") or ""),
        )


@dataclass(frozen=True)
class ServiceEvent:
    id: str
    created_at: datetime | None
    message: str


@dataclass(frozen=True)
class Observation:
    """What one poll saw. `targets` is None when the service has no target group to check."""

    service: str
    status: str  # ACTIVE | DRAINING | INACTIVE | MISSING
    task_definition: str
    desired: int
    running: int
    pending: int
    deployments: tuple[Deployment, ...]
    targets: tuple[Target, ...] | None
    events: tuple[ServiceEvent, ...]  # oldest first
    rollback_enabled: bool = False  # deployment circuit breaker with rollback

    @property
    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)


@dataclass(frozen=True)
class Assessment:
    """The decision about one observation: `state` is in_progress, succeeded or failed; `reason` one line."""

    state: str
    reason: str
    primary: Deployment | None = None

    @property
    def done(self) -> bool:
        return self.state != IN_PROGRESS

    @property
    def ok(self) -> bool:
        return self.state == SUCCEEDED


@dataclass(frozen=True)
class LogLine:
    """One line of the rollout log: `at_s` seconds since the watch began, `kind` (deploy, task, target, event,
    result) and the text."""

    at_s: float
    kind: str
    text: str

    def __str__(self) -> str:
        return f"{self.at_s:6.1f}s  {self.kind:<6}  {self.text}"


@dataclass(frozen=True)
class StoppedTask:
    """One stopped task as DescribeTasks tells it: `stop_code` (TaskFailedToStart, EssentialContainerExited,
    ServiceSchedulerInitiated...), `stopped_reason`, and each container's (name, exitCode or None, reason)."""

    task: str
    started_by: str
    stop_code: str
    stopped_reason: str
    containers: tuple[tuple[str, int | None, str], ...] = ()
    task_definition: str = ""

    @staticmethod
    def from_aws(t: dict[str, Any]) -> "StoppedTask":
        containers = tuple(
            (str(c.get("name", "")), int(c["exitCode"]) if isinstance(c.get("exitCode"), int) else None,
             " ".join(str(c.get("reason") or "").split()))
            for c in t.get("containers") or [] if isinstance(c, dict))
        return StoppedTask(task=str(t.get("taskArn", "")).rsplit("/", 1)[-1], started_by=str(t.get("startedBy") or ""),
                           stop_code=str(t.get("stopCode") or ""),
                           stopped_reason=" ".join(str(t.get("stoppedReason") or "").split()),
                           containers=containers, task_definition=str(t.get("taskDefinitionArn") or ""))

    @property
    def why(self) -> str:
        """One line, the same for every task that stopped for the same reason (no task ids): stoppedReason, the
        stop code, and each container that exited or says why."""
        parts = [self.stopped_reason or "stopped (no reason given)"]
        if self.stop_code:
            parts[0] += f" [{self.stop_code}]"
        for name, code, reason in self.containers:
            reason = "" if reason and reason in self.stopped_reason else reason  # said already
            if code is None and not reason:
                continue
            parts.append(f"container {name}" + (f" exit code {code}" if code is not None else "")
                         + (f": {reason}" if reason else ""))
        return "; ".join(parts)


@dataclass(frozen=True)
class RolloutResult:
    """How a watched deployment ended. `events` are the log lines emitted; `duration_s` seconds of watching.
    `stopped`: why the deployment's tasks stopped and its targets failed, once per distinct reason
    ({"reason", "count", "kind": "task" | "target"}); `gate`: what stopped the watch from outside (an alarm)."""

    ok: bool
    state: str
    reason: str
    events: tuple[LogLine, ...]
    duration_s: float
    service: str = ""
    deployment_id: str = ""
    task_definition: str = ""  # what the PRIMARY deployment ran at the end
    stopped: tuple[dict[str, Any], ...] = ()
    gate: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (for the store and `--format json`)."""
        return {
            "ok": self.ok, "state": self.state, "reason": self.reason, "service": self.service,
            "deployment_id": self.deployment_id, "task_definition": self.task_definition,
            "duration_s": round(self.duration_s, 3), "log": [str(line) for line in self.events],
            "stopped": [dict(s) for s in self.stopped], "gate": self.gate,
        }


# --------------------------------------------------------------------------------------------------------------
# Pure core
# --------------------------------------------------------------------------------------------------------------


def observe(service_description: dict[str, Any] | None, target_health: Iterable[dict[str, Any]] | None) -> Observation:
    """Build an Observation from a DescribeServices `services[i]` (None: the service is missing) and the
    DescribeTargetHealth `TargetHealthDescriptions` of its target group (None: no target group)."""
    s = service_description or {}
    # ECS lists events newest first; reversing before the (stable) sort keeps same-time events in their order.
    events = sorted(
        (ServiceEvent(str(e.get("id", "")), _as_datetime(e.get("createdAt")), str(e.get("message", "")))
         for e in reversed(s.get("events", []) or [])),
        key=lambda e: (e.created_at or datetime.min.replace(tzinfo=timezone.utc)),
    )
    breaker = ((s.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {})
    return Observation(
        service=str(s.get("serviceName", "")),
        status=str(s.get("status", "MISSING")) if s else "MISSING",
        task_definition=str(s.get("taskDefinition", "")),
        desired=int(s.get("desiredCount", 0) or 0),
        running=int(s.get("runningCount", 0) or 0),
        pending=int(s.get("pendingCount", 0) or 0),
        deployments=tuple(Deployment.from_aws(d) for d in s.get("deployments", []) or []),
        targets=None if target_health is None else tuple(Target.from_aws(t) for t in target_health),
        events=tuple(events),
        rollback_enabled=bool(breaker.get("enable") and breaker.get("rollback")),
    )


def assess(service_description: dict[str, Any] | Observation | None,
           target_health: Iterable[dict[str, Any]] | None, expected_td_arn: str) -> Assessment:
    """Decide whether the deployment of `expected_td_arn` (an ARN, or "family:revision") succeeded, failed or is
    still in progress, from one DescribeServices service and its target group's DescribeTargetHealth list."""
    obs = service_description if isinstance(service_description, Observation) \
        else observe(service_description, target_health)
    if obs.status == "MISSING":
        return Assessment(FAILED, "the service does not exist")
    if obs.status != "ACTIVE":
        return Assessment(FAILED, f"the service is {obs.status}")
    primary = obs.primary
    if primary is None:
        return Assessment(IN_PROGRESS, "no PRIMARY deployment yet")
    expected = short_td(expected_td_arn)
    # Only a failure of the watched revision counts: a FAILED deployment left over from an earlier release is
    # drained by this one (it blocks success until it is gone, it does not fail this release).
    failed = [d for d in obs.deployments if d.rollout_state == "FAILED"
              and same_task_definition(d.task_definition, expected_td_arn)]

    if not same_task_definition(primary.task_definition, expected_td_arn):
        # The PRIMARY runs another revision: the circuit breaker rolled back (or someone else deployed).
        rolled_back = "rolling back" in primary.rollout_state_reason or any(
            "rolling back" in e.message for e in obs.events)
        why = f" after {failed[0].id} failed: {failed[0].rollout_state_reason}" if failed else ""
        if rolled_back:
            settled = "and is stable there" if primary.rollout_state == "COMPLETED" else "(rollback in progress)"
            back_to = short_td(primary.task_definition)
            return Assessment(FAILED, f"the deployment circuit breaker rolled back to {back_to} "
                                      f"{settled}{why}; {expected} is not running", primary)
        return Assessment(FAILED, f"the PRIMARY deployment runs {short_td(primary.task_definition)}, not {expected}"
                                  f"{why}", primary)
    if primary.rollout_state == "FAILED":
        d = primary
        detail = d.rollout_state_reason or "rolloutState FAILED"
        stable = next((o for o in obs.deployments if o is not d and o.rollout_state == "COMPLETED"), None)
        then = (f"; the circuit breaker rolls the service back to {short_td(stable.task_definition)}"
                if obs.rollback_enabled and stable else "")
        return Assessment(FAILED, f"deployment {d.id} of {expected} failed: {detail}"
                                  f"{_failed_tasks(d)}{then}", primary)

    progress = _progress(obs, primary)
    if primary.rollout_state not in (None, "COMPLETED"):
        return Assessment(IN_PROGRESS, progress, primary)
    others = [d for d in obs.deployments if d is not primary]
    if others:
        return Assessment(IN_PROGRESS, progress, primary)
    if primary.running != primary.desired or primary.pending:
        return Assessment(IN_PROGRESS, progress, primary)
    unhealthy = _not_healthy(obs)
    if unhealthy is not None:
        return Assessment(IN_PROGRESS, progress, primary)
    done = primary.rollout_state_reason or f"{primary.running}/{primary.desired} tasks running"
    return Assessment(SUCCEEDED, f"{expected} is live on {obs.service or 'the service'}: {done}", primary)


def timed_out(last: Assessment, timeout_s: float) -> Assessment:
    """The failed assessment for a deployment still in progress after `timeout_s` seconds."""
    return replace(last, state=FAILED, reason=f"did not finish in {timeout_s:g} s: {last.reason}")


def changes(before: Observation | None, after: Observation, at_s: float,
            since: datetime | None = None) -> list[LogLine]:
    """Log lines for what changed between two observations (`before` None: the first one), `at_s` seconds into
    the watch. Service events are reported once, oldest first, and only those created at or after `since`."""
    # Within one poll the story reads: new deployments, task counts, targets, state changes and drained, events.
    started: list[LogLine] = []
    tasks: list[LogLine] = []
    health: list[LogLine] = []
    settled: list[LogLine] = []
    events: list[LogLine] = []

    old_deps = {d.id: d for d in before.deployments} if before else {}
    new_deps = {d.id: d for d in after.deployments}
    for d in after.deployments:
        prev = old_deps.get(d.id)
        if prev is None:
            started.append(LogLine(at_s, "deploy", f"{d.status.lower()} deployment {d.id} runs "
                                                   f"{short_td(d.task_definition)}: {_deployment_state(d)}"))
            continue
        if (prev.pending, prev.running, prev.failed_tasks) != (d.pending, d.running, d.failed_tasks):
            tasks.append(LogLine(at_s, "task", f"{short_td(d.task_definition)} ({d.status.lower()}): {_counts(d)}"))
        if (prev.status, prev.rollout_state) != (d.status, d.rollout_state):
            text = f"deployment {d.id} ({short_td(d.task_definition)}) is now {d.status} {d.rollout_state or ''}"
            reason = f": {d.rollout_state_reason}" if d.rollout_state_reason else ""
            settled.append(LogLine(at_s, "deploy", text.rstrip() + reason))
    for dep_id, d in old_deps.items():
        if dep_id not in new_deps:
            settled.append(LogLine(at_s, "deploy", f"deployment {dep_id} ({short_td(d.task_definition)}) is gone: "
                                                   f"its tasks were drained"))

    old_targets = {t.key: t for t in (before.targets or ())} if before else {}
    for t in after.targets or ():
        was_target = old_targets.pop(t.key, None)
        if was_target is None or (was_target.state, was_target.reason) != (t.state, t.reason):
            was = f"{was_target.state} -> " if was_target else ""
            why = f" ({t.reason}: {t.description})" if t.reason and t.description else (
                f" ({t.reason})" if t.reason else "")
            health.append(LogLine(at_s, "target", f"{t.key} {was}{t.state}{why}"))
    for key in old_targets:
        health.append(LogLine(at_s, "target", f"{key} deregistered"))

    seen = {e.id for e in before.events} if before else set()
    for e in after.events:
        if e.id in seen:
            continue
        if since is not None and e.created_at is not None and e.created_at < since:
            continue
        events.append(LogLine(at_s, "event", _short_arns(e.message)))
    lines = started + tasks + health + settled + events
    return lines


class Reasons:
    """Why a deployment's tasks stopped and its targets failed, each distinct reason once (in the order first seen),
    with how many tasks or targets gave it. `add` returns True the first time a reason is seen (print it then)."""

    def __init__(self) -> None:
        self.seen_tasks: set[str] = set()
        self._seen_targets: set[tuple[str, str]] = set()
        self.counts: dict[tuple[str, str], int] = {}

    def add(self, kind: str, reason: str) -> bool:
        key = (kind, reason)
        first = key not in self.counts
        self.counts[key] = self.counts.get(key, 0) + 1
        return first

    def tasks(self, stopped: Iterable[StoppedTask], deployments: Iterable[str], task_definition: str = "") -> list[str]:
        """The reasons first seen among `stopped` tasks of the watched release (not yet counted): started by one of
        `deployments`, or running `task_definition` (the revision this release deploys; its deployment may be gone
        already, after a circuit-breaker rollback). Older releases' tasks are never this one's reasons."""
        wanted = set(deployments)
        new = []
        for t in stopped:
            ours = t.started_by in wanted or (bool(task_definition) and bool(t.task_definition)
                                              and same_task_definition(t.task_definition, task_definition))
            if t.task in self.seen_tasks or not ours:
                continue
            self.seen_tasks.add(t.task)
            if self.add("task", t.why):
                new.append(t.why)
        return new

    def targets(self, obs: "Observation") -> list[str]:
        """Reason codes of targets now unhealthy (ELB's Target.FailedHealthChecks...), first seen ones only."""
        new = []
        for t in obs.targets or ():
            if t.state != "unhealthy" or not t.reason or (t.key, t.reason) in self._seen_targets:
                continue
            self._seen_targets.add((t.key, t.reason))
            why = f"target health {t.reason}" + (f": {t.description}" if t.description else "")
            if self.add("target", why):
                new.append(why)
        return new

    def summary(self) -> tuple[dict[str, Any], ...]:
        return tuple({"kind": kind, "reason": reason, "count": n} for (kind, reason), n in self.counts.items())


def watched_deployments(obs: Observation, expected_td_arn: str) -> list[str]:
    """Ids of the deployments running the watched revision (their tasks' `startedBy`)."""
    return [d.id for d in obs.deployments if same_task_definition(d.task_definition, expected_td_arn)]


def _failed_count(obs: Observation | None, expected_td_arn: str) -> int:
    if obs is None:
        return 0
    return sum(d.failed_tasks for d in obs.deployments if same_task_definition(d.task_definition, expected_td_arn))


_TARGET_GROUP_ARN = re.compile(r"arn:aws[a-z-]*:elasticloadbalancing:[^ )]*:targetgroup/([^/ )]+)/[0-9a-f]+")


def _short_arns(message: str) -> str:
    """ECS's message with target group ARNs cut to their names: "(target-group web-qa-green)"."""
    return _TARGET_GROUP_ARN.sub(r"\1", message)


def same_task_definition(a: str, b: str) -> bool:
    """Whether two task definition references ("arn:...:task-definition/web:3" or "web:3") name the same revision."""
    return bool(a) and bool(b) and short_td(a) == short_td(b)


def short_td(arn: str) -> str:
    """"arn:aws:ecs:...:task-definition/web-qa-green:7" -> "web-qa-green:7" (anything else unchanged)."""
    return arn.rsplit("task-definition/", 1)[-1] if arn else "?"


def _deployment_state(d: Deployment) -> str:
    state = d.rollout_state or "no rollout state"
    return f"{state}, {_counts(d)}"


def _counts(d: Deployment) -> str:
    text = f"{d.running}/{d.desired} running, {d.pending} pending"
    return text + (f", {d.failed_tasks} failed" if d.failed_tasks else "")


def _failed_tasks(d: Deployment) -> str:
    return f" ({d.failed_tasks} tasks failed)" if d.failed_tasks else ""


def _not_healthy(obs: Observation) -> str | None:
    """Why the colour's targets are not all healthy yet (draining ones are leaving and do not count), or None."""
    if obs.targets is None:
        return None
    primary = obs.primary
    wanted = primary.desired if primary else obs.desired
    current = [t for t in obs.targets if t.state != "draining"]
    bad = sorted((t for t in current if t.state != "healthy"), key=lambda t: t.state != "unhealthy")
    healthy = len(current) - len(bad)
    if bad:
        worst = bad[0]
        why = f" ({worst.reason})" if worst.reason else ""
        return f"{len(bad)} of {len(current)} targets not healthy: {worst.key} {worst.state}{why}"
    if healthy < wanted:
        return f"{healthy}/{wanted} targets healthy"
    return None


def _progress(obs: Observation, primary: Deployment) -> str:
    parts = [f"{short_td(primary.task_definition)} {primary.rollout_state or 'deploying'}: {_counts(primary)}"]
    old = [d for d in obs.deployments if d is not primary]
    if old:
        parts.append(f"{len(old)} older deployment(s) still running {sum(d.running for d in old)} tasks")
    unhealthy = _not_healthy(obs)
    if unhealthy:
        parts.append(unhealthy)
    elif obs.targets:
        parts.append(f"{sum(t.state == 'healthy' for t in obs.targets)} targets healthy")
    return "; ".join(parts)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


# --------------------------------------------------------------------------------------------------------------
# Imperative shell
# --------------------------------------------------------------------------------------------------------------


def clients(endpoint_url: str | None = None, region: str | None = None) -> tuple[Any, Any]:
    """(ecs, elbv2) boto3 clients; `endpoint_url` None honours AWS_ENDPOINT_URL."""
    from tfreview import aws

    return (aws.client("ecs", endpoint_url=endpoint_url, region=region),
            aws.client("elbv2", endpoint_url=endpoint_url, region=region))


def poll_once(ecs: Any, elbv2: Any, cluster: str, service: str,
              target_group_arn: str | None = None) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
    """One DescribeServices and (if the service has a target group) one DescribeTargetHealth call.

    Returns the service description (None if missing) and the target health descriptions (None if no target
    group); `target_group_arn` None means the service's first load balancer's target group."""
    from tfreview.aws import translated

    with translated("ecs:DescribeServices", resource=f"{cluster}/{service}"):
        response = ecs.describe_services(cluster=cluster, services=[service])
    described = next(iter(response.get("services", []) or []), None)
    tg = target_group_arn
    if tg is None and described:
        tg = next((lb.get("targetGroupArn") for lb in described.get("loadBalancers", []) or []
                   if lb.get("targetGroupArn")), None)
    if tg is None:
        return described, None
    with translated("elasticloadbalancing:DescribeTargetHealth", resource=tg):
        health = elbv2.describe_target_health(TargetGroupArn=tg)
    return described, list(health.get("TargetHealthDescriptions", []) or [])


def stopped_tasks(ecs: Any, cluster: str, service: str, known: Iterable[str] = ()) -> list[StoppedTask]:
    """The service's stopped tasks (ListTasks desiredStatus STOPPED, then DescribeTasks; ECS keeps them about an
    hour), leaving out the task ids in `known` (already read)."""
    from tfreview.aws import translated

    with translated("ecs:ListTasks", resource=f"{cluster}/{service}"):
        arns = ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="STOPPED").get("taskArns") or []
    skip = set(known)
    arns = [a for a in arns if a.rsplit("/", 1)[-1] not in skip]
    out: list[StoppedTask] = []
    for i in range(0, len(arns), 100):  # DescribeTasks takes at most 100 tasks
        with translated("ecs:DescribeTasks", resource=f"{cluster}/{service}"):
            described = ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100]).get("tasks") or []
        out += [StoppedTask.from_aws(t) for t in described if isinstance(t, dict)]
    return out


def watch_deployment(
    ecs: Any,
    elbv2: Any,
    cluster: str,
    service: str,
    expected_task_definition_arn: str,
    target_group_arn: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    poll_s: float = DEFAULT_POLL_S,
    on_event: Callable[[LogLine], None] | None = None,
    on_poll: Callable[[Observation, Assessment], None] | None = None,
    *,
    since: datetime | None = None,
    gate: Callable[[], dict[str, Any] | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RolloutResult:
    """Poll `service` in `cluster` every `poll_s` seconds until its deployment of `expected_task_definition_arn`
    succeeds, fails, or `timeout_s` seconds pass (then it failed: "did not finish in N s").

    `on_event` receives each new log line (deduplicated); `on_poll` each observation and its assessment (for a
    live display). Service events created before `since` (e.g. when the apply began; default: when the watched
    deployment was created) are not replayed. AWS that cannot be reached for MAX_CONSECUTIVE_ERRORS polls in a
    row raises AwsError; the deployment's own failure is a RolloutResult with ok False, never an exception.

    When the watched deployment's failed task count grows, or it fails, its stopped tasks are read (ListTasks,
    DescribeTasks) and each distinct reason (stoppedReason, stop code, containers' exit codes and reasons; the
    targets' health reason codes) is logged once. `gate`, called after each poll that did not end the watch,
    returns None to go on or {"reason": ...} to end it as failed with that reason (a gating alarm in ALARM).
    """
    started = clock()
    since = _as_datetime(since)
    log: list[LogLine] = []
    before: Observation | None = None
    errors = 0
    last = Assessment(IN_PROGRESS, "not observed yet")
    reasons = Reasons()
    stopped_by: dict[str, Any] | None = None
    task_errors = 0

    def emit(line: LogLine) -> None:
        log.append(line)
        if on_event is not None:
            on_event(line)

    while True:
        elapsed = clock() - started
        try:
            described, health = poll_once(ecs, elbv2, cluster, service, target_group_arn)
            errors = 0
        except TfreviewError as exc:
            errors += 1
            if errors >= MAX_CONSECUTIVE_ERRORS:
                raise AwsError(f"lost AWS while watching {service}: {exc.message}", exc.hint) from exc
            emit(LogLine(elapsed, "error", f"{exc.message} (retrying)"))
        else:
            now = observe(described, health)
            if since is None:
                since = _deployment_start(now, expected_task_definition_arn)
            for line in changes(before, now, elapsed, since):
                emit(line)
            last = assess(now, None, expected_task_definition_arn)
            for why in reasons.targets(now):
                emit(LogLine(elapsed, "reason", why))
            if task_errors < MAX_CONSECUTIVE_ERRORS and (
                    _failed_count(now, expected_task_definition_arn) > _failed_count(before, expected_task_definition_arn)
                    or last.state == FAILED):
                try:
                    found = stopped_tasks(ecs, cluster, service, reasons.seen_tasks)
                except TfreviewError as exc:  # the reasons help; their absence must not fail the watch
                    task_errors += 1
                    emit(LogLine(elapsed, "error", f"cannot read the stopped tasks: {exc.message}"))
                else:
                    for why in reasons.tasks(found, watched_deployments(now, expected_task_definition_arn),
                                             expected_task_definition_arn):
                        emit(LogLine(elapsed, "reason", f"task stopped: {why}"))
            before = now
            if on_poll is not None:
                on_poll(now, last)
            if last.done:
                break
            stopped_by = gate() if gate is not None else None
            if stopped_by is not None:
                last = replace(last, state=FAILED, reason=str(stopped_by.get("reason", "stopped")))
                break
        remaining = timeout_s - elapsed
        if remaining < MIN_WAIT_S:
            last = timed_out(last, timeout_s)
            break
        sleep(min(poll_s, remaining))

    duration = clock() - started
    emit(LogLine(duration, "result", f"{last.state.upper()}: {last.reason}"))
    primary = last.primary
    return RolloutResult(
        ok=last.ok, state=last.state, reason=last.reason, events=tuple(log), duration_s=duration, service=service,
        deployment_id=primary.id if primary else "", task_definition=primary.task_definition if primary else "",
        stopped=reasons.summary(), gate=stopped_by,
    )


def watch_colour(
    outputs: dict[str, Any],
    colour: str,
    *,
    ecs: Any = None,
    elbv2: Any = None,
    endpoint_url: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    poll_s: float = DEFAULT_POLL_S,
    on_event: Callable[[LogLine], None] | None = None,
    on_poll: Callable[[Observation, Assessment], None] | None = None,
    since: datetime | None = None,
    gate: Callable[[], dict[str, Any] | None] | None = None,
) -> RolloutResult:
    """Watch the deployment of one colour ("blue", "green", or "main" with rolling) of an ecs-webapp environment,
    from its root outputs (`terraform output -json`, wrapped in {"value": ...} or plain): cluster_name,
    services[colour], task_definitions[colour] (the expected ARN) and target_groups[colour].
    Clients default to ones made for `endpoint_url` (None: AWS_ENDPOINT_URL or AWS)."""
    values = plain_outputs(outputs)
    try:
        cluster = values["cluster_name"]
        service = values["services"][colour]
        expected = values["task_definitions"][colour]
    except (KeyError, TypeError):
        raise BadInput(f"the environment's outputs have no ECS service for colour {colour!r}",
                       "is it deployed with the ecs-webapp module? (needs cluster_name, services, task_definitions)"
                       ) from None
    target_group = (values.get("target_groups") or {}).get(colour)
    if ecs is None or elbv2 is None:
        made_ecs, made_elbv2 = clients(endpoint_url)
        ecs, elbv2 = ecs or made_ecs, elbv2 or made_elbv2
    return watch_deployment(ecs, elbv2, cluster, service, expected, target_group, timeout_s=timeout_s,
                            poll_s=poll_s, on_event=on_event, on_poll=on_poll, since=since, gate=gate)


def _deployment_start(obs: Observation, expected_td_arn: str) -> datetime | None:
    """When the deployment being watched began (its createdAt), so that older service events are not replayed."""
    for d in obs.deployments:
        if same_task_definition(d.task_definition, expected_td_arn) and d.created_at is not None:
            return d.created_at
    primary = obs.primary
    return primary.created_at if primary else None
