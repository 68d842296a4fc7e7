"""HTML renderer: one self-contained file (inline CSS, no script, no network), readable on screen and on paper."""
from __future__ import annotations

from html import escape
from typing import Sequence

from tfreview.plan.review import Review
from tfreview.render.lines import Line, node_lines, resource_lines, select, summary_lines

_CSS = """
:root { --add:#1a7f37; --del:#cf222e; --upd:#9a6700; --muted:#57606a; --bg:#f6f8fa; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 70rem;
       padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; } h2 { font-size: 1.15rem; margin-top: 1.8rem; border-bottom: 1px solid #d0d7de; }
.summary { background: var(--bg); border: 1px solid #d0d7de; border-radius: 6px; padding: .75rem 1rem; }
.summary .counts { font-size: 1.1rem; font-weight: 600; }
.kind { font-weight: 600; } .kind-unsafe { color: var(--del); } .kind-infrastructure { color: var(--upd); }
.kind-deploy-to-idle, .kind-rolling-deploy, .kind-no-changes { color: var(--add); }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #eaeef2; vertical-align: top; }
.level-critical, .level-high { color: var(--del); font-weight: 600; } .level-medium { color: var(--upd); } .level-low, .level-info { color: var(--muted); }
.ecs li { margin-bottom: .4rem; } .flag { color: var(--upd); } .svc { color: var(--muted); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre.diff { background: var(--bg); border: 1px solid #d0d7de; border-radius: 6px; padding: .5rem .75rem; overflow-x: auto;
           white-space: pre-wrap; word-break: break-all; }
.create { color: var(--add); } .delete { color: var(--del); } .update { color: var(--upd); }
.replace, .replace-create-first, .replace-forget { color: #8250df; font-weight: 600; } .note, .header { color: var(--muted); }
.resource h3 { font-size: .95rem; font-family: ui-monospace, monospace; margin: 1rem 0 .25rem; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  pre.diff { white-space: pre-wrap; border: none; background: none; page-break-inside: auto; }
  .resource { page-break-inside: avoid; } h2 { page-break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def _diff_html(lines: list[Line]) -> str:
    out = []
    for line in lines:
        indent = "    " * line.depth
        if line.style == "header":
            out.append(f'<span class="header">  {indent}{escape(line.text)}</span>')
        else:
            out.append(f'<span class="{escape(line.style)}">{indent}{escape(line.symbol):>3} {escape(line.text)}</span>')
    return "\n".join(out)


def render_html(
    review: Review,
    *,
    full: bool = False,
    actions: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    addresses: Sequence[str] | None = None,
    title: str = "Terraform plan review",
) -> str:
    """The review as one standalone HTML document (UTF-8, no external resources)."""
    summary = summary_lines(review)
    c = review.classification
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        '<section class="summary" id="summary">',
        f'<div class="counts">{escape(summary[0])}</div>',
    ]
    for line in summary[1:]:
        if line.startswith("Release kind"):
            parts.append(f'<div class="kind kind-{escape(c.kind)}">{escape(line)}</div>')
        else:
            parts.append(f"<div>{escape(line)}</div>")
    if c.reasons:
        parts.append("<ul>" + "".join(f"<li>{escape(r)}</li>" for r in c.reasons[:8]) + "</ul>")
    meta = f"Terraform {review.terraform_version or 'unknown'} · plan format {review.format_version}"
    if review.timestamp:
        meta += f" · planned {review.timestamp}"
    parts.append(f'<div class="note">{escape(meta)}</div></section>')
    if review.risks:
        parts.append(f'<h2 id="risks">Risks ({len(review.risks)})</h2><table><thead><tr><th>Level</th><th>Resource</th><th>Why</th></tr></thead><tbody>')
        for flag in review.risks:
            parts.append(
                f'<tr><td class="level-{escape(flag.level)}">{escape(flag.level)}</td>'
                f"<td><code>{escape(flag.address)}</code></td><td>{escape(flag.reason)}</td></tr>"
            )
        parts.append("</tbody></table>")
    if review.ecs:
        parts.append('<h2 id="ecs">ECS revisions</h2><ul class="ecs">')
        for story in review.ecs:
            item = f'<li><strong>{escape(story.family)}</strong>{escape(story.revision_note)}: <span class="verdict">{escape(story.verdict)}</span>'
            extra = [f'<li class="flag">⚠ {escape(f)}</li>' for f in story.flags]
            extra += [f'<li class="svc">→ <code>{escape(s.address)}</code>: {escape(s.triggers)}</li>' for s in story.services]
            if extra:
                item += "<ul>" + "".join(extra) + "</ul>"
            parts.append(item + "</li>")
        parts.append("</ul>")
    failing = review.failing_checks
    if failing:
        parts.append('<h2 id="checks">Failing checks</h2><ul>')
        for check in failing:
            parts.append(f"<li><code>{escape(check.address)}</code>: {escape(check.status)} {escape('; '.join(check.problems))}</li>")
        parts.append("</ul>")
    if review.deferred:
        parts.append('<h2 id="deferred">Deferred changes</h2><ul>')
        parts.extend(f"<li><code>{escape(a)}</code>: {escape(r)}</li>" for a, r in review.deferred)
        parts.append("</ul>")
    if review.drift:
        parts.append('<h2 id="drift">Changed outside of Terraform (drift)</h2>')
        for res in review.drift:
            parts.append(_resource_section(res, full))
    chosen = select(review, actions=actions, types=types, addresses=addresses)
    if chosen:
        parts.append(f'<h2 id="resources">Resource changes ({len(chosen)})</h2>')
        for res in chosen:
            parts.append(_resource_section(res, full))
    outputs = review.changed_outputs
    if outputs:
        parts.append('<h2 id="outputs">Changes to outputs</h2><pre class="diff">')
        parts.append("\n".join(_diff_html(node_lines(o.tree, key=o.name, full=full)) for o in outputs))
        parts.append("</pre>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _resource_section(res, full: bool) -> str:
    lines = resource_lines(res, full=full)  # lines[0] is the headline
    return (
        f'<section class="resource"><h3 class="{escape(res.action)}">{escape(lines[0].text)}</h3>'
        f'<pre class="diff">{_diff_html(lines[1:])}</pre></section>'
    )
