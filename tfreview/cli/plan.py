"""Commands to plan and review: init, package, plan, render, show, comment."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from tfreview.cli.app import (FailOnOpt, Forge, Format, FormatOpt, Level, ReportFormat, _bad, _context, _emit_json,
    _print, _settings, _state, app, leave_when_done)
from tfreview.cli.output import (_check_output, _gate, _output_review, _plan_json, _print_checks, _show_review,
    _step_summary, _warn_interrupted)


# -- package --------------------------------------------------------------------------------------------------
@app.command()
def init(app_name: str = typer.Option(..., "--app", help="Application name."),
         directory: Path = typer.Option(Path("."), "--dir", help="Repository to write into (default: here)."),
         fmt: Format = FormatOpt) -> None:
    """Scaffold a working terraform/ tree (ECS blue/green module, envs sandbox/qa/prod), tfreview.toml and a starter
    policy.toml (you as its admin and signer), then print the commands that remain."""
    from tfreview.usecases.init import first_day, scaffold
    from tfreview.text import check_name

    from tfreview.errors import TfreviewError

    check_name("app", app_name)
    try:
        settings = _settings()
    except TfreviewError:  # a tfreview.toml there already: scaffold says so
        settings = None
    day = first_day(settings)
    files = scaffold(app_name, directory, pin=day.pin, policy=day.policy)
    steps = day.steps(app_name, "policy.toml" in files)
    if fmt is Format.json:
        _emit_json({"app": app_name, "directory": str(directory), "files": files, "signing_key": day.key,
                    "principal": day.principal, "policy_root": day.pin, "next": steps})
        return
    _print(f"wrote {len(files)} files into {directory}: terraform/, tfreview.toml"
           f"{' and policy.toml' if 'policy.toml' in files else ''}"
           f"{' (with an example Rego policy in policy/)' if 'policy/example.rego' in files else ''}")
    if day.key_problem:
        _print(f"no signing key yet: {day.key_problem}")
    elif day.key:
        _print(f"your signing key: {day.key} ({day.principal} in policy.toml)" if day.policy else
               f"your signing key: {day.key}")
    _print("next:")
    for number, step in enumerate(steps, start=1):
        _print(f"  {number}. {step}")


@app.command()
def package(app_name: str = typer.Option(..., "--app", help="Application name."),
            version: str = typer.Option(..., "--version", help="Version to package (image tag)."),
            source: Optional[Path] = typer.Option(None, "--source", help="Terraform tree (default: ./terraform)."),
            fmt: Format = FormatOpt) -> None:
    """Build and store terraform.zip for a version (deterministic: same content, same sha256)."""
    ctx, _ = _context()
    from tfreview.usecases.package import package as do_package

    result = do_package(ctx, app_name, version, str(source) if source else None)
    if fmt is Format.json:
        _emit_json({k: result[k] for k in ("app", "version", "sha256", "size", "status", "created_at", "source_commit")}
                   | {"files": len(result["files"])})
        return
    verb = "already packaged (same content)" if result["status"] == "unchanged" else "packaged"
    _print(f"{app_name} {version} {verb}: {len(result['files'])} files, sha256 {result['sha256']}")


# -- plan -----------------------------------------------------------------------------------------------------
@app.command()
def plan(app_name: str = typer.Option(..., "--app", help="Application name."),
         version: str = typer.Option(..., "--version", help="Packaged version to deploy."),
         env: str = typer.Option(..., "--env", help="Environment (sandbox, qa, prod...)."),
         detailed_exitcode: bool = typer.Option(False, "--detailed-exitcode",
                                                help="Exit 0 when there are no changes, 2 when there are."),
         full: bool = typer.Option(False, "--full", help="Show every attribute, not only the changed ones."),
         var: Optional[list[str]] = typer.Option(None, "--var", "-var", metavar="NAME=VALUE",
                                                 help="Set a root variable, as terraform's -var (repeatable)."),
         var_file: Optional[list[str]] = typer.Option(None, "--var-file", "-var-file", metavar="FILE",
                                                      help="Read variables from a .tfvars file (repeatable)."),
         target: Optional[list[str]] = typer.Option(None, "--target", "-target", metavar="ADDRESS",
                                                    help="Plan only this resource or module (repeatable; a risk)."),
         replace: Optional[list[str]] = typer.Option(None, "--replace", "-replace", metavar="ADDRESS",
                                                     help="Force replacement of this resource (repeatable)."),
         destroy: bool = typer.Option(False, "--destroy", "-destroy", help="Plan to destroy everything."),
         refresh_only: bool = typer.Option(False, "--refresh-only", "-refresh-only",
                                           help="Plan only to update the state to match the real resources."),
         fail_on: Optional[Level] = FailOnOpt,
         fmt: Format = FormatOpt) -> None:
    """Plan a version for an environment (the new version goes to the idle colour), store it, print the review."""
    settings = _settings()
    options = _terraform_options(settings, app_name, var, var_file, target, replace, destroy, refresh_only)
    ctx, progress = _context(f"planning {app_name} {version} for {env}", settings)
    from tfreview.usecases.plan import plan as do_plan

    _warn_interrupted(ctx.store, app_name, env)
    with progress:
        planned = do_plan(ctx, app_name, version, env, options=options)
    record, review = planned.record, planned.review
    if fmt is Format.json:
        _emit_json(_plan_json(record))
    else:
        _print_checks(record)
        _show_review(review, full=full)
        _print(f"\nplan id: {record['id']}   sha256: {record['plan_sha256']}")
        _print(f"next: tfreview approve {record['id']}")
    _step_summary(ctx, record, review)
    _gate(review, fail_on, record)
    if detailed_exitcode and review.counts.has_changes:
        _state["changes"] = True  # exit 2 means "changes" here, not bad input (see main)
        raise typer.Exit(2)


def _terraform_options(settings: Any, app_name: str, var: Optional[list[str]], var_file: Optional[list[str]],
                       target: Optional[list[str]], replace: Optional[list[str]], destroy: bool,
                       refresh_only: bool) -> Any:
    """The plan controls checked at the door (exit 2, one line): NAME=VALUE, readable var-files, addresses."""
    from tfreview.plan.options import parse_options

    files = []
    for path in var_file or ():
        file = Path(path).expanduser()
        if not file.is_file():
            raise _bad(f"--var-file {path} {'is not a file' if file.exists() else 'does not exist'}",
                       "give the path of a .tfvars or .tfvars.json file")
        files.append(str(file.resolve()))  # terraform runs in a working directory of its own
    return parse_options(var or (), files, target or (), replace or (), destroy, refresh_only,
                         reserved=settings.roles_for(app_name).release_variables)


# -- render / show -------------------------------------------------------------------------------------------
@app.command()
def render(file: Path = typer.Argument(..., help="A .tfplan file or `terraform show -json` output (- for stdin)."),
           fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", "-f"),
           output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout."),
           full: bool = typer.Option(False, "--full", help="Show every attribute."),
           action: Optional[list[str]] = typer.Option(None, "--action", help="Only resources with this action."),
           rtype: Optional[list[str]] = typer.Option(None, "--type", help="Only resources of this type."),
           address: Optional[list[str]] = typer.Option(None, "--address", help="Only addresses containing this."),
           fail_on: Optional[Level] = FailOnOpt) -> None:
    """Review any plan without storing it (`-` reads plan JSON from stdin)."""
    _check_output(output)
    stdin = str(file) == "-"
    try:
        exists, regular = file.exists(), file.is_file()
    except OSError as exc:  # a name too long, a loop of links...
        raise _bad(f"cannot read {file}: {exc.strerror}", "pass a .tfplan file or the output of terraform show -json") from None
    if not stdin and not regular:
        raise _bad(f"{file} {'is not a file' if exists else 'does not exist'}",
                   "pass a .tfplan file or the output of terraform show -json")
    try:
        data = sys.stdin.buffer.read() if stdin else file.read_bytes()
    except OSError as exc:
        raise _bad(f"cannot read {file}: {exc.strerror}", "pass a readable plan file") from None
    if not data.lstrip().startswith((b"{", b"[")):
        if stdin:
            raise _bad("stdin holds no plan JSON", "pipe terraform show -json into it, or pass a .tfplan file's path")
        if not data.startswith(b"PK\x03\x04"):  # a saved plan is a zip archive: anything else is not a plan
            raise _bad(f"{file} is neither plan JSON nor a saved plan file",
                       "pass a .tfplan file or the output of terraform show -json")
        data = _show_plan_file(file)
    from tfreview.plan import review_plan

    review = review_plan(data)
    _output_review(review, fmt, output, full=full, actions=action, types=rtype, addresses=address)
    _gate(review, fail_on)
    leave_when_done(review, data)  # read-only, no child: no freeing of the whole parsed plan before exit 0


def _show_plan_file(file: Path) -> bytes:
    """`terraform show -json` of a binary plan, run in the plan's directory (it must be initialised there).
    What no `terraform plan -out` wrote (not a zip, no tfplan entry), or what terraform cannot read, is bad
    input (exit 2), refused before terraform runs where possible."""
    import zipfile

    from tfreview.errors import TerraformFailed
    from tfreview.terraform import Terraform

    hint = "pass a file saved by `terraform plan -out` (in its initialised directory) or its `terraform show -json`"
    try:
        with zipfile.ZipFile(file) as zf:
            if "tfplan" not in zf.namelist():
                raise _bad(f"{file} is a zip archive but not a saved plan (no tfplan inside)", hint)
    except (zipfile.BadZipFile, OSError, EOFError):
        raise _bad(f"{file} is not a saved plan file (a damaged zip archive)", hint) from None
    try:
        return Terraform(_settings(), file.resolve().parent).show_json(str(file.resolve()))
    except TerraformFailed as exc:
        raise _bad(f"terraform cannot read {file} as a saved plan: {exc.message}", hint) from None


@app.command()
def show(plan_id: str = typer.Argument(..., help="Plan id (from tfreview plan or tfreview history)."),
         fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", "-f"),
         output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to FILE instead of stdout."),
         full: bool = typer.Option(False, "--full", help="Show every attribute."),
         fail_on: Optional[Level] = FailOnOpt) -> None:
    """Review a stored plan."""
    from tfreview.store import open_store
    from tfreview.usecases.records import load_plan, load_review

    _check_output(output)
    store = open_store(_settings().store)
    record = load_plan(store, plan_id)
    review = load_review(store, record)
    if fmt is ReportFormat.text and output is None:
        _print(f"plan {record['id']}: {record['app']} {record['version']} -> {record['env']} "
               f"(planned by {record['planner']} at {record['created_at']})")
    _output_review(review, fmt, output, full=full, checks=record.get("policy_checks"))
    _gate(review, fail_on, record)


# -- comment ----------------------------------------------------------------------------------------------------
@app.command()
def comment(plan_id: str = typer.Argument(..., help="Plan id."),
            forge: Optional[Forge] = typer.Option(None, "--forge", help="github or gitlab (default: the CI you run in)."),
            repo: Optional[str] = typer.Option(None, "--repo", help="OWNER/REPO (GitHub) or project id/path (GitLab); "
                                               "default $GITHUB_REPOSITORY / $CI_PROJECT_ID."),
            number: Optional[int] = typer.Option(None, "--pr", "--mr", help="Pull/merge request number (default: "
                                                 "from the CI event / $CI_MERGE_REQUEST_IID)."),
            api_url: Optional[str] = typer.Option(None, "--api-url", help="API root for GitHub Enterprise or self-hosted "
                                                  "GitLab (default $GITHUB_API_URL / $CI_API_V4_URL)."),
            fmt: Format = FormatOpt) -> None:
    """Post the plan's review to the pull/merge request, updating tfreview's earlier comment for the same app and env."""
    from tfreview.usecases.comment import resolve_target, upsert

    target = resolve_target(os.environ, forge=forge.value if forge else None, project=repo, number=number, api_url=api_url)
    ctx, _ = _context(sign=False)  # a comment decides nothing: no signing key needed
    from tfreview.render.comment import marker, render_comment
    from tfreview.usecases.decide import approval_progress
    from tfreview.usecases.records import load_plan, load_review

    record = load_plan(ctx.store, plan_id)
    body = render_comment(record, load_review(ctx.store, record), approval_progress(ctx, record))
    posted = upsert(target, body, marker(record["app"], record["env"]))
    if fmt is Format.json:
        _emit_json({"plan_id": plan_id, "forge": target.forge, "action": posted.action,
                    "comment_id": posted.comment_id, "url": posted.url, "chars": len(body)})
        return
    _print(f"{posted.action} comment {posted.comment_id} on {posted.url or target.project}")
