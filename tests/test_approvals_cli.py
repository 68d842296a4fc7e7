"""Approvals you can trust, through the real `tfreview` command: who may approve, every apply refusal (exit 3
and its reason), break-glass, locks and interrupted applies, unlock, audit verify, history and report.

Most tests need no terraform: plans are recorded in the store exactly as `tfreview plan` records them (same
record builder, a real review of a small plan document), and every refusal happens before terraform starts.
Where a test must show that the policy lets an apply through, terraform is a stub that says it was called.
The tests marked `integration` run real terraform against the local AWS (kill -9 during apply, 20 concurrent
applies of one plan).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from tests import helpers
from tests.helpers import signing_key
from tfreview.store.audit import append_event, entry_key, iter_entries
from tfreview.store.base import dumps
from tfreview.store.local import LocalStore

BOB, CAROL, ALICE = "bob@example.com", "carol@example.com", "alice@example.com"

PLAN_DOC = {
    "format_version": "1.2", "terraform_version": "1.11.4", "planned_values": {},
    "resource_changes": [{
        "address": 'module.app.aws_ecs_task_definition.app["green"]', "mode": "managed",
        "type": "aws_ecs_task_definition", "name": "app", "index": "green",
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "change": {"actions": ["delete", "create"],
                   "before": {"family": "shop", "container_definitions": json.dumps([{"name": "web", "image": "r/shop:1.0.0"}])},
                   "after": {"family": "shop", "container_definitions": json.dumps([{"name": "web", "image": "r/shop:1.1.0"}])},
                   "after_unknown": {"arn": True}, "before_sensitive": {}, "after_sensitive": {},
                   "replace_paths": [["container_definitions"]]}}],
    "prior_state": {"format_version": "1.0", "terraform_version": "1.11.4", "values": {"root_module": {}}},
}


def record_plan(cli, app: str, version: str, env: str, planner: str = ALICE, escalation: list[str] | None = None,
                store=None) -> str:
    """Store a plan of PLAN_DOC the way `tfreview plan` does (in `cli`'s store unless `store` is given)."""
    return helpers.record_plan(store or LocalStore(cli.store), PLAN_DOC, app, version, env, planner, escalation)


@pytest.fixture
def cli(cli_factory, tmp_path):
    """A fresh store with shop 1.1.0 packaged; terraform is a stub that fails loudly if it is ever reached."""
    return helpers.failing_terraform_cli(cli_factory("approvals"), tmp_path)


def policy(cli, text: str) -> None:
    cli.set_rules(text)


def refused(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 3, f"exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    err = proc.stderr.strip()
    assert "Traceback" not in err
    for w in words:
        assert w in err, f"{w!r} not in {err!r}"
    return err


def reached_terraform(proc: subprocess.CompletedProcess) -> None:
    """The policy let the apply through: it got as far as running terraform (the stub)."""
    assert proc.returncode == 1 and "stub terraform reached" in proc.stderr, proc.stderr


# -- who may approve -------------------------------------------------------------------------------------------
def test_planner_cannot_approve_own_plan_and_a_second_person_can(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa", planner=ALICE)
    refused(cli("approve", pid, "--yes", user=ALICE), f"{ALICE} made plan {pid} and may not approve it")
    ok = cli("approve", pid, "--yes", "--comment", "image bump only", user=BOB)
    assert ok.returncode == 0 and f"approved {pid} as {BOB}" in ok.stdout
    reached_terraform(cli("apply", pid, user=ALICE))


def test_two_required_approvers_need_two_distinct_people(cli):
    policy(cli, '[policy.qa]\nrequired_approvals = 2\n')
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)
    refused(cli("apply", pid), f"plan {pid} has 1 of 2 required approvals (approved by: {BOB})")
    refused(cli("approve", pid, "--yes", user=BOB), "already approved")
    # Bob's key under another spelling of his name: the name is the policy's, never the environment's.
    refused(cli("approve", pid, "--yes", user="BOB@example.com", env={"TFREVIEW_SIGNING_KEY": str(signing_key(BOB))}),
            "TFREVIEW_USER is 'BOB@example.com' but your signing key belongs to bob@example.com")
    assert cli("approve", pid, "--yes", user=CAROL).returncode == 0
    reached_terraform(cli("apply", pid))


def test_risky_plan_needs_one_more_approver(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa", escalation=["destroys aws_lb_listener.prod"])
    cli("approve", pid, "--yes", user=BOB)
    refused(cli("apply", pid), "1 of 2 required approvals, 1 more because destroys aws_lb_listener.prod")


def test_only_listed_approvers_may_approve(cli):
    policy(cli, f'[policy.qa]\napprovers = ["{CAROL}"]\n')
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    refused(cli("approve", pid, "--yes", user=BOB), f"{BOB} is not an approver for qa")


def test_approve_asks_for_confirmation_unless_yes(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    proc = cli("approve", pid, user=BOB)
    assert proc.returncode == 2 and "--yes" in proc.stderr


def _approve_in_a_terminal(cli, plan_id: str, answer: str, user: str) -> subprocess.CompletedProcess:
    """`tfreview approve ID` with a terminal on stdin (pty), answering the confirmation with `answer`."""
    import pty

    master, slave = pty.openpty()
    proc = cli.popen("approve", plan_id, "--comment", "read it", user=user, stdin=slave, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
    os.close(slave)
    os.write(master, answer.encode() + b"\n")
    out, err = proc.communicate(timeout=120)
    os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_approve_shows_summary_and_risk_flags_and_asks_for_confirmation(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa", escalation=["destroys aws_lb_listener.prod"])
    no = _approve_in_a_terminal(cli, pid, "n", BOB)
    assert no.returncode != 0 and "approved" not in no.stdout.split("?")[-1]
    # The review, the status and the question go to the terminal (stderr); stdout keeps only the result.
    assert "1.0.0 → 1.1.0" in no.stderr and no.stdout == ""
    assert f"planned by {ALICE}" in no.stderr and "needs 2 approval(s), approved so far by: nobody" in no.stderr
    assert "one more approver needed because: destroys aws_lb_listener.prod" in no.stderr
    assert not (cli.store / "approvals" / pid).exists()  # answering no records nothing
    yes = _approve_in_a_terminal(cli, pid, "y", BOB)
    assert yes.returncode == 0 and f"approved {pid} as {BOB}" in yes.stdout, yes.stderr
    again = _approve_in_a_terminal(cli, pid, "y", ALICE)  # refused before the review is shown
    assert again.returncode == 3 and "may not approve it" in again.stderr and "1.0.0 →" not in again.stderr


# -- apply refusals ----------------------------------------------------------------------------------------------
def test_apply_refuses_unapproved_plan(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    refused(cli("apply", pid), f"plan {pid} is not approved", f"tfreview approve {pid}")


def test_rejected_plan_cannot_be_approved_or_applied(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)
    assert cli("reject", pid, "--reason", "wrong image tag", user=CAROL).returncode == 0
    refused(cli("apply", pid), f"plan {pid} was rejected by {CAROL}: wrong image tag")
    refused(cli("approve", pid, "--yes", user="dave@example.com"), "was rejected")
    assert cli("reject", pid, "--reason", " ", user="erin@example.com").returncode == 2


def test_planner_can_withdraw_own_plan(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa", planner=ALICE)
    assert cli("reject", pid, "--reason", "withdrawn: wrong version", user=ALICE).returncode == 0
    refused(cli("apply", pid), f"plan {pid} was rejected by {ALICE}: withdrawn: wrong version")


def test_history_marks_break_glass_applies(cli):
    pid = record_plan(cli, "shop", "1.1.0", "prod")
    store = LocalStore(cli.store)
    store.create(f"applies/{pid}/start.json", dumps({"plan_id": pid, "app": "shop", "env": "prod", "by": CAROL,
                                                     "started_at": "2026-11-26T10:05:00Z", "break_glass": "site down"}))
    store.create(f"applies/{pid}/result.json", dumps({"outcome": "applied", "finished_at": "2026-11-26T10:06:00Z"}))
    [row] = json.loads(cli("history", "--format", "json").stdout)
    assert row["break_glass"] == "site down" and row["applied_by"] == CAROL and row["outcome"] == "applied"
    assert "applied (BREAK-GLASS)" in cli("history").stdout
    assert "**BREAK-GLASS apply** by carol@example.com: site down" in cli("report", pid).stdout


def test_apply_refuses_plan_whose_bytes_changed(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)
    binary = cli.store / "private" / "plans" / pid / "plan.tfplan"
    binary.write_bytes(binary.read_bytes() + b"!")
    refused(cli("apply", pid), f"plan {pid} changed since it was made", "do not apply it")


def test_apply_refuses_changed_package(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)
    zip_path = cli.store / "packages" / "shop" / "1.1.0" / "terraform.zip"
    zip_path.write_bytes(zip_path.read_bytes() + b"tampered")
    refused(cli("apply", pid), "package shop 1.1.0 does not match its manifest")


@pytest.mark.parametrize("policy_text, refusal, hint", [  # 0.0003 hours: about one second
    pytest.param('[policy.qa]\napproval_ttl_hours = 0.0003\n', f"approval of plan {{pid}} by {BOB} expired at",
                 "fresh approval", id="expired-approval"),
    pytest.param('plan_max_age_hours = 0.0003\n', "plan {pid} is stale: made", "make a new plan", id="stale-plan"),
])
def test_apply_refuses_once_too_old(cli, policy_text, refusal, hint):
    if policy_text.startswith("[policy"):
        policy(cli, policy_text)
    else:  # plan freshness is a setting of tfreview.toml
        (cli.cwd / "tfreview.toml").write_text(policy_text)
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)
    time.sleep(1.2)
    refused(cli("apply", pid), refusal.format(pid=pid), hint)


def test_apply_refuses_superseded_plan(cli):
    old = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", old, "--yes", user=BOB)
    new = record_plan(cli, "shop", "1.1.0", "qa")
    refused(cli("apply", old), f"plan {old} is superseded by a newer plan {new} for shop/qa",
            f"tfreview show {new}")


def test_promotion_gate_requires_success_in_qa(cli):
    policy(cli, '[policy.prod]\nrequires_success_in = "qa"\n')
    pid = record_plan(cli, "shop", "1.1.0", "prod")
    cli("approve", pid, "--yes", user=BOB)
    refused(cli("apply", pid), "shop 1.1.0 has not been applied successfully in qa (prod requires it)")
    LocalStore(cli.store).create("releases/shop/1.1.0/succeeded.json",
                                 dumps({"app": "shop", "version": "1.1.0", "envs": ["qa"]}))
    reached_terraform(cli("apply", pid))


def test_apply_refuses_plan_already_applied(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)
    store = LocalStore(cli.store)
    store.create(f"applies/{pid}/start.json", dumps({"plan_id": pid, "app": "shop", "env": "qa", "by": ALICE}))
    store.create(f"applies/{pid}/result.json", dumps({"outcome": "applied", "finished_at": "2026-11-26T10:00:00Z"}))
    refused(cli("apply", pid), f"plan {pid} was already applied at 2026-11-26T10:00:00Z (outcome: applied)")


# -- break-glass -------------------------------------------------------------------------------------------------
def test_break_glass_is_for_listed_identities_only_and_needs_a_reason(cli):
    policy(cli, f'[policy.prod]\nbreak_glass = ["{CAROL}"]\n')
    pid = record_plan(cli, "shop", "1.1.0", "prod")
    refused(cli("apply", pid, "--break-glass", "--reason", "site down", user=BOB),
            f"{BOB} may not break glass in prod")
    assert cli("apply", pid, "--break-glass", user=CAROL).returncode == 2
    reached_terraform(cli("apply", pid, "--break-glass", "--reason", "site down", user=CAROL))


# -- locks, interrupted applies, unlock ---------------------------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def leave_killed_apply(cli, pid: str) -> None:
    """What kill -9 during `tfreview apply` leaves: start record, no result, a lock held by a dead process."""
    import socket

    store = LocalStore(cli.store)
    store.create(f"applies/{pid}/start.json", dumps({
        "kind": "apply-start", "app": "shop", "env": "qa", "version": "1.1.0", "plan_id": pid, "by": ALICE,
        "started_at": "2026-11-26T10:05:00Z", "break_glass": None}))
    store.create("locks/shop/qa.json", dumps({
        "app": "shop", "env": "qa", "owner": ALICE, "pid": _dead_pid(), "host": socket.gethostname(),
        "plan_id": pid, "break_glass": False, "acquired_at": "2026-11-26T10:04:59Z"}))
    append_event(store, "apply-start", ALICE, app="shop", env="qa", version="1.1.0", plan_id=pid)


def test_interrupted_apply_and_its_lock_are_reported_then_unlock_records_it(cli):
    killed = record_plan(cli, "shop", "1.1.0", "qa")
    leave_killed_apply(cli, killed)
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)
    err = refused(cli("apply", pid), f"apply in progress for shop/qa by {ALICE} since 2026-11-26 10:04:59Z",
                  "its process is gone: the apply was interrupted", "tfreview unlock --app shop --env qa")
    assert f"warning: apply of plan {killed} (shop/qa 1.1.0) by {ALICE}" in err
    rows = json.loads(cli("history", "--format", "json").stdout)
    assert {r["id"]: r["outcome"] for r in rows}[killed] == "interrupted"

    unlocked = cli("unlock", "--app", "shop", "--env", "qa", user=CAROL)
    assert unlocked.returncode == 0, unlocked.stderr
    assert f"unlocked shop/qa: lock of {ALICE} (plan {killed}" in unlocked.stdout
    assert f"apply of plan {killed} recorded as interrupted" in unlocked.stdout
    events = [(e["event"], e["actor"]) for e in iter_entries(LocalStore(cli.store))]
    assert events[-2:] == [("apply-end", CAROL), ("unlock", CAROL)]
    reached_terraform(cli("apply", pid))  # the lock is gone: the next apply goes ahead
    assert "warning" not in cli("history").stderr
    assert cli("unlock", "--app", "shop", "--env", "qa").returncode == 2  # nothing to unlock


# -- audit verify ------------------------------------------------------------------------------------------------
def test_audit_verify_proves_the_chain_and_names_the_first_bad_entry(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", "--comment", "ok", user=BOB)
    good = cli("audit", "verify")
    assert good.returncode == 0 and "audit log intact: 4 entries" in good.stdout  # policy, package, plan, approve
    [entry] = json.loads(cli("audit", "log", "--event", "approve", "--format", "json").stdout)
    assert entry["actor"] == BOB and entry["plan_id"] == pid and entry["details"]["comment"] == "ok"
    listing = cli("audit", "log", "--person", "Bob@example.com").stdout
    assert f"approve      {BOB}" in listing and "plan " + pid in listing and "package" not in listing
    entry = cli.store / entry_key(3)
    entry.write_bytes(entry.read_bytes().replace(b'"plan"', b'"PLAN"'))
    bad = cli("audit", "verify")
    assert bad.returncode == 1 and "audit log broken at entry 3" in bad.stderr
    doc = json.loads(cli("audit", "verify", "--format", "json").stdout)
    assert doc["ok"] is False and doc["first_bad_seq"] == 3


# -- history and report ------------------------------------------------------------------------------------------
def test_history_filters_by_person_version_env_and_date(cli):
    cli("package", "--app", "shop", "--version", "1.2.0")
    a = record_plan(cli, "shop", "1.1.0", "qa", planner=ALICE)
    b = record_plan(cli, "shop", "1.2.0", "prod", planner=CAROL)
    cli("approve", a, "--yes", "--comment", "fine", user=BOB)

    def ids(*args):
        proc = cli("history", "--format", "json", *args)
        assert proc.returncode == 0, proc.stderr
        return {r["id"] for r in json.loads(proc.stdout)}

    assert ids() == {a, b}
    assert ids("--person", "BOB@example.com") == {a}
    assert ids("--person", CAROL) == {b}
    assert ids("--version", "1.2.0") == {b}
    assert ids("--env", "qa") == {a}
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert ids("--since", today, "--until", today) == {a, b}
    assert ids("--until", "2020-01-01") == set()
    bad = cli("history", "--since", "last tuesday")
    assert bad.returncode == 2 and "cannot read the time" in bad.stderr
    row = next(r for r in json.loads(cli("history", "--format", "json").stdout) if r["id"] == a)
    assert row["approvals"] == [{"by": BOB, "kind": "approve", "at": row["approvals"][0]["at"], "comment": "fine"}]


def test_report_gives_an_auditor_the_diff_and_who_did_what(cli, tmp_path):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", "--comment", "checked the image tag", user=BOB)
    md = cli("report", pid, "--format", "markdown")
    assert md.returncode == 0, md.stderr
    assert f"Planned by | {ALICE}" in md.stdout
    assert f"| approve | {BOB} |" in md.stdout and "checked the image tag" in md.stdout
    assert "Not applied." in md.stdout and "1.0.0 → 1.1.0" in md.stdout
    out = tmp_path / "report.html"
    assert cli("report", pid, "--format", "html", "--output", str(out)).returncode == 0
    page = out.read_text()
    assert page.startswith("<!doctype html>") and "checked the image tag" in page
    assert page.lower().count("<html") == 1 and page.lower().count("<body") == 1  # the diff is embedded, not nested
    assert "1.0.0" in page and "1.1.0" in page
    doc = json.loads(cli("report", pid, "--format", "json").stdout)
    assert doc["plan"]["planner"] == ALICE and doc["approvals"][0]["by"] == BOB and doc["outcome"] == "not applied"
    assert doc["audit_chain"]["ok"] is True
    assert cli("report", pid, "--format", "pdf").returncode == 2


# -- the same on an S3 store (team mode) ----------------------------------------------------------------------------
@pytest.mark.integration
def test_approvals_locks_unlock_history_report_and_audit_work_on_an_s3_store(cli, aws_sandbox):
    """Everything above the store uses only the Store protocol: the same flow on s3://bucket/prefix (moto)."""
    from tfreview.store.locks import acquire_lock
    from tfreview.store.s3 import S3Store

    aws_sandbox.client("s3").create_bucket(Bucket="tfreview-team")
    url = "s3://tfreview-team/shop"
    cli.env = {**cli.env, "TFREVIEW_STORE": url}
    cli.install_policy = True  # a new store: the test policy goes in first
    store = S3Store.from_url(url, client=aws_sandbox.client("s3"))
    assert cli("package", "--app", "shop", "--version", "1.1.0").returncode == 0
    pid = record_plan(cli, "shop", "1.1.0", "qa", store=store)
    refused(cli("approve", pid, "--yes", user=ALICE), "may not approve it")
    assert cli("approve", pid, "--yes", "--comment", "on s3", user=BOB).returncode == 0
    refused(cli("approve", pid, "--yes", user=BOB), "already approved")

    # A lock left by a dead process on this host, as kill -9 leaves it.
    other = record_plan(cli, "shop", "1.1.0", "qa", store=store)
    cli("approve", other, "--yes", user=BOB)
    killer = subprocess.Popen([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    killer.wait()
    from unittest import mock

    with mock.patch("os.getpid", return_value=killer.pid):
        acquire_lock(store, "shop", "qa", CAROL, other)
    refused(cli("apply", other), f"apply in progress for shop/qa by {CAROL}", "its process is gone")
    unlocked = cli("unlock", "--app", "shop", "--env", "qa", user="dave@example.com")
    assert unlocked.returncode == 0 and f"lock of {CAROL}" in unlocked.stdout, unlocked.stderr

    rows = json.loads(cli("history", "--format", "json", "--person", BOB).stdout)
    assert {r["id"] for r in rows} == {pid, other}
    doc = json.loads(cli("report", pid, "--format", "json").stdout)
    assert doc["approvals"][0]["by"] == BOB and doc["approvals"][0]["comment"] == "on s3"
    verify = cli("audit", "verify")
    assert verify.returncode == 0 and "audit log intact" in verify.stdout, verify.stderr
    events = [e["event"] for e in iter_entries(store)]
    assert events.count("approve") == 2 and events[-1] == "unlock"
    assert all(e.get("aws_arn") for e in iter_entries(store) if e["event"] == "approve")  # the AWS principal


# -- real terraform: 20 concurrent applies, state moved, kill -9 during apply --------------------------------------
IT_APP, IT_ENV = "apprv", "sandbox"


def _popen(cli, *args: str, user: str = ALICE) -> subprocess.Popen:
    return cli.popen(*args, user=user, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _real_plan(cli, version: str) -> str:
    doc = json.loads(cli.ok("plan", "--app", IT_APP, "--version", version, "--env", IT_ENV, "--format", "json").stdout)
    cli.ok("approve", doc["id"], "--yes", "--comment", f"release {version}", user=BOB)
    if doc.get("escalation_reasons") or version == "1.0.0":  # the first release creates IAM roles: one more
        cli.ok("approve", doc["id"], "--yes", "--comment", "IAM reviewed", user=CAROL)
    return doc["id"]


@pytest.fixture(scope="module")
def first_release(aws_sandbox, cli_factory):
    """20 `tfreview apply` of one approved plan started together (the environment's first, full release)."""
    cli = cli_factory("approvals-it")
    for version in ("1.0.0", "1.1.0"):  # 1.1.0: what the module's later tests plan, each on its own
        cli.ok("package", "--app", IT_APP, "--version", version)
    plan_id = _real_plan(cli, "1.0.0")
    procs = [_popen(cli, "apply", plan_id, "--no-wait") for _ in range(20)]
    outcomes = [(p.wait(timeout=900), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    return cli, plan_id, outcomes


@pytest.mark.integration
def test_twenty_concurrent_applies_of_one_plan_exactly_one_applies(first_release):
    cli, plan_id, outcomes = first_release
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0] + [3] * 19, [(code, err) for code, err in outcomes if code != 3]
    for code, err in outcomes:
        if code == 3:
            assert f"apply in progress for {IT_APP}/{IT_ENV} by {ALICE} since " in err, err
            assert f"plan {plan_id}" in err and "Traceback" not in err
    rows = json.loads(cli.ok("history", "--app", IT_APP, "--format", "json").stdout)
    assert {r["id"]: r["outcome"] for r in rows}[plan_id] == "applied"
    events = [e["event"] for e in iter_entries(LocalStore(cli.store)) if e.get("plan_id") == plan_id]
    assert events.count("apply-start") == 1 and events.count("apply-end") == 1
    assert cli.ok("audit", "verify").returncode == 0
    # Plan binaries (secrets in clear) and state are owner-only files.
    for path in (cli.store / "private" / "plans" / plan_id / "plan.tfplan", cli.store / "private" / "plans" / plan_id,
                 cli.store / "private", cli.store / "state" / IT_APP / IT_ENV / "terraform.tfstate"):
        assert path.stat().st_mode & 0o077 == 0, oct(path.stat().st_mode)


@pytest.mark.integration
def test_apply_refuses_when_state_moved_since_plan(first_release):
    cli, _first, _ = first_release
    plan_id = _real_plan(cli, "1.1.0")
    state_file = cli.store / "state" / IT_APP / IT_ENV / "terraform.tfstate"
    state = json.loads(state_file.read_text())
    state["serial"] += 1  # someone changed the state outside this plan (another tool, a manual apply)
    state_file.write_text(json.dumps(state))
    serial = state["serial"]
    refused(cli("apply", plan_id, "--no-wait"),
            f"state of {IT_APP}/{IT_ENV} moved since plan {plan_id} (serial: serial {serial - 1} planned, {serial} now)")
    assert not (cli.store / "locks" / IT_APP / f"{IT_ENV}.json").exists()


@pytest.mark.integration
def test_kill_9_during_apply_leaves_a_consistent_store_and_the_next_command_reports_it(first_release):
    cli, _first, _ = first_release
    plan_id = _real_plan(cli, "1.1.0")
    proc = _popen(cli, "apply", plan_id, "--no-wait")
    start = cli.store / "applies" / plan_id / "start.json"
    deadline = time.monotonic() + 300
    while not start.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the apply never started"
        time.sleep(0.2)
    time.sleep(2)  # terraform apply is running now
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    proc.stderr.close()

    # terraform is not killed with tfreview: it finishes and writes its state, and the apply shows as running
    # (the lock held) until it is done.
    deadline = time.monotonic() + 300
    while True:
        history = cli("history", "--app", IT_APP, "--format", "json")
        if {r["id"]: r["outcome"] for r in json.loads(history.stdout)}[plan_id] != "applying":
            break
        assert time.monotonic() < deadline, "the orphaned terraform never finished"
        time.sleep(2)
    verify = cli("audit", "verify")
    assert verify.returncode == 0, verify.stderr
    leftovers = [p for p in cli.store.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []  # no half-written record
    history = cli("history", "--app", IT_APP, "--format", "json")
    assert {r["id"]: r["outcome"] for r in json.loads(history.stdout)}[plan_id] == "interrupted"
    assert f"warning: apply of plan {plan_id}" in history.stderr and "its process is gone" in history.stderr
    again = refused(cli("apply", plan_id, "--no-wait"), f"apply in progress for {IT_APP}/{IT_ENV} by {ALICE}",
                    "its process is gone: the apply was interrupted", f"tfreview unlock --app {IT_APP} --env {IT_ENV}")
    assert f"plan {plan_id}" in again

    unlocked = cli("unlock", "--app", IT_APP, "--env", IT_ENV, user=CAROL)
    assert unlocked.returncode == 0 and "recorded as interrupted" in unlocked.stdout, unlocked.stderr
    refused(cli("apply", plan_id, "--no-wait"), f"plan {plan_id} was already applied", "(outcome: interrupted)")
    report = json.loads(cli.ok("report", plan_id, "--format", "json").stdout)
    assert report["outcome"] == "interrupted" and report["apply"]["unlocked_by"] == CAROL
    assert cli.ok("audit", "verify").returncode == 0
