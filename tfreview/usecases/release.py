"""Blue/green releases: apply a deploy to the idle colour, watch it, shift traffic by weight-only plans, roll back.

A release is (ARCHITECTURE.md, "Blue/green, the testable and correct way"):
  approved deploy-to-idle plan -> apply -> watch the idle service until its new deployment is complete and its
  targets healthy -> [optional --verify-cmd against the test listener] -> weight-only plans that move traffic
  (`--steps 10,50,100`, each checked to change only listener weights, applied under the release's approval, with
  a bake time and a health check between steps) -> done.
On any failure traffic goes back to the old colour by itself (a weight-only plan), the reason is recorded and the
command exits non-zero. The apply lock is held for the whole release.
"""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable

from tfreview.text import iso, now_utc
from tfreview.errors import BadInput, PolicyRefusal, RolloutFailed, TfreviewError
from tfreview.plan.roles import Roles
from tfreview.rollout.traffic import idle_colour, shift_vars, traffic_state
from tfreview.store.base import dumps
from tfreview.usecases.apply import apply, apply_in_workspace
from tfreview.usecases.context import Context
from tfreview.usecases.plan import plan_in_workspace
from tfreview.usecases.records import is_destroy, load_plan, load_review
from tfreview.usecases.workspace import Workspace


Log = Callable[[str], None]


def refuse_unless_weight_only(record: dict[str, Any], what: str) -> None:
    """A release's traffic plans (shift, rollback) may only change listener weights."""
    got = (record["summary"].get("classification") or {}).get("kind")
    if got not in ("traffic-shift", "no-changes"):
        raise PolicyRefusal(f"{what} {record['id']} is {got}, not a weight-only change: refused",
                            "inspect it with tfreview show " + record["id"])


def services_to_watch(review_json: dict[str, Any], roles: Roles = Roles()) -> list[str]:
    """Colours whose ECS service (the `service` role) the plan creates or updates: the deployments to watch."""
    keys = []
    for r in review_json.get("resources", []):
        colour = roles.colour_of("service", r.get("address", ""))
        if colour and set(r.get("actions", [])) & {"create", "update"}:
            keys.append(colour)
    return sorted(set(keys))


def record_roles(record: dict[str, Any]) -> Roles:
    """The roles a plan was made with (plans made before roles existed: the bundled module's)."""
    return Roles.from_dict(record.get("roles"))


# -- the shell ------------------------------------------------------------------------------------------------------
@dataclass
class ReleaseOptions:
    steps: list[int]
    bake_s: float = 0.0
    verify_cmd: str | None = None
    timeout_s: float = 600.0
    poll_s: float = 2.0
    alarms: tuple[str, ...] = ()  # CloudWatch alarm names: one in ALARM stops the release (--alarm, [apps] alarms)


class AlarmFired(RolloutFailed):
    """A gating alarm is in ALARM: the release stops (traffic goes back to the old colour)."""

    def __init__(self, alarm: dict[str, Any], during: str) -> None:
        self.alarm = alarm
        super().__init__(f"alarm {alarm['name']} is in ALARM since {alarm['fired_at']} ({during}): {alarm['reason']}")


@dataclass(frozen=True)
class ReleaseResult:
    """How a release ended, the one place its outcome is decided and recorded (the rollout record, the audit
    entry; notifications hook here): `outcome` succeeded | failed, `reason` one line ("" on success), `alarm`
    the alarm that stopped it ({name, state, reason, fired_at}) or None, `stopped` why tasks stopped."""

    outcome: str
    reason: str = ""
    alarm: dict[str, Any] | None = None
    stopped: tuple[dict[str, Any], ...] = ()


class Release:
    """Runs inside `apply` (the lock held, the workspace open) as its after-apply hook."""

    def __init__(self, ctx: Context, options: ReleaseOptions, log: Log,
                 display: Callable[[], Any] | None = None) -> None:
        self.ctx = ctx
        self.options = options
        self.log = log
        # display(): a context manager giving on_event/on_poll callbacks (the CLI's live rollout panel)
        self.display = display
        self.steps: list[dict[str, Any]] = []
        self.started_at = _stamp()
        self.alarm: dict[str, Any] | None = None  # the alarm that stopped the release
        self.stopped: list[dict[str, Any]] = []  # why the watched deployments' tasks stopped (distinct reasons)
        self._cloudwatch: Any = None
        self.result: ReleaseResult | None = None

    # the after-apply hook
    def __call__(self, record: dict[str, Any], ws: Workspace, outputs: dict[str, Any]) -> dict[str, Any]:
        """`outputs`: the environment's public outputs right after the apply."""
        kind = (record["summary"].get("classification") or {}).get("kind")
        review = load_review(self.ctx.store, record).summary_json()
        colours = services_to_watch(review, record_roles(record))
        ecs, elbv2 = self._clients()
        for colour in colours:
            self._watch(ecs, elbv2, outputs, colour, record)
        outcome: dict[str, Any] = {"kind": kind, "watched": colours, "steps": self.steps}
        strategy = outputs.get("strategy") or record["release_vars"].get("strategy")
        if kind == "deploy-to-idle" and strategy == "blue_green":
            target = (record["summary"].get("classification") or {}).get("target_colour") or colours[0]
            self._verify(record, outputs)
            self._shift(record, ws, outputs, target, ecs, elbv2)
            outcome["live_color"] = target
        self._record(record, ReleaseResult("succeeded", stopped=tuple(self.stopped)), outcome)
        return outcome

    def _clients(self) -> tuple[Any, Any]:
        from tfreview.rollout.watch import clients

        return clients()

    # -- alarms ----------------------------------------------------------------------------------------------
    def firing_alarm(self) -> dict[str, Any] | None:
        """The first gating alarm now in ALARM (as a dict), else None. An alarm deleted since the start is bad
        input: the release cannot be gated by it any more."""
        if not self.options.alarms:
            return None
        from tfreview.rollout.alarms import cloudwatch_client, describe_alarms, firing, missing

        if self._cloudwatch is None:
            self._cloudwatch = cloudwatch_client()
        found = describe_alarms(self._cloudwatch, self.options.alarms)
        gone = missing(self.options.alarms, found)
        if gone:
            raise RolloutFailed(f"CloudWatch alarm {gone[0]} no longer exists", "check the alarm names (--alarm, "
                                "[apps.<app>] alarms)")
        up = firing(self.options.alarms, found)
        return up[0].to_dict() if up else None

    def check_alarms(self, during: str) -> None:
        """Raise AlarmFired when a gating alarm is in ALARM (logged and recorded as a step)."""
        alarm = self.firing_alarm()
        if alarm is not None:
            self._alarm_step(alarm, during)
            raise AlarmFired(alarm, during)

    def _alarm_step(self, alarm: dict[str, Any], during: str) -> None:
        self.alarm = alarm
        self.log(f"ALARM {alarm['name']} (in ALARM since {alarm['fired_at']}, {during}): {alarm['reason']}")
        self.steps.append({"step": "alarm", "at": _stamp(), "during": during, **alarm})

    def _bake(self, percent: int, target: str) -> None:
        """Wait --bake seconds at `percent` on `target`, looking at the alarms every poll meanwhile."""
        self.check_alarms(f"at {percent}% on {target}")
        if not self.options.bake_s:
            return
        self.log(f"baking {self.options.bake_s:g} s at {percent}% on {target}"
                 + (f", watching {len(self.options.alarms)} alarm(s)" if self.options.alarms else ""))
        deadline = time.monotonic() + self.options.bake_s
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, self.options.poll_s) if self.options.alarms else left)
            self.check_alarms(f"baking at {percent}% on {target}")

    def _watch(self, ecs: Any, elbv2: Any, outputs: dict[str, Any], colour: str, record: dict[str, Any]) -> None:
        from tfreview.rollout.watch import watch_colour

        service = outputs["services"][colour]
        self.log(f"watching {service} (deployment of {outputs['task_definitions'][colour].rsplit('/', 1)[-1]})")
        during = f"watching {service}"

        def gate() -> dict[str, Any] | None:
            try:
                alarm = self.firing_alarm()
            except TfreviewError as exc:  # the alarms cannot be read (gone, AWS refuses): fail safe, stop here
                return {"reason": f"the gating alarms cannot be read: {exc.message}"}
            if alarm is None:
                return None
            self._alarm_step(alarm, during)
            return {"reason": AlarmFired(alarm, during).message, "alarm": alarm}

        opts = {"ecs": ecs, "elbv2": elbv2, "timeout_s": self.options.timeout_s, "poll_s": self.options.poll_s,
                "gate": gate if self.options.alarms else None}
        samples: list[dict[str, Any]] = []
        started = _stamp()
        if self.display is None:
            result = watch_colour(outputs, colour, **opts, on_event=lambda line: self.log(f"{service}: {line.text}"),
                                  on_poll=lambda obs, verdict: _sample(samples, obs, verdict))
        else:
            with self.display() as shown:
                def on_poll(obs: Any, verdict: Any) -> None:
                    _sample(samples, obs, verdict)
                    shown.on_poll(obs, verdict)

                result = watch_colour(outputs, colour, **opts, on_event=shown.on_event, on_poll=on_poll)
        self.steps.append({"step": "watch", "colour": colour, "at": started, **result.to_dict(), "samples": samples})
        self.stopped += [{**s, "service": service} for s in result.stopped]
        if not result.ok:
            if self.alarm is not None:
                self._fail(record, f"{service}: {result.reason}; traffic was not moved")
            why = "; ".join(s["reason"] for s in result.stopped[:3])
            self._fail(record, f"{service} did not deploy: {result.reason}" + (f" (why: {why})" if why else ""))

    def _verify(self, record: dict[str, Any], outputs: dict[str, Any]) -> None:
        if not self.options.verify_cmd:
            return
        port = outputs.get("test_listener_port") or 8080
        env = {**os.environ, "TFREVIEW_TEST_URL": f"http://{outputs.get('alb_dns_name', '')}:{port}",
               "TFREVIEW_TEST_LISTENER_ARN": outputs.get("test_listener_arn") or ""}
        self.log(f"verifying the idle colour through the test listener: {self.options.verify_cmd}")
        at = _stamp()
        proc = subprocess.run(self.options.verify_cmd, shell=True, env=env, capture_output=True, text=True, timeout=600)
        self.steps.append({"step": "verify", "at": at, "finished_at": _stamp(),
                           "command": self.options.verify_cmd, "exit_code": proc.returncode})
        if proc.returncode != 0:
            last = ((proc.stderr or proc.stdout).strip().splitlines() or [""])[-1][:200]
            self._fail(record, f"--verify-cmd exited {proc.returncode} ({last}); traffic was not moved")

    def _shift(self, record: dict[str, Any], ws: Workspace, outputs: dict[str, Any], target: str,
               ecs: Any, elbv2: Any) -> None:
        base = dict(record["release_vars"])
        roles = record_roles(record)
        old = idle_colour(target, roles.colours)
        try:  # an alarm already in ALARM stops the shift before any traffic moves
            self.check_alarms(f"before the shift to {target}")
        except TfreviewError as exc:  # AlarmFired, or alarms that cannot be read: nothing moves
            self._fail(record, f"{exc.message}; traffic was not moved, it stays on {old}")
        for percent in self.options.steps:
            try:
                self._apply_weights(record, ws, shift_vars(base, target, percent, roles), "shift",
                                    f"traffic {percent}% -> {target}")
                self._bake(percent, target)
                self._check_healthy(ecs, elbv2, outputs, target)
                self.steps.append({"step": "bake", "at": _stamp(), "colour": target,
                                   "percent": percent, "bake_s": self.options.bake_s, "healthy": True})
            except Exception as exc:  # any failure while traffic moves: back to the old colour
                reason = getattr(exc, "message", str(exc))
                self.steps.append({"step": "bake", "at": _stamp(), "colour": target,
                                   "percent": percent, "bake_s": self.options.bake_s, "healthy": False,
                                   "reason": reason})
                self.log(f"FAILED at {percent}% on {target}: {reason}; moving all traffic back to {old}")
                back = dict(base)  # the deploy's variables: 100 % on the old colour
                self._apply_weights(record, ws, back, "rollback", f"traffic 100% -> {old} (automatic rollback)")
                self._fail(record, f"traffic shift to {target} failed at {percent}%: {reason}; traffic is back on {old}")

    def _apply_weights(self, record: dict[str, Any], ws: Workspace, variables: dict[str, Any], kind: str,
                       what: str) -> dict[str, Any]:
        """Plan a weight-only change in the release's workspace, check it is one, and apply it under the release's
        approval (lock held)."""
        self.log(f"planning {what}")
        planned = plan_in_workspace(self.ctx, ws, record["app"], record["version"], record["env"],
                                             record["package_sha256"], kind=kind, release_vars=variables,
                                             release_id=record["id"])
        shift = planned.record
        refuse_unless_weight_only(shift, f"the {kind} plan")
        self.log(f"applying {what} ({shift['id']})")
        result = apply_in_workspace(self.ctx, shift, planned.binary, ws, None, None)
        self.steps.append({"step": kind, "at": _stamp(),
                           "plan_id": shift["id"], "what": what, "outcome": result["outcome"],
                           "weights": dict(traffic_state(variables, record_roles(record)).weights)})
        self.ctx.audit("traffic-shift" if kind == "shift" else "rollback", app=record["app"], env=record["env"],
                       version=record["version"], plan_id=shift["id"],
                       details={"release": record["id"], "what": what})
        return result

    def _check_healthy(self, ecs: Any, elbv2: Any, outputs: dict[str, Any], colour: str) -> None:
        from tfreview.rollout.watch import assess, observe, poll_once

        service = outputs["services"][colour]
        described, health = poll_once(ecs, elbv2, outputs["cluster_name"], service, outputs["target_groups"][colour])
        verdict = assess(observe(described, health), None, outputs["task_definitions"][colour])
        if not verdict.ok:
            raise RolloutFailed(f"{service} is not healthy: {verdict.reason}")
        self.log(f"{service} healthy")

    def _fail(self, record: dict[str, Any], reason: str) -> None:
        self._record(record, ReleaseResult("failed", reason, self.alarm, tuple(self.stopped)), {"steps": self.steps})
        raise RolloutFailed(f"release of {record['app']} {record['version']} to {record['env']} failed: {reason}",
                            "traffic stays on the old colour; see tfreview status and the stored release record")

    def _record(self, record: dict[str, Any], result: ReleaseResult, detail: dict[str, Any]) -> None:
        """Record how the release ended (its audit entry, then the rollout record): `self.result` holds it after."""
        self.result = result
        doc = {"kind": "release", "plan_id": record["id"], "app": record["app"], "env": record["env"],
               "version": record["version"], "by": self.ctx.user, "outcome": result.outcome, "reason": result.reason,
               "alarm": result.alarm, "alarms": list(self.options.alarms), "stopped_tasks": list(result.stopped),
               "started_at": self.started_at, "finished_at": iso(now_utc()),
               "weights_before": dict(traffic_state(record.get("prior_outputs") or {}, record_roles(record)).weights)
               if (record.get("prior_outputs") or {}).get("weights") else None, **detail}
        # The audit entry first: a rollout record never exists unrecorded (docs/design-notes.md, issue 20).
        self.ctx.audit("rollout", app=record["app"], env=record["env"], version=record["version"],
                       plan_id=record["id"], details={"outcome": result.outcome, "reason": result.reason,
                                                      "alarm": (result.alarm or {}).get("name")})
        self.ctx.store.create(f"rollouts/{record['app']}/{record['env']}/{record['id']}.json", dumps(doc))


def _stamp() -> str:
    """Now, to the millisecond (polls come faster than once a second): the times of the release timeline."""
    return now_utc().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sample(samples: list[dict[str, Any]], obs: Any, verdict: Any) -> None:
    """Append what one poll saw of a colour (time, PRIMARY deployment's desired/running tasks, healthy targets,
    rollout state) when it differs from the previous sample: the deployment timeline of the release report."""
    primary = obs.primary
    point = {"desired": primary.desired if primary else obs.desired,
             "running": primary.running if primary else obs.running,
             "healthy": sum(t.state == "healthy" for t in obs.targets or ()),
             "state": (primary.rollout_state if primary else None) or "-", "verdict": verdict.state}
    if not samples or {k: samples[-1][k] for k in point} != point:
        samples.append({"at": _stamp(), **point})


def apply_release(ctx: Context, plan_id: str, *, options: ReleaseOptions | None, log: Log,
                  break_glass_reason: str | None = None, display: Callable[[], Any] | None = None) -> dict[str, Any]:
    """`tfreview apply`: refuse unsafe plans (unless break-glass), apply, and (unless options is None, --no-wait)
    run the release: watch, verify, shift traffic, roll back on failure."""
    record = load_plan(ctx.store, plan_id)
    cls = record["summary"].get("classification") or {}
    # A destroy plan touches the live colour by design: its own policy rule (destroy_approvals/approvers) decides.
    if cls.get("kind") == "unsafe" and break_glass_reason is None and not is_destroy(record):
        raise PolicyRefusal(f"plan {plan_id} is unsafe: {'; '.join(cls.get('reasons', [])[:2])}",
                            "deploy to the idle colour and shift traffic in separate plans "
                            "(or apply --break-glass --reason if you must)")
    if options is not None and options.alarms:
        check_alarms_exist(options.alarms)  # before the lock, terraform and any traffic (exit 2)
    hook = Release(ctx, options, log, display) if options is not None else None
    return apply(ctx, plan_id, break_glass_reason=break_glass_reason, after_apply=hook)


def check_alarms_exist(names: tuple[str, ...], cloudwatch: Any = None) -> None:
    """BadInput (exit 2) naming the first gating alarm CloudWatch does not have."""
    from tfreview.rollout.alarms import cloudwatch_client, describe_alarms, missing

    found = describe_alarms(cloudwatch or cloudwatch_client(), names)
    gone = missing(names, found)
    if gone:
        raise BadInput(f"CloudWatch alarm {gone[0]} does not exist" + (f" (nor {', '.join(gone[1:])})"
                                                                       if gone[1:] else ""),
                       "check the names given with --alarm or in [apps.<app>] alarms, and the AWS region")
