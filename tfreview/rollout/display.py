"""Rich renderables for a rollout being watched: a live status panel and coloured log lines.

The renderables know nothing about where they are printed. `LiveRollout` is the small imperative piece that plugs
them into `watch_deployment(on_event=..., on_poll=...)`: on a terminal the panel stays at the bottom while log lines
scroll above it; elsewhere (CI, pipes, NO_COLOR logs) only the log lines are printed.
"""
from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from tfreview.console import SafeConsole
from tfreview.rollout.watch import FAILED, SUCCEEDED, Assessment, LogLine, Observation, short_td

_KIND_STYLE = {"deploy": "bold cyan", "task": "cyan", "target": "magenta", "event": "dim", "error": "yellow",
               "reason": "bold red"}
_STATE_STYLE = {"COMPLETED": "green", "IN_PROGRESS": "yellow", "FAILED": "bold red"}
_HEALTH_STYLE = {"healthy": "green", "initial": "yellow", "unhealthy": "bold red", "draining": "dim",
                 "unused": "dim", "unavailable": "red"}


def log_line(line: LogLine) -> Text:
    """One rollout log line, coloured by kind; the final result line green (succeeded) or red (failed)."""
    style = _KIND_STYLE.get(line.kind, "")
    if line.kind == "result":
        style = "bold green" if line.text.startswith(SUCCEEDED.upper()) else "bold red"
    text = Text(f"{line.at_s:6.1f}s  ", style="dim")
    text.append(f"{line.kind:<6}  ", style=style)
    text.append(line.text, style=style if line.kind in ("result", "error", "reason") else "")
    return text


def rollout_panel(obs: Observation, assessment: Assessment, elapsed_s: float | None = None) -> RenderableType:
    """The state of one service's rollout: its deployments, its targets' health, and the verdict so far
    (`elapsed_s`: seconds since the watch began)."""
    table = Table(title=f"{obs.service or 'service'}", title_justify="left", expand=False, box=None,
                  pad_edge=False, header_style="bold")
    for column in ("deployment", "status", "task definition", "rollout", "running", "pending", "failed"):
        table.add_column(column, justify="right" if column in ("running", "pending", "failed") else "left")
    for d in obs.deployments:
        state = d.rollout_state or "-"
        table.add_row(d.id, d.status, short_td(d.task_definition), Text(state, style=_STATE_STYLE.get(state, "")),
                      f"{d.running}/{d.desired}", str(d.pending), str(d.failed_tasks) if d.failed_tasks else "")
    parts: list[RenderableType] = [table]
    if obs.targets is not None:
        health = Text("targets: ")
        if not obs.targets:
            health.append("none registered", style="dim")
        for i, t in enumerate(obs.targets):
            if i:
                health.append("  ")
            health.append(f"{t.key} ")
            health.append(t.state, style=_HEALTH_STYLE.get(t.state, ""))
        parts.append(health)
    style = {SUCCEEDED: "bold green", FAILED: "bold red"}.get(assessment.state, "yellow")
    verdict = Text(f"{assessment.state.replace('_', ' ')}", style=style)
    verdict.append(f": {assessment.reason}", style="")
    if elapsed_s is not None:
        verdict.append(f"  ({elapsed_s:.0f} s)", style="dim")
    parts.append(verdict)
    return Group(*parts)


class LiveRollout:
    """Context manager giving `on_event` / `on_poll` callbacks for `watch_deployment` that draw on `console`."""

    def __init__(self, console: Console | None = None, live: bool | None = None) -> None:
        self.console = console or SafeConsole()
        self._use_live = self.console.is_terminal if live is None else live
        self._live: Any = None
        self._started: float | None = None

    def __enter__(self) -> "LiveRollout":
        if self._use_live:
            import time

            from rich.live import Live

            self._started = time.monotonic()
            self._live = Live(Text("waiting for the first poll...", style="dim"), console=self.console,
                              refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def on_event(self, line: LogLine) -> None:
        self.console.print(log_line(line), soft_wrap=True)

    def on_poll(self, obs: Observation, assessment: Assessment) -> None:
        if self._live is not None:
            import time

            elapsed = time.monotonic() - self._started if self._started is not None else None
            self._live.update(rollout_panel(obs, assessment, elapsed))
