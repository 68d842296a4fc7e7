"""The `[notify]` table of tfreview.toml, read and checked into plain Targets (a base module: settings hold
them; tfreview.usecases.notify sends with them). URLs never live in the file: `urls_env` names the variable.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tfreview.errors import BadInput


EVENTS = ("plan-needs-approval", "approved", "rejected", "apply-started", "release-succeeded", "release-failed",
          "break-glass", "policy-proposed", "policy-activated")
ALWAYS = frozenset({"break-glass"})  # sent whatever a target's `events` say
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 30.0
_KEYS = ("urls_env", "events", "timeout_s")
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


@dataclass(frozen=True)
class Target:
    """One configured destination: `name` is the [notify.<name>] table (an environment or "default")."""

    name: str
    urls_env: str
    events: frozenset[str]
    timeout_s: float = DEFAULT_TIMEOUT_S

    def wants(self, event: str) -> bool:
        return event in ALWAYS or event in self.events


def parse_config(table: Any, where: str) -> dict[str, Target]:
    """The `[notify]` table of tfreview.toml as Targets by name; BadInput (exit 2) for anything else, and for a
    URL written in the file (URLs hold tokens: they come from the variable `urls_env` names)."""
    import difflib

    if table is None:
        return {}
    if not isinstance(table, dict):
        raise BadInput(f"{where}: notify must be a table ([notify.<env>])", "see docs/notifications.md")
    out = {}
    for name, body in table.items():
        at = f"{where}: [notify.{name}]"
        if not isinstance(body, dict):
            raise BadInput(f"{at} must be a table", 'write [notify.<env>] with urls_env = "VARIABLE"')
        for key in body:
            if key in ("url", "urls"):
                raise BadInput(f"{at} has {key!r}: notification URLs carry tokens and never live in a file",
                               'put them in an environment variable and name it: urls_env = "TFREVIEW_NOTIFY_..."')
            if key not in _KEYS:
                close = difflib.get_close_matches(key, _KEYS, n=1)
                raise BadInput(f"{at}: unknown key {key!r}",
                               f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(_KEYS)}")
        urls_env = body.get("urls_env")
        if not isinstance(urls_env, str) or not _ENV_VAR.fullmatch(urls_env):
            raise BadInput(f"{at}: urls_env must name an environment variable",
                           'e.g. urls_env = "TFREVIEW_NOTIFY_PROD" (letters, digits and _)')
        events = body.get("events", list(EVENTS))
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise BadInput(f"{at}: events must be a list of event names", f"known events: {', '.join(EVENTS)}")
        for event in events:
            if event not in EVENTS:
                close = difflib.get_close_matches(event, EVENTS, n=1)
                raise BadInput(f"{at}: unknown event {event!r}",
                               f"did you mean {close[0]!r}?" if close else f"known events: {', '.join(EVENTS)}")
        timeout = body.get("timeout_s", DEFAULT_TIMEOUT_S)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT_S:
            raise BadInput(f"{at}: timeout_s must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}",
                           "a few seconds: a notification never holds up a release")
        out[name] = Target(name, urls_env, frozenset(events), float(timeout))
    return out
