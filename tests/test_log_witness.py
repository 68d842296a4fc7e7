"""Issue 20, items 3, 4, 5 and 8, tried through the `tfreview` command as an attacker or an unlucky operator would:

- the log admits every gap: a record standing for an event with no audit entry is named by `audit verify` (exit 1);
  apply writes its start's entry before start.json; an outcome the log could not take is never a success; ten
  concurrent `package` runs of one package log one `package` entry; a refused `package` leaves nothing behind;
- decisions sit beside their plan: an approval copied from another plan is reported and never listed;
- every reader checks the plan record's signature: a review edited *and* re-hashed into the record is named damaged;
- internal errors become one line: a non-UTF-8 policy file, an unrunnable terraform binary, a lock holding a
  PID past 64 bits, a plan listing an address twice, a record whose date is not a date.

Plans are recorded as `tfreview plan` records them (no terraform) unless the test says real terraform runs (the
terraform_data package of tests/data/tfdata, no AWS). The read-only audit folder is a named fake
(tests/audit_readonly.py): the tests run as root, whom a real read-only folder does not stop.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import helpers
from tests.fake_forges import FakeForge
from tests.helpers import assert_one_line_error, policy_toml
from tests.test_approvals_cli import BOB, PLAN_DOC, cli, record_plan, refused  # noqa: F401
from tests.test_trust import approval_file, audit_fails, edit_json
from tfreview.store.audit import iter_entries
from tfreview.store.local import LocalStore

READ_ONLY_AUDIT = Path(__file__).parent / "audit_readonly.py"
KILL_AFTER = Path(__file__).parent / "kill_after.py"


def entries(cli, event: str) -> list[dict]:
    return [e for e in iter_entries(LocalStore(cli.store)) if e["event"] == event]


def harness(cli, script: Path, first: str, *args: str, user: str = "alice@example.com",
            env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), first, *args], cwd=cli.cwd, env=cli.environment(user, env),
                          capture_output=True, text=True, timeout=300)


# -- item 5: every reader verifies the record ---------------------------------------------------------------------
def _rehash_an_edited_review(cli, pid: str) -> str:
    """Edit plan.json (another image) and the record's json_sha256 to match: what `show` printed before issue 20."""
    plan_json = cli.store / "plans" / pid / "plan.json"
    edited = plan_json.read_bytes().replace(b"r/shop:1.1.0", b"r/evil:6.6.6")
    assert edited != plan_json.read_bytes()
    plan_json.write_bytes(edited)
    edit_json(cli.store / "plans" / pid / "record.json", json_sha256=hashlib.sha256(edited).hexdigest())
    return f"plan record plans/{pid}/record.json is damaged"


def test_a_review_edited_and_rehashed_into_the_record_is_named_damaged_by_every_reader(cli, tmp_path):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    assert "r/shop:1.1.0" in cli.ok("show", pid).stdout
    damaged = _rehash_an_edited_review(cli, pid)
    forge = FakeForge("github", "acme/webapp", 7, "ghs_FAKEtoken0123456789abcdefghijklmnop").start()
    try:
        comment = cli("comment", pid, "--forge", "github", "--repo", forge.project, "--pr", "7", "--api-url",
                      forge.url, env={"GITHUB_TOKEN": forge.token})
        assert forge.comments == {}, "a damaged plan was posted to the pull request"
    finally:
        forge.stop()
    for proc in (cli("show", pid), cli("show", pid, "--format", "json"), cli("report", pid),
                 cli("report", pid, "--format", "json"), comment):
        refused(proc, damaged, "signature")
        assert "r/evil" not in proc.stdout
    expanded = cli("history", "--expand", "--format", "json")
    assert expanded.returncode == 0, expanded.stderr
    [row] = json.loads(expanded.stdout)
    assert row["outcome"] == "damaged" and damaged in row["error"] and damaged in expanded.stderr


def test_status_names_the_damaged_record_of_the_last_apply(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    outputs = {"versions": {"blue": "1.0.0", "green": "1.1.0"}, "weights": {"blue": 0, "green": 100},
               "live_color": "green", "strategy": "blue_green"}
    result = {"kind": "apply-result", "app": "shop", "env": "qa", "version": "1.1.0", "plan_id": pid, "by": BOB,
              "outcome": "applied", "outputs": outputs, "started_at": "2026-01-01T00:00:00Z",
              "finished_at": "2026-01-01T00:01:00Z"}
    (cli.store / "applies" / pid).mkdir(parents=True)
    (cli.store / "applies" / pid / "result.json").write_text(json.dumps(result))
    no_aws = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
              "AWS_DEFAULT_REGION": "us-east-1"}
    genuine = cli("status", "--app", "shop", "--env", "qa", "--format", "json", env=no_aws)
    assert genuine.returncode == 0 and "damaged" not in genuine.stderr, genuine.stderr
    assert "damaged" not in json.loads(genuine.stdout)["last_apply"]
    edit_json(cli.store / "plans" / pid / "record.json", planner=BOB)  # bob's name on alice's signature
    damaged = cli("status", "--app", "shop", "--env", "qa", "--format", "json", env=no_aws)
    assert damaged.returncode == 0, damaged.stderr
    assert f"plan record plans/{pid}/record.json is damaged" in damaged.stderr
    assert f"plans/{pid}/record.json is damaged" in json.loads(damaged.stdout)["last_apply"]["damaged"]


# -- item 4: decisions sit beside the plan they name --------------------------------------------------------------
def test_an_approval_copied_from_another_plan_is_reported_and_never_listed(cli):
    other = record_plan(cli, "shop", "1.1.0", "qa")
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli.ok("approve", other, "--yes", user=BOB)
    cli.ok("history")  # the index is current before the copy
    src = approval_file(cli, other)
    (cli.store / "approvals" / pid).mkdir(parents=True)
    shutil.copy(src, cli.store / "approvals" / pid / src.name)
    refused(cli("apply", pid))
    audit_fails(cli, f"approvals/{pid}/{src.name} names plan {other}", "copied from another plan")
    for args in (("history", "--format", "json"), ("history", "--rebuild-index", "--format", "json")):
        rows = {r["id"]: r for r in json.loads(cli.ok(*args).stdout)}
        assert rows[pid]["approvals"] == [] and [a["by"] for a in rows[other]["approvals"]] == [BOB]
    report = json.loads(cli.ok("report", pid, "--format", "json").stdout)
    assert report["approvals"] == [] and not [s for s in report["statements"] if s["principal"] == BOB]
    markdown = cli.ok("report", pid).stdout
    approvals = markdown[markdown.index("## Approvals"):markdown.index("## Apply")]
    assert BOB not in approvals, approvals
    forge = FakeForge("github", "acme/webapp", 7, "ghs_FAKEtoken0123456789abcdefghijklmnop").start()
    try:
        cli.ok("comment", pid, "--forge", "github", "--repo", forge.project, "--pr", "7", "--api-url", forge.url,
               env={"GITHUB_TOKEN": forge.token})
        [body] = [c["body"] for c in forge.comments.values()]
    finally:
        forge.stop()
    assert "0 of 1 approval(s)" in body and BOB not in body


# -- item 3: the log admits every gap ----------------------------------------------------------------------------
def _write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("what", ["apply start", "apply result", "rollout", "package", "policy version",
                                  "policy signature"])
def test_a_record_the_log_never_saw_is_named_by_audit_verify(cli, what):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli.ok("audit", "verify")
    store = cli.store
    fields = {"app": "shop", "env": "qa", "version": "1.1.0", "plan_id": pid, "by": BOB}
    if what == "apply start":
        key, missing = f"applies/{pid}/start.json", "apply-start"
        _write(store / key, {"kind": "apply-start", **fields, "started_at": "2026-01-01T00:00:00Z"})
    elif what == "apply result":
        key, missing = f"applies/{pid}/result.json", "apply-end"
        _write(store / key, {"kind": "apply-result", **fields, "outcome": "applied",
                             "finished_at": "2026-01-01T00:00:00Z"})
    elif what == "rollout":
        key, missing = f"rollouts/shop/qa/{pid}.json", "rollout"
        _write(store / key, {"kind": "release", **fields, "outcome": "succeeded"})
    elif what == "package":
        key, missing = "packages/shop/9.9.9/manifest.json", "package"
        manifest = json.loads((store / "packages/shop/1.1.0/manifest.json").read_text())
        _write(store / key, {**manifest, "version": "9.9.9"})
        shutil.copy(store / "packages/shop/1.1.0/terraform.zip", store / "packages/shop/9.9.9/terraform.zip")
    elif what == "policy version":  # a proposal stored without its policy-propose entry
        key, missing = "policy/000002/policy.json", "policy-propose"
        first = json.loads((store / "policy/000001/policy.json").read_text())
        _write(store / key, {**first, "version": 2, "proposed_by": BOB})
    else:  # a second admin signature on version 1 that no policy-approve entry records
        key, missing = "policy/000001/signatures/0000000000000000.json", "policy-approve"
        [sig] = (store / "policy/000001/signatures").glob("*.json")
        _write(store / key, {**json.loads(sig.read_text()), "signer": BOB})
    audit_fails(cli, key, missing)


def test_ten_concurrent_package_runs_of_one_package_log_one_package_entry(cli):
    before = len(entries(cli, "package"))
    procs = [cli.popen("package", "--app", "shop", "--version", "2.0.0", "--source", str(cli.cwd / "terraform"),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(10)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 10, [err for _, err in outs]
    logged = [e for e in entries(cli, "package") if e.get("version") == "2.0.0"]
    assert len(logged) == 1 and len(entries(cli, "package")) == before + 1
    assert not (cli.store / "packages/shop/2.0.0/claim.json").exists()
    cli.ok("audit", "verify")


def test_a_package_the_audit_log_refuses_leaves_nothing_behind(cli):
    proc = harness(cli, READ_ONLY_AUDIT, "now", "package", "--app", "shop", "--version", "3.0.0", "--source",
                   str(cli.cwd / "terraform"))
    assert_one_line_error(proc, 1, "Read-only file system")
    assert LocalStore(cli.store).list("packages/shop/3.0.0/") == []  # no zip, no manifest, no claim
    cli.ok("audit", "verify")
    cli.ok("package", "--app", "shop", "--version", "3.0.0", "--source", str(cli.cwd / "terraform"))  # then it works


# Real terraform (terraform_data, no AWS) for the applies.
TFDATA = Path(__file__).parent / "data" / "tfdata"


@pytest.fixture
def project(cli_factory):
    c = cli_factory("witness")
    shutil.rmtree(c.cwd / "terraform")
    shutil.copytree(TFDATA, c.cwd / "terraform")
    c.ok("package", "--app", "data", "--version", "1.0.0")
    pid = json.loads(c.ok("plan", "--app", "data", "--version", "1.0.0", "--env", "qa", "--format", "json").stdout)["id"]
    c.ok("approve", pid, "--yes", user=BOB)
    c.plan_id = pid
    return c


@pytest.mark.integration
def test_an_apply_whose_outcome_the_log_cannot_take_fails_and_audit_verify_names_it(project):
    pid = project.plan_id
    proc = harness(project, READ_ONLY_AUDIT, "after-apply", "apply", pid, "--no-wait")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("tfreview: error:")]
    assert f"plan {pid} was applied, but the audit log could not record its outcome" in line
    result = json.loads((project.store / "applies" / pid / "result.json").read_text())
    assert result["outcome"] == "applied" and result["audit"].startswith("missing")
    audit_fails(project, f"applies/{pid}/result.json", "apply-end")


@pytest.mark.integration
def test_apply_logs_its_start_before_start_json(project, tmp_path):
    """Killed right after start.json is written, the log already holds the apply-start entry."""
    pid = project.plan_id
    log = tmp_path / "writes.log"
    saved = tmp_path / "saved"
    shutil.copytree(project.store, saved)
    harness(project, KILL_AFTER, "0", "apply", pid, "--no-wait", env={"TFREVIEW_TEST_WRITES_LOG": str(log)})
    writes = log.read_text().splitlines()
    [n] = [int(w.split()[0]) for w in writes if w.endswith(f"applies/{pid}/start.json")]
    shutil.rmtree(project.store)
    shutil.copytree(saved, project.store)
    died = harness(project, KILL_AFTER, str(n), "apply", pid, "--no-wait")
    assert died.returncode == -9, died.stderr
    assert (project.store / "applies" / pid / "start.json").exists()
    assert [e["plan_id"] for e in entries(project, "apply-start")] == [pid]
    project.ok("audit", "verify")
    project.ok("unlock", "--app", "data", "--env", "qa")
    assert [e["event"] for e in iter_entries(LocalStore(project.store))][-3:] == ["apply-start", "apply-end", "unlock"]


# -- item 8: internal errors become one line ---------------------------------------------------------------------
@pytest.mark.parametrize("verb", ["init", "propose"])
def test_a_policy_file_that_is_not_utf8_is_bad_input(cli_factory, verb):
    c = cli_factory(f"latin1-{verb}")
    c.install_policy = verb == "propose"
    file = c.cwd / "policy.toml"
    file.write_bytes(policy_toml().encode() + b'\n# caf\xe9\n')
    before = helpers.snapshot(c.store) if verb == "propose" else {}
    if verb == "propose":
        c.ensure_policy()
        before = helpers.snapshot(c.store)
    assert_one_line_error(c("policy", verb, str(file)), 2, "is not UTF-8 text")
    assert helpers.snapshot(c.store) == before


def test_a_terraform_binary_that_cannot_be_run_is_bad_input(cli, tmp_path):
    import zipfile

    binary = tmp_path / "terraform-unreadable"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0)
    plan = tmp_path / "saved.tfplan"
    with zipfile.ZipFile(plan, "w") as zf:
        zf.writestr("tfplan", b"x")
    proc = cli("render", str(plan), env={"TFREVIEW_TERRAFORM_BIN": str(binary)})
    assert_one_line_error(proc, 2, f"cannot run terraform binary '{binary}'")


def test_a_lock_holding_a_pid_past_64_bits_is_named_unreadable(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli.ok("approve", pid, "--yes", user=BOB)
    lock = {"app": "shop", "env": "qa", "owner": BOB, "pid": 2**70, "host": "h", "plan_id": pid,
            "acquired_at": "2026-01-01T00:00:00Z", "break_glass": False}
    _write(cli.store / "locks/shop/qa.json", lock)
    assert_one_line_error(cli("apply", pid), 1, "lock locks/shop/qa.json is unreadable")
    history = cli("history")
    assert history.returncode == 0 and "OverflowError" not in history.stderr and "internal" not in history.stderr
    assert "unlocked shop/qa: an unreadable lock" in cli.ok("unlock", "--app", "shop", "--env", "qa", "--force").stdout


def test_a_plan_listing_an_address_twice_is_invalid(cli, tmp_path):
    doc = json.loads(json.dumps(PLAN_DOC))
    doc["resource_changes"] = doc["resource_changes"] * 2
    file = tmp_path / "twice.json"
    file.write_text(json.dumps(doc))
    address = doc["resource_changes"][0]["address"]
    assert_one_line_error(cli("render", str(file)), 2, f"{address} is listed twice in `resource_changes`")


def test_a_record_whose_date_is_not_a_date_is_listed_as_damaged(cli):
    good = record_plan(cli, "shop", "1.1.0", "qa")
    bad = record_plan(cli, "shop", "1.1.0", "qa")
    edit_json(cli.store / "plans" / bad / "record.json", created_at="yesterday-ish")
    proc = cli("history", "--rebuild-index", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["id"]: r for r in json.loads(proc.stdout)}
    assert rows[bad]["outcome"] == "unreadable" and rows[good]["outcome"] == "planned"
    assert f"plans/{bad}/record.json is damaged" in proc.stderr
