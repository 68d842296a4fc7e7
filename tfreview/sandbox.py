"""The local AWS: moto served in-process on loopback, with the ECS deployment lifecycle AWS has.

`start_sandbox()` serves moto (`moto[server]`) on 127.0.0.1 in a background thread; `run_sandbox()` does the same in
the foreground for `tfreview sandbox`. moto's backends are process-global: every Sandbox started in one process
shares the same fake AWS account. Only loopback addresses are accepted.

Emulator extension: the ECS deployment lifecycle
------------------------------------------------
moto keeps the old PRIMARY deployment on `UpdateService`, starts no tasks and emits no service events. While a
sandbox runs, this module patches moto's ECS and ELBv2 backends in-process so that services follow the lifecycle
the Amazon ECS documentation describes (service deployments, rolling update with minimumHealthyPercent 100 /
maximumPercent 200, deployment circuit breaker):

- `CreateService`, and `UpdateService` with a new task definition (or `forceNewDeployment`), create a new
  deployment: status PRIMARY, rolloutState IN_PROGRESS, rolloutStateReason "ECS deployment ecs-svc/N in
  progress."; the previous PRIMARY becomes ACTIVE and keeps its running tasks.
- Time then drives the deployment, one step every `step_s` seconds (0.5 s by default; state is advanced lazily
  whenever the API is read, so no thread burns CPU): tasks are started (pendingCount), become RUNNING
  (runningCount), their IPs are registered in the service's target group (health `initial`, then `healthy`),
  the old deployment's targets are drained and deregistered, its tasks stopped and the ACTIVE deployment
  removed; the new one ends COMPLETED ("ECS deployment ecs-svc/N completed.").
- Service events use the wording ECS uses ("(service S) has started 1 tasks: (task T).", "(service S) registered 1
  targets in (target-group ARN)", "(service S) has stopped 1 running tasks: (task T).", "(service S) (deployment
  ecs-svc/N) deployment completed.", "(service S) has reached a steady state."), newest first, at most 100.
- `DescribeTargetHealth` reports the emulated health of those targets (moto alone says `healthy` for any
  registered target).

Faults, chosen per service name, apply to every deployment of that service started while the fault is set:
- "failed": tasks fail to start; after the circuit-breaker threshold (3 failed tasks, ECS's minimum) the deployment
  is FAILED ("ECS deployment circuit breaker: tasks failed to start."), no rollback; the old ACTIVE keeps serving.
- "circuit-breaker-rollback": as "failed", then the circuit breaker rolls back: a new PRIMARY deployment on the
  previous task definition ("ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/N.") ends
  COMPLETED, so the service is stable - on the old revision.
- "unhealthy-targets": tasks run but their targets fail health checks; ECS replaces them; after 3 attempts the
  deployment is FAILED.
- "never-finishes": tasks stay PENDING; the deployment stays IN_PROGRESS forever.

Set faults in-process (`Sandbox.set_fault`), over HTTP (`POST /_tfreview/faults {"service": S, "fault": F}`,
`"fault": null` clears; `GET` lists; `DELETE` clears all; see `set_remote_fault`) or with the environment variable
`TFREVIEW_SANDBOX_FAULTS="svc-a=failed,svc-b=never-finishes"` read at start. `TFREVIEW_SANDBOX_STEP_S` sets the step.

Emulator fix: S3 object requests are atomic
-------------------------------------------
On AWS a conditional write (If-Match / If-None-Match) checks and writes in one step, and a GET concurrent with a PUT
returns the old or the new object, never an error. moto checks the condition and writes in two steps, and a PUT
closes the buffer of the object it replaces while a concurrent GET may still be reading it ("I/O operation on
closed file"). `serialise_s3_requests()` runs moto's S3 key and bucket handlers one at a time, which gives AWS's
semantics; `start_sandbox()` installs it, and tests on `mock_aws` call it too. It cannot hide a bug of ours: a store
that skipped the write conditions would still lose the races the tests run.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from tfreview.errors import AwsError, BadInput, Interrupted

FAKE_CREDENTIALS: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}

FAULTS: tuple[str, ...] = ("failed", "circuit-breaker-rollback", "unhealthy-targets", "never-finishes",
                           "container-exits")
ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
STOPPED_TASKS_KEPT = 100  # stopped tasks kept per service for ListTasks/DescribeTasks (ECS keeps them ~1 hour)
DEFAULT_STEP_S = 0.5
CIRCUIT_BREAKER_THRESHOLD = 3  # failed tasks; ECS uses max(3, min(200, desired / 2))
UNHEALTHY_ATTEMPTS = 3  # task replacements before an unhealthy deployment is marked FAILED
MAX_EVENTS = 100  # ECS keeps the 100 most recent service events

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


_S3_LOCK = threading.RLock()


def serialise_s3_requests() -> None:
    """Emulator fix (see the module docstring): moto's S3 object and bucket requests run one at a time, as atomic
    as AWS's. Idempotent; applies to every moto in this process (mock_aws and served)."""
    from moto.s3.responses import S3Response

    for name in ("key_response", "bucket_response"):
        original = getattr(S3Response, name)
        if getattr(original, "_tfreview_serialised", False):
            continue

        def serialised(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _S3_LOCK:
                return _original(self, *args, **kwargs)

        serialised._tfreview_serialised = True  # type: ignore[attr-defined]
        setattr(S3Response, name, serialised)


# --------------------------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------------------------


def parse_faults(spec: str) -> dict[str, str]:
    """Parse "svc-a=failed,svc-b=never-finishes" into {service name: fault}; BadInput on an unknown fault."""
    faults: dict[str, str] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        service, sep, fault = item.partition("=")
        if not sep or not service.strip():
            raise BadInput(f"bad sandbox fault {item!r}", "write SERVICE=FAULT, e.g. web-qa-green=failed")
        faults[service.strip()] = _check_fault(fault.strip())
    return faults


def _check_fault(fault: str) -> str:
    if fault not in FAULTS:
        raise BadInput(f"unknown sandbox fault {fault!r}", f"choose one of {', '.join(FAULTS)}")
    return fault


# --------------------------------------------------------------------------------------------------------------
# The lifecycle engine (process-global, like moto's backends)
# --------------------------------------------------------------------------------------------------------------

_ip_counter = itertools.count(1)


@dataclass
class _Task:
    """One emulated ECS task of a deployment; `ip` is its awsvpc address, registered as an `ip` target. The rest is
    what DescribeTasks tells of it: the deployment that started it (`startedBy`), and once STOPPED, why."""

    task_id: str
    ip: str
    state: str = "PENDING"  # PENDING | RUNNING | STOPPED
    started_by: str = ""
    task_definition: str = ""
    container: str = "app"
    created_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_code: str = ""
    stopped_reason: str = ""
    exit_code: int | None = None
    container_reason: str = ""

    @staticmethod
    def new() -> "_Task":
        n = next(_ip_counter)
        return _Task(task_id=uuid.uuid4().hex, ip=f"10.0.{(n // 250) % 250}.{n % 250 + 2}")

    def stop(self, at: datetime, stop_code: str, reason: str, exit_code: int | None = None,
             container_reason: str = "") -> None:
        self.state, self.stopped_at, self.stop_code, self.stopped_reason = "STOPPED", at, stop_code, reason
        self.exit_code, self.container_reason = exit_code, container_reason

    def describe(self, service: Any) -> dict[str, Any]:
        """The task as DescribeTasks returns it (the fields tfreview and people read)."""
        container: dict[str, Any] = {"name": self.container, "lastStatus": self.state,
                                     "taskArn": self.arn(service)}
        if self.exit_code is not None:
            container["exitCode"] = self.exit_code
        if self.container_reason:
            container["reason"] = self.container_reason
        out: dict[str, Any] = {
            "taskArn": self.arn(service), "clusterArn": service.cluster_arn, "taskDefinitionArn": self.task_definition,
            "group": f"service:{service.name}", "startedBy": self.started_by, "lastStatus": self.state,
            "desiredStatus": "STOPPED" if self.state == "STOPPED" else "RUNNING", "launchType": service.launch_type,
            "createdAt": self.created_at, "containers": [container]}
        if self.state == "STOPPED":
            out.update({"stoppedAt": self.stopped_at, "stopCode": self.stop_code, "stoppedReason": self.stopped_reason})
        return out

    def arn(self, service: Any) -> str:
        return f"arn:aws:ecs:{service.region_name}:{service._account_id}:task/{service.cluster_name}/{self.task_id}"


@dataclass
class _Rollout:
    """A deployment in progress: the script (a generator doing one step per `next`) and when its next step is due."""

    service: Any
    script: Iterator[None]
    next_at: float  # Lifecycle.clock() seconds
    step_s: float


class Lifecycle:
    """The ECS deployment lifecycle emulation; one per process (see `LIFECYCLE`)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clock: Callable[[], float] = time.monotonic  # seconds; tests may drive time themselves
        self.step_s = DEFAULT_STEP_S
        self.faults: dict[str, str] = {}
        self._users = 0
        self._rollouts: dict[int, _Rollout] = {}  # id(service) -> rollout
        self._tasks: dict[str, list[_Task]] = {}  # deployment id -> its tasks
        self._health: dict[tuple[str, str], tuple[str, str | None, str | None]] = {}  # (tg arn, ip) -> health
        self._stopped: dict[int, list[_Task]] = {}  # id(service) -> its stopped tasks, newest last
        self._services: dict[int, Any] = {}  # id(service) -> service, for ListTasks/DescribeTasks
        self.alarm_triggers: list[dict[str, Any]] = []  # alarm states waiting for a traffic shift
        self.shifts = 0  # production traffic shifts seen (ModifyListener calls that changed forward weights)
        self._installed = False

    # -- switching on and off ------------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self._users > 0

    def acquire(self) -> None:
        with self.lock:
            _install_patches(self)
            self._users += 1

    def release(self) -> None:
        with self.lock:
            self._users = max(0, self._users - 1)
            if not self._users:
                self.reset()

    def reset(self) -> None:
        """Forget every rollout, task, health and fault (moto's own state is reset by /moto-api/reset)."""
        with self.lock:
            self._rollouts.clear()
            self._tasks.clear()
            self._health.clear()
            self._stopped.clear()
            self._services.clear()
            self.faults.clear()
            self.alarm_triggers.clear()

    def set_fault(self, service: str, fault: str | None) -> None:
        """Inject `fault` (one of FAULTS) into every new deployment of the service named `service`; None clears."""
        with self.lock:
            if fault is None or fault == "none":
                self.faults.pop(service, None)
            else:
                self.faults[service] = _check_fault(fault)

    # -- CloudWatch alarms ---------------------------------------------------------------------------------------

    def set_alarm(self, alarm: str, state: str = "ALARM", reason: str | None = None, after_shifts: int = 0,
                  region: str = FAKE_CREDENTIALS["AWS_REGION"]) -> dict[str, Any]:
        """Set the CloudWatch alarm `alarm` (it must exist) to `state` now, or, with `after_shifts` N > 0, right
        after the Nth production traffic shift from now (a ModifyListener that changes forward weights). Returns
        the trigger. BadInput for an unknown alarm or state."""
        if state not in ALARM_STATES:
            raise BadInput(f"unknown alarm state {state!r}", f"choose one of {', '.join(ALARM_STATES)}")
        if isinstance(after_shifts, bool) or not isinstance(after_shifts, int) or not 0 <= after_shifts <= 100:
            raise BadInput(f"after_shifts {after_shifts!r} is not a number of shifts (0-100)", "e.g. 1: after the first")
        trigger = {"alarm": alarm, "state": state, "region": region, "after_shifts": after_shifts,
                   "reason": reason or f"Threshold Crossed: set to {state} by the sandbox (/_tfreview/alarms)"}
        with self.lock:
            self._alarm_backend(alarm, region)  # refuses an unknown alarm now, not when it should fire
            if after_shifts == 0:
                self._fire(trigger)
            else:
                self.alarm_triggers.append({**trigger, "at_shift": self.shifts + after_shifts})
        return trigger

    def _alarm_backend(self, alarm: str, region: str) -> Any:
        from moto.cloudwatch.models import cloudwatch_backends
        from moto.core import DEFAULT_ACCOUNT_ID

        backend = cloudwatch_backends[DEFAULT_ACCOUNT_ID][region]
        if alarm not in backend.alarms:
            raise BadInput(f"no CloudWatch alarm named {alarm!r} in {region}", "create it first (PutMetricAlarm)")
        return backend

    def _fire(self, trigger: dict[str, Any]) -> None:
        backend = self._alarm_backend(trigger["alarm"], trigger["region"])
        backend.set_alarm_state(trigger["alarm"], trigger["reason"], None, trigger["state"])

    def on_listener_weights(self) -> None:
        """A production traffic shift happened: fire the alarm states waiting for it."""
        with self.lock:
            self.shifts += 1
            due = [t for t in self.alarm_triggers if t["at_shift"] <= self.shifts]
            self.alarm_triggers = [t for t in self.alarm_triggers if t["at_shift"] > self.shifts]
            for trigger in due:
                try:
                    self._fire(trigger)
                except BadInput:  # deleted since: nothing to set
                    pass

    # -- time -----------------------------------------------------------------------------------------------------

    def advance(self, now: float | None = None) -> None:
        """Run every rollout step that is due at `now` (Lifecycle.clock() seconds; default: now)."""
        if not self.enabled:
            return
        now = self.clock() if now is None else now
        with self.lock:
            for key, rollout in list(self._rollouts.items()):
                while rollout.next_at <= now:
                    self._clock = rollout.next_at
                    try:
                        next(rollout.script)
                    except StopIteration:
                        self._rollouts.pop(key, None)
                        break
                    rollout.next_at += rollout.step_s
            self._clock = None

    _clock: float | None = None  # when the step being run was due (clock seconds)
    _anchor: tuple[Any, float, datetime] | None = None  # (clock function, its reading, wall time then)

    def _timestamp(self) -> datetime:
        """Naive UTC wall-clock time of the step being run (steps run late are stamped when they were due), on the
        lifecycle's clock: wall time when the clock is time.monotonic, a consistent virtual time when a test's."""
        if self._anchor is None or self._anchor[0] is not self.clock:
            self._anchor = (self.clock, self.clock(), datetime.now(timezone.utc).replace(tzinfo=None))
        _, clock0, wall0 = self._anchor
        when = self._clock if self._clock is not None else self.clock()
        return wall0 + timedelta(seconds=when - clock0)

    # -- hooks called by the patched moto backends ----------------------------------------------------------------

    def on_create(self, service: Any) -> None:
        if (service.deployment_controller or {}).get("type", "ECS") != "ECS":
            return  # CODE_DEPLOY / EXTERNAL services have task sets, not deployments
        deployment = self._new_deployment(service, service.task_definition)
        service.deployments = [deployment]
        self._start(service, deployment, fault=self.faults.get(service.name))

    def on_new_deployment(self, service: Any, previous: list[dict[str, Any]]) -> None:
        for old in previous:
            old["status"] = "ACTIVE"
            old["updatedAt"] = self._timestamp()
        deployment = self._new_deployment(service, service.task_definition)
        service.deployments = [deployment, *previous]
        self._start(service, deployment, fault=self.faults.get(service.name))

    def on_scale(self, service: Any, desired: int) -> None:
        """A desiredCount change without a new deployment: the PRIMARY deployment scales at once."""
        primary = _primary(service)
        if primary is None:
            return
        primary["desiredCount"] = desired
        if id(service) in self._rollouts:
            return  # the running script reads desiredCount when it launches tasks
        tasks = [t for t in self._tasks.setdefault(primary["id"], []) if t.state == "RUNNING"]
        if len(tasks) < desired:
            new = self._launch(service, primary, desired - len(tasks))
            for task in new:
                task.state = "RUNNING"
            self._event(service, f"has started {len(new)} tasks: {_task_list(new)}.")
            self._register(service, new, ("healthy", None, None))
        elif len(tasks) > desired:
            gone = tasks[desired:]
            self._deregister(service, gone)
            self._stop(service, gone, "ServiceSchedulerInitiated",
                       f"Scaling activity initiated by (deployment {primary['id']})", 143)
            self._event(service, f"has stopped {len(gone)} running tasks: {_task_list(gone)}.")
        self._sync(service)

    def on_delete(self, service: Any) -> None:
        self._rollouts.pop(id(service), None)
        self._stopped.pop(id(service), None)
        self._services.pop(id(service), None)
        for deployment in service.deployments:
            tasks = [t for t in self._tasks.pop(deployment["id"], []) if t.state != "STOPPED"]
            self._deregister(service, tasks)
        service.running_count = 0
        service.pending_count = 0

    def _launch(self, service: Any, deployment: dict[str, Any], count: int) -> list[_Task]:
        """`count` new tasks of `deployment` (PENDING), as ECS starts them: startedBy is the deployment's id."""
        self._services[id(service)] = service
        container, _image = _container_of(service, deployment["taskDefinition"])
        tasks = [_Task.new() for _ in range(count)]
        for task in tasks:
            task.started_by, task.task_definition = deployment["id"], str(deployment["taskDefinition"] or "")
            task.container, task.created_at = container, self._timestamp()
        self._tasks.setdefault(deployment["id"], []).extend(tasks)
        return tasks

    def _stop(self, service: Any, tasks: list[_Task], stop_code: str, reason: str, exit_code: int | None = None,
              container_reason: str = "") -> None:
        """Stop `tasks` with the reason ECS gives; they stay listed as STOPPED tasks of the service."""
        kept = self._stopped.setdefault(id(service), [])
        for task in tasks:
            task.stop(self._timestamp(), stop_code, reason, exit_code, container_reason)
            kept.append(task)
        del kept[:-STOPPED_TASKS_KEPT]

    def stopped_tasks(self, service: Any) -> list[_Task]:
        return list(self._stopped.get(id(service), []))

    def service_tasks(self) -> list[tuple[Any, _Task]]:
        """(service, task) of every emulated task, running or stopped."""
        out = []
        for key, service in self._services.items():
            live = [t for d in service.deployments for t in self._tasks.get(d["id"], []) if t.state != "STOPPED"]
            out += [(service, t) for t in [*live, *self._stopped.get(key, [])]]
        return out

    def health_of(self, target_group_arn: str, target_id: str) -> tuple[str, str | None, str | None] | None:
        return self._health.get((target_group_arn, target_id))

    # -- the deployment script ------------------------------------------------------------------------------------

    def _new_deployment(self, service: Any, task_definition: str | None) -> dict[str, Any]:
        deployment_id = f"ecs-svc/{uuid.uuid4().int % 10**19:019d}"
        now = self._timestamp()
        network = getattr(service, "network_configuration", None) or None
        return {
            "id": deployment_id,
            "status": "PRIMARY",
            "taskDefinition": task_definition,
            "desiredCount": service.desired_count,
            "pendingCount": 0,
            "runningCount": 0,
            "failedTasks": 0,
            "createdAt": now,
            "updatedAt": now,
            "launchType": service.launch_type,
            "platformVersion": service.platform_version,
            "platformFamily": "EC2" if service.launch_type == "EC2" else "Linux",
            "networkConfiguration": network,
            "rolloutState": "IN_PROGRESS",
            "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
        }

    def _start(self, service: Any, deployment: dict[str, Any], fault: str | None) -> None:
        self._tasks[deployment["id"]] = []
        self._sync(service)
        script = self._script(service, deployment, fault)
        self._rollouts[id(service)] = _Rollout(service, script, self.clock() + self.step_s, self.step_s)

    def _script(self, service: Any, new: dict[str, Any], fault: str | None) -> Iterator[None]:
        """One deployment, one step per `next()`: launch, run, register, healthy, drain old, complete (or fail)."""
        attempts = 0
        while True:
            wanted = new["desiredCount"]
            if wanted == 0:
                break
            launched = self._launch(service, new, wanted)
            self._event(service, f"has started {wanted} tasks: {_task_list(launched)}.")
            self._touch(service, new)
            yield
            if fault == "never-finishes":
                while True:
                    yield
            if fault in ("failed", "circuit-breaker-rollback"):
                # ECS: the task stops before it runs (TaskFailedToStart), the pull error as its stoppedReason.
                _container, image = _container_of(service, new["taskDefinition"])
                why = (f"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve "
                       f"ref {image}: not found")
                self._stop(service, launched, "TaskFailedToStart", why, None, why)
                for task in launched:
                    self._event(service, f"(task {task.task_id}) failed to start: {why}")
                new["failedTasks"] += wanted
                self._touch(service, new)
                if new["failedTasks"] >= CIRCUIT_BREAKER_THRESHOLD:
                    yield from self._fail(service, new, rollback=fault == "circuit-breaker-rollback")
                    return
                yield
                continue
            for task in launched:
                task.state = "RUNNING"
            self._register(service, launched, ("initial", "Elb.RegistrationInProgress",
                                               "Target registration is in progress"))
            self._touch(service, new)
            yield
            if fault == "container-exits":
                # ECS: the essential container exits (137: killed), so the task stops (EssentialContainerExited).
                self._deregister(service, launched)
                self._stop(service, launched, "EssentialContainerExited", "Essential container in task exited", 137)
                self._event(service, f"has stopped {wanted} running tasks: {_task_list(launched)}.")
                new["failedTasks"] += wanted
                self._touch(service, new)
                if new["failedTasks"] >= CIRCUIT_BREAKER_THRESHOLD:
                    yield from self._fail(service, new, rollback=False)
                    return
                yield
                continue
            if fault == "unhealthy-targets":
                self._set_health(service, launched, ("unhealthy", "Target.FailedHealthChecks", "Health checks failed"))
                for task in launched:
                    self._event(service, f"(task {task.task_id}) (port {_container_port(service)}) is unhealthy in "
                                         f"(target-group {_target_group(service)}) due to "
                                         f"(reason Health checks failed).")
                self._touch(service, new)
                yield
                self._deregister(service, launched)
                # ECS stops a task whose target fails its health checks (the scheduler's SIGTERM: exit 143).
                self._stop(service, launched, "ServiceSchedulerInitiated",
                           f"Task failed ELB health checks in (target-group {_target_group(service)})", 143)
                self._event(service, f"has stopped {wanted} running tasks: {_task_list(launched)}.")
                new["failedTasks"] += wanted
                attempts += 1
                self._touch(service, new)
                if attempts >= UNHEALTHY_ATTEMPTS:
                    yield from self._fail(service, new, rollback=False)
                    return
                yield
                continue
            self._set_health(service, launched, ("healthy", None, None))
            self._touch(service, new)
            yield
            break
        yield from self._complete(service, new)

    def _complete(self, service: Any, deployment: dict[str, Any]) -> Iterator[None]:
        """Drain every other deployment, then `deployment` is COMPLETED and the service steady."""
        yield from self._drain_others(service, keep=deployment)
        deployment["rolloutState"] = "COMPLETED"
        deployment["rolloutStateReason"] = f"ECS deployment {deployment['id']} completed."
        self._touch(service, deployment)
        self._event(service, f"(deployment {deployment['id']}) deployment completed.")
        self._event(service, "has reached a steady state.")

    def _drain_others(self, service: Any, keep: dict[str, Any]) -> Iterator[None]:
        """Drain and stop every deployment but `keep`: targets draining, deregistered, tasks stopped, removed."""
        others = [d for d in service.deployments if d is not keep]
        old_tasks = [t for d in others for t in self._tasks.get(d["id"], []) if t.state == "RUNNING"]
        if old_tasks:
            self._set_health(service, old_tasks, ("draining", "Target.DeregistrationInProgress",
                                                  "Target deregistration is in progress"))
            self._event(service, f"has begun draining connections on {len(old_tasks)} tasks.")
            self._event(service, f"deregistered {len(old_tasks)} targets in (target-group {_target_group(service)})")
            self._sync(service)
            yield
            self._deregister(service, old_tasks)
            self._stop(service, old_tasks, "ServiceSchedulerInitiated",
                       f"Scaling activity initiated by (deployment {keep['id']})", 143)
            self._event(service, f"has stopped {len(old_tasks)} running tasks: {_task_list(old_tasks)}.")
        for deployment in others:
            self._tasks.pop(deployment["id"], None)
        service.deployments = [keep]
        self._sync(service)

    def _fail(self, service: Any, new: dict[str, Any], rollback: bool) -> Iterator[None]:
        new["rolloutState"] = "FAILED"
        new["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
        self._touch(service, new)
        self._event(service, f"(deployment {new['id']}) deployment failed: tasks failed to start.")
        stable = next((d for d in service.deployments if d is not new and d.get("rolloutState") == "COMPLETED"), None)
        if not rollback or stable is None:
            return
        yield
        # The circuit breaker rolls back to the last COMPLETED deployment: a new PRIMARY on its task definition.
        back = self._new_deployment(service, stable["taskDefinition"])
        back["desiredCount"] = stable["desiredCount"]
        back["rolloutStateReason"] = f"ECS deployment circuit breaker: rolling back to deploymentId {stable['id']}."
        new["status"] = "ACTIVE"
        service.deployments = [back, *[d for d in service.deployments]]
        service.task_definition = stable["taskDefinition"]
        self._tasks[back["id"]] = []
        self._event(service, f"rolling back to deployment {stable['id']}.")
        self._sync(service)
        yield
        # The rollback's tasks start and take over from the old ones, like any deployment.
        launched = self._launch(service, back, back["desiredCount"])
        for task in launched:
            task.state = "RUNNING"
        if launched:
            self._event(service, f"has started {len(launched)} tasks: {_task_list(launched)}.")
        self._register(service, launched, ("healthy", None, None))
        self._touch(service, back)
        yield
        yield from self._complete(service, back)

    # -- bookkeeping --------------------------------------------------------------------------------------------

    def _touch(self, service: Any, deployment: dict[str, Any]) -> None:
        deployment["updatedAt"] = self._timestamp()
        self._sync(service)

    def _sync(self, service: Any) -> None:
        """Recompute per-deployment and service running/pending counts from the tasks."""
        running_total = pending_total = 0
        for deployment in service.deployments:
            tasks = self._tasks.get(deployment["id"])
            if tasks is None:
                continue
            deployment["runningCount"] = sum(t.state == "RUNNING" for t in tasks)
            deployment["pendingCount"] = sum(t.state == "PENDING" for t in tasks)
            running_total += deployment["runningCount"]
            pending_total += deployment["pendingCount"]
        service.running_count = running_total
        service.pending_count = pending_total

    def _event(self, service: Any, text: str) -> None:
        message = f"(service {service.name}) {text}"
        event = {"id": str(uuid.uuid4()), "createdAt": self._timestamp(), "message": message}
        # A new list, not insert(): a response being serialised in another thread keeps the list it started with.
        service.events = [event, *service.events[:MAX_EVENTS - 1]]

    def _register(self, service: Any, tasks: list[_Task], health: tuple[str, str | None, str | None]) -> None:
        group = _target_group_model(service)
        if group is None or not tasks:
            return
        group.register([{"Id": t.ip, "Port": _container_port(service)} for t in tasks])
        self._set_health(service, tasks, health)
        self._event(service, f"registered {len(tasks)} targets in (target-group {group.arn})")

    def _deregister(self, service: Any, tasks: list[_Task]) -> None:
        group = _target_group_model(service)
        if group is None:
            return
        for task in tasks:
            self._health.pop((group.arn, task.ip), None)
            if task.ip in group.targets:
                group.deregister([{"Id": task.ip}])

    def _set_health(self, service: Any, tasks: list[_Task], health: tuple[str, str | None, str | None]) -> None:
        arn = _target_group(service)
        if arn:
            for task in tasks:
                self._health[(arn, task.ip)] = health


def _primary(service: Any) -> dict[str, Any] | None:
    return next((d for d in service.deployments if d.get("status") == "PRIMARY"), None)


def _task_list(tasks: list[_Task]) -> str:
    return " ".join(f"(task {t.task_id})" for t in tasks)


def _load_balancer(service: Any) -> dict[str, Any] | None:
    for lb in service.load_balancers or []:
        if lb.get("targetGroupArn"):
            return lb
    return None


def _target_group(service: Any) -> str | None:
    lb = _load_balancer(service)
    return lb["targetGroupArn"] if lb else None


def _container_port(service: Any) -> int:
    lb = _load_balancer(service)
    return int(lb.get("containerPort") or 80) if lb else 80


def _container_of(service: Any, task_definition: str | None) -> tuple[str, str]:
    """(name, image) of the service's container (its load balancer's, else the first) in `task_definition`."""
    lb = _load_balancer(service) or {}
    try:
        from moto.ecs.models import ecs_backends

        td = ecs_backends[service._account_id][service.region_name].describe_task_definition(str(task_definition))
        containers = list(td.container_definitions or [])
    except Exception:  # a task definition moto no longer has: the names ECS would still report are unknown
        containers = []
    chosen = next((c for c in containers if c.get("name") == lb.get("containerName")),
                  containers[0] if containers else {})
    return str(chosen.get("name") or lb.get("containerName") or "app"), str(chosen.get("image") or "?")


def _target_group_model(service: Any) -> Any:
    arn = _target_group(service)
    if not arn:
        return None
    from moto.elbv2.models import elbv2_backends

    return elbv2_backends[service._account_id][service.region_name].target_groups.get(arn)


LIFECYCLE = Lifecycle()


# --------------------------------------------------------------------------------------------------------------
# Patching moto (once per process; every patched method passes straight through while no sandbox is running)
# --------------------------------------------------------------------------------------------------------------


def _install_patches(self: Lifecycle) -> None:
    if self._installed:
        return
    from moto.ecs import models as ecs_models
    from moto.ecs import responses as ecs_responses
    from moto.elbv2 import models as elbv2_models

    backend_cls = ecs_models.EC2ContainerServiceBackend
    orig_create = backend_cls.create_service
    orig_update = backend_cls.update_service
    orig_describe = backend_cls.describe_services
    orig_delete = backend_cls.delete_service
    orig_health = elbv2_models.ELBv2Backend.describe_target_health
    orig_health_for = elbv2_models.FakeTargetGroup.health_for
    orig_create_response = ecs_responses.EC2ContainerServiceResponse.create_service
    orig_list_tasks = ecs_responses.EC2ContainerServiceResponse.list_tasks
    orig_describe_tasks = ecs_responses.EC2ContainerServiceResponse.describe_tasks
    orig_modify_listener = elbv2_models.ELBv2Backend.modify_listener

    def create_service(backend: Any, *args: Any, **kwargs: Any) -> Any:
        service = orig_create(backend, *args, **kwargs)
        if self.enabled:
            with self.lock:
                self.advance()
                self.on_create(service)
        return service

    def update_service(backend: Any, properties: dict[str, Any]) -> Any:
        if not self.enabled:
            return orig_update(backend, properties)
        with self.lock:
            self.advance()
            properties = dict(properties)
            force = bool(properties.pop("force_new_deployment", False))
            td_str = properties.get("task_definition")
            service = backend._get_service(properties.get("cluster", "default"), properties["service"].split("/")[-1])
            before_td = service.task_definition
            before_desired = service.desired_count
            previous = list(service.deployments)
            new_td = backend.describe_task_definition(td_str).arn if td_str else before_td
            service = orig_update(backend, properties)
            service.task_definition = new_td  # moto stores the string it was given ("family:rev"); ECS the ARN
            service.deployments = previous
            if new_td != before_td or force:
                self.on_new_deployment(service, previous)
            elif service.desired_count != before_desired:
                self.on_scale(service, service.desired_count)
            self._sync(service)
            return service

    def describe_services(backend: Any, *args: Any, **kwargs: Any) -> Any:
        self.advance()
        return orig_describe(backend, *args, **kwargs)

    def delete_service(backend: Any, cluster_name: str, service_name: str, force: bool) -> Any:
        service = orig_delete(backend, cluster_name, service_name, force)
        if self.enabled:
            with self.lock:
                self.on_delete(service)
        return service

    def describe_target_health(backend: Any, *args: Any, **kwargs: Any) -> Any:
        self.advance()
        return orig_health(backend, *args, **kwargs)

    def health_for(group: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        status = orig_health_for(group, target, ec2_backend)
        override = self.health_of(group.arn, target["Id"]) if self.enabled else None
        if override is not None and target["Id"] in group.targets:
            status.status, status.reason, status.description = override
        return status

    def create_service_response(response: Any) -> Any:
        # moto drops deploymentConfiguration (circuit breaker, min/max percent), the health check grace period and
        # availabilityZoneRebalancing;
        # keep them so that they round-trip like in ECS and terraform sees no drift.
        result = orig_create_response(response)
        if self.enabled:
            service = response.ecs_backend._get_service(
                response._get_param("cluster", "default"), response._get_param("serviceName"))
            for param, attr in (("deploymentConfiguration", "deployment_configuration"),
                                ("healthCheckGracePeriodSeconds", "health_check_grace_period_seconds"),
                                ("availabilityZoneRebalancing", "availability_zone_rebalancing")):
                value = response._get_param(param)
                if value is not None:
                    setattr(service, attr, value)
        return result

    def emulated(response: Any) -> list[tuple[Any, _Task]]:
        cluster = str(response._get_param("cluster", "default")).rsplit("/", 1)[-1]
        return [(svc, t) for svc, t in self.service_tasks() if svc.cluster_name == cluster] if self.enabled else []

    def list_tasks_response(response: Any) -> Any:
        # ECS lists a service's tasks (running, or STOPPED for about an hour); moto starts none for services.
        tasks = emulated(response)
        if not tasks:
            return orig_list_tasks(response)
        from moto.core.responses import ActionResult

        service = response._get_param("serviceName")
        wanted = response._get_param("desiredStatus") or "RUNNING"
        started_by = response._get_param("startedBy")
        arns = [t.arn(svc) for svc, t in tasks
                if (service is None or svc.name == str(service).rsplit("/", 1)[-1])
                and (t.state == "STOPPED") == (wanted == "STOPPED") and (not started_by or t.started_by == started_by)]
        if service is None:  # tasks moto itself ran (RunTask), as before
            listed: Any = orig_list_tasks(response).result
            arns = [str(a) for a in listed["taskArns"]] + arns
        return ActionResult({"taskArns": arns})

    def describe_tasks_response(response: Any) -> Any:
        asked = [str(t) for t in response._get_param("tasks", []) or []]
        ours = {t.task_id: (svc, t) for svc, t in emulated(response)}
        found = [ours[a.rsplit("/", 1)[-1]] for a in asked if a.rsplit("/", 1)[-1] in ours]
        if not found:
            return orig_describe_tasks(response)
        from moto.core.responses import ActionResult

        return ActionResult({"tasks": [t.describe(svc) for svc, t in found], "failures": [
            {"arn": a, "reason": "MISSING"} for a in asked if a.rsplit("/", 1)[-1] not in ours]})

    def modify_listener(backend: Any, arn: str, *args: Any, **kwargs: Any) -> Any:
        before = _forward_weights(backend.describe_listeners(load_balancer_arn=None, listener_arns=[arn])[0])
        listener = orig_modify_listener(backend, arn, *args, **kwargs)
        after = _forward_weights(listener)
        if self.enabled and len(after) > 1 and before != after:
            self.on_listener_weights()
        return listener

    _install_autoscaling_tags()
    _install_iam_action_names()

    # setattr: these replace moto's methods on purpose (mypy would call a plain assignment a mistake).
    for owner, name, patched in ((backend_cls, "create_service", create_service),
                                 (backend_cls, "update_service", update_service),
                                 (backend_cls, "describe_services", describe_services),
                                 (backend_cls, "delete_service", delete_service),
                                 (elbv2_models.ELBv2Backend, "describe_target_health", describe_target_health),
                                 (elbv2_models.FakeTargetGroup, "health_for", health_for),
                                 (ecs_responses.EC2ContainerServiceResponse, "create_service", create_service_response),
                                 (ecs_responses.EC2ContainerServiceResponse, "list_tasks", list_tasks_response),
                                 (ecs_responses.EC2ContainerServiceResponse, "describe_tasks", describe_tasks_response),
                                 (elbv2_models.ELBv2Backend, "modify_listener", modify_listener)):
        setattr(owner, name, patched)
    self._installed = True


# Signing names that are not IAM service prefixes: AWS authorises CloudWatch's DescribeAlarms as
# cloudwatch:DescribeAlarms, though the request is signed for "monitoring".
_IAM_PREFIX = {"monitoring": "cloudwatch"}


def _install_iam_action_names() -> None:
    """Emulator fix: with IAM enforcement on, moto names the action of a request after the service name in its
    signature (`monitoring:DescribeAlarms`), where AWS uses the IAM service prefix (`cloudwatch:DescribeAlarms`).
    A documented policy would have to grant an action that does not exist; instead the local AWS names it as AWS
    does (docs/rollout.md's policy is tested under enforcement)."""
    from moto.iam.access_control import IAMRequest

    if getattr(IAMRequest, "_tfreview_prefixes", False):
        return
    original = IAMRequest.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        service, _, action = str(getattr(self, "_action", "")).partition(":")
        if service in _IAM_PREFIX:
            self._action = f"{_IAM_PREFIX[service]}:{action}"

    IAMRequest.__init__ = init  # type: ignore[method-assign]
    IAMRequest._tfreview_prefixes = True  # type: ignore[attr-defined]


_AUTOSCALING_TAGS: dict[str, dict[str, str]] = {}  # resource ARN -> tags (Application Auto Scaling)


def _install_autoscaling_tags() -> None:
    """Emulator extension: Application Auto Scaling's tags (RegisterScalableTarget's Tags, TagResource,
    UntagResource, ListTagsForResource). moto 5.2 answers none of them, and the AWS provider retries the unanswered
    call for many minutes, so a module with an `aws_appautoscaling_target` seemed to hang. Tags are kept per ARN;
    a scalable target's go when it is deregistered (moto's own state is reset by /moto-api/reset)."""
    import json as _json

    from moto.applicationautoscaling import responses as aas

    cls = aas.ApplicationAutoScalingResponse
    if getattr(cls, "_tfreview_tags", False):
        return
    orig_register, orig_deregister = cls.register_scalable_target, cls.deregister_scalable_target

    def register_scalable_target(response: Any) -> Any:
        body = orig_register(response)
        tags = response._get_param("Tags") or {}
        if tags:
            arn = _json.loads(body)["ScalableTargetARN"]
            _AUTOSCALING_TAGS.setdefault(arn, {}).update({str(k): str(v) for k, v in tags.items()})
        return body

    def deregister_scalable_target(response: Any) -> Any:
        targets = response.applicationautoscaling_backend.describe_scalable_targets(
            response._get_param("ServiceNamespace"), [response._get_param("ResourceId")],
            response._get_param("ScalableDimension"))
        body = orig_deregister(response)
        for target in targets:
            _AUTOSCALING_TAGS.pop(target.arn, None)
        return body

    def tag_resource(response: Any) -> str:
        _AUTOSCALING_TAGS.setdefault(str(response._get_param("ResourceARN")), {}).update(
            {str(k): str(v) for k, v in (response._get_param("Tags") or {}).items()})
        return "{}"

    def untag_resource(response: Any) -> str:
        tags = _AUTOSCALING_TAGS.get(str(response._get_param("ResourceARN")), {})
        for key in response._get_param("TagKeys") or []:
            tags.pop(str(key), None)
        return "{}"

    def list_tags_for_resource(response: Any) -> str:
        return _json.dumps({"Tags": _AUTOSCALING_TAGS.get(str(response._get_param("ResourceARN")), {})})

    for name, patched in (("register_scalable_target", register_scalable_target),
                          ("deregister_scalable_target", deregister_scalable_target),
                          ("tag_resource", tag_resource), ("untag_resource", untag_resource),
                          ("list_tags_for_resource", list_tags_for_resource)):
        setattr(cls, name, patched)
    cls._tfreview_tags = True  # type: ignore[attr-defined]


def _forward_weights(listener: Any) -> dict[str, int]:
    """Target group ARN -> weight of a listener's weighted forward action (empty for a plain forward)."""
    for action in getattr(listener, "default_actions", None) or []:
        data = getattr(action, "data", None) or {}
        groups = (data.get("ForwardConfig") or {}).get("TargetGroups") or []
        if data.get("Type") == "forward" and groups:
            return {str(g.get("TargetGroupArn")): int(g.get("Weight", 1)) for g in groups}
    return {}


def _engage(step_s: float, faults: dict[str, str] | None) -> float:
    """Switch the lifecycle on (one more user) at `step_s` with `faults`; returns the step to give back to
    `_disengage`, so that another user of this process keeps its pace."""
    previous_step_s = LIFECYCLE.step_s
    LIFECYCLE.acquire()
    LIFECYCLE.step_s = step_s
    for service, fault in (faults or {}).items():
        LIFECYCLE.set_fault(service, fault)
    return previous_step_s


def _disengage(previous_step_s: float) -> None:
    LIFECYCLE.step_s = previous_step_s
    LIFECYCLE.release()


@contextlib.contextmanager
def ecs_lifecycle(step_s: float = DEFAULT_STEP_S, faults: dict[str, str] | None = None) -> Iterator[Lifecycle]:
    """Give moto the ECS deployment lifecycle for the duration of the block (also under `moto.mock_aws`)."""
    previous_step_s = _engage(step_s, faults)
    try:
        yield LIFECYCLE
    finally:
        _disengage(previous_step_s)


# --------------------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------------------


def _control_app(inner: Callable[..., Any], lifecycle: Lifecycle) -> Callable[..., Any]:
    """WSGI middleware: /_tfreview/faults (GET, POST, DELETE) in front of moto; /moto-api/reset also resets us."""

    def reply(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/_tfreview/faults":
            if method == "POST":
                try:
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                    body = json.loads(environ["wsgi.input"].read(length) or b"{}")
                    lifecycle.set_fault(str(body["service"]), body.get("fault"))
                except (ValueError, KeyError, TypeError, BadInput) as exc:
                    message = exc.message if isinstance(exc, BadInput) else f"bad request: {exc}"
                    return reply(start_response, "400 Bad Request", {"error": message})
            elif method == "DELETE":
                lifecycle.faults.clear()
            return reply(start_response, "200 OK", {"faults": dict(lifecycle.faults)})
        if path == "/_tfreview/alarms":
            if method == "POST":
                try:
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                    body = json.loads(environ["wsgi.input"].read(length) or b"{}")
                    lifecycle.set_alarm(str(body["alarm"]), str(body.get("state") or "ALARM"), body.get("reason"),
                                        body.get("after_shifts", 0), str(body.get("region") or
                                                                         FAKE_CREDENTIALS["AWS_REGION"]))
                except (ValueError, KeyError, TypeError, BadInput) as exc:
                    message = exc.message if isinstance(exc, BadInput) else f"bad request: {exc}"
                    return reply(start_response, "400 Bad Request", {"error": message})
            elif method == "DELETE":
                lifecycle.alarm_triggers.clear()
            return reply(start_response, "200 OK", {"pending": list(lifecycle.alarm_triggers),
                                                    "shifts": lifecycle.shifts})
        if path == "/moto-api/reset":
            lifecycle.reset()
        return inner(environ, start_response)

    return app


@dataclass
class Sandbox:
    """A running sandbox. `endpoint` is "http://HOST:PORT"; `port` the TCP port it listens on."""

    host: str
    port: int
    _server: Any = field(repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _previous_step_s: float = field(default=DEFAULT_STEP_S, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables that point terraform and boto3 at this sandbox (fake credentials included)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, **FAKE_CREDENTIALS}

    def client(self, service_name: str) -> Any:
        """A boto3 client for `service_name` ("ecs", "elbv2"...) talking to this sandbox."""
        import boto3

        return boto3.client(service_name, endpoint_url=self.endpoint, region_name=FAKE_CREDENTIALS["AWS_REGION"],
                            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def set_fault(self, service: str, fault: str | None) -> None:
        """Inject `fault` (one of FAULTS, None clears) into new deployments of the ECS service named `service`."""
        LIFECYCLE.set_fault(service, fault)

    def clear_faults(self) -> None:
        LIFECYCLE.faults.clear()
        LIFECYCLE.alarm_triggers.clear()

    def set_alarm(self, alarm: str, state: str = "ALARM", reason: str | None = None,
                  after_shifts: int = 0) -> dict[str, Any]:
        """Set the CloudWatch alarm `alarm` to `state` now, or right after the `after_shifts`-th production traffic
        shift from now (see `Lifecycle.set_alarm`)."""
        return LIFECYCLE.set_alarm(alarm, state, reason, after_shifts)

    @property
    def step_s(self) -> float:
        return LIFECYCLE.step_s

    @step_s.setter
    def step_s(self, seconds: float) -> None:
        """Seconds per emulated deployment step, for deployments started from now on."""
        LIFECYCLE.step_s = seconds

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None
            _disengage(self._previous_step_s)  # another sandbox of this process keeps its pace

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(host: str = "127.0.0.1", port: int = 0, step_s: float | None = None,
                  faults: dict[str, str] | None = None) -> Sandbox:
    """Start moto with the ECS lifecycle on `host`:`port` (0 = any free port) in a thread; returns once it listens.

    `step_s` (seconds per deployment step) defaults to TFREVIEW_SANDBOX_STEP_S or 0.5; `faults` ({service: fault})
    are added to those of TFREVIEW_SANDBOX_FAULTS.
    """
    if host not in _LOOPBACK:
        raise BadInput(f"sandbox host {host!r} is not a loopback address", "use 127.0.0.1")
    for key, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    # Real modules attach AWS-managed IAM policies (AmazonECSTaskExecutionRolePolicy...): moto knows them only
    # when told to load them before its IAM backend starts.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    if step_s is None:
        try:
            step_s = float(os.environ.get("TFREVIEW_SANDBOX_STEP_S", DEFAULT_STEP_S))
        except ValueError:
            raise BadInput("TFREVIEW_SANDBOX_STEP_S is not a number", "set it to seconds, e.g. 0.5") from None
    all_faults = {**parse_faults(os.environ.get("TFREVIEW_SANDBOX_FAULTS", "")), **(faults or {})}

    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per API call drowns the output
    serialise_s3_requests()
    app = _control_app(DomainDispatcherApplication(create_backend_app), LIFECYCLE)
    import io

    try:  # werkzeug prints its own lines and exits when the port is taken: we say it in one line instead
        with contextlib.redirect_stderr(io.StringIO()):
            server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    except (OSError, SystemExit) as exc:
        raise BadInput(f"cannot listen on {host}:{port}: the port is in use (or not allowed)",
                       "choose another --port") from exc
    previous_step_s = _engage(step_s, all_faults)  # only once the server listens: nothing to undo on failure
    thread = threading.Thread(target=server.serve_forever, name="tfreview-sandbox", daemon=True)
    thread.start()
    return Sandbox(host=host, port=server.server_address[1], _server=server, _thread=thread,
                   _previous_step_s=previous_step_s)


def set_remote_fault(endpoint: str, service: str, fault: str | None) -> dict[str, str]:
    """Set a fault in a sandbox served by another process (loopback only); returns the faults now set."""
    import urllib.error
    import urllib.parse
    import urllib.request

    host = urllib.parse.urlparse(endpoint).hostname or ""
    if host not in _LOOPBACK:
        raise BadInput(f"{endpoint} is not a loopback sandbox", "faults exist only in `tfreview sandbox`")
    request = urllib.request.Request(
        endpoint.rstrip("/") + "/_tfreview/faults", method="POST",
        data=json.dumps({"service": service, "fault": fault}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback only, checked above
            return json.loads(response.read())["faults"]
    except urllib.error.HTTPError as exc:
        if exc.code == 400:
            raise BadInput(json.loads(exc.read() or b"{}").get("error", "bad fault"),
                           f"choose one of {', '.join(FAULTS)}") from exc
        raise AwsError(f"the sandbox at {endpoint} answered {exc.code}", "is it a `tfreview sandbox`?") from exc
    except OSError as exc:
        raise AwsError(f"cannot reach the sandbox at {endpoint}: {exc}", "start it with `tfreview sandbox`") from exc


def set_remote_alarm(endpoint: str, alarm: str, state: str = "ALARM", reason: str | None = None,
                     after_shifts: int = 0) -> dict[str, Any]:
    """Set an alarm's state in a sandbox served by another process (loopback only), now or after N traffic shifts."""
    import urllib.error
    import urllib.parse
    import urllib.request

    host = urllib.parse.urlparse(endpoint).hostname or ""
    if host not in _LOOPBACK:
        raise BadInput(f"{endpoint} is not a loopback sandbox", "alarm states are set only in `tfreview sandbox`")
    request = urllib.request.Request(
        endpoint.rstrip("/") + "/_tfreview/alarms", method="POST",
        data=json.dumps({"alarm": alarm, "state": state, "reason": reason, "after_shifts": after_shifts}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback only, checked above
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        if exc.code == 400:
            raise BadInput(json.loads(exc.read() or b"{}").get("error", "bad alarm request"),
                           "name an existing alarm and a state of " + ", ".join(ALARM_STATES)) from exc
        raise AwsError(f"the sandbox at {endpoint} answered {exc.code}", "is it a `tfreview sandbox`?") from exc
    except OSError as exc:
        raise AwsError(f"cannot reach the sandbox at {endpoint}: {exc}", "start it with `tfreview sandbox`") from exc


def run_sandbox(port: int = 5000, host: str = "127.0.0.1", step_s: float | None = None,
                faults: dict[str, str] | None = None) -> None:
    """Serve the sandbox until Ctrl-C, after printing the `export` lines that point terraform and boto3 at it."""
    sandbox = start_sandbox(host=host, port=port, step_s=step_s, faults=faults)
    try:
        for key, value in sandbox.env().items():
            print(f"export {key}={value}")
        print(f"# sandbox listening on {sandbox.endpoint} (ECS deployment step {sandbox.step_s} s); Ctrl-C to stop",
              flush=True)
        if LIFECYCLE.faults:
            print(f"# faults: {', '.join(f'{s}={f}' for s, f in sorted(LIFECYCLE.faults.items()))}", flush=True)
        print(f"# inject a fault: curl -X POST {sandbox.endpoint}/_tfreview/faults "
              f"-d '{{\"service\": \"NAME\", \"fault\": \"failed\"}}'  ({', '.join(FAULTS)}; null clears)",
              flush=True)
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, Interrupted):  # Ctrl-C or SIGTERM: a normal stop
        pass
    finally:
        sandbox.stop()
