"""The `policy` group: the signed, versioned policy in the store (init, propose, approve, show, check, test)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from tfreview.cli.app import Format, FormatOpt, _context, _emit_json, _print, _settings, app


# -- policy -------------------------------------------------------------------------------------------------------
policy_app = typer.Typer(help="The signed, versioned policy in the store (rules, signers, admins).", no_args_is_help=True)


app.add_typer(policy_app, name="policy")


def _print_policy(shown: dict[str, Any], fmt: Format, headline: str = "") -> None:
    if fmt is Format.json:
        _emit_json(shown)
        return
    if headline:
        _print(headline)
    active, pending = shown["active"], shown["pending"]
    _print(f"policy version {active['version']} (active), sha256 {active['sha256']}")
    _print(f"  signed by: {', '.join(active['signed_by'])}")
    _print(f"  admins: {', '.join(active['admins'])} (quorum {active['admin_quorum']})")
    for who, fps in active["signers"].items():
        _print(f"  signer {who}: {', '.join(fps)}")
    for module in active.get("checks", []):
        _print(f"  check {module['name']}: sha256 {module['sha256']}")
    if pending:
        _print(f"policy version {pending['version']} pending: signed by {', '.join(pending['signed_by']) or 'nobody'}, "
               f"needs {active['admin_quorum']} admin(s) of version {active['version']}: "
               f"tfreview policy approve {pending['version']}")


@policy_app.command("init")
def policy_init(file: Path = typer.Argument(..., help="The policy TOML file (rules, [signers], admins)."),
                fmt: Format = FormatOpt) -> None:
    """Install policy version 1 in a store without one (trust on first use; you must be one of its admins)."""
    from tfreview.store import open_store
    from tfreview.trust.admin import init
    from tfreview.trust.signer import find_signer

    settings = _settings()
    from tfreview.trust.verify import claimed_user
    from tfreview.usecases.context import Context

    shown = init(settings, open_store(settings.store), find_signer(), file, claimed_user(), context=Context)
    _print_policy(shown, fmt, "installed policy version 1")
    if fmt is Format.text:
        _print("pin this root in tfreview.toml (commit it: code review then sees any change of root):")
        _print(f'[trust]\npolicy_root = "{shown["pin"]}"')


@policy_app.command("propose")
def policy_propose(file: Path = typer.Argument(..., help="The new policy TOML file."), fmt: Format = FormatOpt) -> None:
    """Propose the next policy version; active once admin_quorum admins of the current version signed it."""
    from tfreview.trust.admin import propose

    ctx, _ = _context()
    _print_policy(propose(ctx, file), fmt)


@policy_app.command("approve")
def policy_approve(version: int = typer.Argument(..., help="The pending policy version."), fmt: Format = FormatOpt) -> None:
    """Sign a pending policy version as an admin of the active one."""
    from tfreview.trust.admin import approve

    ctx, _ = _context()
    _print_policy(approve(ctx, version), fmt)


@policy_app.command("show")
def policy_show(fmt: Format = FormatOpt) -> None:
    """The active policy version, its sha256, signers and admins (and a pending proposal)."""
    from tfreview.store import open_store
    from tfreview.trust.admin import show_store

    settings = _settings()
    shown = show_store(open_store(settings.store), settings.policy_root)
    _print_policy(shown, fmt)
    if fmt is Format.text:
        _print(f'root pin ([trust] in tfreview.toml): policy_root = "{shown["pin"]}"')


@policy_app.command("check")
def policy_check(target: str = typer.Argument(..., metavar="PLAN_JSON|PLAN_ID",
                                             help="A `terraform show -json` file, or a stored plan id."),
                 policy_dir: Optional[Path] = typer.Option(None, "--policy", "-p", help="Folder of .rego files "
                                                           "(default: the store's active policy)."),
                 env: Optional[str] = typer.Option(None, "--env", help="Environment whose checks apply (default: "
                                                   "the plan's; [policy.default] for a file)."),
                 namespace: Optional[list[str]] = typer.Option(None, "--namespace", help="Package to check "
                                                               "(repeatable; default main)."),
                 timeout: float = typer.Option(10.0, "--timeout", min=0.1, max=3600, help="Seconds before the "
                                               "checks are stopped (and fail)."),
                 fmt: Format = FormatOpt) -> None:
    """Run Rego checks on a plan without touching the store: exit 0 pass, 3 blocked, 1 checks failed to run."""
    from tfreview.errors import PolicyRefusal
    from tfreview.render.checks import approval_lines
    from tfreview.text import visible
    from tfreview.usecases.policycheck import PolicyChecksFailed, check

    store_url = None if Path(target).is_file() and policy_dir is not None else _settings().store
    result = check(target, store_url, policy_dir, env, tuple(namespace or ()), timeout)
    denies = sum(1 for r in result["results"] if r["level"] == "deny")
    if fmt is Format.json:
        _emit_json(result)
    else:
        for r in result["results"]:
            _print(f"{r['level']:<5} {r['namespace']}.{r['rule']}: {visible(r['msg'], keep_lines=False)}")
        for line in approval_lines(result):  # Rego approval rules (issue 22)
            _print(visible(line, keep_lines=False))
        warns = len(result["results"]) - denies
        if not result["error"]:
            _print(f"{len(result['modules'])} module(s) of {result['policy']}: {denies} deny, {warns} warn")
    if result["error"]:
        raise PolicyChecksFailed(result["error"], "fix the rule it names (tfreview policy test DIR)")
    if result["blocked"]:
        first = next(r for r in result["results"] if r["level"] == "deny")
        raise PolicyRefusal(f"blocked by policy: {first['namespace']}.{first['rule']}: {first['msg']}"
                            + (f" (+{denies - 1} more)" if denies > 1 else ""),
                            "change the plan, or the rule")


@policy_app.command("test")
def policy_test(directory: Path = typer.Argument(..., help="Folder of .rego files with *_test.rego tests."),
                timeout: float = typer.Option(10.0, "--timeout", min=0.1, max=3600, help="Seconds for all tests."),
                fmt: Format = FormatOpt) -> None:
    """Run the test_ rules of *_test.rego files, as opa test does: exit 1 when one fails."""
    from tfreview.usecases.policycheck import PolicyChecksFailed, test

    results = test(directory, timeout)
    failed = [r for r in results if not r["passed"]]
    if fmt is Format.json:
        _emit_json({"tests": results, "passed": len(results) - len(failed), "failed": len(failed)})
    else:
        for r in results:
            _print(f"{'PASS' if r['passed'] else 'FAIL'} {r['module']}: {r['name']}"
                   + (f" ({r['error']})" if r["error"] else ""))
        _print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise PolicyChecksFailed(f"{len(failed)} of {len(results)} policy test(s) failed, first: {failed[0]['name']}",
                                 "fix the rule or the test")
