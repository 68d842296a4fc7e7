"""Policy checks in the signed policy: which Rego modules a policy version holds, which of them judge an
environment, and what their result on a plan is (stored in the signed plan record).

Policy file (TOML), per environment, `[policy.default]` inherited where an environment names none:

    [policy.default]
    checks = ["policy/*.rego"]              # glob patterns, relative to the policy file's folder
    [policy.prod]
    checks = ["policy/*.rego", "policy/prod/*.rego"]
    checks_namespaces = ["main"]            # packages whose deny/violation/warn count (default ["main"])
    checks_timeout_seconds = 10             # per plan; past it the plan is blocked

Guarantees:
- `policy init`/`propose` read every matched file into the document's `rego_modules` ({path: source}); the
  version's sha256 (and so the admins' signatures) covers every rule. A file that does not parse is refused
  (BadInput, exit 2, naming file:line:column) before anything is stored.
- Plans are judged by the modules stored in the active, verified version, never by local files.
- `*_test.rego` modules are stored (for `policy test`) but never judge a plan.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from tfreview.errors import BadInput
from tfreview.trust import rego

MAX_MODULES = 200
MAX_MODULE_BYTES = 1_000_000
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\.rego", re.ASCII)


def _bad(what: str) -> BadInput:
    return BadInput(f"policy file: {what}", "fix the checks of the policy file (see docs/policy-as-code.md)")


def pattern_matches(pattern: str, name: str) -> bool:
    """Glob match as the file system globbed it: `*` and `?` stay within one folder, `**` crosses folders."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.fullmatch(out, name) is not None


def _patterns(rules: Any) -> list[tuple[str, str]]:
    """(env, pattern) of every `checks` entry of the raw `[policy]` tables (validated later by policy_from_dict)."""
    out = []
    if isinstance(rules, Mapping):
        for env, table in rules.items():
            if isinstance(table, Mapping) and isinstance(table.get("checks"), list):
                out += [(str(env), p) for p in table["checks"] if isinstance(p, str)]
    return out


def read_check_files(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """`data` (a policy TOML file's tables) with `rego_modules` read from the files its `checks` patterns match
    under `base`, each parsed; BadInput on a pattern that matches nothing, a file outside `base` or one that does
    not parse (file:line:column)."""
    if "rego_modules" in data:
        raise _bad("rego_modules is written by tfreview from the files `checks` names; list files in checks instead")
    patterns = _patterns(data.get("policy"))
    if not patterns:
        return data
    root = base.resolve()
    modules: dict[str, str] = {}
    for env, pattern in patterns:
        if pattern.startswith("/") or ".." in pattern.split("/"):
            raise _bad(f"[policy.{env}] checks: {pattern!r} must be a relative pattern inside {base}")
        found = sorted(p for p in base.glob(pattern) if p.is_file())
        if not found:
            raise _bad(f"[policy.{env}] checks: {pattern!r} matches no file under {base}")
        for path in found:
            real = path.resolve()
            if root not in real.parents:
                raise _bad(f"{path} is outside the policy file's folder {base}")
            if path.suffix != ".rego":
                raise _bad(f"[policy.{env}] checks: {path.relative_to(base)} is not a .rego file")
            name = path.relative_to(base).as_posix()
            if not _NAME.fullmatch(name):
                raise _bad(f"Rego file name {name!r}: use letters, digits, '_', '-', '.' and '/'")
            if name in modules:
                continue
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise BadInput(f"cannot read {path}: {exc.strerror}", "check the checks patterns") from None
            if len(raw) > MAX_MODULE_BYTES:
                raise _bad(f"{name} is larger than {MAX_MODULE_BYTES} bytes")
            try:
                modules[name] = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _bad(f"{name} is not UTF-8 text") from None
    if len(modules) > MAX_MODULES:
        raise _bad(f"checks name {len(modules)} files (at most {MAX_MODULES})")
    rego.check_modules(modules)  # all together, as they are evaluated: BadInput naming file:line:column
    return {**data, "rego_modules": modules}


def parse_stored_modules(raw: Any, parsed_rules: Any) -> dict[str, str]:
    """Validate a document's `rego_modules` ({name: source}); every `checks` pattern must match one of them."""
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) and _NAME.fullmatch(k) and isinstance(v, str)
                                               for k, v in raw.items()):
        raise _bad("rego_modules must map .rego file names to their source")
    modules = dict(raw)
    for env_policy in (parsed_rules.default, *parsed_rules.envs.values()):
        for pattern in env_policy.checks:
            if not any(pattern_matches(pattern, n) for n in modules):
                raise _bad(f"checks pattern {pattern!r} matches no module of the policy")
    return modules


def modules_for(modules: Mapping[str, str], patterns: tuple[str, ...]) -> dict[str, str]:
    """The check modules (test modules left out) that `patterns` select."""
    return {n: s for n, s in sorted(modules.items())
            if not rego.is_test_module(n) and any(pattern_matches(p, n) for p in patterns)}


def module_list(modules: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": n, "sha256": rego.module_sha256(s)} for n, s in sorted(modules.items())]


def plan_facts(record: Mapping[str, Any]) -> dict[str, Any]:
    """`data.tfreview`: what tfreview knows of a plan beside its JSON (from the plan record being made)."""
    summary = record.get("summary") or {}
    prior = record.get("prior_outputs") or {}
    release = record.get("release_vars") or {}
    return {
        "app": record.get("app"), "env": record.get("env"), "version": record.get("version"),
        "planner": record.get("planner"), "plan_kind": record.get("plan_kind"),
        "release_id": record.get("release_id"),
        "live_colour": prior.get("live_color"), "target_live_colour": release.get("live_color"),
        "classification": summary.get("classification"), "ecs": summary.get("ecs", []),
        "counts": summary.get("counts", {}),
        "risk_reasons": record.get("risk_reasons", []), "escalation_reasons": record.get("escalation_reasons", []),
        "risky": bool(record.get("risky")), "options": record.get("terraform_options") or {},
        "destroy": bool((record.get("terraform_options") or {}).get("destroy")),
    }


def start_checks(modules: Mapping[str, str], env_policy: Any, plan_json: bytes) -> rego.Pending:
    """Start the env's checks over `plan_json` (the truth): the engine takes the plan as input while the caller
    builds the facts; the `approvals` rules are asked for in the same query when a module names them."""
    from tfreview.trust import rego_approvals

    selected = modules_for(modules, env_policy.checks)
    return rego.start(selected, plan_json, env_policy.checks_namespaces, env_policy.checks_timeout_seconds,
                      extra_rules=rego_approvals.extra_rules(selected))


def _secrets_for(plan_json: bytes, needed: bool, secrets: frozenset[str] | None) -> frozenset[str]:
    """`secrets`, or (None) the plan's sensitive strings, looked for only when a message `needed` scrubbing: a
    passing plan is not parsed again."""
    if secrets is not None:
        return secrets
    if not needed:
        return frozenset()
    from tfreview.plan.redact import redact_plan_with_secrets

    return redact_plan_with_secrets(plan_json)[1]  # what the review hides, hidden by name included


def _scrubbed(run: rego.CheckRun, secrets: frozenset[str]) -> rego.CheckRun:
    from dataclasses import replace

    from tfreview.plan.diff import Scrubber

    scrub = Scrubber(secrets)
    findings = tuple(replace(f, msg=scrub(f.msg)) for f in run.findings)
    return replace(run, findings=findings, error=scrub(run.error) if run.error else None)


def run_checks(modules: Mapping[str, str], env_policy: Any, plan_json: bytes, facts: Mapping[str, Any],
               secrets: frozenset[str] | None = None) -> rego.CheckRun:
    """Evaluate the env's modules over `plan_json` (the truth) and scrub every message of `secrets` (None: the
    plan's sensitive strings, looked for only when there is a message: a passing plan is not parsed again)."""
    run = start_checks(modules, env_policy, plan_json).finish(facts)
    return _scrubbed(run, _secrets_for(plan_json, bool(run.findings or run.error), secrets))


def checks_record(policy_version: int, policy_sha256: str, modules: Mapping[str, str], env_policy: Any,
                  run: rego.CheckRun) -> dict[str, Any]:
    """The `policy_checks` field of a plan record (signed with it)."""
    selected = modules_for(modules, env_policy.checks)
    return {
        "policy_version": policy_version, "policy_sha256": policy_sha256,
        "modules": module_list(selected), "namespaces": list(env_policy.checks_namespaces),
        "rego_version": run.rego_version, "blocked": run.blocked, "error": run.error,
        "results": [f.to_json() for f in run.findings],
    }


class PlanChecks:
    """The active policy version's checks of one plan, started before the plan's review (`start_plan_checks`):
    the engine process takes the plan as its input while `tfreview plan` builds the review the facts need;
    `finish(record)` gives the record's `policy_checks`. Call `finish` or `cancel`."""

    def __init__(self, active: Any, env_policy: Any, plan_json: bytes) -> None:
        self.active, self.env_policy, self.plan_json = active, env_policy, plan_json
        self.modules = modules_for(active.document.rego_modules, env_policy.checks)
        self.pending = start_checks(active.document.rego_modules, env_policy, plan_json)

    def cancel(self) -> None:
        self.pending.cancel()

    def finish(self, record: Mapping[str, Any], secrets: frozenset[str] | None = None) -> dict[str, Any]:
        """The checks with `data.tfreview` = the facts of `record` (the plan record being made), as its
        `policy_checks`: every message scrubbed of `secrets` (None: the plan's sensitive strings, looked for only
        when there is a message; `plan` has them from its redaction); the `approvals` demands beside them (a rule
        that fails, or gives the wrong shape, sets `error` and blocks)."""
        from dataclasses import replace

        from tfreview.plan.diff import Scrubber
        from tfreview.trust import rego_approvals

        run = self.pending.finish(plan_facts(record))
        demands, demand_error = rego_approvals.demands_of_run(self.modules, run)
        secrets = _secrets_for(self.plan_json, bool(run.findings or run.error or demands or demand_error), secrets)
        run = _scrubbed(run, secrets)
        out = checks_record(self.active.version, self.active.sha256, self.active.document.rego_modules,
                            self.env_policy, run)
        scrub = Scrubber(secrets)
        out["approvals"] = [replace(d, msg=scrub(d.msg)).to_json() for d in demands]
        if demand_error and not out.get("error"):
            out.update(error=scrub(demand_error), blocked=True)
        return out


def start_plan_checks(history: Any, env: str, plan_json: bytes) -> PlanChecks | None:
    """The checks of the active policy version for `env` over `plan_json` (as `terraform show -json` wrote it),
    started; None when the environment has no checks."""
    if history is None:
        return None
    env_policy = history.active.rules.for_env(env)
    if not env_policy.checks:
        return None
    return PlanChecks(history.active, env_policy, plan_json)


def plan_checks(history: Any, env: str, plan_json: bytes, record: Mapping[str, Any]) -> dict[str, Any] | None:
    """`start_plan_checks` and `finish` in one: the record's `policy_checks`, or None without checks."""
    started = start_plan_checks(history, env, plan_json)
    return None if started is None else started.finish(record)


def active_modules(history: Any, env: str) -> list[dict[str, str]]:
    """[{"name", "sha256"}] of the active version's check modules for `env` (what a plan must have been judged by)."""
    active = history.active
    return module_list(modules_for(active.document.rego_modules, active.rules.for_env(env).checks))
