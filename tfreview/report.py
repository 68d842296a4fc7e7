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

FORMATS = ("markdown", "html", "json")
REPORT_VERSION = 1


def _maybe(store: Store, key: str) -> dict[str, Any] | None:
    try:
        return get_json(store, key)
    except NotFound:
        return None


def build_report(store: Store, plan_id: str) -> dict[str, Any]:
    """The report document of `plan_id` (documented shape: report_version, plan, approvals, apply, events,
    audit_chain). Raises NotFound for an unknown plan."""
    from tfreview.store.audit import read_log
    from tfreview.workflow import load_plan

    record = load_plan(store, plan_id)
    decisions = sorted((get_json(store, k) for k in store.list(f"approvals/{plan_id}/")),
                       key=lambda d: d.get("approved_at", ""))
    start = _maybe(store, f"applies/{plan_id}/start.json")
    result = _maybe(store, f"applies/{plan_id}/result.json")
    if start is None:
        outcome = "not applied"
    elif result is None:
        outcome = "interrupted (no outcome recorded)"
    else:
        outcome = result.get("outcome", "?")
    entries, chain = read_log(store)
    events = [e for e in entries if e.get("plan_id") == plan_id]
    from tfreview.trust.verify import report_statements

    signed = report_statements(store, record, decisions, events)
    plan = {k: record.get(k) for k in ("id", "app", "env", "version", "plan_kind", "planner", "created_at",
                                       "plan_sha256", "package_sha256", "json_sha256", "state_lineage",
                                       "state_serial", "terraform_version", "risky", "risk_reasons", "summary",
                                       "identity", "terraform_options")}
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
                       "bound_to_plan": d.get("plan_sha256") == record.get("plan_sha256")} for d in decisions],
        "apply": apply,
        "outcome": outcome,
        "break_glass": bool(start and start.get("break_glass")),
        "events": [{"seq": e.get("seq"), "time": e.get("time"), "event": e.get("event"), "actor": e.get("actor"),
                    "hash": e.get("hash")} for e in events],
        "audit_chain": {"ok": chain.ok, "entries": chain.count, "first_bad_seq": chain.first_bad_seq,
                        "reason": chain.reason},
        **signed,
    }


def _diff(store: Store, record: dict[str, Any], fmt: str) -> str | None:
    """The review engine's rendering of the plan diff in `fmt`, or None when the plan JSON is not in the store.
    PolicyRefusal when the stored JSON is not the one the plan record binds."""
    from tfreview.render import render
    from tfreview.workflow import load_review

    try:
        return str(render(load_review(store, record), fmt))
    except NotFound:
        return None


def render_report(store: Store, plan_id: str, fmt: str = "markdown") -> str:
    """The report of `plan_id` as markdown, html or json text (json: the `build_report` document plus `diff`)."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown report format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    doc = build_report(store, plan_id)
    diff = _diff(store, doc["plan"], fmt)
    if fmt == "json":
        if diff is not None:
            try:
                doc["diff"] = json.loads(diff)
            except ValueError:
                doc["diff"] = diff
        return json_safe(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)) + "\n"
    return visible(_markdown(doc, diff) if fmt == "markdown" else _html(doc, diff))


def _md_cell(value: Any) -> str:
    from tfreview.render.markdown import md_text

    return md_text(str("" if value is None else value))


def _facts_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    p = doc["plan"]
    summary = (p.get("summary") or {}).get("summary_line") or ""
    return [("App / env / version", f"{p['app']} / {p['env']} / {p['version']}"),
            ("Planned by", f"{p['planner']} at {p['created_at']}"),
            ("Plan sha256", p.get("plan_sha256") or ""), ("Package sha256", p.get("package_sha256") or ""),
            ("State", f"lineage {p.get('state_lineage') or '(none)'}, serial {p.get('state_serial')}"),
            ("Terraform", p.get("terraform_version") or ""), ("Changes", summary),
            ("Risk", "; ".join(p.get("risk_reasons") or []) or "none flagged"),
            ("Outcome", doc["outcome"] + (" (BREAK-GLASS)" if doc["break_glass"] else ""))]


def _markdown(doc: dict[str, Any], diff: str | None) -> str:
    p = doc["plan"]
    out = [f"# Plan {_md_cell(p['id'])}", ""]
    if doc["break_glass"]:
        out += [f"> **BREAK-GLASS apply** by {_md_cell(doc['apply']['by'])}: {_md_cell(doc['apply']['break_glass'])}",
                ""]
    out += ["| | |", "|---|---|"] + [f"| {k} | {_md_cell(v)} |" for k, v in _facts_rows(doc)] + [""]
    out += ["## Approvals", ""]
    if doc["approvals"]:
        out += ["| Decision | By | At | Comment | Bound to this plan |", "|---|---|---|---|---|"]
        out += [f"| {_md_cell(a['kind'])} | {_md_cell(a['by'])} | {_md_cell(a['at'])} | {_md_cell(a['comment'])} | "
                f"{'yes' if a['bound_to_plan'] else 'NO'} |" for a in doc["approvals"]]
    else:
        out.append("None.")
    out += ["", "## Apply", ""]
    a = doc["apply"]
    if a is None:
        out.append("Not applied.")
    else:
        out.append(f"Started by {_md_cell(a['by'])} at {_md_cell(a['started_at'])}; finished "
                   f"{_md_cell(a['finished_at'] or '(never)')}: **{_md_cell(doc['outcome'])}**.")
        if a.get("error"):
            out.append(f"\nError: {_md_cell(a['error'])}")
        if a.get("unlocked_by"):
            out.append(f"\nLock released by {_md_cell(a['unlocked_by'])}.")
    out += ["", "## Audit trail", ""]
    out += [f"- #{e['seq']} {_md_cell(e['time'])} {_md_cell(e['event'])} by {_md_cell(e['actor'])}"
            for e in doc["events"]] or ["None."]
    chain = doc["audit_chain"]
    out += ["", f"Audit chain: {'intact' if chain['ok'] else 'BROKEN at entry ' + str(chain['first_bad_seq'])} "
                f"({chain['entries']} entries)."]
    out += ["", "## Signatures", "", "| Statement | Signed by | Key | Verified |", "|---|---|---|---|"]
    out += [f"| {_md_cell(x['what'])} | {_md_cell(x['principal'])} | {_md_cell(x['key'])} | {x['verified']} |"
            for x in doc["statements"]]
    out += ["", "Check one with stock OpenSSH (statement and signature from `tfreview report --format json`): "
                "`ssh-keygen -Y verify -f allowed_signers -I PRINCIPAL -n tfreview -s SIG < STATEMENT`.", ""]
    for version, lines in sorted(doc["allowed_signers"].items()):
        out += [f"allowed_signers of policy version {version}:", "", "```", lines.rstrip(), "```", ""]
    if diff is not None:
        out += ["", "## Changes", "", diff.rstrip()]
    return "\n".join(out) + "\n"


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
    e = html.escape
    p = doc["plan"]
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in _facts_rows(doc))
    approvals = "".join(
        f"<tr><td>{e(a['kind'] or '')}</td><td>{e(a['by'] or '')}</td><td>{e(a['at'] or '')}</td>"
        f"<td>{e(a['comment'] or '')}</td><td>{'yes' if a['bound_to_plan'] else 'NO'}</td></tr>"
        for a in doc["approvals"]) or "<tr><td colspan=5>None.</td></tr>"
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
    body, styles = _embeddable(diff)
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>Plan {e(p['id'])}</title>{styles}<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}"
        "th{text-align:left;padding-right:1em}td,th{vertical-align:top}.glass{color:#fff;background:#b00;padding:.5em}"
        "</style></head><body>"
        f"<h1>Plan {e(p['id'])}</h1>{glass}<table>{rows}</table>"
        "<h2>Approvals</h2><table><tr><th>Decision</th><th>By</th><th>At</th><th>Comment</th><th>Bound</th></tr>"
        f"{approvals}</table><h2>Apply</h2>{applied}<h2>Audit trail</h2><ul>{events}</ul>"
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
