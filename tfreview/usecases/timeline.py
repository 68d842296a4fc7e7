"""The release in a report: rollout, traffic steps and timeline, and the charts drawn from them (pure over the
stored rollout record); the signature fields a reader checks with stock OpenSSH.
"""
from __future__ import annotations

from typing import Any


def md_cell(value: Any) -> str:
    from tfreview.render.markdown import md_text

    return md_text(str("" if value is None else value))


# -- the release: rollout, traffic steps, timeline (pure over the stored rollout record) ----------------------------
COLOUR_INK = {"blue": "#1f5fbf", "green": "#2e8b3a", "main": "#444"}
_SIGNATURE = ("sig", "key", "signer", "fingerprint", "namespace", "statement")


def signature_fields(decision: dict[str, Any]) -> dict[str, Any]:
    """Whatever signature fields an approval record carries (signature, key, signer...), named as stored."""
    return {k: v for k, v in sorted(decision.items()) if any(word in k.lower() for word in _SIGNATURE)}


def _seconds(start: str, at: str | None) -> float:
    from tfreview.review.policy import parse_time

    try:
        return max(0.0, (parse_time(at or start) - parse_time(start)).total_seconds())
    except (TypeError, ValueError):
        return 0.0


def release_timeline(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The release as rows in time order: `t` seconds since it started, `event`, `kind` (watch, shift, rollback,
    verify, bake, alarm (when it fired), failure, outcome), the production `weights` and each colour's `tasks` (desired, running, healthy)
    as known at that moment."""
    start = doc.get("started_at") or doc.get("finished_at") or ""
    weights = dict(doc.get("weights_before") or {})
    tasks: dict[str, dict[str, int]] = {}
    events: list[tuple[str, int, dict[str, Any]]] = []
    for i, step in enumerate(doc.get("steps") or []):
        kind = step.get("step")
        if kind == "watch":
            colour = step.get("colour", "?")
            for sample in step.get("samples") or []:
                events.append((sample["at"], i, {"kind": "watch", "colour": colour, "sample": sample,
                                                  "event": f"{colour}: {sample.get('state', '-')}"}))
            if not step.get("ok"):
                last = (step.get("samples") or [{}])[-1].get("at") or step.get("at") or start
                events.append((last, i, {"kind": "failure", "event": f"{colour} failed: {step.get('reason', '')}"}))
        elif kind in ("shift", "rollback"):
            events.append((step.get("at") or start, i, {"kind": kind, "weights": step.get("weights"),
                                                        "event": step.get("what") or kind}))
        elif kind == "verify":
            ok = step.get("exit_code") == 0
            events.append((step.get("at") or start, i, {"kind": "verify" if ok else "failure",
                                                         "event": f"verify-cmd exited {step.get('exit_code')}"}))
        elif kind == "alarm":  # marked when it fired (it may have fired before tfreview looked)
            events.append((step.get("fired_at") or step.get("at") or start, i,
                           {"kind": "alarm", "event": f"alarm {step.get('name')} in ALARM: {step.get('reason', '')}"}))
        elif kind == "bake":
            what = "healthy" if step.get("healthy") else f"NOT healthy: {step.get('reason', '')}"
            events.append((step.get("at") or start, i, {"kind": "bake" if step.get("healthy") else "failure",
                                                        "event": f"bake {step.get('bake_s', 0):g} s at "
                                                                 f"{step.get('percent')}%: {what}"}))
    events.sort(key=lambda e: (e[0], e[1]))
    rows = []
    for at, _i, ev in events:
        if ev.get("sample"):
            s = ev["sample"]
            tasks[ev["colour"]] = {"desired": s.get("desired", 0), "running": s.get("running", 0),
                                   "healthy": s.get("healthy", 0)}
        if ev.get("weights"):
            weights = dict(ev["weights"])
        rows.append({"at": at, "t": round(_seconds(start, at), 3), "kind": ev["kind"], "event": ev["event"],
                     "weights": dict(weights), "tasks": {c: dict(v) for c, v in tasks.items()}})
    end = doc.get("finished_at") or (rows[-1]["at"] if rows else start)
    rows.append({"at": end, "t": round(max(_seconds(start, end), rows[-1]["t"] if rows else 0.0), 3),
                 "kind": "outcome", "event": f"release {doc.get('outcome')}" + (f": {doc['reason']}"
                                                                                 if doc.get("reason") else ""),
                 "weights": dict(weights), "tasks": {c: dict(v) for c, v in tasks.items()}})
    return rows


def _marks(rows: list[dict[str, Any]]) -> tuple[Any, ...]:
    from tfreview.render.charts import Mark

    kinds = {"shift": "shift", "rollback": "rollback", "failure": "failure", "verify": "verify", "alarm": "alarm"}
    return tuple(Mark(r["t"], kinds[r["kind"]], r["event"]) for r in rows if r["kind"] in kinds)


def _step_points(rows: list[dict[str, Any]], value: Any, *, from_zero: bool = False) -> tuple[tuple[float, float], ...]:
    """(t, value(row)) at each row where the value changes; the first at t=0 with `from_zero`."""
    points: list[tuple[float, float]] = []
    for r in rows:
        v = float(value(r))
        if not points or points[-1][1] != v:
            points.append((0.0 if from_zero and not points else r["t"], v))
    return tuple(points)


def release_charts(rows: list[dict[str, Any]]) -> list[str]:
    """SVG charts of a release timeline: production traffic per colour, then each watched colour's tasks."""
    from tfreview.render.charts import Series, step_chart

    if not rows:
        return []
    end = rows[-1]["t"]
    marks = _marks(rows)
    colours = sorted({c for r in rows for c in r["weights"]} | {c for r in rows for c in r["tasks"]})
    charts = []
    traffic = []
    for colour in sorted({c for r in rows for c in r["weights"]}):
        points = _step_points(rows, lambda r, c=colour: r["weights"].get(c, 0), from_zero=True)
        traffic.append(Series(colour, COLOUR_INK.get(colour, "#444"), points))
    if traffic:
        charts.append(step_chart("Production traffic per colour (%)", traffic, end=end, y_max=100, y_unit="%",
                                 marks=marks))
    for colour in colours:
        samples = [r for r in rows if colour in r["tasks"]]
        if not samples:
            continue
        top = max(max(r["tasks"][colour].values()) for r in samples)
        series = []
        for field, dash in (("desired", "6 3"), ("running", ""), ("healthy", "2 2")):
            points = _step_points(samples, lambda r, c=colour, f=field: r["tasks"][c][f])
            series.append(Series(f"{field}", {"desired": "#888", "running": COLOUR_INK.get(colour, "#444"),
                                              "healthy": "#2a2"}[field], points, dash))
        charts.append(step_chart(f"{colour}: deployment tasks (desired, running, healthy)", series, end=end,
                                 y_max=max(top, 1), marks=marks))
    return charts


def timeline_table(rows: list[dict[str, Any]]) -> list[str]:
    """The timeline as a compact Markdown table (one row per moment that changed something)."""
    weights = sorted({c for r in rows for c in r["weights"]})
    colours = sorted({c for r in rows for c in r["tasks"]})
    head = ["+s", "event"] + [f"{c} %" for c in weights] + [f"{c} tasks d/r/h" for c in colours]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r['t']:.1f}", md_cell(r["event"])] + [str(r["weights"].get(c, "")) for c in weights]
        cells += ["/".join(str(r["tasks"][c][k]) for k in ("desired", "running", "healthy")) if c in r["tasks"]
                  else "" for c in colours]
        out.append("| " + " | ".join(cells) + " |")
    return out
