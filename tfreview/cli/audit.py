"""Commands for auditors: history, unlock, the `audit` group (checkpoint, seal, verify, export, log), report."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from tfreview.cli.app import (Format, FormatOpt, _bad, _console, _context, _emit_json, _print, _settings, _warn, app,
                              leave_when_done)
from tfreview.cli.output import _check_output, _warn_interrupted, _write_atomic
from tfreview.errors import EXIT_ERROR


# -- history ----------------------------------------------------------------------------------------------------
@app.command()
def history(app_name: Optional[str] = typer.Option(None, "--app"), env: Optional[str] = typer.Option(None, "--env"),
            version: Optional[str] = typer.Option(None, "--version"),
            person: Optional[str] = typer.Option(None, "--person", help="Planned or approved by this identity."),
            since: Optional[str] = typer.Option(None, "--since", help="ISO date/time, e.g. 2026-11-01."),
            until: Optional[str] = typer.Option(None, "--until", help="ISO date/time."),
            limit: int = typer.Option(50, "--limit", min=0, help="Releases per page (0: all)."),
            page: int = typer.Option(1, "--page", min=1, help="Page number, 1 is the newest."),
            expand: bool = typer.Option(False, "--expand", help="Show each release's traffic steps."),
            release: Optional[str] = typer.Option(None, "--release", help="One release (its deploy plan id), expanded."),
            rebuild_index: bool = typer.Option(False, "--rebuild-index",
                                               help="Rebuild the store's history index from the records first."),
            fmt: Format = FormatOpt) -> None:
    """Releases (a deploy and its traffic steps) and plans, newest first, one line each."""
    from tfreview.usecases.history import query
    from tfreview.store import open_store
    from tfreview.text import check_name

    if release is not None:
        check_name("plan id", release)
    store = open_store(_settings().store)
    found = query(store, app_name, env, version, person, since, until, limit=limit + 1 if limit else None,
                  offset=(page - 1) * limit, releases=True, release=release, rebuild=rebuild_index)
    more = bool(limit) and len(found.rows) > limit
    rows = found.rows[:limit] if limit else found.rows
    if expand or release:  # the expanded view presents each plan: its record's signature is checked first
        from tfreview.trust.witness import flag_damaged

        rows = flag_damaged(store, rows)
    _warn_interrupted(store, app_name, env, found.unfinished)  # on stderr: JSON on stdout stays clean
    for row in rows:
        if row.get("error"):
            _warn(row["error"])
    if more:
        _console(stderr=True).print(f"more releases: --page {page + 1} (or --limit 0 for all)", markup=False)
    if fmt is Format.json:
        _emit_json([{**r, "schema_version": 2} for r in rows])  # 2: policy_blocked (issue 22)
        return
    from rich.table import Table

    table = Table(box=None)
    width = max((len(x["id"]) + 2 for row in rows for x in [row, *row.get("steps", [])]), default=7)
    table.add_column("plan id", no_wrap=True, min_width=width)
    for name in ("kind", "version", "env", "planned by", "approvals", "outcome", "changes"):
        table.add_column(name)
    under = {"shift": "(the release's)", "rollback": "(approver alone)"}
    why: list[tuple[str, str]] = []
    for r in rows:
        for row, indent in [(r, "")] + ([(s, "  ") for s in r.get("steps", [])] if expand or release else []):
            approvals = ", ".join(f"{a['by']}{'' if a['kind'] == 'approve' else ' (rejected)'}" for a in row["approvals"])
            outcome = row["outcome"] + (" (BREAK-GLASS)" if row.get("break_glass") else "")
            rel = row.get("release") or {}
            if rel:
                outcome = f"release {rel['outcome']}"
                if isinstance(rel.get("alarm"), dict):
                    outcome += f" (alarm {rel['alarm'].get('name')})"
            if row.get("policy_blocked"):
                outcome += " (BLOCKED BY POLICY)"
            steps = f" +{len(row['steps'])} steps" if row.get("steps") and not (expand or release) else ""
            table.add_row(indent + row["id"], row.get("kind", ""), row["version"], row["env"], row["planner"],
                          approvals or under.get(row.get("kind", ""), "-"), outcome + steps,
                          _short_counts(row["summary"] or ""))
        if expand or release:
            why.extend((r["id"], line) for line in _release_why(r.get("release") or {}))
    _console().print(table if rows else "no plans yet")
    for plan_id, line in why:  # under the table, unwrapped: reasons are long and must stay greppable
        _print(f"{plan_id}: {line}")


def _release_why(rel: dict[str, Any]) -> list[str]:
    """The lines `history --expand` shows under a release that failed: its reason, the alarm that stopped it (name,
    state reason, when it fired), why its tasks stopped (once per distinct reason)."""
    from tfreview.usecases.report import alarm_line, stopped_lines

    if not rel or rel.get("outcome") == "succeeded" and not rel.get("stopped_tasks"):
        return []
    out = [f"why: {rel['reason']}"] if rel.get("reason") else []
    if isinstance(rel.get("alarm"), dict):
        out.append(alarm_line(rel["alarm"]))
    return out + stopped_lines(rel)


def _short_counts(summary: str) -> str:
    """"Plan: 1 to add, 2 to change, 0 to destroy." -> "+1 ~2 -0" (other lines as they are)."""
    m = re.search(r"(\d+) to add, (\d+) to change, (\d+) to destroy", summary)
    return f"+{m.group(1)} ~{m.group(2)} -{m.group(3)}" if m else summary.removeprefix("Plan: ").rstrip(".")


# -- unlock / audit / report ------------------------------------------------------------------------------------
@app.command()
def unlock(app_name: str = typer.Option(..., "--app", help="Application name."),
           env: str = typer.Option(..., "--env", help="Environment."),
           force: bool = typer.Option(False, "--force", help="Even if the holder's process still runs on this host."),
           fmt: Format = FormatOpt) -> None:
    """Release a stuck apply lock (recorded in the audit log, with the interrupted apply's outcome)."""
    from tfreview.usecases.unlock import unlock as do_unlock

    ctx, _ = _context()
    done = do_unlock(ctx, app_name, env, force=force)
    if fmt is Format.json:
        _emit_json(done)
        return
    prev = done["previous"]
    if prev["pid"] is None:
        _print(f"unlocked {app_name}/{env}: an unreadable lock removed by {done['unlocked_by']} (recorded as it was)")
        return
    _print(f"unlocked {app_name}/{env}: lock of {prev['owner']} (plan {prev['plan_id']}, pid {prev['pid']} on "
           f"{prev['host']}, since {prev['acquired_at']}) removed by {done['unlocked_by']}")
    if done["interrupted"]:
        _print(f"apply of plan {done['interrupted']} recorded as interrupted: check the environment "
               f"(tfreview status --app {app_name} --env {env}) before the next apply")


audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


app.add_typer(audit_app, name="audit")


def _read_location(location: str) -> bytes:
    """Bytes of a local file or an s3://bucket/key object (a checkpoint kept outside the store)."""
    if location.startswith("s3://"):
        from tfreview.aws import client, translated

        bucket, _, key = location[5:].partition("/")
        with translated("s3:GetObject", resource=location):
            return client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return Path(location).read_bytes()
    except OSError as exc:
        raise _bad(f"cannot read {location}: {exc.strerror}",
                   "pass the checkpoint file written by audit checkpoint") from None


@audit_app.command("checkpoint")
def audit_checkpoint(output: Optional[str] = typer.Option(None, "--output", "-o",
                                                          help="FILE or s3://bucket/key (default: stdout).")
                     ) -> None:
    """Write a signed checkpoint (last seq, its hash, time) of the verified log, to keep outside the store."""
    from tfreview.errors import StoreError
    from tfreview.store.audit import read_log
    from tfreview.trust.verify import make_checkpoint
    from tfreview.text import iso, now_utc

    ctx, _ = _context()
    entries, result = read_log(ctx.store)
    if not result.ok:
        raise StoreError(f"audit log broken at entry {result.first_bad_seq}: {result.reason}",
                         "a checkpoint vouches for an intact log only: investigate first (tfreview audit verify)")
    text = json.dumps(make_checkpoint(ctx, entries, iso(now_utc())), indent=2, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    if output.startswith("s3://"):
        from tfreview.aws import client, translated

        bucket, _, key = output[5:].partition("/")
        # With S3 Object Lock on that bucket the checkpoint cannot be changed or deleted by the store's writers.
        with translated("s3:PutObject", resource=output):
            client("s3").put_object(Bucket=bucket, Key=key, Body=text.encode(), IfNoneMatch="*")
    else:
        _write_atomic(Path(output), text)
    _console(stderr=True).print(f"wrote checkpoint of entry {json.loads(text)['seq']} to {output}", markup=False)


@audit_app.command("seal")
def audit_seal(fmt: Format = FormatOpt) -> None:
    """Seal every complete segment of 1,000 entries not sealed yet: check its chain and signatures once and store
    it as one object under a seal you sign, so that `audit verify` reads one object and checks one signature per
    segment. The writer who completes a segment seals it already; this seals the rest (an older log, a lost race)."""
    from tfreview.store.audit import SEGMENT_SIZE, read_head
    from tfreview.trust.verify import seal_log

    ctx, _ = _context()
    seals = seal_log(ctx)
    head = read_head(ctx.store)[0]
    unsealed = head % SEGMENT_SIZE
    if fmt is Format.json:
        _emit_json({"sealed": [{"first": s["first"], "last": s["last"]} for s in seals], "entries": head,
                    "unsealed_tail": unsealed})
        return
    what = (f"sealed {len(seals)} segment(s), entries {seals[0]['first']}-{seals[-1]['last']}" if seals
            else "nothing to seal")
    _print(f"{what}; the last {unsealed} of {head} entries are sealed when their segment of {SEGMENT_SIZE:,} is "
           "complete")


@audit_app.command("verify")
def audit_verify(checkpoint: Optional[str] = typer.Option(None, "--checkpoint",
                                                          help="A checkpoint FILE or s3://bucket/key the log must extend."),
                 full: bool = typer.Option(False, "--full", help="Also read every entry object of sealed segments and "
                                           "check every entry's own signature, not only the seals'."),
                 fmt: Format = FormatOpt) -> None:
    """Prove the audit chain intact and every entry, plan record and decision signed by its actor (exit 1 naming
    the first that is not). Sealed segments (`audit seal`) are checked by their seal's signature and bytes."""
    from dataclasses import replace

    from tfreview.errors import StoreError, TfreviewError
    from tfreview.store import open_store
    from tfreview.store.audit import open_log
    from tfreview.trust.verify import check_checkpoint, verify_log

    store = open_store(_settings().store)
    with open_log(store, full=full) as log:  # the sealed entry files are compared meanwhile (local store)
        entries, result = log.entries, log.result
        history = None
        try:
            if result.ok:  # the chain holds: is the policy the one the log activated, at the pinned root
                history, seq, why = _audit_policy(store, entries)
                if why:
                    result = replace(result, ok=False, first_bad_seq=seq, reason=why)
            if result.ok:  # the chain holds: now who said each entry, and do the store's records match the log
                seq, why = verify_log(store, entries, result.seals, full=full, history=history)
                if why:
                    result = replace(result, ok=False, first_bad_seq=seq, reason=why)
            if result.ok:  # every record that stands for an event has its entry; decisions sit beside their plan
                result = _witnessed(store, entries, result)
        except TfreviewError:
            if log.finish() is log.result:
                raise
        chain = log.finish()
    if chain is not log.result:  # a sealed entry file is not its segment's line: the chain's finding comes first
        result = chain
    if result.ok and checkpoint is not None:
        try:
            from tfreview import jsontext

            doc = jsontext.loads_std(_read_location(checkpoint))
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise _bad(f"{checkpoint} is not a checkpoint", "pass the file written by tfreview audit checkpoint")
        gap = check_checkpoint(doc, entries, history) if history else "the store has no policy"
        if gap is not None:
            result = replace(result, ok=False, first_bad_seq=doc.get("seq"),
                             reason=f"the log no longer extends checkpoint {checkpoint}: {gap}")
    sealed = chain.sealed
    if fmt is Format.json:
        _emit_json({"ok": result.ok, "entries": result.count, "sealed": sealed,
                    "first_bad_seq": result.first_bad_seq, "reason": result.reason})
        if not result.ok:
            raise typer.Exit(EXIT_ERROR)
        leave_when_done(log, history)  # the child is reaped (`finish`): no freeing of the 10^5 entries
        return
    if not result.ok:
        where = f"audit log broken at entry {result.first_bad_seq}" if result.first_bad_seq else "audit check failed"
        raise StoreError(f"{where}: {result.reason}",
                         "the log or the store was modified outside tfreview: compare with a backup of the store")
    how = (f" ({sealed} of them in {len(result.seals)} sealed segment(s), checked by their seals' signatures"
           f"{' and every entry' if full else ''})" if sealed else "")
    _print(f"audit log intact: {result.count} entries{how}, each chained to the one before and signed by its actor; "
           "plan records and decisions match it")
    leave_when_done(log, history)


def _audit_policy(store: Any, entries: list[dict[str, Any]]) -> tuple[Any, int | None, str]:
    """`audit verify`'s policy findings (tfreview.trust.root): (history, seq, reason), reason "" when all holds."""
    from tfreview.trust.policy import policy_findings

    return policy_findings(store, entries, _settings().policy_root)


def _witnessed(store: Any, entries: list[dict[str, Any]], result: Any) -> Any:
    """`result` failed with the first record the audit log never saw, or decision out of its plan's folder."""
    from dataclasses import replace

    from tfreview.trust.witness import unwitnessed

    why = unwitnessed(store, entries)
    return replace(result, ok=False, first_bad_seq=None, reason=why) if why else result


@audit_app.command("export")
def audit_export(since: str = typer.Option(..., "--since", help="First day (or time) of the period, e.g. 2026-10-01."),
                 until: str = typer.Option(..., "--until", help="Last day (or time) of the period, e.g. 2026-12-31."),
                 output: Path = typer.Option(..., "--output", "-o", help="A new directory, or a FILE.zip."),
                 include_failures: bool = typer.Option(False, "--include-failures",
                                                       help="Export even when audit verify fails, the failures in "
                                                       "the pack (audit/FAILURES.txt)."),
                 fmt: Format = FormatOpt) -> None:
    """Write the evidence pack of a period: signed statements, policy versions, audit entries and seals, release
    reports, an index, and verify.sh to check it all with ssh-keygen and sha256sum (docs/audit-evidence.md)."""
    from tfreview.usecases.evidence import export
    from tfreview.store import open_store

    pack = export(open_store(_settings().store), since, until, output, include_failures=include_failures)
    summary = {"output": str(output), "plans": pack.plans, "statements": pack.statements, "audit_entries": pack.entries,
               "reports": pack.reports, "policy_versions": pack.policy_versions, "failures": pack.failures}
    if fmt is Format.json:
        _emit_json(summary)
        return
    for failure in pack.failures:
        _warn(f"exported with a failure: {failure}")
    _print(f"evidence pack written to {output}: {pack.plans} plan(s), {pack.statements} signed statement(s), "
           f"{pack.entries} audit entr{'y' if pack.entries == 1 else 'ies'}, {pack.reports} release report(s), policy "
           f"version(s) {', '.join(map(str, pack.policy_versions))}")
    _print("check it with: " + ("unzip it, then: sh verify.sh" if output.suffix.lower() == ".zip" else
                                f"sh {output}/verify.sh"))


@audit_app.command("log")
def audit_log(app_name: Optional[str] = typer.Option(None, "--app"), env: Optional[str] = typer.Option(None, "--env"),
              version: Optional[str] = typer.Option(None, "--version"),
              person: Optional[str] = typer.Option(None, "--person", help="Entries by this identity."),
              event: Optional[str] = typer.Option(None, "--event", help="package, plan, approve, reject, apply-start, "
                                                  "apply-end, break-glass, rollout, unlock..."),
              plan_id: Optional[str] = typer.Option(None, "--plan", help="Entries about this plan."),
              since: Optional[str] = typer.Option(None, "--since", help="ISO date/time, e.g. 2026-11-01."),
              until: Optional[str] = typer.Option(None, "--until", help="ISO date/time (a date includes that day)."),
              limit: int = typer.Option(100, "--limit", min=0, help="Entries per page (0: all)."),
              after: int = typer.Option(0, "--after", min=0, help="Start after this entry number (the next page)."),
              fmt: Format = FormatOpt) -> None:
    """The audit entries, oldest first, filtered, one page at a time (not verified: see `tfreview audit verify`)."""
    from tfreview.store import open_store
    from tfreview.store.audit_page import page
    from tfreview.text import check_names
    from tfreview.usecases.records import time_bound

    check_names(app=app_name, env=env, version=version, person=person, plan_id=plan_id)
    if event is not None and not re.fullmatch(r"[a-z][a-z-]{0,31}", event):
        raise _bad(f"invalid event {event!r}", "events are lower-case words like plan, approve, apply-end, unlock")
    found = page(open_store(_settings().store), since=time_bound(since), after=after, limit=limit or None,
                 app=app_name, env=env, version=version, person=person, event=event, plan_id=plan_id,
                 until=time_bound(until, end=True))
    entries = found.entries
    if found.next_after is not None:
        _console(stderr=True).print(f"more entries: --after {found.next_after}", markup=False)
    if fmt is Format.json:
        _emit_json(entries)
        return
    for e in entries:
        where = " ".join(str(e[k]) for k in ("app", "env", "version") if e.get(k))
        plan = f" plan {e['plan_id']}" if e.get("plan_id") else ""
        _print(f"#{e['seq']:<5} {e['time'][:19]}Z {e['event']:<12} {e['actor']:<28} {where}{plan}")
    if not entries:
        _print("no audit entries match")


@app.command()
def report(plan_id: Optional[str] = typer.Argument(None, help="Plan id (a release: its deploy plan id)."),
           release: Optional[str] = typer.Option(None, "--release", help="The release started by this deploy plan."),
           fmt: str = typer.Option("markdown", "--format", "-f", help="markdown, html or json."),
           output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout.")) -> None:
    """The auditor's report of a plan or a release: diff, planner, approvals (who, when, comment, signature), what
    was applied, the rollout with its traffic steps and timeline (charts in HTML), outcome, a rollback after it."""
    from tfreview.usecases.report import render_report
    from tfreview.store import open_store
    from tfreview.text import check_name

    if (plan_id is None) == (release is None):
        raise _bad("report needs one id", "pass a plan id, or --release ID (the release's deploy plan id)")
    plan_id = check_name("plan id", plan_id or release or "")
    _check_output(output)
    store = open_store(_settings().store)
    if release is not None:  # a traffic plan's id names the release it belongs to
        from tfreview.usecases.records import load_plan

        plan_id = load_plan(store, plan_id).get("release_id") or plan_id
    # The signatures are judged by the policy as every command reads it: pinned, and witnessed by the log, so a
    # store whose policy was rolled back or replaced is refused (exit 3) rather than reported as "verified".
    from tfreview.errors import BadInput
    from tfreview.trust.policy import load_history

    try:
        history = load_history(store, pin=_settings().policy_root)
    except BadInput:  # no policy and no log: nothing was ever signed here (the plan is not found next)
        history = None
    text = render_report(store, plan_id, fmt, history)
    if output is None:
        sys.stdout.write(text)
    else:
        _write_atomic(output, text)
        _console(stderr=True).print(f"wrote {output}", markup=False)
