"""`tfreview policy check` and `tfreview policy test`: Rego checks for policy authors, without the store's writes.

check: PLAN_JSON (a `terraform show -json` file, as conftest reads it) or PLAN_ID (a stored plan: its reviewed,
redacted JSON and its record's facts), judged by the .rego files of `--policy DIR` or else by the store's active
policy version for the plan's environment. Nothing is written anywhere.
test:  every `test_` rule of the `*_test.rego` files of DIR, with the other modules of DIR loaded (`opa test`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tfreview.errors import BadInput, TfreviewError
from tfreview.trust import rego


class PolicyChecksFailed(TfreviewError):
    """The checks could not run (a module that does not parse, an evaluation error, the time limit): exit 1."""


def read_dir(directory: Path) -> dict[str, str]:
    """Every .rego file under `directory` ({relative path: source}); BadInput when there is none."""
    if not directory.is_dir():
        raise BadInput(f"{directory} is not a directory", "pass the folder that holds your .rego files")
    modules: dict[str, str] = {}
    for path in sorted(directory.rglob("*.rego")):
        if path.is_file():
            try:
                modules[path.relative_to(directory).as_posix()] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise BadInput(f"cannot read {path}: {exc}", "Rego files are UTF-8 text") from None
    if not modules:
        raise BadInput(f"no .rego file under {directory}", "pass the folder that holds your .rego files")
    return modules


def _parse(modules: dict[str, str]) -> None:
    try:
        rego.check_modules(modules)
    except BadInput as exc:
        raise PolicyChecksFailed(exc.message, exc.hint) from None


def check(target: str, store_url: str | None, policy_dir: Path | None, env: str | None,
          namespaces: tuple[str, ...], timeout: float) -> dict[str, Any]:
    """The result of the checks on `target` (a plan JSON file or a stored plan id), as JSON-ready data."""
    from tfreview.trust.checks import modules_for, plan_facts

    path = Path(target)
    record: dict[str, Any] = {}
    secrets: frozenset[str] | None = None
    early: _Early | None = None
    if path.is_file():
        try:
            plan_json = path.read_bytes()
        except OSError as exc:
            raise BadInput(f"cannot read {path}: {exc.strerror}", "pass a `terraform show -json` file") from None
        from tfreview.plan.redact import redact_plan_with_secrets

        if policy_dir is not None:  # the engine takes the plan as input while the plan is redacted here
            early = _Early(policy_dir, plan_json, namespaces, timeout)
        try:
            # InvalidPlan (exit 2) for what is not a plan, or a broken one (as every command reading a plan
            # file), before any problem of the modules; the messages are scrubbed of every value the review
            # would hide (hidden by name included).
            secrets = redact_plan_with_secrets(plan_json)[1]
        except BaseException:
            if early is not None:
                early.cancel()
            raise
        facts = {"env": env}
    else:
        if store_url is None:
            raise BadInput(f"{target} is neither a file nor a stored plan", "pass a plan JSON file or a plan id")
        from tfreview.store import open_store
        from tfreview.usecases.records import load_plan, reviewed_json

        store = open_store(store_url)
        record = load_plan(store, target)
        plan_json = reviewed_json(store, record)  # the reviewed copy: the store holds no unredacted JSON
        facts = plan_facts(record)
        env = env or record.get("env")
    if early is not None:
        checks = early.checks()  # the modules' own problem, if any, now (after the plan's)
        source = str(policy_dir)
    elif policy_dir is not None:
        modules = read_dir(policy_dir)
        _parse(modules)
        checks = {n: s for n, s in modules.items() if not rego.is_test_module(n)}
        source = str(policy_dir)
    else:
        if store_url is None:
            raise BadInput("no --policy DIR and no store", "pass --policy DIR, or a store whose policy has checks")
        from tfreview.trust.policy import load_history
        from tfreview.store import open_store

        active = load_history(open_store(store_url)).active
        env_policy = active.rules.for_env(env or "default")
        namespaces = namespaces or env_policy.checks_namespaces
        checks = modules_for(active.document.rego_modules, env_policy.checks)
        if not checks:
            raise BadInput(f"the store's policy version {active.version} has no checks for {env or 'default'}",
                           "pass --policy DIR, or --env ENV of an environment with checks")
        source = f"policy version {active.version}"
    from tfreview.plan.diff import Scrubber

    from dataclasses import replace

    from tfreview.trust import rego_approvals

    # deny/violation/warn and the `approvals` rules in one engine pass (the plan taken as input once)
    if early is not None:
        run = early.finish(facts)
    else:
        run = rego.evaluate(checks, plan_json, facts, namespaces or ("main",), timeout,
                            extra_rules=rego_approvals.extra_rules(checks))
    demands, demand_error = rego_approvals.demands_of_run(checks, run)
    error = run.error or demand_error
    if secrets is None:  # a stored plan (checked when it was made): parsed only when there is a message to scrub
        secrets = _secrets(plan_json) if run.findings or error or demands else frozenset()
    scrub = Scrubber(secrets)
    results = [{**f.to_json(), "msg": scrub(f.msg)} for f in run.findings]
    return {"target": target, "policy": source, "modules": [{"name": n, "sha256": rego.module_sha256(s)}
                                                             for n, s in sorted(checks.items())],
            "rego_version": run.rego_version, "error": scrub(error) if error else None,
            "blocked": run.blocked or bool(demand_error), "results": results,
            "approvals": [replace(d, msg=scrub(d.msg)).to_json() for d in demands]}


class _Early:
    """`policy check FILE --policy DIR`: the checks started before the plan is redacted (`rego.start`), so the
    engine takes the plan as its input meanwhile, as in `tfreview plan`. A problem of DIR (unreadable, no .rego,
    a module that does not parse) is kept and raised by `checks()`, after the plan's own problems, in the order
    the command always reported them."""

    def __init__(self, policy_dir: Path, plan_json: bytes, namespaces: tuple[str, ...], timeout: float) -> None:
        from tfreview.trust import rego_approvals

        self._problem: TfreviewError | None = None
        self._checks: dict[str, str] = {}
        self._pending: rego.Pending | None = None
        try:
            modules = read_dir(policy_dir)
            _parse(modules)
        except TfreviewError as exc:
            self._problem = exc
            return
        self._checks = {n: s for n, s in modules.items() if not rego.is_test_module(n)}
        self._pending = rego.start(self._checks, plan_json, namespaces or ("main",), timeout,
                                   extra_rules=rego_approvals.extra_rules(self._checks))

    def checks(self) -> dict[str, str]:
        if self._problem is not None:
            raise self._problem
        return self._checks

    def finish(self, facts: dict[str, Any]) -> rego.CheckRun:
        assert self._pending is not None  # checks() raised otherwise
        return self._pending.finish(facts)

    def cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()


def _secrets(plan: Any) -> frozenset[str]:
    from tfreview.plan.parse import sensitive_strings

    return sensitive_strings(plan)


def test(directory: Path, timeout: float) -> list[dict[str, Any]]:
    """Run the `test_` rules of DIR's `*_test.rego` files; BadInput when there is none."""
    modules = read_dir(directory)
    if not any(rego.is_test_module(n) for n in modules):
        raise BadInput(f"no *_test.rego file under {directory}", "write test_ rules in files named *_test.rego")
    _parse(modules)
    try:
        results = rego.run_tests(modules, timeout)
    except BadInput as exc:
        raise PolicyChecksFailed(exc.message, exc.hint) from None
    if not results:
        raise BadInput(f"no test_ rule in the *_test.rego files of {directory}", "name test rules test_...")
    return results
