"""Notifications: tell people what happened (a plan waits for approval, a release failed...) through apprise.

What this module guarantees:
- Targets are configured per environment in tfreview.toml (`[notify.<env>]`, or `[notify.default]` for the
  environments without a table): `urls_env` NAMES an environment variable holding the apprise URLs (they carry
  tokens: secrets never live in a file), `events` lists the events wanted (default: all), `timeout_s` bounds one
  delivery. A `urls`/`url` key in the file is refused (exit 2).
- Events come from the audit log: every entry a command appends passes `Notifier.saw`; after the command (and
  at once for apply-started and break-glass) `Notifier.flush` turns them into short notices. Break-glass is sent
  to the environment's targets whatever their `events`.
- Each notice says app, env, version and plan id. Text from a plan or a person is made visible (control and
  bidi characters escaped, as on the terminal), @-mentions are broken, and the body is given to apprise as plain
  text, which escapes it for the target's markup (`&<>` for Slack, CommonMark punctuation for Markdown targets,
  HTML entities for HTML ones).
- Never in the way: deliveries run in parallel, each bounded by its timeout, the whole batch by the largest one
  plus a second; a failure is one `warning:` line on stderr and a `notify-failed` audit entry naming the target,
  the URL's scheme and its position, never the URL or a token. Nothing here raises into the command.
"""
from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from tfreview.errors import BadInput
from tfreview.text import visible

EVENTS = ("plan-needs-approval", "approved", "rejected", "apply-started", "release-succeeded", "release-failed",
          "break-glass", "policy-proposed", "policy-activated")
ALWAYS = frozenset({"break-glass"})  # sent whatever a target's `events` say
IMMEDIATE = frozenset({"apply-start", "break-glass"})  # audit events flushed at once (the release is starting)
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 30.0
_KEYS = ("urls_env", "events", "timeout_s")
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_MENTION = re.compile(r"@(?=(?:channel|here|everyone|all)\b)|<!(?=channel|here|everyone)", re.IGNORECASE)
MAX_FIELD = 300  # characters of one untrusted field in a notice


@dataclass(frozen=True)
class Target:
    """One configured destination: `name` is the [notify.<name>] table (an environment or "default")."""

    name: str
    urls_env: str
    events: frozenset[str]
    timeout_s: float = DEFAULT_TIMEOUT_S

    def wants(self, event: str) -> bool:
        return event in ALWAYS or event in self.events


def parse_config(table: Any, where: str) -> dict[str, Target]:
    """The `[notify]` table of tfreview.toml as Targets by name; BadInput (exit 2) for anything else, and for a
    URL written in the file (URLs hold tokens: they come from the variable `urls_env` names)."""
    import difflib

    if table is None:
        return {}
    if not isinstance(table, dict):
        raise BadInput(f"{where}: notify must be a table ([notify.<env>])", "see docs/notifications.md")
    out = {}
    for name, body in table.items():
        at = f"{where}: [notify.{name}]"
        if not isinstance(body, dict):
            raise BadInput(f"{at} must be a table", 'write [notify.<env>] with urls_env = "VARIABLE"')
        for key in body:
            if key in ("url", "urls"):
                raise BadInput(f"{at} has {key!r}: notification URLs carry tokens and never live in a file",
                               'put them in an environment variable and name it: urls_env = "TFREVIEW_NOTIFY_..."')
            if key not in _KEYS:
                close = difflib.get_close_matches(key, _KEYS, n=1)
                raise BadInput(f"{at}: unknown key {key!r}",
                               f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(_KEYS)}")
        urls_env = body.get("urls_env")
        if not isinstance(urls_env, str) or not _ENV_VAR.fullmatch(urls_env):
            raise BadInput(f"{at}: urls_env must name an environment variable",
                           'e.g. urls_env = "TFREVIEW_NOTIFY_PROD" (letters, digits and _)')
        events = body.get("events", list(EVENTS))
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise BadInput(f"{at}: events must be a list of event names", f"known events: {', '.join(EVENTS)}")
        for event in events:
            if event not in EVENTS:
                close = difflib.get_close_matches(event, EVENTS, n=1)
                raise BadInput(f"{at}: unknown event {event!r}",
                               f"did you mean {close[0]!r}?" if close else f"known events: {', '.join(EVENTS)}")
        timeout = body.get("timeout_s", DEFAULT_TIMEOUT_S)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT_S:
            raise BadInput(f"{at}: timeout_s must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}",
                           "a few seconds: a notification never holds up a release")
        out[name] = Target(name, urls_env, frozenset(events), float(timeout))
    return out


# -- what is said (pure) -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Notice:
    """One message: `event` (one of EVENTS), the release it is about, a title and a few lines of plain text."""

    event: str
    app: str | None
    env: str | None
    version: str | None
    plan_id: str | None
    title: str
    lines: tuple[str, ...]

    @property
    def body(self) -> str:
        return "\n".join(self.lines)


def clean(value: Any, limit: int = MAX_FIELD) -> str:
    """Untrusted text (from a plan, a store or a person) on one line: control and bidi characters made visible,
    @channel-style mentions and Slack's <!channel> broken, at most `limit` characters. The target's markup is
    escaped by apprise (the body is sent as plain text)."""
    text = visible(str(value), keep_lines=False)
    text = _MENTION.sub(lambda m: m.group() + "\u2060" if m.group() == "@" else "<\u2060!", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _who(record: Mapping[str, Any]) -> str:
    return "app {app}, env {env}, version {version}, plan {plan}".format(
        app=clean(record.get("app")), env=clean(record.get("env")), version=clean(record.get("version")),
        plan=clean(record.get("plan_id") or record.get("id")))


def _notice(event: str, fields: Mapping[str, Any], title: str, *lines: str) -> Notice:
    def opt(key: str) -> str | None:
        value = fields.get(key) or (fields.get("id") if key == "plan_id" else None)
        return None if value is None else clean(value)

    return Notice(event, opt("app"), opt("env"), opt("version"), opt("plan_id"), title,
                  (_who(fields), *[line for line in lines if line]))


def _duration(start: Any, end: Any) -> str:
    from tfreview.review.policy import parse_time

    try:
        seconds = (parse_time(str(end)) - parse_time(str(start))).total_seconds()
    except (ValueError, TypeError):
        return ""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def plan_needs_approval(record: Mapping[str, Any], required: int, approved: int, approvers: Sequence[str] | None,
                        review_link: str | None = None) -> Notice:
    """A plan waits: how many approvals are missing, who may give them, the command to run, the review link."""
    missing = max(required - approved, 0)
    may = ", ".join(clean(a, 80) for a in approvers[:8]) if approvers is not None else "anyone but the planner"
    risks = [clean(r, 120) for r in (record.get("risk_reasons") or [])[:3]]
    summary = (record.get("summary") or {}).get("summary_line")
    return _notice("plan-needs-approval", record,
                   f"plan needs approval: {clean(record.get('app'))} {clean(record.get('version'))} -> "
                   f"{clean(record.get('env'))}",
                   f"planned by {clean(record.get('planner'))}: {clean(summary)}" if summary else
                   f"planned by {clean(record.get('planner'))}",
                   f"{missing} of {required} approval(s) missing; may approve: {may}",
                   f"risk: {'; '.join(risks)}" if risks else "",
                   f"approve with: tfreview approve {clean(record.get('id'))}",
                   f"review: {clean(review_link, 500)}" if review_link else
                   f"review with: tfreview show {clean(record.get('id'))}")


def decision(entry: Mapping[str, Any]) -> Notice:
    kind = "approved" if entry.get("event") == "approve" else "rejected"
    comment = (entry.get("details") or {}).get("comment")
    return _notice(kind, entry, f"plan {kind} by {clean(entry.get('actor'))}: {clean(entry.get('app'))} "
                   f"{clean(entry.get('version'))} -> {clean(entry.get('env'))}",
                   f"{'comment' if kind == 'approved' else 'reason'}: {clean(comment)}" if comment else "")


def apply_started(entry: Mapping[str, Any]) -> Notice:
    return _notice("apply-started", entry, f"apply started by {clean(entry.get('actor'))}: {clean(entry.get('app'))} "
                   f"{clean(entry.get('version'))} -> {clean(entry.get('env'))}")


def break_glass(entry: Mapping[str, Any]) -> Notice:
    reason = (entry.get("details") or {}).get("reason")
    return _notice("break-glass", entry, f"BREAK-GLASS apply by {clean(entry.get('actor'))}: "
                   f"{clean(entry.get('app'))} {clean(entry.get('version'))} -> {clean(entry.get('env'))}",
                   f"approvals bypassed; reason: {clean(reason)}")


def release_succeeded(entry: Mapping[str, Any], release: Mapping[str, Any] | None) -> Notice:
    release = release or {}
    colour = release.get("live_color")
    took = _duration(release.get("started_at"), release.get("finished_at"))
    return _notice("release-succeeded", entry, f"released: {clean(entry.get('app'))} {clean(entry.get('version'))} "
                   f"in {clean(entry.get('env'))}",
                   f"live colour: {clean(colour)}" if colour else "",
                   f"took {took}" if took else "", f"by {clean(entry.get('actor'))}")


def release_failed(entry: Mapping[str, Any], reason: Any, *, rolled_back: bool = False) -> Notice:
    what = "rolled back" if rolled_back else "release FAILED"
    return _notice("release-failed", entry, f"{what}: {clean(entry.get('app'))} {clean(entry.get('version'))} in "
                   f"{clean(entry.get('env'))}", f"reason: {clean(reason, 500)}" if reason else "",
                   f"by {clean(entry.get('actor'))}")


def policy_change(entry: Mapping[str, Any], activated: bool, quorum: int | None = None) -> Notice:
    details = entry.get("details") or {}
    version, sha = clean(details.get("version")), clean(str(details.get("policy_sha256") or "")[:12])
    if activated:
        return Notice("policy-activated", None, None, None, None, f"policy version {version} is active",
                      (f"signed in by {clean(entry.get('actor'))}; sha256 {sha}",))
    return Notice("policy-proposed", None, None, None, None, f"policy version {version} proposed",
                  (f"proposed by {clean(entry.get('actor'))}; sha256 {sha}",
                   f"needs {quorum} admin signature(s): tfreview policy approve {version}" if quorum else
                   f"admins sign it with: tfreview policy approve {version}"))


def review_link(environ: Mapping[str, str]) -> str | None:
    """The pull/merge request a CI run plans for (where `tfreview comment` posts), from the CI's variables."""
    if environ.get("GITLAB_CI") and environ.get("CI_MERGE_REQUEST_PROJECT_URL") and environ.get("CI_MERGE_REQUEST_IID"):
        return f"{environ['CI_MERGE_REQUEST_PROJECT_URL']}/-/merge_requests/{environ['CI_MERGE_REQUEST_IID']}"
    if environ.get("GITHUB_ACTIONS") and environ.get("GITHUB_REPOSITORY"):
        from tfreview.comment import _github_pr

        number = _github_pr(environ)
        if number:
            server = environ.get("GITHUB_SERVER_URL") or "https://github.com"
            return f"{server}/{environ['GITHUB_REPOSITORY']}/pull/{number}"
    return None


def targets_for(notice: Notice, targets: Mapping[str, Target]) -> list[Target]:
    """Who hears of `notice`: its environment's table (else [notify.default]); a notice without an environment
    (a policy change) goes to every table; each only if it wants the event (break-glass always)."""
    if notice.env is None:
        chosen = list(targets.values())
    else:
        own = targets.get(notice.env) or targets.get("default")
        chosen = [own] if own is not None else []
    return [t for t in chosen if t.wants(notice.event)]


# -- delivery (the shell) ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Failure:
    """A delivery that did not happen: which target, which of its URLs (1-based) and its scheme, and why. Never
    the URL itself (it holds tokens)."""

    target: str
    index: int
    scheme: str
    reason: str

    def line(self, event: str) -> str:
        return (f"notification {event!r} to [notify.{self.target}] (URL {self.index}, {self.scheme}) failed: "
                f"{self.reason}; carrying on")


def split_urls(value: str) -> list[str]:
    """The URLs of a variable: separated by spaces, commas or newlines (as apprise's own configuration)."""
    return [u for u in re.split(r"[\s,]+", value.strip()) if u]


def _scheme(url: str) -> str:
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]{0,15})://", url)
    return m.group(1).lower() if m else "?"


# Services that render Markdown although apprise hands them plain text as it is (its plugin's format is TEXT):
# their body is escaped here. Every other plugin escapes plain text for its own markup (Slack: & < >; Markdown
# targets such as Teams workflows and Rocket.Chat: CommonMark punctuation; e-mail: HTML entities).
MARKDOWN_AS_TEXT = frozenset({"mmost", "mmosts"})
_ASCII_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def markdown_escaped(text: str) -> str:
    """`text` with every ASCII punctuation character backslash-escaped: CommonMark shows each literally (no
    links, emphasis, headings, code or HTML can be made from it)."""
    return _ASCII_PUNCTUATION.sub(r"\\\1", text)


def _quiet_apprise() -> None:
    import logging

    import warnings

    log = logging.getLogger("apprise")  # its messages may quote a URL (tokens): never printed
    log.setLevel(logging.CRITICAL + 1)
    log.propagate = False
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    try:  # a target with ?verify=no: urllib3 would warn on stderr at every request (the one line is ours)
        from urllib3.exceptions import InsecureRequestWarning

        warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    except ImportError:  # pragma: no cover - urllib3 comes with requests, which apprise needs
        pass


def send_one(url: str, notice: Notice, timeout_s: float) -> str | None:
    """Send `notice` to one apprise URL; None when it was delivered, else why not (without the URL)."""
    import apprise

    _quiet_apprise()
    sender = apprise.Apprise()
    if not sender.add(url):
        return "not a notification URL apprise understands"
    for server in sender:
        server.socket_connect_timeout = timeout_s
        server.socket_read_timeout = timeout_s
    title, body = notice.title, notice.body
    if _scheme(url) in MARKDOWN_AS_TEXT:
        title, body = markdown_escaped(title), markdown_escaped(body)
    started = time.monotonic()
    try:
        ok = sender.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT)
    except Exception as exc:  # a plugin's bug must not end the command
        return f"the sender failed ({type(exc).__name__})"
    if ok:
        return None
    if time.monotonic() - started >= timeout_s:
        return f"no answer within {timeout_s:g} s"
    return "refused or unreachable (an error status, or no connection)"


Sender = Callable[[str, Notice, float], "str | None"]


def deliver(notices: Iterable[Notice], targets: Mapping[str, Target], environ: Mapping[str, str],
            send: Sender = send_one) -> list[tuple[Notice, Failure]]:
    """Send each notice to its targets, every URL in its own thread; wait at most the largest timeout plus a
    second for all of them (a delivery still running then counts as timed out and is abandoned)."""
    jobs: list[tuple[Notice, Target, int, str]] = []
    failures: list[tuple[Notice, Failure]] = []
    for notice in notices:
        for target in targets_for(notice, targets):
            urls = split_urls(environ.get(target.urls_env, ""))
            if not urls:
                failures.append((notice, Failure(target.name, 0, "-", f"{target.urls_env} is not set or empty")))
            jobs.extend((notice, target, i, url) for i, url in enumerate(urls, 1))
    if not jobs:
        return failures
    if send is send_one:  # apprise finds its plugins once, here, not in several threads at once
        try:
            import apprise

            _quiet_apprise()
            apprise.Apprise().add("json://localhost")
        except Exception:  # noqa: BLE001 - each delivery reports its own failure below
            pass
    results: dict[int, str | None] = {}

    def run(n: int, notice: Notice, target: Target, url: str) -> None:
        try:
            results[n] = send(url, notice, target.timeout_s)
        except Exception as exc:
            results[n] = f"the sender failed ({type(exc).__name__})"

    threads = [threading.Thread(target=run, args=(n, notice, target, url), daemon=True)
               for n, (notice, target, _i, url) in enumerate(jobs)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + max(t.timeout_s for _, t, _, _ in jobs) + 1.0
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    for n, (notice, target, index, url) in enumerate(jobs):
        reason = results.get(n, f"no answer within {target.timeout_s:g} s")
        if reason is not None:
            failures.append((notice, Failure(target.name, index, _scheme(url), reason)))
    return failures


class Notifier:
    """Collects the audit entries of one command (`saw`) and sends their notices (`flush`): attached to a Context
    by the CLI when tfreview.toml configures targets and `--no-notify` is not given."""

    def __init__(self, ctx: Any, targets: Mapping[str, Target], environ: Mapping[str, str],
                 warn: Callable[[str], None] | None = None, send: Sender = send_one) -> None:
        self.ctx = ctx
        self.targets = targets
        self.environ = environ
        self.warn = warn or (lambda line: sys.stderr.write(f"warning: {visible(line, keep_lines=False)}\n"))
        self.send = send
        self.pending: list[dict[str, Any]] = []
        self.flushing = False

    def saw(self, entry: dict[str, Any]) -> None:
        """An audit entry was appended (Context.audit); apply-start and break-glass are sent at once."""
        if self.flushing or str(entry.get("event", "")).startswith("notify-"):
            return
        self.pending.append(entry)
        if entry.get("event") in IMMEDIATE:
            self.flush()

    def flush(self) -> None:
        """Send what was seen; never raises (a notice that cannot be built is skipped, a failure warned)."""
        entries, self.pending = self.pending, []
        if not entries:
            return
        self.flushing = True
        try:
            notices = self._notices(entries)
            for notice, failure in deliver(notices, self.targets, self.environ, self.send):
                self._failed(notice, failure)
        except Exception as exc:  # noqa: BLE001 - never in the way of the command
            self.warn(f"notifications were not sent ({type(exc).__name__})")
        finally:
            self.flushing = False

    def _failed(self, notice: Notice, failure: Failure) -> None:
        self.warn(failure.line(notice.event))
        try:
            self.ctx.audit("notify-failed", app=notice.app, env=notice.env, version=notice.version,
                           plan_id=notice.plan_id,
                           details={"event": notice.event, "target": failure.target, "url_index": failure.index,
                                    "scheme": failure.scheme, "reason": failure.reason})
        except Exception:  # noqa: BLE001 - the warning was printed; the command's own outcome matters more
            pass

    # -- audit entries -> notices (reads the store; the wording is in the pure functions above)
    def _notices(self, entries: list[dict[str, Any]]) -> list[Notice]:
        out: list[Notice] = []
        by_plan_rollout = {e.get("plan_id") for e in entries if e.get("event") == "rollout"}
        rolled_back = {e.get("plan_id") for e in entries if e.get("event") == "rollback"}
        for entry in entries:
            try:
                notice = self._notice(entry, by_plan_rollout, rolled_back)
            except Exception:  # noqa: BLE001 - a damaged record: that notice is skipped, the others go
                notice = None
            if notice is not None:
                out.append(notice)
        return out

    def _record(self, plan_id: Any) -> dict[str, Any] | None:
        from tfreview.errors import TfreviewError
        from tfreview.workflow import load_plan

        try:
            return load_plan(self.ctx.store, str(plan_id))
        except TfreviewError:
            return None

    def _notice(self, entry: dict[str, Any], with_rollout: set[Any], rolled_back: set[Any]) -> Notice | None:
        event, details = entry.get("event"), entry.get("details") or {}
        if event == "plan":
            record = self._record(entry.get("plan_id"))
            if record is None or record.get("release_id") or entry.get("plan_id") in rolled_back:
                return None  # a release's traffic steps, or a rollback applied at once: no approval wanted
            if record.get("plan_kind") == "rollback" and not self._rollbacks_need_approval(record):
                return None  # `tfreview rollback` applies it at once (its outcome is told)
            return self._needs_approval(record)
        if event in ("approve", "reject"):
            return decision(entry)
        if event == "break-glass":
            return break_glass(entry)
        if event == "apply-start":
            record = self._record(entry.get("plan_id"))
            if record is None or record.get("release_id") or record.get("plan_kind") == "rollback":
                return None
            return apply_started(entry)
        if event == "rollout":
            if details.get("outcome") == "succeeded":
                release = self._release_doc(entry)
                return release_succeeded(entry, release)
            return release_failed(entry, details.get("reason"))
        if event == "apply-end" and entry.get("plan_id") not in with_rollout:
            record = self._record(entry.get("plan_id"))
            if record is None or record.get("release_id") or record.get("plan_kind") == "rollback":
                return None
            if details.get("outcome") == "applied":
                return release_succeeded(entry, None)
            return release_failed(entry, details.get("error") or details.get("outcome"))
        if event == "rollback" and not details.get("release"):  # automatic ones are told by the failed release
            return release_failed(entry, f"traffic moved back to {details.get('to') or 'the previous colour'} by "
                                  f"{entry.get('actor')}", rolled_back=True)
        if event == "policy-activate":  # the log's own word that a version became active (trust/root.py)
            return policy_change(entry, True)
        if event == "policy-propose":
            return self._proposed(entry)
        return None

    def _needs_approval(self, record: dict[str, Any]) -> Notice:
        from tfreview.review.policy import required_approvals
        from tfreview.workflow import _facts, load_policy

        facts = _facts(record)
        env_policy = load_policy(self.ctx).for_env(record["env"])
        return plan_needs_approval(record, required_approvals(env_policy, facts), 0,
                                   env_policy.approvers_of(facts), review_link(self.environ))

    def _rollbacks_need_approval(self, record: dict[str, Any]) -> bool:
        from tfreview.workflow import load_policy

        return bool(load_policy(self.ctx).for_env(record["env"]).rollback_requires_approval)

    def _release_doc(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        from tfreview.store import get_json

        try:
            doc = get_json(self.ctx.store, f"rollouts/{entry['app']}/{entry['env']}/{entry['plan_id']}.json")
        except Exception:  # noqa: BLE001 - the notice goes without the colour and the time
            return None
        return doc if isinstance(doc, dict) else None

    def _proposed(self, entry: dict[str, Any]) -> Notice | None:
        from tfreview.trust.policy import load_history

        history = load_history(self.ctx.store)
        if history.active.version == (entry.get("details") or {}).get("version"):
            return None  # proposed and activated at once (a quorum of one): its policy-activate entry tells it
        return policy_change(entry, False, history.active.document.admin_quorum)


_FLUSH: list[Notifier] = []


def attach(ctx: Any, settings: Any, environ: Mapping[str, str], *, enabled: bool = True,
           warn: Callable[[str], None] | None = None) -> Notifier | None:
    """Give `ctx` a Notifier when `settings` configure targets and notifications are on; `flush_all` (called
    by the CLI when the command ends, whatever its outcome) sends what it saw."""
    targets = getattr(settings, "notify", None) or {}
    if not enabled or not targets:
        return None
    notifier = Notifier(ctx, targets, environ, warn)
    ctx.notifier = notifier
    _FLUSH.append(notifier)
    return notifier


def flush_all() -> None:
    while _FLUSH:
        _FLUSH.pop(0).flush()
