"""Rego policy checks (conftest conventions): parse modules, evaluate them over a plan, bounded and fail-closed.

The one interface the rest of tfreview uses (the engine can be swapped behind it):

    check_modules(modules)                     -> None, or BadInput naming the module, line and column
    evaluate(modules, plan_json, facts, ...)   -> CheckRun (messages per rule, or the one error that blocks)
    start(modules, plan_json, ...).finish(facts) -> the same, with the plan taken as input while the caller
                                                  builds the facts (`tfreview plan`: its review)
    run_tests(modules)                         -> [(test rule, passed, error)] for `policy test`

Conventions, as conftest's: in each namespace (`main` by default) the rules `deny` and `violation` block and
`warn` warns, as do the same names with suffixes (`deny_public_bucket`, `warn_tags`); each is a set (or array) of
strings, or of objects with a string `msg`. Rego v1 syntax is the
default (OPA 1.x, conftest 0.56+); a set whose modules do not all parse as v1 is read as v0 (`deny[msg] { ... }`),
where a v1 module needs `import rego.v1`, exactly as under OPA's v0-compatible mode. The input document is the
plan JSON as `terraform show -json` wrote it (the truth, secrets included); `data.tfreview` holds tfreview's facts.
The engine is given only the top-level keys of the plan that the modules read (tfreview.trust.rego_input): what a
rule sees does not change, and the engine's parse of the input, half of the checks' cost, shrinks with it.

Guarantees:
- fail closed: an evaluation error, a rule that does not end within `timeout` seconds, or a result of the wrong
  shape gives a CheckRun with `error` set (one line naming module/rule), which blocks the plan; never a pass;
- bounded: the engine runs in a forked child process that is killed at the time limit (Rego has no loop
  construct, but comprehensions over big ranges can run for hours); the parent only reads its JSON answer; the
  limit counts from `finish` (the facts sent), and a child nobody finishes is ended by `cancel` or, when its
  parent dies, at its read of the facts;
- quiet: the engine's own warnings (it prints them to stderr) never reach the terminal.

The engine is regorus (Microsoft's Rust Rego interpreter, PyPI package gordon-to-regorus): docs/design-notes.md.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from tfreview.errors import BadInput
from tfreview.trust import rego_input

RULES = ("deny", "violation", "warn")
BLOCKING = ("deny", "violation")
# A rule head at the start of a line (`deny_x contains`, `warn_y[msg] {`, `default deny_z := ...`).
# A name that is not a rule (a local variable at the start of a body line) is asked for and found undefined.
_RULE_HEAD = re.compile(r"^[ \t]*(?:default[ \t]+)?((?:deny|violation|warn)(?:_[A-Za-z0-9]+)*)\b", re.ASCII | re.M)
DEFAULT_TIMEOUT_S = 10.0
MAX_MESSAGES = 1000  # per rule: a rule that matches every resource of a huge plan still makes a readable record
MAX_MESSAGE_CHARS = 2000
_NAMESPACE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", re.ASCII)


def module_sha256(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def is_test_module(name: str) -> bool:
    """`*_test.rego` files hold `test_` rules (`policy test`), not checks."""
    return name.endswith("_test.rego")


def valid_namespace(name: Any) -> bool:
    return isinstance(name, str) and bool(_NAMESPACE.fullmatch(name))


@dataclass(frozen=True)
class Finding:
    """One message of one rule: `rule` is "deny", "violation" or "warn"; `namespace` the package it came from."""

    namespace: str
    rule: str
    msg: str

    @property
    def blocks(self) -> bool:
        return self.rule.split("_", 1)[0] in BLOCKING

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "rule": self.rule, "level": "deny" if self.blocks else "warn",
                "msg": self.msg}


@dataclass(frozen=True)
class CheckRun:
    """The outcome of one evaluation: the findings, or `error` (one line) when the checks could not run."""

    findings: tuple[Finding, ...] = ()
    error: str | None = None
    rego_version: str = "v1"
    elapsed_s: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)
    # the engine process's CPU seconds: (modules and the plan as input, before the facts; the query, after them)
    engine_cpu_s: tuple[float, float] | None = None
    # the top-level keys of the plan the engine was given (what the rules can read); None: the whole document
    input_keys: tuple[str, ...] | None = None

    @property
    def blocked(self) -> bool:
        return self.error is not None or any(f.blocks for f in self.findings)


# -- parsing ------------------------------------------------------------------------------------------------------
def _first_error(text: str) -> str:
    """regorus' error text ("--> file:line:col" ... "error: what") as one line: "file:line:col: what"."""
    where = next((ln.strip()[4:].strip() for ln in text.splitlines() if ln.strip().startswith("-->")), "")
    what = next((ln.strip()[6:].strip() for ln in text.splitlines() if ln.strip().startswith("error:")), "")
    if not what:
        what = next((ln.strip() for ln in text.splitlines() if ln.strip()), "unknown error")
    what = what.split("Stack backtrace:")[0].strip()
    return f"{where}: {what}" if where else what


def _engine(modules: Mapping[str, str]) -> tuple[Any, bool]:
    """One engine with every module added once, and whether it reads them as v0: v1 when they all parse as v1,
    else v0 when they all parse as v0 (v1 modules with `import rego.v1` do); else _ParseError naming the first
    module's v1 parse error. Runs inside the engine process."""
    import regorus

    v0_error = ""
    for v0 in (False, True):
        engine = regorus.Engine()
        engine.set_rego_v0(v0)
        try:
            for name, source in modules.items():
                engine.add_policy(name, source)
        except Exception as exc:  # noqa: BLE001 - the engine raises RuntimeError/ValueError with its message
            v0_error = _first_error(str(exc))
            continue
        return engine, v0
    raise _ParseError(_mixed_error(modules, v0_error))


def _mixed_error(modules: Mapping[str, str], v0_error: str) -> str:
    """The parse error to show when the modules parse neither all as v1 nor all as v0 (the failing path only)."""
    import regorus

    for name, source in modules.items():
        try:
            regorus.Engine().add_policy(name, source)
        except Exception as exc:  # noqa: BLE001
            v1_error = _first_error(str(exc))
            break
    else:  # every module parses alone as v1: the v0 reading names the problem
        return v0_error
    if v0_error.split(":")[0] != name:  # the v0 reading failed elsewhere: a v1 module among v0 ones
        return f"{v1_error} (as Rego v0: {v0_error}; a v1 module among v0 ones needs `import rego.v1`)"
    return v1_error


class _ParseError(Exception):
    pass


def rule_names(modules: Mapping[str, str]) -> tuple[str, ...]:
    """deny, violation, warn and every suffixed name (deny_public_bucket) a module defines at a line start."""
    found = {m.group(1) for source in modules.values() for m in _RULE_HEAD.finditer(source)}
    return tuple(sorted(found | set(RULES)))


def _rules_query(namespaces: tuple[str, ...], names: tuple[str, ...] = RULES) -> str:
    """One query for every rule of every namespace (in syntax both Rego versions read): an array with, per
    namespace, the object {rule: value} of its defined rules among `names`. An object comprehension is never
    undefined, so a namespace or rule that does not exist is an empty entry, not a failed query."""
    rules = ", ".join(f'"{r}"' for r in names)
    return "[" + ", ".join(f"{{r: v | r := [{rules}][_]; v := data.{ns}[r]}}" for ns in namespaces) + "]"


# -- the engine process -------------------------------------------------------------------------------------------
class _Child:
    """A forked engine process: `work(receive)` runs in it; `receive()` there returns the bytes the parent sends
    with `answer(timeout, send)` (b"" when the parent sent nothing, or gave up). The child's stderr goes to
    /dev/null (the engine prints its parse warnings there), and Rust's error backtraces are off there: with
    RUST_BACKTRACE=1 in the environment every engine error (a v0 module tried as v1 is one) cost half a second of
    symbol lookup. A child whose parent closes its pipes (gave up, or died) ends at its next read or write."""

    def __init__(self, work: Any) -> None:
        import regorus  # noqa: F401 - imported before the fork: the child never takes the import lock

        answer_read, answer_write = os.pipe()
        send_read, send_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: no Python cleanup of the parent's state, only os._exit
            code = 0
            try:
                os.close(answer_read)
                os.close(send_write)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.environ["RUST_LIB_BACKTRACE"] = "0"  # read by the engine at its first error, in this process only

                def receive() -> bytes:  # 8 bytes of length, then the message (no EOF needed: a later fork
                    chunks: list[bytes] = []  # may hold a copy of the parent's end)
                    want, size = 8, None
                    while want:
                        chunk = os.read(send_read, min(want, 1 << 20))
                        if not chunk:
                            return b""  # the parent gave up, or died
                        chunks.append(chunk)
                        want -= len(chunk)
                        if want == 0 and size is None:
                            size = want = int.from_bytes(b"".join(chunks), "big")
                            chunks = []
                    return b"".join(chunks)

                try:
                    answer = work(receive)
                except _ParseError as exc:
                    answer = {"parse_error": str(exc)}
                except Exception as exc:  # noqa: BLE001 - every engine failure is an answer: fail closed
                    answer = {"error": _first_error(str(exc)) or type(exc).__name__}
                if answer is not None:
                    data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                    view = memoryview(data)
                    while view:
                        n = os.write(answer_write, view)
                        view = view[n:]
            except BaseException:  # noqa: BLE001
                code = 1
            finally:
                os._exit(code)
        os.close(answer_write)
        os.close(send_read)
        self.pid: int | None = pid
        self._read_fd = answer_read
        self._send_fd = send_write

    def answer(self, timeout: float, send: bytes = b"") -> dict[str, Any]:
        """Send `send` (what `receive()` returns in the child; b"": nothing), then read the child's answer within
        `timeout` s (the child is killed past it): the decoded JSON object, {"timeout": True} or {"error": ...}."""
        import select

        import orjson

        if self.pid is None:
            return {"error": "the policy engine process was already used"}
        deadline = time.monotonic() + timeout
        chunks: list[bytes] = []
        out = memoryview(len(send).to_bytes(8, "big") + send if send else b"")
        timed_out = False
        try:
            if not out:
                os.close(self._send_fd)
                self._send_fd = -1
            else:  # never blocked in a write: the deadline holds, and the answer is read meanwhile
                os.set_blocking(self._send_fd, False)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                writing = [self._send_fd] if self._send_fd >= 0 else []
                readable, writable, _ = select.select([self._read_fd], writing, [], left)
                if writable:
                    try:
                        out = out[os.write(self._send_fd, out[:1 << 16]):]
                    except BlockingIOError:
                        pass
                    except BrokenPipeError:  # the child answered without reading (a module that does not parse)
                        out = out[:0]
                    if not out:
                        os.close(self._send_fd)
                        self._send_fd = -1
                if readable:
                    chunk = os.read(self._read_fd, 1 << 20)
                    if not chunk:
                        break
                    chunks.append(chunk)
        finally:  # killed in every case: past the time limit, on an interrupt, or (harmless) when it is exiting
            status = self._end()
        if timed_out:
            return {"timeout": True}
        if not chunks:
            return {"error": f"the policy engine stopped without an answer (status {status})"}
        try:
            decoded = orjson.loads(b"".join(chunks))
        except ValueError:
            return {"error": "the policy engine gave an unreadable answer"}
        if isinstance(decoded, dict):
            return decoded
        return {"error": "the policy engine gave an unreadable answer"}

    def cancel(self) -> None:
        """End the child without its answer (the parent no longer needs it); nothing when it already ended."""
        if self.pid is not None:
            self._end()

    def _end(self) -> int:
        for fd in (self._read_fd, self._send_fd):
            if fd >= 0:
                os.close(fd)
        self._read_fd = self._send_fd = -1
        pid, self.pid = self.pid, None
        if pid is None:
            return 0
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return os.waitpid(pid, 0)[1]


def _in_child(work: Any, timeout: float) -> dict[str, Any]:
    """Run `work()` in a forked engine process killed after `timeout` s: its answer (a JSON-ready dict, or the
    bytes of a JSON object, written as they are), or {"error": ...}, or {"timeout": True}."""
    return _Child(lambda _receive: work()).answer(timeout)


def check_modules(modules: Mapping[str, str], timeout: float = DEFAULT_TIMEOUT_S) -> str:
    """Parse `modules` ({name: source}); their Rego version ("v1" or "v0"). BadInput (exit 2) naming the module,
    line and column of the first error."""
    if not modules:
        return "v1"

    def work() -> dict[str, Any]:
        _, v0 = _engine(modules)  # _ParseError: the answer's parse_error
        return {"v0": v0}

    answer = _in_child(work, timeout)
    if answer.get("parse_error"):
        raise BadInput(f"Rego module does not parse: {answer['parse_error']}",
                       "fix the module (check it with: tfreview policy test DIR); nothing was stored")
    if answer.get("timeout") or answer.get("error"):
        raise BadInput(f"Rego modules could not be checked: {answer.get('error') or 'time limit reached'}",
                       "fix the modules; nothing was stored")
    return "v0" if answer.get("v0") else "v1"


def _shape(namespace: str, rule: str, value: Any) -> list[str]:
    """The messages of a rule's value; ValueError naming the rule when the value is not conftest's shape."""
    where = f"data.{namespace}.{rule}"
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"{where} is a {type(value).__name__}, not a set of messages (strings or objects with msg)")
    out: list[str] = []
    for item in value:
        if isinstance(item, dict):
            item = item.get("msg")
        if not isinstance(item, str):
            raise ValueError(f"{where} holds {json.dumps(item)[:80]}: each message must be a string or an "
                             "object with a string msg")
        out.append(item[:MAX_MESSAGE_CHARS])
    return sorted(out)


def start(modules: Mapping[str, str], plan_json: bytes | str, namespaces: tuple[str, ...] = ("main",),
          timeout: float = DEFAULT_TIMEOUT_S, extra_rules: tuple[str, ...] = (),
          slice_input: bool = True) -> "Pending":
    """Start the checks of `plan_json`: the engine process adds the check modules (test modules left out) and
    takes the plan as its input while the caller goes on (`tfreview plan` builds its review meanwhile, which the
    facts need); `finish(facts)` then evaluates. `extra_rules` (e.g. "approvals") are asked for in the same
    query; their values are the CheckRun's `extra`. Call `finish` or `cancel` (the process waits until then).
    The engine is given only the top-level keys of the plan the modules can read (tfreview.trust.rego_input);
    `slice_input=False` gives it the whole document (the tests' and the benchmark's comparison)."""
    checks = {n: s for n, s in sorted(modules.items()) if not is_test_module(n)}
    if not checks:
        return Pending(checks, (), namespaces, timeout, None)
    names = rule_names(checks)
    asked = names + tuple(r for r in extra_rules if r not in names)
    reader = rego_input.decoder() if slice_input else None

    def work(receive: Any) -> bytes | None:  # in the engine process: imports nothing (see _Child)
        engine, v0 = _engine(checks)
        # The plan's own bytes are the input, parsed once by the engine (never decoded to Python and encoded
        # again), before the facts are there: this is the part that overlaps the caller's own work.
        text = plan_json.decode() if isinstance(plan_json, bytes) else plan_json
        given = None
        if reader is not None:  # only the top-level keys the modules read (tfreview.trust.rego_input)
            text, given = rego_input.engine_input(text, list(checks.values()), engine.get_ast_as_json, reader)
        engine.set_input_json(text)
        del text
        before = time.process_time()  # the engine's CPU seconds, before and after the facts (docs/benchmarks.md)
        facts = receive()
        if not facts:
            return None  # the caller gave up: no answer
        engine.add_data_json('{"tfreview": %s}' % facts.decode())
        try:  # one query reads deny/violation/warn (and the extra rules) of every namespace
            found = engine.eval_query_as_json(_rules_query(namespaces, asked)).encode()
            return b'{"v0": %s, "cpu_s": [%.3f, %.3f], "input_keys": %s, "found": %s}' % (
                b"true" if v0 else b"false", before, time.process_time() - before, json.dumps(given).encode(),
                found)
        except Exception as exc:  # noqa: BLE001 - which rule failed, asked again one rule at a time
            failed = _failing_rule(engine, namespaces, names, exc)
            if failed is not None or asked == names:
                return json.dumps({"error": failed or _first_error(str(exc)) or type(exc).__name__,
                                   "v0": v0}).encode()
            # the checks run, an extra rule fails: the findings, and the extra rule's error beside them
            extra_error = _failing_rule(engine, namespaces, asked[len(names):], exc) or _first_error(str(exc))
            return json.dumps({"v0": v0, "extra_error": extra_error, "found": _rule_by_rule(engine, namespaces,
                                                                                            names)}).encode()

    return Pending(checks, asked, namespaces, timeout, _Child(work), extra_rules)


class Pending:
    """Checks started by `start`: `finish(facts)` gives the CheckRun, `cancel()` ends them unused."""

    def __init__(self, checks: Mapping[str, str], names: tuple[str, ...], namespaces: tuple[str, ...],
                 timeout: float, child: _Child | None, extra_rules: tuple[str, ...] = ()) -> None:
        self.checks, self.names, self.namespaces, self.timeout = checks, names, namespaces, timeout
        self.extra_rules = extra_rules
        self._child = child

    def cancel(self) -> None:
        if self._child is not None:
            self._child.cancel()

    def finish(self, facts: Mapping[str, Any] | None = None) -> CheckRun:
        """Evaluate with `data.tfreview` = `facts` (JSON-ready). Never raises for a policy problem: the problem is
        the CheckRun's `error`, which blocks. The time limit counts from here."""
        if self._child is None:
            return CheckRun()
        started = time.monotonic()
        try:
            sent = json.dumps(dict(facts or {}), allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            self.cancel()
            return CheckRun(error=f"policy checks failed: the plan's facts are not JSON ({exc})")
        answer = self._child.answer(self.timeout, sent)
        return _run_of(answer, self, time.monotonic() - started)


def _run_of(answer: Mapping[str, Any], pending: Pending, elapsed: float) -> CheckRun:
    """The CheckRun of the engine's answer to `start`'s query (pure)."""
    checks, namespaces, timeout = pending.checks, pending.namespaces, pending.timeout
    version = "v0" if answer.get("v0") else "v1"
    if answer.get("timeout"):
        return CheckRun(error=f"policy checks did not finish within {timeout:g} s (modules: {', '.join(checks)}); "
                              "a rule that runs this long blocks the plan", elapsed_s=elapsed)
    if answer.get("parse_error") or answer.get("error"):
        return CheckRun(error=f"policy checks failed: {answer.get('parse_error') or answer.get('error')}",
                        elapsed_s=elapsed)
    findings: list[Finding] = []
    extra: dict[str, Any] = {r: {} for r in pending.extra_rules}
    if answer.get("extra_error"):
        extra["error"] = str(answer["extra_error"])
    try:
        for path, value in sorted(_results(answer.get("found"), namespaces, pending.names).items()):
            _, ns_rule = path.split(".", 1)
            ns, rule = ns_rule.rsplit(".", 1)
            if rule in pending.extra_rules:
                extra[rule][ns] = value
                continue
            msgs = _shape(ns, rule, value)
            findings += [Finding(ns, rule, m) for m in msgs[:MAX_MESSAGES]]
            if len(msgs) > MAX_MESSAGES:
                findings.append(Finding(ns, rule, f"... and {len(msgs) - MAX_MESSAGES} more messages"))
    except ValueError as exc:
        return CheckRun(error=f"policy checks failed: {exc}", rego_version=version, elapsed_s=elapsed)
    cpu = answer.get("cpu_s")
    given = answer.get("input_keys")
    return CheckRun(tuple(findings), None, version, elapsed, extra,
                    tuple(cpu) if isinstance(cpu, list) and len(cpu) == 2 else None,
                    tuple(str(k) for k in given) if isinstance(given, list) else None)


def evaluate(modules: Mapping[str, str], plan_json: bytes | str, facts: Mapping[str, Any] | None = None,
             namespaces: tuple[str, ...] = ("main",), timeout: float = DEFAULT_TIMEOUT_S,
             extra_rules: tuple[str, ...] = (), slice_input: bool = True) -> CheckRun:
    """Evaluate the check modules (test modules left out) over `plan_json` with `data.tfreview` = `facts`
    (`start` and `finish` in one). Never raises for a policy problem: the problem is the CheckRun's `error`."""
    return start(modules, plan_json, namespaces, timeout, extra_rules, slice_input).finish(facts)


def _failing_rule(engine: Any, namespaces: tuple[str, ...], names: tuple[str, ...], exc: Exception) -> str | None:
    """The first rule among `names` whose own query fails, as one line naming it; None when none of them fails
    (error path only)."""
    for ns in namespaces:
        for rule in names:
            try:
                engine.eval_query_as_json(f"data.{ns}.{rule}")
            except Exception as rule_exc:  # noqa: BLE001
                return f"data.{ns}.{rule}: {_first_error(str(rule_exc))}"
    return None


def _rule_by_rule(engine: Any, namespaces: tuple[str, ...], names: tuple[str, ...]) -> dict[str, Any]:
    """The answer `_rules_query` gives, one query per rule (error path only: the engine may refuse the combined
    query for a rule outside `names`, since it reads the package whole)."""
    per_namespace = []
    for ns in namespaces:
        values = {}
        for rule in names:
            got = json.loads(engine.eval_query_as_json(f"data.{ns}.{rule}")).get("result") or []
            if got and got[0].get("expressions"):
                values[rule] = got[0]["expressions"][0]["value"]
        per_namespace.append(values)
    return {"result": [{"expressions": [{"value": per_namespace}]}]}


def _results(found: Any, namespaces: tuple[str, ...], names: tuple[str, ...]) -> dict[str, Any]:
    """{"data.<ns>.<rule>": value} of the engine's answer to `_rules_query` (ValueError when it is not that)."""
    try:
        per_namespace = found["result"][0]["expressions"][0]["value"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("the policy engine gave no result for the rules") from None
    if not isinstance(per_namespace, list) or len(per_namespace) != len(namespaces):
        raise ValueError("the policy engine gave a result of the wrong shape for the rules")
    return {f"data.{ns}.{rule}": value for ns, values in zip(namespaces, per_namespace, strict=True)
            for rule, value in (values.items() if isinstance(values, dict) else ()) if rule in names}


def run_tests(modules: Mapping[str, str], timeout: float = DEFAULT_TIMEOUT_S) -> list[dict[str, Any]]:
    """Run every `test_` rule of the `*_test.rego` modules (with the other modules loaded), as `opa test` does:
    a test passes when its rule is defined and true. [{"name", "passed", "error"}], sorted by name."""

    def work() -> dict[str, Any]:
        engine, _v0 = _engine(dict(modules))
        out = []
        for name, source in sorted(modules.items()):
            if not is_test_module(name):
                continue
            package = re.search(r"^\s*package\s+([A-Za-z0-9_.]+)", source, re.M)
            tests = sorted(set(re.findall(r"^\s*(test_[A-Za-z0-9_]*)\b", source, re.M)))
            for test in tests:
                path = f"data.{package.group(1) if package else 'main'}.{test}"
                try:
                    found = json.loads(engine.eval_query_as_json(path))
                    values = [e["value"] for r in found.get("result", []) for e in r.get("expressions", [])]
                    out.append({"name": path, "module": name, "passed": values == [True], "error": None})
                except Exception as exc:  # noqa: BLE001
                    out.append({"name": path, "module": name, "passed": False, "error": _first_error(str(exc))})
        return {"tests": out}

    answer = _in_child(work, timeout)
    if answer.get("parse_error"):
        raise BadInput(f"Rego module does not parse: {answer['parse_error']}", "fix the module")
    if answer.get("timeout"):
        raise BadInput(f"policy tests did not finish within {timeout:g} s", "make the test rules terminate")
    if answer.get("error"):
        raise BadInput(f"policy tests failed to run: {answer['error']}", "fix the modules")
    return list(answer["tests"])
