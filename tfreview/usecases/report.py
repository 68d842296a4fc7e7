"""The auditor's report of one plan, from the store alone (no terraform, no AWS): what was planned and by whom,
who approved or rejected it, when and with what comment, what was applied, by whom, and the outcome.

`build_report` gathers the records into one JSON-ready document; `render_report` writes it as markdown, html or
json. The diff itself comes from the review engine's renderers (`tfreview.render.render`) when the plan JSON is
in the store; otherwise the report carries the stored summary only. Records never hold sensitive values; the
renderers mask them in the diff.
"""
from __future__ import annotations

import html
import json
import re
from typing import Any

from tfreview.errors import BadInput, NotFound
from tfreview.store.base import Store, get_json
from tfreview.text import json_safe, visible
from tfreview.usecases.timeline import md_cell, release_charts, release_timeline, signature_fields, timeline_table


FORMATS = ("markdown", "html", "json")
REPORT_VERSION = 2  # 2: plan.policy_checks (issue 22: Rego checks, approval rules)


def _maybe(store: Store, key: str) -> dict[str, Any] | None:
    try:
        return get_json(store, key)
    except NotFound:
        return None


def build_report(store: Store, plan_id: str) -> dict[str, Any]:
    """The report document of `plan_id` (documented shape: report_version, plan, approvals, apply, events,
    audit_chain). Raises NotFound for an unknown plan."""
    from tfreview.usecases.records import load_plan

    return _report_doc(store, load_plan(store, plan_id))


def _report_doc(store: Store, record: dict[str, Any], history: Any = None) -> dict[str, Any]:
    from tfreview.store.audit import read_log

    plan_id = record["id"]
    from tfreview.usecases.records import decision_docs

    from tfreview.trust.witness import placed

    decisions = sorted((d for d in decision_docs(store, plan_id) if placed(d, plan_id)),
                       key=lambda d: d.get("approved_at", ""))
    start = _maybe(store, f"applies/{plan_id}/start.json")
    result = _maybe(store, f"applies/{plan_id}/result.json")
    if start is None:
        outcome = "not applied"
    elif result is None:
        outcome = "interrupted (no outcome recorded)"
    else:
        outcome = str(result.get("outcome", "?"))  # a damaged record may hold anything
    entries, chain = read_log(store)
    events = [e for e in entries if e.get("plan_id") == plan_id]
    from tfreview.trust.verify import report_statements

    signed = report_statements(store, record, decisions, events, history)
    plan = {k: record.get(k) for k in ("id", "app", "env", "version", "plan_kind", "planner", "created_at",
                                       "plan_sha256", "package_sha256", "json_sha256", "state_lineage",
                                       "state_serial", "terraform_version", "risky", "risk_reasons", "summary",
                                       "identity", "terraform_options", "policy_checks")}
    apply = None
    if start is not None:
        apply = {"by": start.get("by"), "started_at": start.get("started_at"),
                 "break_glass": start.get("break_glass"),
                 "finished_at": (result or {}).get("finished_at"), "outcome": outcome,
                 "error": (result or {}).get("error"), "rollout": (result or {}).get("rollout"),
                 "unlocked_by": (result or {}).get("unlocked_by")}
    return {
        "report_version": REPORT_VERSION,
        "schema_version": REPORT_VERSION,  # the name every JSON shape uses (docs/cli-json.md)
        "plan": plan,
        "approvals": [{"kind": d.get("kind"), "by": d.get("approver"), "at": d.get("approved_at"),
                       "comment": d.get("comment", ""), "plan_sha256": d.get("plan_sha256"),
                       "bound_to_plan": d.get("plan_sha256") == record.get("plan_sha256"),
                       "signature": signature_fields(d)} for d in decisions],
        "release": _release(store, record),
        "apply": apply,
        "outcome": outcome,
        "break_glass": bool(start and start.get("break_glass")),
        "events": [{"seq": e.get("seq"), "time": e.get("time"), "event": e.get("event"), "actor": e.get("actor"),
                    "hash": e.get("hash")} for e in events],
        "audit_chain": {"ok": chain.ok, "entries": chain.count, "first_bad_seq": chain.first_bad_seq,
                        "reason": chain.reason},
        **signed,
    }


def _release(store: Store, record: dict[str, Any]) -> dict[str, Any] | None:
    """The release this deploy plan started (None for other plans or before it ran): its rollout record, the
    timeline, the traffic plans it applied, and a rollback that followed it (a later `tfreview rollback` of the same
    app/env before the next deploy)."""
    if record.get("plan_kind", "deploy") != "deploy":
        return None
    doc = _maybe(store, f"rollouts/{record['app']}/{record['env']}/{record['id']}.json")
    if doc is None:
        return None
    from tfreview.usecases.history import APP, CREATED, ENV, ID, RELEASE, load_rows, row

    app, env, since = record["app"].encode(), record["env"].encode(), (doc.get("finished_at") or "").encode()
    later = sorted((row(r) for r in load_rows(store).values() if r[APP] == app and r[ENV] == env
                    and r[CREATED] >= since and r[ID] != record["id"].encode() and not r[RELEASE]),
                   key=lambda r: r["created_at"])
    followed = None
    for r in later:
        if r["kind"] == "rollback":
            followed = {"plan_id": r["id"], "by": r["applied_by"] or r["planner"], "at": r["created_at"],
                        "outcome": r["outcome"]}
        if r["kind"] in ("deploy", "rollback"):
            break
    return {"outcome": doc.get("outcome"), "reason": doc.get("reason") or "", "by": doc.get("by"),
            "started_at": doc.get("started_at"), "finished_at": doc.get("finished_at"),
            "live_color": doc.get("live_color"), "watched": doc.get("watched"), "alarms": doc.get("alarms") or [],
            "alarm": doc.get("alarm"), "stopped_tasks": doc.get("stopped_tasks") or [],
            "steps": doc.get("steps") or [], "timeline": release_timeline(doc), "rollback_after": followed,
            "traffic_checks": _traffic_checks(store, doc.get("steps") or [])}


def _traffic_checks(store: Store, steps: list[Any]) -> list[dict[str, Any]]:
    """The policy-check results of the traffic plans a release applied (`[{plan_id, what, policy_checks}]`, only
    those whose record has checks): judged and recorded like any plan (docs/policy-as-code.md)."""
    from tfreview.usecases.records import load_plan

    out = []
    for step in steps:
        plan_id = step.get("plan_id") if isinstance(step, dict) else None
        if not isinstance(plan_id, str):
            continue
        try:
            checks = load_plan(store, plan_id).get("policy_checks")
        except (NotFound, BadInput):
            continue
        if checks:
            out.append({"plan_id": plan_id, "what": step.get("what"), "policy_checks": checks})
    return out


def _diff(store: Store, record: dict[str, Any], fmt: str) -> str | None:
    """The review engine's rendering of the plan diff in `fmt`, or None when the plan JSON is not in the store.
    PolicyRefusal when the stored JSON is not the one the plan record binds."""
    from tfreview.render import render
    from tfreview.usecases.records import load_review

    try:
        return str(render(load_review(store, record), fmt))
    except NotFound:
        return None


def render_report(store: Store, plan_id: str, fmt: str = "markdown", history: Any = None) -> str:
    """The report of `plan_id` as markdown, html or json text (json: the `build_report` document plus `diff`);
    signatures are checked against `history` (the store's policy versions when None)."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown report format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    from tfreview.usecases.records import load_plan

    record = load_plan(store, plan_id)
    doc = _report_doc(store, record, history)
    diff = _diff(store, record, fmt)  # the whole record: its roles and terraform options shape the review
    if fmt == "json":
        if diff is not None:
            try:
                doc["diff"] = json.loads(diff)
            except ValueError:
                doc["diff"] = diff
        return json_safe(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)) + "\n"
    return visible(_markdown(doc, diff) if fmt == "markdown" else _html(doc, diff))


def _facts_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    p = doc["plan"]
    summary = (p.get("summary") or {}).get("summary_line") or ""
    return [("App / env / version", f"{p['app']} / {p['env']} / {p['version']}"),
            ("Planned by", f"{p['planner']} at {p['created_at']}"),
            ("Plan sha256", p.get("plan_sha256") or ""), ("Package sha256", p.get("package_sha256") or ""),
            ("State", f"lineage {p.get('state_lineage') or '(none)'}, serial {p.get('state_serial')}"),
            ("Terraform", p.get("terraform_version") or ""), ("Changes", summary),
            ("Risk", "; ".join(map(str, _as_list(p.get("risk_reasons")))) or "none flagged"),
            ("Outcome", doc["outcome"] + (" (BREAK-GLASS)" if doc["break_glass"] else ""))]


def _as_list(value: Any) -> list[Any]:
    """A list field of a record as a list (a damaged record may hold anything else: shown as one item)."""
    return value if isinstance(value, list) else ([] if value is None else [value])


def _title(doc: dict[str, Any]) -> str:
    """"Release APP VERSION to ENV (plan ID)" for a deploy that ran, else "Plan ID" (untrusted: escape it)."""
    p = doc["plan"]
    if doc.get("release"):
        return f"Release {p.get('app')} {p.get('version')} to {p.get('env')} (plan {p['id']})"
    return f"Plan {p['id']}"


def _markdown(doc: dict[str, Any], diff: str | None) -> str:
    out = [f"# {md_cell(_title(doc))}", ""]
    if doc["break_glass"]:
        out += [f"> **BREAK-GLASS apply** by {md_cell(doc['apply']['by'])}: {md_cell(doc['apply']['break_glass'])}",
                ""]
    from tfreview.render.checks import markdown_section

    checks = markdown_section(doc["plan"].get("policy_checks"))
    out += [checks] if checks else []
    out += ["| | |", "|---|---|"] + [f"| {k} | {md_cell(v)} |" for k, v in _facts_rows(doc)] + [""]
    out += ["## Approvals", ""]
    if doc["approvals"]:
        out += ["| Decision | By | At | Comment | Bound to this plan | Signature |", "|---|---|---|---|---|---|"]
        out += [f"| {md_cell(a['kind'])} | {md_cell(a['by'])} | {md_cell(a['at'])} | {md_cell(a['comment'])} | "
                f"{'yes' if a['bound_to_plan'] else 'NO'} | {md_cell(_signed(a))} |" for a in doc["approvals"]]
    else:
        out.append("None.")
    out += ["", "## Apply", ""]
    a = doc["apply"]
    if a is None:
        out.append("Not applied.")
    else:
        out.append(f"Started by {md_cell(a['by'])} at {md_cell(a['started_at'])}; finished "
                   f"{md_cell(a['finished_at'] or '(never)')}: **{md_cell(doc['outcome'])}**.")
        if a.get("error"):
            out.append(f"\nError: {md_cell(a['error'])}")
        if a.get("unlocked_by"):
            out.append(f"\nLock released by {md_cell(a['unlocked_by'])}.")
    out += _md_release(doc.get("release"))
    out += ["", "## Audit trail", ""]
    out += [f"- #{e['seq']} {md_cell(e['time'])} {md_cell(e['event'])} by {md_cell(e['actor'])}"
            for e in doc["events"]] or ["None."]
    chain = doc["audit_chain"]
    out += ["", f"Audit chain: {'intact' if chain['ok'] else 'BROKEN at entry ' + str(chain['first_bad_seq'])} "
                f"({chain['entries']} entries)."]
    out += ["", "## Signatures", "", "| Statement | Signed by | Key | Verified |", "|---|---|---|---|"]
    out += [f"| {md_cell(x['what'])} | {md_cell(x['principal'])} | {md_cell(x['key'])} | {x['verified']} |"
            for x in doc["statements"]]
    out += ["", "Check one with stock OpenSSH (statement and signature from `tfreview report --format json`): "
                "`ssh-keygen -Y verify -f allowed_signers -I PRINCIPAL -n tfreview -s SIG < STATEMENT`.", ""]
    for version, lines in sorted(doc["allowed_signers"].items()):
        out += [f"allowed_signers of policy version {version}:", "", "```", lines.rstrip(), "```", ""]
    if diff is not None:
        out += ["", "## Changes", "", diff.rstrip()]
    return "\n".join(out) + "\n"


def _signed(approval: dict[str, Any]) -> str:
    """The approval's signature fields in one cell (long values cut: the JSON report keeps them whole)."""
    sig = approval.get("signature") or {}
    if not sig:
        return "unsigned"
    return "; ".join(f"{k}: {str(v)[:40] + ('…' if len(str(v)) > 40 else '')}" for k, v in sig.items())


def _step_lines(release: dict[str, Any]) -> list[str]:
    """One line per recorded step of a release: what happened, in order."""
    lines = []
    for step in release["steps"]:
        kind = step.get("step")
        if kind == "watch":
            lines.append(f"watch {step.get('colour')} ({step.get('service', '')}): {step.get('state', '?')} in "
                         f"{step.get('duration_s', 0):.1f} s: {step.get('reason', '')}")
        elif kind == "verify":
            lines.append(f"verify `{step.get('command')}`: exit {step.get('exit_code')}")
        elif kind == "bake":
            lines.append(f"bake {step.get('bake_s', 0):g} s at {step.get('percent')}% on {step.get('colour')}: "
                         + ("healthy" if step.get("healthy") else f"NOT healthy: {step.get('reason', '')}"))
        elif kind == "alarm":
            lines.append(alarm_line(step))
        elif kind in ("shift", "rollback"):
            weights = ", ".join(f"{c} {w}%" for c, w in sorted((step.get("weights") or {}).items()))
            lines.append(f"{kind}: {step.get('what')} (plan {step.get('plan_id')}: {step.get('outcome')}"
                         + (f"; {weights}" if weights else "") + ")")
    return lines


def alarm_line(alarm: dict[str, Any]) -> str:
    """"alarm shop-5xx in ALARM since T (at 50% on green): its state reason" (a step, or the release's alarm)."""
    during = f" ({alarm['during']})" if alarm.get("during") else ""
    return (f"alarm {alarm.get('name')} in {alarm.get('state', 'ALARM')} since {alarm.get('fired_at')}{during}: "
            f"{alarm.get('reason', '')}")


def stopped_lines(release: dict[str, Any]) -> list[str]:
    """Why the release's tasks stopped and targets failed: one line per distinct reason, with its count."""
    out = []
    for s in release.get("stopped_tasks") or []:
        if not isinstance(s, dict):
            continue
        what = "task(s) stopped" if s.get("kind") == "task" else "target(s)"
        where = f" ({s['service']})" if s.get("service") else ""
        out.append(f"{s.get('count', 1)} {what}{where}: {s.get('reason', '')}")
    return out


def _md_release(release: dict[str, Any] | None) -> list[str]:
    if release is None:
        return []
    why = f": {release['reason']}" if release.get("reason") else ""
    out = ["", "## Release", "", f"**{md_cell(release['outcome'])}**{md_cell(why)} (run by "
           f"{md_cell(release.get('by'))}, {md_cell(release.get('started_at'))} → "
           f"{md_cell(release.get('finished_at'))})", ""]
    if release.get("alarm"):
        out += [f"**Stopped by an alarm:** {md_cell(alarm_line(release['alarm']))}", ""]
    out += [f"{i}. {md_cell(line)}" for i, line in enumerate(_step_lines(release), 1)]
    stopped = stopped_lines(release)
    if stopped:
        out += ["", "Why tasks stopped:", ""] + [f"- {md_cell(line)}" for line in stopped]
    followed = release.get("rollback_after")
    if followed:
        out += ["", f"Rolled back afterwards: plan {md_cell(followed['plan_id'])} by {md_cell(followed['by'])} "
                    f"at {md_cell(followed['at'])} ({md_cell(followed['outcome'])})."]
    from tfreview.render.checks import markdown_section

    for t in release.get("traffic_checks") or []:
        out += ["", f"Traffic plan {md_cell(t['plan_id'])} ({md_cell(t.get('what'))}):", "",
                markdown_section(t["policy_checks"]).replace("## Blocked by policy", "#### Blocked by policy")
                .replace("### Policy checks", "#### Policy checks").rstrip("\n")]
    out += ["", "### Timeline", ""] + timeline_table(release["timeline"])
    return out


def _html_release(release: dict[str, Any] | None) -> str:
    e = html.escape
    if release is None:
        return ""
    why = f": {release['reason']}" if release.get("reason") else ""
    steps = "".join(f"<li>{e(line)}</li>" for line in _step_lines(release))
    followed = release.get("rollback_after")
    after = (f"<p class=rollback>Rolled back afterwards: plan {e(followed['plan_id'])} by {e(str(followed['by']))} "
             f"at {e(followed['at'])} ({e(str(followed['outcome']))}).</p>" if followed else "")
    charts = "".join(f"<figure>{svg}</figure>" for svg in release_charts(release["timeline"]))
    alarm = (f"<p class=alarm><strong>Stopped by an alarm:</strong> {e(alarm_line(release['alarm']))}</p>"
             if isinstance(release.get("alarm"), dict) else "")
    items = "".join(f"<li>{e(line)}</li>" for line in stopped_lines(release))
    stopped = f"<p>Why tasks stopped:</p><ul class=stopped>{items}</ul>" if items else ""
    from tfreview.render.checks import html_section

    stopped += "".join(f"<p>Traffic plan {e(str(t['plan_id']))} ({e(str(t.get('what')))}):</p>"
                       + html_section(t["policy_checks"]) for t in release.get("traffic_checks") or [])
    return (f"<h2>Release</h2><p><strong>{e(str(release['outcome']))}</strong>{e(why)} (run by "
            f"{e(str(release.get('by')))}, {e(str(release.get('started_at')))} → "
            f"{e(str(release.get('finished_at')))})</p>{alarm}<ol>{steps}</ol>{stopped}{after}"
            f"<h3>Timeline</h3>{charts}")


def _embeddable(diff: str | None) -> tuple[str, str]:
    """(body, style elements) of the renderer's HTML diff, so it sits inside the report's own page."""
    if not diff:
        return "", ""
    if not diff.lstrip().startswith("<"):
        return f"<pre>{html.escape(diff)}</pre>", ""
    styles = "".join(re.findall(r"<style\b.*?</style>", diff, flags=re.S | re.I))
    m = re.search(r"<body\b[^>]*>(.*)</body>", diff, flags=re.S | re.I)
    return (m.group(1) if m else diff), styles


def _html(doc: dict[str, Any], diff: str | None) -> str:
    def e(value: Any) -> str:  # records may be damaged: any JSON value is shown as text
        return html.escape("" if value is None else str(value))

    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in _facts_rows(doc))
    approvals = "".join(
        f"<tr><td>{e(a['kind'] or '')}</td><td>{e(a['by'] or '')}</td><td>{e(a['at'] or '')}</td>"
        f"<td>{e(a['comment'] or '')}</td><td>{'yes' if a['bound_to_plan'] else 'NO'}</td>"
        f"<td>{e(_signed(a))}</td></tr>"
        for a in doc["approvals"]) or "<tr><td colspan=6>None.</td></tr>"
    a = doc["apply"]
    applied = ("<p>Not applied.</p>" if a is None else
               f"<p>Started by {e(a['by'] or '')} at {e(a['started_at'] or '')}; finished "
               f"{e(a['finished_at'] or '(never)')}: <strong>{e(doc['outcome'])}</strong>.</p>"
               + (f"<p>Error: {e(a['error'])}</p>" if a.get("error") else ""))
    glass = (f"<p class=glass>BREAK-GLASS apply by {e(a['by'] or '')}: {e(a['break_glass'] or '')}</p>"
             if doc["break_glass"] and a else "")
    events = "".join(f"<li>#{x['seq']} {e(x['time'] or '')} {e(x['event'] or '')} by {e(x['actor'] or '')}</li>"
                     for x in doc["events"])
    chain = doc["audit_chain"]
    from tfreview.render.checks import html_section

    checks = html_section(doc["plan"].get("policy_checks"))
    body, styles = _embeddable(diff)
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{e(_title(doc))}</title>{styles}<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}"
        "th{text-align:left;padding-right:1em}td,th{vertical-align:top}.glass{color:#fff;background:#b00;padding:.5em}"
        "figure{margin:1em 0;break-inside:avoid}svg.chart{max-width:100%;height:auto}"
        "</style></head><body>"
        f"<h1>{e(_title(doc))}</h1>{glass}{checks}<table>{rows}</table>"
        "<h2>Approvals</h2><table><tr><th>Decision</th><th>By</th><th>At</th><th>Comment</th><th>Bound</th><th>Signature</th></tr>"
        f"{approvals}</table><h2>Apply</h2>{applied}{_html_release(doc.get('release'))}"
        f"<h2>Audit trail</h2><ul>{events}</ul>"
        f"<p>Audit chain: {'intact' if chain['ok'] else 'BROKEN at entry ' + str(chain['first_bad_seq'])} "
        f"({chain['entries']} entries).</p><h2>Signatures</h2><table><tr><th>Statement</th><th>Signed by</th>"
        "<th>Key</th><th>Verified</th></tr>"
        + "".join(f"<tr><td>{e(x['what'])}</td><td>{e(x['principal'])}</td><td>{e(x['key'])}</td>"
                  f"<td>{e(x['verified'])}</td></tr>" for x in doc["statements"]) + "</table>"
        + "".join(f"<p>allowed_signers of policy version {e(str(v))}:</p><pre>{e(lines)}</pre>"
                  for v, lines in sorted(doc["allowed_signers"].items()))
        + (f"<h2>Changes</h2>{body}" if body else "")
        + "</body></html>\n"
    )
