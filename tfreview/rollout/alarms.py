"""CloudWatch alarms that gate a release: any listed alarm in state ALARM stops it.

What AWS says (CloudWatch API, DescribeAlarms): an alarm's `StateValue` is OK, ALARM or INSUFFICIENT_DATA, with a
`StateReason` in text and the time the state last changed (`StateTransitionedTimestamp`; older answers and the local
AWS have only `StateUpdatedTimestamp`). Without `AlarmTypes` DescribeAlarms returns metric alarms only, so both
types are asked for. A name that is not in the answer does not exist (in this account and region).

Pure core: `alarm_names` (which alarms gate a release of an app in an environment), `parse_alarms` (the answer as
`AlarmState`s), `firing` (those in ALARM). Imperative shell: `describe_alarms` (one call per 100 names).
Only ALARM stops a release: INSUFFICIENT_DATA is what a new alarm on a quiet metric says, and CodeDeploy and ECS
treat it the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from tfreview.errors import BadInput

ALARM = "ALARM"
MAX_NAMES_PER_CALL = 100  # DescribeAlarms' AlarmNames takes at most 100 names
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")  # CloudWatch: 1-255 characters; we refuse control characters


@dataclass(frozen=True)
class AlarmState:
    """One alarm as DescribeAlarms tells it: `state` (OK, ALARM, INSUFFICIENT_DATA), `reason` (StateReason, one line)
    and `since` (ISO 8601 UTC: when the state last changed)."""

    name: str
    state: str
    reason: str
    since: str

    @property
    def firing(self) -> bool:
        return self.state == ALARM

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "reason": self.reason, "fired_at": self.since}

    def sentence(self) -> str:
        """"alarm shop-5xx is in ALARM since 2026-12-07T13:40:01Z: Threshold Crossed: ..." (one line)."""
        return f"alarm {self.name} is in {self.state} since {self.since}: {self.reason}"


def check_alarm_name(name: str, where: str = "--alarm") -> str:
    """`name` if CloudWatch could name an alarm so (1-255 characters, no control characters), else BadInput."""
    if not isinstance(name, str) or not _NAME.match(name) or not name.strip():
        raise BadInput(f"{where}: {name!r} is not a CloudWatch alarm name",
                       "give the alarm's name as CloudWatch shows it (1-255 characters)")
    return name


def alarm_names(configured: Any, env: str, extra: Iterable[str] = (), where: str = "alarms") -> tuple[str, ...]:
    """The alarms that gate a release to `env`: `[apps.<app>] alarms` (a list for every environment, `{env}` standing
    for the environment's name; or a table of lists by environment, with `default` for the others) plus the
    `--alarm` names `extra`; in order, each once. BadInput names a malformed setting."""
    names: list[str] = []
    if configured is None:
        listed: Any = []
    elif isinstance(configured, Mapping):
        listed = configured.get(env, configured.get("default", []))
        where = f"{where}.{env if env in configured else 'default'}"
    else:
        listed = configured
    if not isinstance(listed, (list, tuple)):
        raise BadInput(f"{where} must be a list of CloudWatch alarm names",
                       'write alarms = ["shop-{env}-5xx"] or a table by environment: [apps.<app>.alarms] prod = [...]')
    for name in [*(str(n).replace("{env}", env) if isinstance(n, str) else n for n in listed), *extra]:
        name = check_alarm_name(name, where)
        if name not in names:
            names.append(name)
    return tuple(names)


def check_alarms_setting(configured: Any, where: str) -> None:
    """Bad config (BadInput) unless `configured` is a list of names or a table of lists of names."""
    tables = configured.values() if isinstance(configured, Mapping) else [configured]
    for value in tables:
        alarm_names(value, "env", where=where)


def parse_alarms(response: Mapping[str, Any]) -> dict[str, AlarmState]:
    """Alarm name -> AlarmState from one DescribeAlarms answer (MetricAlarms and CompositeAlarms)."""
    out: dict[str, AlarmState] = {}
    for alarm in [*(response.get("MetricAlarms") or []), *(response.get("CompositeAlarms") or [])]:
        name = str(alarm.get("AlarmName", ""))
        when = alarm.get("StateTransitionedTimestamp") or alarm.get("StateUpdatedTimestamp")
        reason = " ".join(str(alarm.get("StateReason") or "").split())
        out[name] = AlarmState(name, str(alarm.get("StateValue") or "INSUFFICIENT_DATA"), reason, _iso(when))
    return out


def missing(names: Iterable[str], found: Mapping[str, AlarmState]) -> list[str]:
    return [n for n in names if n not in found]


def firing(names: Iterable[str], found: Mapping[str, AlarmState]) -> list[AlarmState]:
    """The alarms of `names` in state ALARM, in the order given."""
    return [found[n] for n in names if n in found and found[n].firing]


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(value or "?")


# -- the shell ----------------------------------------------------------------------------------------------------
def cloudwatch_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    from tfreview import aws

    return aws.client("cloudwatch", endpoint_url=endpoint_url, region=region)


def describe_alarms(cloudwatch: Any, names: Iterable[str]) -> dict[str, AlarmState]:
    """The current state of each named alarm that exists (name -> AlarmState): DescribeAlarms, 100 names a call."""
    from tfreview.aws import translated

    wanted = list(names)
    out: dict[str, AlarmState] = {}
    for i in range(0, len(wanted), MAX_NAMES_PER_CALL):
        batch = wanted[i:i + MAX_NAMES_PER_CALL]
        token = None
        while True:
            kwargs: dict[str, Any] = {"AlarmNames": batch, "AlarmTypes": ["CompositeAlarm", "MetricAlarm"]}
            if token:
                kwargs["NextToken"] = token
            with translated("cloudwatch:DescribeAlarms", resource=", ".join(batch)[:200]):
                response = cloudwatch.describe_alarms(**kwargs)
            out.update(parse_alarms(response))
            token = response.get("NextToken")
            if not token:
                break
    return out
