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
from typing import Any, Callable, Iterable, Mapping

from tfreview.config import Target
from tfreview.text import visible
from tfreview.usecases.notices import (Notice, apply_started, break_glass, decision, plan_needs_approval, policy_change,
    release_failed, release_succeeded, review_link)


IMMEDIATE = frozenset({"apply-start", "break-glass"})  # audit events flushed at once (the release is starting)


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
        from tfreview.usecases.records import load_plan

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
        from tfreview.usecases.records import _facts, load_policy

        facts = _facts(record)
        env_policy = load_policy(self.ctx).for_env(record["env"])
        return plan_needs_approval(record, required_approvals(env_policy, facts), 0,
                                   env_policy.approvers_of(facts), review_link(self.environ))

    def _rollbacks_need_approval(self, record: dict[str, Any]) -> bool:
        from tfreview.usecases.records import load_policy

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
