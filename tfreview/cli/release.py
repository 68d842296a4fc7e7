"""Commands to release: apply, status, drift, rollback, promote."""
from __future__ import annotations

import sys
from typing import Optional

import typer

from tfreview.cli.app import Format, FormatOpt, _bad, _context, _emit_json, _print, _settings, _state, _warn, app
from tfreview.cli.output import _confirm, _plan_json, _show_review, _step_summary, _warn_interrupted


# -- apply ------------------------------------------------------------------------------------------------------
@app.command()
def apply(plan_id: str = typer.Argument(..., help="Plan id."),
          no_wait: bool = typer.Option(False, "--no-wait", help="Apply only: do not watch the rollout nor shift traffic."),
          steps: Optional[str] = typer.Option(None, "--steps", help="Traffic steps in percent, e.g. 10,50,100 (default: all at once)."),
          bake: float = typer.Option(0.0, "--bake", min=0.0, help="Seconds to wait (and re-check health) after each traffic step."),
          verify_cmd: Optional[str] = typer.Option(None, "--verify-cmd", help="Command run against the test listener before traffic moves ($TFREVIEW_TEST_URL)."),
          alarm: Optional[list[str]] = typer.Option(None, "--alarm", metavar="NAME", help="CloudWatch alarm name (repeatable): in ALARM during the watch or a bake, it stops the release and traffic goes back."),
          break_glass: bool = typer.Option(False, "--break-glass", help="Apply without approvals (allowed identities only)."),
          reason: Optional[str] = typer.Option(None, "--reason", help="Why break glass (required with --break-glass)."),
          fmt: Format = FormatOpt) -> None:
    """Apply an approved, unchanged, fresh plan, then watch the rollout and shift traffic (blue/green)."""
    import math

    if break_glass and not (reason or "").strip():
        raise _bad("--break-glass needs --reason TEXT", "say why the approval process is bypassed")
    if verify_cmd is not None and not verify_cmd.strip():
        raise _bad("--verify-cmd is empty", "pass the command to run against the test listener, or leave it out")
    if not math.isfinite(bake) or bake > 86_400:
        raise _bad(f"--bake {bake} is not a number of seconds up to a day", "pass e.g. --bake 60")
    from tfreview.usecases.release import ReleaseOptions, apply_release
    from tfreview.rollout.traffic import weight_steps

    percents = weight_steps(steps)  # checked even with --no-wait: every option value is checked
    from tfreview.rollout.alarms import check_alarm_name

    for name in alarm or ():
        check_alarm_name(name)
    if alarm and no_wait:
        raise _bad("--alarm needs the release to be watched", "drop --no-wait, or drop --alarm")
    settings = _settings()
    ctx, progress = _context(f"applying {plan_id}", settings)
    from tfreview.usecases.records import load_plan

    record = load_plan(ctx.store, plan_id)
    options = None if no_wait else ReleaseOptions(percents, bake_s=bake, verify_cmd=verify_cmd,
                                                  timeout_s=settings.rollout_timeout_s, poll_s=settings.rollout_poll_s,
                                                  alarms=settings.alarms_for(record["app"], record["env"], tuple(alarm or ())))
    _warn_interrupted(ctx.store, record["app"], record["env"])
    with progress:
        result = apply_release(ctx, plan_id, options=options, log=progress.log, display=progress.rollout,
                               break_glass_reason=reason if break_glass else None)
    if fmt is Format.json:
        _emit_json(result)
        return
    rollout = result.get("rollout") or {}
    live = f"; live colour: {rollout['live_color']}" if rollout.get("live_color") else ""
    _print(f"applied {plan_id}: {result['outcome']}{live}")


@app.command()
def status(app_name: str = typer.Option(..., "--app"), env: str = typer.Option(..., "--env"),
           fmt: Format = FormatOpt) -> None:
    """Live colour, version per colour, traffic weights, last release and its outcome."""
    from tfreview.usecases.status import status as do_status

    ctx, _ = _context(sign=False)
    st = do_status(ctx, app_name, env)
    _warn_interrupted(ctx.store, app_name, env)
    if st["last_apply"].get("damaged"):  # what status shows comes from that apply: say it cannot be trusted
        _warn(st["last_apply"]["damaged"])
    if fmt is Format.json:
        _emit_json(st)
        return
    source = "read from the production listener" if st["weights_source"] == "live" else \
        "as recorded at the last apply (AWS did not answer)"
    _print(f"{app_name} in {env} ({st['strategy']}): live colour {st['live_color']}; weights {source}")
    for colour, version in sorted((st["versions"] or {}).items()):
        run = st["running"].get(colour)
        runs = "" if run is None or run["task_definition"] is None else f"; runs {run['version'] or 'unknown'} ({run['task_definition']}, " \
            f"{(run['rollout_state'] or 'no rollout state').lower()}, {run['running']}/{run['desired']} tasks)"
        _print(f"  {colour:<6} {version or 'unknown':<12} {st['weights'].get(colour, 0):>3}% of traffic{runs}")
    for colour in st["differs"]:
        _print(f"  {colour}: the state records {st['versions'][colour]} but its service runs "
               f"{st['running'][colour]['version']} (the deployment did not take: a circuit-breaker rollback?); "
               f"do not shift traffic to {colour} before a good release")
    if st["versions"] and not any(r["task_definition"] for r in st["running"].values()):
        _print("  (versions as the state records them: ECS did not answer)")
    last = st["last_release"]
    if last:
        why = f": {last['reason']}" if last.get("reason") else ""
        _print(f"last release: {last['version']} {last['outcome']}{why} ({last['plan_id']}, {last['finished_at']})")


@app.command()
def drift(app_name: str = typer.Option(..., "--app", help="Application name."),
          env: str = typer.Option(..., "--env", help="Environment to check."),
          fmt: Format = FormatOpt) -> None:
    """Compare what is deployed with its state (a refresh-only plan): exit 0 no drift, 2 drift, 1 any error (as
    terraform's -detailed-exitcode), for scheduled CI."""
    _state["detailed"] = True  # exit 2 is kept for "drift" (see main)
    from tfreview.text import check_names

    check_names(app=app_name, env=env)  # a bad name is named before the signing key is looked for
    ctx, progress = _context(f"checking {app_name} in {env} for drift")
    from tfreview.usecases.drift import drift as do_drift

    with progress:
        result = do_drift(ctx, app_name, env)
    if fmt is Format.json:
        _emit_json(result)
    elif result["drifted"]:
        _print(f"{app_name} in {env}: {len(result['resources'])} resource(s) changed outside Terraform "
               f"(since {result['version']}, plan {result['plan_id']}):")
        for r in result["resources"]:
            _print(f"  {r['action']:<8} {r['address']} ({', '.join(r['attributes'])})")
    else:
        _print(f"{app_name} in {env}: no drift (checked against {result['version']}, plan {result['plan_id']})")
    if result["drifted"]:
        _state["changes"] = True
        raise typer.Exit(2)


@app.command()
def rollback(app_name: str = typer.Option(..., "--app"), env: str = typer.Option(..., "--env"),
             yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (scripts)."),
             fmt: Format = FormatOpt) -> None:
    """Move all production traffic back to the previous colour (it still runs the previous version)."""
    from tfreview.usecases.rollback import rollback as do_rollback
    from tfreview.text import check_names

    check_names(app=app_name, env=env)  # before the question shows them
    if not yes and not sys.stdin.isatty():
        raise _bad("rollback needs a confirmation", "run it in a terminal, or pass --yes in scripts")
    if not yes:
        _confirm(f"Move all traffic of {app_name} in {env} back to the previous colour?")
    ctx, progress = _context(f"rolling back {app_name} in {env}")
    with progress:
        result = do_rollback(ctx, app_name, env, progress.log)
    if fmt is Format.json:
        _emit_json(result)
        return
    if result.get("needs_approval"):
        _print(f"rollback planned as {result['plan_id']}; policy wants approvals: tfreview approve {result['plan_id']}")
    else:
        _print(f"rolled back: 100% of traffic on {result['target']} ({result['version']}), plan {result['plan_id']}")


@app.command()
def promote(app_name: str = typer.Option(..., "--app"), version: str = typer.Option(..., "--version"),
            source: str = typer.Option(..., "--from", help="Environment the version was released in."),
            target: str = typer.Option(..., "--to", help="Environment to plan it for."),
            fmt: Format = FormatOpt) -> None:
    """Plan a version for the next environment, only if it was released successfully in the previous one."""
    from tfreview.usecases.promote import promote as do_promote

    ctx, progress = _context(f"planning {app_name} {version} for {target}")
    with progress:
        planned = do_promote(ctx, app_name, version, source, target)
    record = planned.record
    _step_summary(ctx, record, planned.review)
    if fmt is Format.json:
        _emit_json(_plan_json(record))
        return
    _show_review(planned.review)
    _print(f"\nplan id: {record['id']}   sha256: {record['plan_sha256']}")
