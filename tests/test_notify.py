"""Notifications (docs/notifications.md): the real `tfreview` command and apprise posting to a webhook receiver on
loopback (tests/notify_receiver.py: real HTTP, and a CONNECT proxy for apprise's own Slack plugin). No outside
network. Plans are recorded as `tfreview plan` records them (tests/helpers.record_plan); terraform is a stub.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests import helpers
from tests.helpers import assert_one_line_error
from tests.notify_receiver import Receiver
from tests.test_approvals_cli import PLAN_DOC
from tfreview import config as notifyconfig
from tfreview.usecases import notices, notify
from tfreview.store.audit import iter_entries
from tfreview.store.local import LocalStore

BOB, CAROL, ALICE = "bob@example.com", "carol@example.com", "alice@example.com"
HOSTILE = "ok <!channel> @here <script>alert(1)</script> [click](http://evil.example) *bold* \x1b[31mred"
TOKEN = "xoxb-SECRET-TOKEN-123"


@pytest.fixture
def receiver():
    with Receiver(slow_s=20.0) as r:
        yield r


@pytest.fixture
def cli(cli_factory, tmp_path):
    return helpers.failing_terraform_cli(cli_factory("notify"), tmp_path)


def configure(cli, tables: str) -> None:
    (cli.cwd / "tfreview.toml").write_text(tables)


def record_plan(cli, env: str = "qa", planner: str = ALICE) -> str:
    return helpers.record_plan(LocalStore(cli.store), PLAN_DOC, "shop", "1.1.0", env, planner)


def audit_events(cli, event: str) -> list[dict]:
    return [e for e in iter_entries(LocalStore(cli.store)) if e["event"] == event]


# -- what arrives ------------------------------------------------------------------------------------------------
def test_approval_reaches_json_and_mattermost_targets_with_app_env_version_plan_and_escaped_comment(cli, receiver):
    configure(cli, '[notify.qa]\nurls_env = "NOTIFY_QA"\n')
    pid = record_plan(cli)
    urls = f"json://{receiver.base}/hook mmost://{receiver.base}/{TOKEN}"
    proc = cli.ok("approve", pid, "--yes", "-m", HOSTILE, user=BOB, env={"NOTIFY_QA": urls})
    assert proc.stderr == ""
    got = receiver.wait_for(2)
    generic = next(r for r in got if r.path == "/hook").json()
    assert generic["title"] == f"plan approved by {BOB}: shop 1.1.0 -> qa"
    text = generic["message"]
    assert f"app shop, env qa, version 1.1.0, plan {pid}" in text
    assert "\x1b" not in text and "\\x1b[31mred" in text  # the terminal escape arrives as visible text
    assert "@here" not in text and "<!channel>" not in text  # mentions broken
    slack_style = next(r for r in got if r.path.startswith("/hooks/")).json()["text"]
    # Mattermost renders Markdown: every punctuation character of the message is escaped, so no link, no HTML
    assert r"\<script\>alert\(1\)\<\/script\>" in slack_style and r"\[click\]\(http\:" in slack_style
    assert "<script>" not in slack_style and "[click](" not in slack_style


def test_slack_plugin_escapes_its_markup_through_a_local_proxy(cli, receiver):
    configure(cli, '[notify.qa]\nurls_env = "NOTIFY_QA"\n')
    pid = record_plan(cli)
    url = "slack://T1ABCDEFG/B1ABCDEFG/abcdefghijklmnopqrstuvwx/?verify=no"  # apprise's own Slack plugin
    cli.ok("reject", pid, "--reason", HOSTILE, user=BOB,
           env={"NOTIFY_QA": url, "HTTPS_PROXY": f"http://{receiver.base}", "NO_PROXY": ""})
    [got] = receiver.wait_for(1)
    assert got.host == "hooks.slack.com" and got.path == "/services/T1ABCDEFG/B1ABCDEFG/abcdefghijklmnopqrstuvwx"
    text = got.json()["attachments"][0]["text"]
    assert f"plan {pid}" in text and "reason: ok" in text
    assert "&lt;script&gt;" in text and "<script>" not in text and "<!channel>" not in text


def test_no_notify_sends_nothing_before_or_after_the_command(cli, receiver):
    configure(cli, '[notify.qa]\nurls_env = "NOTIFY_QA"\n')
    env = {"NOTIFY_QA": f"json://{receiver.base}/hook"}
    cli.ok("--no-notify", "approve", record_plan(cli), "--yes", user=BOB, env=env)
    cli.ok("approve", record_plan(cli), "--yes", "--no-notify", user=BOB, env=env)
    cli.ok("approve", record_plan(cli), "--yes", user=BOB, env=env)
    assert len(receiver.wait_for(1)) == 1  # only the third


def test_events_filter_and_break_glass_always_sent(tmp_path, receiver):
    """Through Context.audit, as `apply` records them (break-glass and apply-start are sent at once)."""
    store = LocalStore(tmp_path / "store")
    helpers.install_test_policy(store)  # first: a store whose log predates its policy is a damaged one
    _package(store)
    pid = helpers.record_plan(store, PLAN_DOC, "shop", "1.1.0", "prod", ALICE)
    ctx = _ctx(store, CAROL)
    targets = notifyconfig.parse_config({"prod": {"urls_env": "N", "events": ["release-failed"]}}, "test")
    notifier = notify.attach(ctx, type("S", (), {"notify": targets})(), {"N": f"json://{receiver.base}/hook"})
    assert notifier is not None
    fields = {"app": "shop", "env": "prod", "version": "1.1.0", "plan_id": pid}
    ctx.audit("approve", **fields, details={"comment": "fine"})  # not wanted
    ctx.audit("break-glass", **fields, details={"reason": "site <b>down</b>"})
    assert len(receiver.wait_for(1)) == 1  # sent at once, before terraform runs
    ctx.audit("apply-start", **fields)  # not wanted
    ctx.audit("apply-end", **fields, details={"outcome": "failed", "error": "terraform apply failed: boom"})
    notify.flush_all()
    got = [r.json() for r in receiver.wait_for(2)]
    assert [g["title"] for g in got] == [f"BREAK-GLASS apply by {CAROL}: shop 1.1.0 -> prod",
                                         "release FAILED: shop 1.1.0 in prod"]
    assert "approvals bypassed; reason: site <b>down</b>" in got[0]["message"]
    assert "reason: terraform apply failed: boom" in got[1]["message"]


def test_other_environments_and_the_default_table(cli, receiver):
    configure(cli, '[notify.prod]\nurls_env = "NOTIFY_PROD"\n\n[notify.default]\nurls_env = "NOTIFY_ANY"\n')
    env = {"NOTIFY_PROD": f"json://{receiver.base}/prod", "NOTIFY_ANY": f"json://{receiver.base}/any"}
    cli.ok("approve", record_plan(cli, "qa"), "--yes", user=BOB, env=env)
    assert [r.path for r in receiver.wait_for(1)] == ["/any"]


def test_policy_change_is_told_to_every_target(cli, receiver):
    configure(cli, '[notify.qa]\nurls_env = "NOTIFY_QA"\n\n[notify.prod]\nurls_env = "NOTIFY_PROD"\n')
    cli.ensure_policy()
    cli.env.update({"NOTIFY_QA": f"json://{receiver.base}/qa", "NOTIFY_PROD": f"json://{receiver.base}/prod"})
    cli.set_rules("[policy.prod]\nrequired_approvals = 2\n")  # alice proposes; she is the one admin: active at once
    got = receiver.wait_for(2)
    assert sorted(r.path for r in got) == ["/prod", "/qa"]
    assert {r.json()["title"] for r in got} == {"policy version 2 is active"}


def test_a_policy_change_that_needs_a_second_admin_is_told_proposed_then_active(cli, receiver):
    """Quorum 2: `policy propose` tells the proposal and who must sign; the activation is told once, when the
    second admin's signature makes it active (the log's policy-activate entry), not at the proposer's own."""
    configure(cli, '[notify.qa]\nurls_env = "NOTIFY_QA"\n')
    cli.ensure_policy()
    two = cli.cwd / "two-admins.toml"
    two.write_text(helpers.policy_toml(admins=(ALICE, BOB), quorum=2))
    cli.ok("policy", "propose", str(two), user=ALICE)  # version 2, active at once: version 1's quorum is 1
    cli.env["NOTIFY_QA"] = f"json://{receiver.base}/qa"
    two.write_text(helpers.policy_toml("[policy.prod]\nrequired_approvals = 2\n", admins=(ALICE, BOB), quorum=2))
    cli.ok("policy", "propose", str(two), user=ALICE)
    got = receiver.wait_for(1)
    assert [r.json()["title"] for r in got] == ["policy version 3 proposed"]
    assert "tfreview policy approve 3" in got[0].json()["message"]
    cli.ok("policy", "approve", "3", user=BOB)
    got = receiver.wait_for(2)
    assert [r.json()["title"] for r in got] == ["policy version 3 proposed", "policy version 3 is active"]
    assert f"signed in by {BOB}" in got[1].json()["message"]


# -- never in the way ----------------------------------------------------------------------------------------------
def test_failing_and_slow_targets_warn_once_each_and_are_audited_without_url_or_token(cli, receiver):
    configure(cli, '[notify.qa]\nurls_env = "NOTIFY_QA"\ntimeout_s = 1\n')
    pid = record_plan(cli)
    urls = (f"json://{receiver.base}/fail/{TOKEN} json://{receiver.base}/slow/{TOKEN} "
            f"json://127.0.0.1:{_closed_port()}/{TOKEN} json://{receiver.base}/ok")
    proc = cli.ok("approve", pid, "--yes", user=BOB, env={"NOTIFY_QA": urls})
    assert proc.stdout.startswith(f"approved {pid}")
    lines = proc.stderr.splitlines()
    assert len(lines) == 3, proc.stderr
    assert all(line.startswith("warning: notification 'approved' to [notify.qa] (URL ") for line in lines)
    assert "URL 2, json) failed: no answer within 1 s" in lines[1]
    assert TOKEN not in proc.stderr and receiver.base not in proc.stderr
    failed = audit_events(cli, "notify-failed")
    assert [f["details"]["url_index"] for f in failed] == [1, 2, 3]
    assert all(f["plan_id"] == pid and f["details"]["event"] == "approved" for f in failed)
    assert TOKEN not in json.dumps(failed) and receiver.base not in json.dumps(failed)
    assert cli("audit", "verify").returncode == 0  # the log stays valid


def test_on_the_s3_store_the_cli_notifies_slack_style_and_json_targets_and_audits_a_failure(s3_endpoint, tmp_path,
                                                                                             cli_factory, receiver):
    """Team mode: TFREVIEW_STORE=s3://... (the local AWS), the real command, the same receiver on loopback."""
    from tests.conftest import Cli
    from tfreview.sandbox import FAKE_CREDENTIALS
    from tfreview.store.s3 import S3Store

    bucket = helpers.new_bucket(s3_endpoint)
    stub = tmp_path / "terraform"
    stub.write_text("#!/bin/sh\necho \"stub terraform reached: $*\" >&2\nexit 1\n")
    stub.chmod(0o755)
    cli = Cli(store=f"s3://{bucket}/team", cwd=cli_factory("notify-s3").cwd,
              env={**FAKE_CREDENTIALS, "AWS_SESSION_TOKEN": "", "AWS_ENDPOINT_URL": s3_endpoint,
                   "TFREVIEW_TERRAFORM_BIN": str(stub)})
    cli.ok("package", "--app", "shop", "--version", "1.1.0")
    configure(cli, '[notify.qa]\nurls_env = "NOTIFY_QA"\n')
    store = S3Store(bucket, "team", endpoint_url=s3_endpoint)
    first, second = (helpers.record_plan(store, PLAN_DOC, "shop", "1.1.0", "qa", ALICE) for _ in range(2))
    urls = f"json://{receiver.base}/hook mmost://{receiver.base}/{TOKEN}"
    proc = cli.ok("approve", first, "--yes", "-m", HOSTILE, user=BOB, env={"NOTIFY_QA": urls})
    assert "notification" not in proc.stderr  # (S3 mode also warns that tfreview.toml pins no policy root)
    got = receiver.wait_for(2)
    assert len(got) == 2
    generic = next(r for r in got if r.path == "/hook").json()
    assert generic["title"] == f"plan approved by {BOB}: shop 1.1.0 -> qa"
    assert f"app shop, env qa, version 1.1.0, plan {first}" in generic["message"]
    assert "\x1b" not in generic["message"] and "<!channel>" not in generic["message"]
    slack_style = next(r for r in got if r.path.startswith("/hooks/")).json()["text"]
    assert first.replace("-", "\\-") in slack_style  # Mattermost renders Markdown: every punctuation is escaped
    assert r"\<script\>" in slack_style and "<script>" not in slack_style and "[click](" not in slack_style
    # A target that answers 500: one warning, an audit entry in the bucket without the URL or its token
    proc = cli.ok("reject", second, "--reason", "not now", user=BOB,
                  env={"NOTIFY_QA": f"json://{receiver.base}/fail/{TOKEN}"})
    [warning] = [line for line in proc.stderr.splitlines() if "notification" in line]
    assert warning.startswith("warning: notification 'rejected' to [notify.qa] (URL 1, json) failed")
    assert TOKEN not in proc.stderr and receiver.base not in proc.stderr
    failed = [e for e in iter_entries(store) if e["event"] == "notify-failed"]
    assert [(f["plan_id"], f["details"]["event"]) for f in failed] == [(second, "rejected")]
    assert TOKEN not in json.dumps(failed) and receiver.base not in json.dumps(failed)
    assert cli("audit", "verify").returncode == 0


def test_the_demos_receiver_process_logs_what_tfreview_sent(cli, tmp_path):
    """`python tests/notify_receiver.py LOG PORTFILE`, as scripts/demo.sh starts it: a separate process that writes
    its port, then one JSON line per request it got."""
    import subprocess
    import sys
    import time

    log, port_file = tmp_path / "notifications.jsonl", tmp_path / "receiver.port"
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("notify_receiver.py")), str(log),
                               str(port_file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        base = f"127.0.0.1:{port_file.read_text()}"
        configure(cli, '[notify.qa]\nurls_env = "NOTIFY_QA"\n')
        pid = record_plan(cli)
        cli.ok("approve", pid, "--yes", user=BOB, env={"NOTIFY_QA": f"json://{base}/hook mmost://{base}/{TOKEN}"})
        while len(log.read_text().splitlines() if log.exists() else []) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        assert sorted(line["path"].split("/")[1] for line in lines) == ["hook", "hooks"]
        generic = json.loads(next(line for line in lines if line["path"] == "/hook")["body"])
        assert generic["title"] == f"plan approved by {BOB}: shop 1.1.0 -> qa" and f"plan {pid}" in generic["message"]
    finally:
        server.kill()
        server.wait()


def test_a_missing_variable_is_one_warning(cli):
    configure(cli, '[notify.qa]\nurls_env = "NOTIFY_QA"\n')
    proc = cli.ok("approve", record_plan(cli), "--yes", user=BOB)
    assert proc.stderr.splitlines() == ["warning: notification 'approved' to [notify.qa] (URL 0, -) failed: "
                                        "NOTIFY_QA is not set or empty; carrying on"]


@pytest.mark.parametrize("toml, says", [
    ('[notify.qa]\nurls = ["json://x"]\n', "notification URLs carry tokens and never live in a file"),
    ('[notify.qa]\nurl = "slack://a/b/c"\n', "never live in a file"),
    ('[notify.qa]\nurls_env = "A B"\n', "urls_env must name an environment variable"),
    ('[notify.qa]\nurls_env = "X"\nevents = ["aproved"]\n', "unknown event 'aproved'"),
    ('[notify.qa]\nurls_env = "X"\ntimeout_s = 600\n', "timeout_s must be a number of seconds"),
    ('[notify.qa]\nurls_env = "X"\nchannel = "#ops"\n', "unknown key 'channel'"),
])
def test_bad_notify_config_is_refused(cli, toml, says):
    configure(cli, toml)
    assert_one_line_error(cli("approve", "shop-qa-x", "--yes", user=BOB), 2, says)


# -- notices built from the store (in process) ---------------------------------------------------------------------
def _ctx(store, user=ALICE):
    return helpers.context_for(store, user)


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_plan_needs_approval_says_how_many_who_and_the_command(tmp_path, receiver, request, kind):
    store = LocalStore(tmp_path / "store") if kind == "local" else request.getfixturevalue("mock_s3_store")
    helpers.install_test_policy(store, rules=f'[policy.qa]\nrequired_approvals = 2\napprovers = ["{BOB}", "{CAROL}"]\n')
    ctx = _ctx(store)
    _package(store)  # record_plan needs a packaged version
    pid = helpers.record_plan(store, PLAN_DOC, "shop", "1.1.0", "qa", ALICE)
    [entry] = [e for e in iter_entries(store) if e["event"] == "plan"]
    targets = notifyconfig.parse_config({"qa": {"urls_env": "N"}}, "test")
    gh = {"N": f"json://{receiver.base}/hook", "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "acme/shop",
          "GITHUB_REF": "refs/pull/42/merge"}
    n = notify.Notifier(ctx, targets, gh)
    n.saw(entry)
    n.flush()
    [got] = receiver.wait_for(1)
    body = got.json()["message"]
    assert got.json()["title"] == "plan needs approval: shop 1.1.0 -> qa"
    assert f"plan {pid}" in body and "2 of 2 approval(s) missing; may approve: bob@example.com, carol@example.com" in body
    assert f"approve with: tfreview approve {pid}" in body
    assert "review: https://github.com/acme/shop/pull/42" in body


def _package(store) -> None:
    from tfreview.config import Settings
    from tfreview.usecases.context import Context
    from tfreview.usecases.package import package

    src = Path(__file__).resolve().parent.parent / "terraform"
    package(Context(Settings(store=store.url), store, ALICE), "shop", "1.1.0", str(src))


def test_release_outcomes_read_the_reason_colour_and_duration():
    entry = {"event": "rollout", "app": "shop", "env": "prod", "version": "1.2.0", "plan_id": "shop-prod-1",
             "actor": BOB, "details": {"outcome": "failed", "reason": "circuit breaker: tasks failed to start"}}
    failed = notices.release_failed(entry, entry["details"]["reason"])
    assert failed.event == "release-failed" and "reason: circuit breaker: tasks failed to start" in failed.body
    ok = notices.release_succeeded({**entry, "details": {"outcome": "succeeded"}},
                                  {"live_color": "green", "started_at": "2026-12-01T10:00:00Z",
                                   "finished_at": "2026-12-01T10:03:30Z"})
    assert "live colour: green" in ok.body and "took 3.5 min" in ok.body
    assert "app shop, env prod, version 1.2.0, plan shop-prod-1" in ok.body


def test_clean_and_markdown_escaping():
    assert notices.clean("a\x1b[2Jb\u202e") == "a\\x1b[2Jb\\u202e"
    assert "@here" not in notices.clean("hi @here and @everyone") and "@alice" in notices.clean("@alice")
    assert notify.markdown_escaped("[x](y) <b>") == r"\[x\]\(y\) \<b\>"
    assert len(notices.clean("x" * 1000)) == notices.MAX_FIELD


def _closed_port() -> int:
    from tests.notify_receiver import free_port

    return free_port()  # nothing listens there once the probe socket is closed


def test_deliveries_run_in_parallel_within_the_deadline():
    calls: list[str] = []

    def send(url, notice, timeout):
        calls.append(url)
        return None if url.endswith("ok") else "boom"

    targets = notifyconfig.parse_config({"qa": {"urls_env": "N"}}, "t")
    notice = notices.Notice("approved", "shop", "qa", "1", "p", "t", ("l",))
    failures = notify.deliver([notice], targets, {"N": "json://a/ok,json://b/bad"}, send)
    assert sorted(calls) == ["json://a/ok", "json://b/bad"]
    assert [(f.index, f.scheme, f.reason) for _, f in failures] == [(2, "json", "boom")]
    assert re.search("json://", failures[0][1].line("approved")) is None


class _Records(notify.Notifier):
    """A Notifier whose plan records come from a dict (the mapping from audit entries to notices, without a store)."""

    def __init__(self, records):
        super().__init__(None, {}, {})
        self.records = records

    def _record(self, plan_id):
        return self.records.get(plan_id)

    def _rollbacks_need_approval(self, record):
        return False

    def _release_doc(self, entry):
        return {"live_color": "green", "started_at": "2026-12-01T10:00:00Z", "finished_at": "2026-12-01T10:00:40Z"}


def test_which_audit_entries_are_told():
    records = {"deploy": {"id": "deploy", "plan_kind": "deploy", "release_id": None, "env": "qa"},
               "step": {"id": "step", "plan_kind": "shift", "release_id": "deploy", "env": "qa"},
               "back": {"id": "back", "plan_kind": "rollback", "release_id": None, "env": "qa"}}
    base = {"app": "shop", "env": "qa", "version": "1.2.0", "actor": BOB}
    entries = [
        {**base, "event": "plan", "plan_id": "step"},  # a release's traffic step: not a plan to approve
        {**base, "event": "plan", "plan_id": "back"},  # `tfreview rollback` applies it at once
        {**base, "event": "apply-start", "plan_id": "step"},
        {**base, "event": "apply-start", "plan_id": "back"},
        {**base, "event": "apply-start", "plan_id": "deploy"},
        {**base, "event": "rollback", "plan_id": "step", "details": {"release": "deploy", "what": "auto"}},
        {**base, "event": "rollout", "plan_id": "deploy", "details": {"outcome": "failed",
                                                                        "reason": "unhealthy targets: 0/2 healthy"}},
        {**base, "event": "apply-end", "plan_id": "deploy", "details": {"outcome": "failed", "error": "x"}},
        {**base, "event": "rollback", "plan_id": "back", "details": {"to": "blue"}},
        {**base, "event": "drift-check", "plan_id": "deploy"},
    ]
    told = [(n.event, n.title) for n in _Records(records)._notices(entries)]
    assert told == [("apply-started", f"apply started by {BOB}: shop 1.2.0 -> qa"),
                    ("release-failed", "release FAILED: shop 1.2.0 in qa"),
                    ("release-failed", "rolled back: shop 1.2.0 in qa")]
    ok = _Records(records)._notices([{**base, "event": "rollout", "plan_id": "deploy",
                                      "details": {"outcome": "succeeded"}}])
    assert ok[0].event == "release-succeeded" and "took 40 s" in ok[0].body and "live colour: green" in ok[0].body
