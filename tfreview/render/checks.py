"""The "Policy checks" section of a review (the plan record's `policy_checks`), in every format.

A blocked plan's review opens with "Blocked by policy" and the blocking messages; warnings follow under
"Policy warnings". Messages come from the policy's rules, scrubbed of the plan's secrets when the plan was made;
here they are still untrusted text: control characters are made visible (text), Markdown is escaped, HTML is
escaped.
"""
from __future__ import annotations

import html
import json
from typing import Any, Mapping

from tfreview.review.checks import blocking_lines, warning_lines
from tfreview.review.rego_approvals import demand_lines, demands_of
from tfreview.text import visible


def approval_lines(checks: Mapping[str, Any] | None) -> list[str]:
    """What the policy's Rego `approvals` rules demand of this plan, one line each (untrusted text)."""
    return [f"approvals: {line}" for line in demand_lines(demands_of(checks))]


def approve_lines(checks: Mapping[str, Any] | None, approved_by: list[str]) -> list[str]:
    """For `approve`: what the Rego `approvals` rules demand, and which `from` demand the approvers so far
    (`approved_by`) do not meet yet."""
    from tfreview.review.rego_approvals import from_phrase, unmet_from

    demands = demands_of(checks)
    return ([f"  {visible(m, keep_lines=False)}" for m in approval_lines(checks)]
            + [f"  still needed: {visible(f'{from_phrase(d)} ({d.why()})', keep_lines=False)}"
               for d in unmet_from(demands, approved_by)])


def still_needed(checks: Mapping[str, Any] | None, plan_id: str, approved_by: list[str]) -> list[str]:
    """After an approval: the `from` demands of the Rego `approvals` rules that the approvers so far
    (`approved_by`) do not meet yet (a hint: `apply` counts only verified, eligible, live approvals)."""
    from tfreview.review.rego_approvals import from_phrase, unmet_from

    return [visible(f"plan {plan_id} still needs {from_phrase(d)} ({d.why()})", keep_lines=False)
            for d in unmet_from(demands_of(checks), approved_by)]


def module_names(checks: Mapping[str, Any]) -> str:
    """`policy/iam.rego (sha256 0123456789ab), ...`: the modules that judged the plan."""
    mods = [m for m in checks.get("modules") or [] if isinstance(m, Mapping)]
    return ", ".join(f"{m.get('name')} (sha256 {str(m.get('sha256'))[:12]})" for m in mods) or "none"


def _md(text: str) -> str:
    out = visible(text, keep_lines=False).replace("\\", "\\\\")
    for ch in "`*_{}[]<>()#+-!|~":
        out = out.replace(ch, "\\" + ch)
    return out


def text_section(checks: Mapping[str, Any] | None) -> str:
    """Plain text ("" when the plan has no checks)."""
    if not checks:
        return ""
    blocking, warns = blocking_lines(checks), warning_lines(checks)
    head = (f"policy checks: policy version {checks.get('policy_version')}, {len(checks.get('modules') or [])} "
            f"module(s): {visible(module_names(checks), keep_lines=False)}")
    lines = []
    if blocking:
        lines += ["Blocked by policy", *[f"  deny  {visible(m, keep_lines=False)}" for m in blocking]]
    lines += [f"  warn  {visible(m, keep_lines=False)}" for m in warns]
    lines += [f"  {visible(m, keep_lines=False)}" for m in approval_lines(checks)]
    if not blocking:
        lines.append(f"{head}: passed" + (f" with {len(warns)} warning(s)" if warns else ""))
    else:
        lines.append(head)
    return "\n".join(lines) + "\n"


def markdown_section(checks: Mapping[str, Any] | None) -> str:
    if not checks:
        return ""
    blocking, warns = blocking_lines(checks), warning_lines(checks)
    lines = []
    if blocking:
        lines += ["## Blocked by policy", "", *[f"- **deny** {_md(m)}" for m in blocking], ""]
    lines += ["### Policy checks", "",
              f"Policy version {checks.get('policy_version')}: "
              f"{'blocked' if blocking else 'passed'}, {len(warns)} warning(s). Modules: "
              f"{_md(module_names(checks))}.", ""]
    lines += [f"- warn {_md(m)}" for m in warns]
    lines += [f"- {_md(m)}" for m in approval_lines(checks)]
    return "\n".join(lines) + "\n\n"


def html_section(checks: Mapping[str, Any] | None) -> str:
    if not checks:
        return ""
    blocking, warns = blocking_lines(checks), warning_lines(checks)
    parts = ['<section class="policy-checks">']
    if blocking:
        parts.append("<h2>Blocked by policy</h2><ul>" +
                     "".join(f"<li><strong>deny</strong> {html.escape(visible(m, keep_lines=False))}</li>" for m in blocking) + "</ul>")
    parts.append(f"<h3>Policy checks</h3><p>Policy version {html.escape(str(checks.get('policy_version')))}: "
                 f"{'blocked' if blocking else 'passed'}, {len(warns)} warning(s). Modules: "
                 f"{html.escape(visible(module_names(checks), keep_lines=False))}.</p>")
    notes = [f"warn {m}" for m in warns] + approval_lines(checks)
    if notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(visible(m, keep_lines=False))}</li>" for m in notes) + "</ul>")
    parts.append("</section>")
    return "".join(parts)


def with_checks(rendered: str, fmt: str, checks: Mapping[str, Any] | None) -> str:
    """`rendered` (a review in `fmt`) opening with the policy-check section."""
    if not checks:
        return rendered
    if fmt == "markdown":
        return markdown_section(checks) + rendered
    if fmt == "html":
        at = rendered.find("<body>")
        cut = at + len("<body>") if at >= 0 else 0
        return rendered[:cut] + html_section(checks) + rendered[cut:]
    if fmt == "json":
        doc = json.loads(rendered)
        # schema_version 2: the review (1) with the plan's policy checks (issue 22)
        doc = {"policy_checks": {**checks, "blocked": bool(blocking_lines(checks))}, **doc, "schema_version": 2}
        return json.dumps(doc, indent=2, ensure_ascii=False)
    return text_section(checks) + rendered
