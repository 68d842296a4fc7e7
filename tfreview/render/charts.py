"""Step charts as inline SVG: data in, an SVG string out (pure; no script, no fonts or images to fetch).

Used by the release report: the production traffic weight per colour over time, and each colour's deployment
timeline (desired, running, healthy tasks) with the moments of traffic shifts, failures and rollbacks marked.
Every value is held until the next one (a step line: `M x y H x V y H x ...`, one `H` per point), which is how
weights and task counts really change. All text is escaped; colours are fixed, so the chart prints in grey too
(each series also has its own dash pattern).
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 28, 30
MARK_STYLES = {"shift": "#555", "failure": "#c00", "rollback": "#c60", "verify": "#06c", "alarm": "#d0a"}


@dataclass(frozen=True)
class Series:
    """One line: `points` are (seconds since the start, value), in time order; the value holds until the next."""

    name: str
    colour: str
    points: tuple[tuple[float, float], ...]
    dash: str = ""


@dataclass(frozen=True)
class Mark:
    """A moment worth seeing: `kind` is shift, failure, rollback, verify or alarm; `label` says what happened."""

    at: float
    kind: str
    label: str


def step_chart(title: str, series: list[Series], *, end: float, y_max: float, y_unit: str = "",
               marks: tuple[Mark, ...] = ()) -> str:
    """An SVG step chart of `series` from 0 to `end` seconds, values 0..`y_max`, with vertical `marks`."""
    end = max(end, max((p[0] for s in series for p in s.points), default=0.0), 1e-9)
    y_max = max(y_max, 1e-9)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return round(LEFT + plot_w * min(max(t, 0.0), end) / end, 1)

    def y(v: float) -> float:
        return round(TOP + plot_h * (1 - min(max(v, 0.0), y_max) / y_max), 1)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'width="{WIDTH}" height="{HEIGHT}" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>",
           f'<text x="{LEFT}" y="16" font-size="13" font-family="sans-serif">{escape(title)}</text>',
           f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#888"/>',
           f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#888"/>']
    for v in (0, y_max / 2, y_max):
        label = f"{v:g}{y_unit}"
        out.append(f'<text x="{LEFT - 4}" y="{y(v) + 4}" font-size="10" text-anchor="end" '
                   f'font-family="sans-serif">{escape(label)}</text>')
    for t in (0, end / 2, end):
        out.append(f'<text x="{x(t)}" y="{HEIGHT - 12}" font-size="10" text-anchor="middle" '
                   f'font-family="sans-serif">{t:.0f} s</text>')
    for mark in marks:
        colour = MARK_STYLES.get(mark.kind, "#555")
        out.append(f'<g class="mark {escape(mark.kind)}"><title>{escape(mark.label)}</title>'
                   f'<line x1="{x(mark.at)}" y1="{TOP}" x2="{x(mark.at)}" y2="{TOP + plot_h}" stroke="{colour}" '
                   f'stroke-dasharray="2 3"/></g>')
    for i, s in enumerate(series):
        if not s.points:
            continue
        (t0, v0), rest = s.points[0], s.points[1:]
        d = [f"M{x(t0)} {y(v0)}"]
        for t, v in rest:
            d.append(f"H{x(t)} V{y(v)}")
        d.append(f"H{x(end)}")
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        out.append(f'<path class="series" data-series="{escape(s.name)}" data-steps="{len(s.points)}" '
                   f'd="{" ".join(d)}" fill="none" stroke="{escape(s.colour)}" stroke-width="2"{dash}>'
                   f"<title>{escape(s.name)}</title></path>")
        out.append(f'<text x="{WIDTH - RIGHT - i * 110}" y="16" font-size="11" text-anchor="end" '
                   f'font-family="sans-serif" fill="{escape(s.colour)}">{escape(s.name)}</text>')
    out.append("</svg>")
    return "".join(out)
