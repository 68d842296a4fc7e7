"""Commands on approvals: approve, reject."""
from __future__ import annotations

import sys

import typer

from tfreview.cli.app import Format, FormatOpt, _bad, _console, _context, _emit_json, _print, _warn, app
from tfreview.cli.output import _confirm, _print_checks, _show_review


# -- approve / reject ----------------------------------------------------------------------------------------
@app.command()
def approve(plan_id: str = typer.Argument(..., help="Plan id."),
            comment: str = typer.Option("", "--comment", "-m", help="Why you approve (recorded)."),
            yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (scripts)."),
            fmt: Format = FormatOpt) -> None:
    """Approve a plan: binds your approval to this exact plan's bytes, package and state."""
    from tfreview.render.checks import approve_lines, still_needed
    from tfreview.usecases.decide import approval_status, decide
    from tfreview.usecases.records import load_plan, load_review

    ctx, _ = _context()
    record = None  # with --yes, `decide` reads the plan
    if not yes:
        record = load_plan(ctx.store, plan_id)
        if not sys.stdin.isatty():
            raise _bad("approve needs a confirmation", "run it in a terminal, or pass --yes in scripts")
        status = approval_status(ctx, record)  # refuses before the review is read if you may not approve
        # What the approver reads and the question go to the terminal (stderr): stdout keeps only the result.
        term = _console(stderr=True)
        _show_review(load_review(ctx.store, record), console=term)
        lines = [f"\nplanned by {record['planner']} at {record['created_at']}; needs {status['required']} "
                 f"approval(s), approved so far by: {', '.join(status['approved_by']) or 'nobody'}"]
        lines += [f"  risk: {reason}" for reason in status["risk_reasons"]]
        if status["escalation"]:
            lines.append(f"  one more approver needed because: {'; '.join(status['escalation'])}")
        lines += approve_lines(record.get("policy_checks"), status["approved_by"])  # Rego approval rules (issue 22)
        _print_checks(record, console=term)
        for line in lines:
            term.print(line, markup=False, highlight=False, soft_wrap=True)
        _confirm(f"Approve plan {plan_id} ({record['summary'].get('summary_line')}) as {ctx.user}?")
    doc = decide(ctx, plan_id, "approve", comment, record)
    from tfreview.review.checks import blocking_lines

    record = record or load_plan(ctx.store, plan_id)
    blocked = blocking_lines(record.get("policy_checks"))
    if blocked:
        _warn(f"plan {plan_id} is blocked by policy ({blocked[0]}): approvals do not let it apply "
              "(only break-glass does)")
    if (record.get("policy_checks") or {}).get("approvals"):  # Rego approval rules not met yet (issue 22)
        from tfreview.usecases.records import approvals_of

        approved = [a.approver for a in approvals_of(ctx.store, plan_id) if a.kind == "approve"]
        for line in still_needed(record["policy_checks"], plan_id, approved):
            _warn(line)
    if fmt is Format.json:
        _emit_json(doc)
        return
    _print(f"approved {plan_id} as {doc['approver']} (plan sha256 {doc['plan_sha256'][:12]})")


@app.command()
def reject(plan_id: str = typer.Argument(..., help="Plan id."),
           reason: str = typer.Option(..., "--reason", help="Why (recorded, shown to the planner)."),
           fmt: Format = FormatOpt) -> None:
    """Reject a plan: it can no longer be applied."""
    from tfreview.usecases.decide import decide

    if not reason.strip():
        raise _bad("reject needs a reason", 'say what is wrong: tfreview reject ID --reason "..."')
    ctx, _ = _context()
    doc = decide(ctx, plan_id, "reject", reason)
    if fmt is Format.json:
        _emit_json(doc)
        return
    _print(f"rejected {plan_id} as {doc['approver']}: {reason}")
