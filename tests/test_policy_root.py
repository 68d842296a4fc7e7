"""The rules cannot be rolled back (issue 20, items 1, 2 and 7): one pinned root, a monotonic chain whose every
activation the audit log witnesses, one rule for admins, exit 1 for whatever `audit verify` finds.

Every attack runs through the real `tfreview` command on a local store AND on an S3 store of the local AWS; the
store's objects are changed through the Store protocol, as anyone who can write the directory or the bucket
could. Terraform is a stub that fails loudly: "reached terraform" means the policy let the apply through.
"""
from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests import helpers
from tests.helpers import assert_one_line_error, policy_toml
from tests.test_approvals_cli import ALICE, BOB, CAROL, reached_terraform, record_plan, refused

ERIN = "erin@example.com"
TWO_APPROVALS = "[policy.qa]\nrequired_approvals = 2\n"


class Team:
    """A Cli bound to a store (local or S3) and the same store opened in-process, for what an attacker does."""

    def __init__(self, cli: Any, store: Any) -> None:
        self.cli, self.store = cli, store

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(self.store.list(prefix))

    def copy(self, src: str, dst: str) -> None:
        self.store.write(dst, self.store.read(src))

    def remove(self, prefix: str) -> None:
        for key in self.store.list(prefix):
            self.store.delete(key)

    def plan(self) -> str:
        return record_plan(self.cli, "shop", "1.1.0", "qa", store=self.store)

    def config(self, text: str) -> None:
        """tfreview.toml of the team's repository (with the S3 settings in S3 mode)."""
        (self.cli.cwd / "tfreview.toml").write_text(text)


def _team(cli_factory, tmp_path: Path, kind: str, request: Any, name: str = "root") -> Team:
    from tfreview.store.local import LocalStore

    cli = cli_factory(f"{name}-{kind}")
    tmp_path.mkdir(exist_ok=True)
    if kind == "s3":
        from tfreview.store.s3 import S3Store

        sandbox = request.getfixturevalue("aws_sandbox")  # exports the local AWS's endpoint to the commands
        bucket = f"tfr-root-{uuid.uuid4().hex[:12]}"
        sandbox.client("s3").create_bucket(Bucket=bucket)
        url = f"s3://{bucket}/team"
        helpers.failing_terraform_cli(cli, tmp_path)  # the stub (and a package in the local store, unused)
        cli.env["TFREVIEW_STORE"] = url
        cli.install_policy = True  # a new store: the test policy goes in first
        cli.ok("package", "--app", "shop", "--version", "1.1.0")
        return Team(cli, S3Store.from_url(url, client=sandbox.client("s3")))
    helpers.failing_terraform_cli(cli, tmp_path)
    return Team(cli, LocalStore(cli.store))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def team(request, cli_factory, tmp_path) -> Team:
    """shop 1.1.0 packaged; policy version 2 active: qa plans need two approvals (version 1 needed one)."""
    t = _team(cli_factory, tmp_path, request.param, request)
    t.cli.set_rules(TWO_APPROVALS)
    return t


def audit_fails(team: Team, *words: str, args: tuple[str, ...] = ()) -> str:
    proc = team.cli("audit", "verify", *args)
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    for w in words:
        assert w in proc.stderr, proc.stderr
    return proc.stderr


def one_approval(team: Team) -> str:
    """A qa plan with bob's approval only: enough under version 1, not under version 2."""
    pid = team.plan()
    team.cli.ok("approve", pid, "--yes", user=BOB)
    refused(team.cli("apply", pid), "1 of 2")
    return pid


# -- item 2: monotonic, the log is the witness ----------------------------------------------------------------------
def test_rollback_by_copying_version_1_over_version_2_is_refused_and_detected(team):
    pid, other = one_approval(team), team.plan()
    team.copy("policy/000001/policy.json", "policy/000002/policy.json")
    refused(team.cli("apply", pid), "policy version 2")
    refused(team.cli("approve", other, "--yes", user=BOB), "policy version 2")
    refused(team.cli("report", pid), "policy version 2")  # never "verified" against the rolled-back rules
    audit_fails(team, "policy version 2")


def test_rollback_by_deleting_version_2_is_refused_and_detected(team):
    pid = one_approval(team)
    team.remove("policy/000002/")
    err = refused(team.cli("apply", pid), "policy version 2", "rollback")
    assert "restore" in err
    refused(team.cli("report", pid, "--format", "json"), "policy version 2", "rollback")
    audit_fails(team, "policy version 2")


def test_a_lost_activation_record_is_found_in_the_log_and_written_back(team):
    """What a crash between the policy-activate entry and its record leaves (or a writer deleting the record):
    version 2 stays in force, found near the head of the log, and the next deciding command writes it back."""
    pid = one_approval(team)
    record = team.store.read("policy/000002/activation.json")
    team.store.delete("policy/000002/activation.json")
    refused(team.cli("apply", pid), "1 of 2")  # not a rollback to version 1
    assert team.store.read("policy/000002/activation.json") == record
    assert team.cli("audit", "verify").returncode == 0


def test_an_edited_version_2_is_refused_and_detected(team):
    pid = one_approval(team)
    doc = json.loads(team.store.read("policy/000002/policy.json"))
    doc["document"]["policy"] = {}  # rules back to the defaults (one approval)
    team.store.write("policy/000002/policy.json", json.dumps(doc).encode())
    refused(team.cli("apply", pid), "policy version 2", "replaced or edited")
    audit_fails(team, "policy version 2")


def test_a_version_whose_number_is_not_its_folders_is_refused(team):
    pid = one_approval(team)
    team.copy("policy/000001/policy.json", "policy/000002/policy.json")
    refused(team.cli("apply", pid), "policy version 2: its file says it is version 1")
    refused(team.cli("policy", "show"), "policy version 2: its file says it is version 1")


def test_a_version_file_from_another_store_is_refused_and_detected(team, cli_factory, tmp_path, request):
    other = _team(cli_factory, tmp_path / "other", "local", request, name="other")
    other.cli.set_rules(TWO_APPROVALS.replace("2", "0"))  # the other store's version 2: no approvals at all
    pid = team.plan()
    team.store.write("policy/000002/policy.json", other.store.read("policy/000002/policy.json"))
    for key in other.keys("policy/000002/signatures/"):
        team.store.write(key, other.store.read(key))
    refused(team.cli("apply", pid), "policy version 2")
    audit_fails(team, "policy version 2")
    # The other store's root in place of ours (signatures and all): the log installed another version 1.
    for key in other.keys("policy/000001/"):
        team.store.write(key, other.store.read(key))
    refused(team.cli("apply", pid), "policy version 1 is not the version the audit log installed")


def test_a_checkpoint_older_than_a_policy_change_still_verifies_and_a_later_one_catches_a_rewind(fresh, tmp_path):
    from tfreview.store.audit import HEAD_KEY, entry_key, read_head

    before = tmp_path / "before.json"
    fresh.cli.ok("audit", "checkpoint", "--output", str(before))  # signed by alice under version 1
    # Version 2: bob is the admin, alice's key is gone (her checkpoint's signature must still verify, under 1).
    v2 = tmp_path / "v2.toml"
    v2.write_text(policy_toml(principals=tuple(p for p in helpers.TEST_PRINCIPALS if p != ALICE), admins=(BOB,)))
    fresh.cli.ok("policy", "propose", str(v2))
    first_of_change = read_head(fresh.store)[0] - 2  # policy-propose, policy-approve, policy-activate
    after = tmp_path / "after.json"
    fresh.cli.ok("audit", "checkpoint", "--output", str(after), user=BOB)
    for point in (before, after):
        assert fresh.cli("audit", "verify", "--checkpoint", str(point), user=BOB).returncode == 0
    # Rewind the log together with the policy: version 2 and every entry since the change go.
    for seq in range(first_of_change, read_head(fresh.store)[0] + 1):
        fresh.store.delete(entry_key(seq))
    last = json.loads(fresh.store.read(entry_key(first_of_change - 1)))
    fresh.store.write(HEAD_KEY, json.dumps({"seq": first_of_change - 1, "hash": last["hash"]}).encode())
    fresh.remove("policy/000002/")
    # The store alone cannot tell (alice is the admin again), nor can the checkpoint from before the change...
    assert fresh.cli("audit", "verify").returncode == 0
    assert fresh.cli("audit", "verify", "--checkpoint", str(before)).returncode == 0
    # ...the checkpoint taken after it does.
    audit_fails(fresh, "checkpoint", args=("--checkpoint", str(after)))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def fresh(request, cli_factory, tmp_path) -> Team:
    """shop 1.1.0 packaged; policy version 1 only (alice the admin)."""
    return _team(cli_factory, tmp_path, request.param, request, name="fresh")


# -- item 1: one root, pinned --------------------------------------------------------------------------------------
def intruder_policy(team: Team) -> Path:
    """A policy making erin the one admin, keeping everybody's keys, requiring no approvals."""
    path = team.cli.cwd / "intruder.toml"
    path.write_text(policy_toml("[policy.default]\nrequired_approvals = 0\n", admins=(ERIN,)))
    return path


def test_a_store_with_history_is_never_initialised_again(team):
    pid = team.plan()
    again = team.cli("policy", "init", str(intruder_policy(team)), user=ERIN)
    refused(again, "already has a policy history")
    # Wiping policy/ first does not make a new store: it keeps its log, so it is a damaged one.
    team.remove("policy/")
    before = team.keys()
    refused(team.cli("policy", "init", str(intruder_policy(team)), user=ERIN), "has an audit log but no policy",
            "damaged store")
    assert team.keys() == before  # nothing written
    refused(team.cli("apply", pid, user=ERIN), "has an audit log but no policy")
    audit_fails(team, "has an audit log but no policy")


def test_a_whole_store_replaced_by_an_intruder_is_refused_by_the_pin(fresh):
    team = fresh
    pin = json.loads(team.cli.ok("policy", "show", "--format", "json").stdout)["pin"]
    team.config(f'[trust]\npolicy_root = "{pin}"\n')
    pid = team.plan()
    team.cli.ok("approve", pid, "--yes", user=BOB)
    reached_terraform(team.cli("apply", pid))  # the pinned root: everything works
    # The intruder deletes everything and installs their own root (without the team's tfreview.toml)...
    team.remove("")
    bare = team.cli.cwd / "intruder.cfg"
    bare.write_text("")
    team.cli.ok("policy", "init", str(intruder_policy(team)), user=ERIN, env={"TFREVIEW_CONFIG": str(bare)})
    team.cli.ok("package", "--app", "shop", "--version", "1.1.0", user=ERIN, env={"TFREVIEW_CONFIG": str(bare)})
    theirs = record_plan(team.cli, "shop", "1.1.0", "qa", planner=ERIN, store=team.store)
    # ...every command of the team refuses it, and so does audit verify.
    refused(team.cli("apply", theirs, user=ERIN), "is not the one tfreview.toml pins")
    refused(team.cli("policy", "show"), "is not the one tfreview.toml pins")
    refused(team.cli("report", theirs), "is not the one tfreview.toml pins")  # erin's own signatures not "verified"
    audit_fails(team, "is not the one tfreview.toml pins")
    # Installing a root where a pin is configured is refused up front.
    team.remove("")
    refused(team.cli("policy", "init", str(intruder_policy(team)), user=ERIN), "pins a policy root")


def test_a_pin_naming_another_root_is_refused(team, cli_factory, tmp_path, request):
    other = _team(cli_factory, tmp_path / "other", "local", request, name="pin-other")
    theirs = json.loads(other.cli.ok("policy", "show", "--format", "json").stdout)["pin"]
    ours = json.loads(team.cli.ok("policy", "show", "--format", "json").stdout)["pin"]
    assert theirs != ours and ours.startswith("sha256:") and " admins=SHA256:" in ours
    pid = team.plan()
    team.config(f'[trust]\npolicy_root = "{theirs}"\n')
    refused(team.cli("approve", pid, "--yes", user=BOB), "is not the one tfreview.toml pins")
    audit_fails(team, "is not the one tfreview.toml pins")
    # Same sha256, other admin fingerprints: refused too (the pin is one line, checked whole).
    sha, _ = ours.split(" admins=")
    team.config(f'[trust]\npolicy_root = "{sha} admins={helpers.signer(BOB).public_key.fingerprint}"\n')
    refused(team.cli("policy", "show"), "is not the one tfreview.toml pins")
    team.config('[trust]\npolicy_root = "sha256:abc"\n')
    assert_one_line_error(team.cli("policy", "show"), 2, "policy_root must be")
    team.config(f'[trust]\npolicy_root = "{ours}"\n')
    assert team.cli("audit", "verify").returncode == 0


def test_s3_mode_without_a_pin_says_once_how_to_add_one(fresh):
    pid = fresh.plan()
    proc = fresh.cli("approve", pid, "--yes", user=BOB)
    assert proc.returncode == 0, proc.stderr
    pin = json.loads(fresh.cli.ok("policy", "show", "--format", "json").stdout)["pin"]
    hint = f'policy_root = "{pin}"'
    if fresh.store.url.startswith("s3://"):
        assert proc.stderr.count("pins no policy root") == 1 and hint in proc.stderr, proc.stderr
        fresh.config(f'[trust]\npolicy_root = "{pin}"\n')
        proc = fresh.cli("reject", fresh.plan(), "--reason", "no", user=BOB)
        assert proc.returncode == 0 and "pins no policy root" not in proc.stderr, proc.stderr
    else:  # a local store sits in the team's own repository: no nagging
        assert "pins no policy root" not in proc.stderr


def test_policy_init_prints_the_pin_and_the_pin_works(cli_factory, tmp_path):
    cli = cli_factory("pin-print")
    cli.install_policy = False
    path = tmp_path / "policy.toml"
    path.write_text(policy_toml())
    out = cli.ok("policy", "init", str(path)).stdout
    line = next(x for x in out.splitlines() if x.startswith("policy_root = "))
    assert "[trust]" in out
    (cli.cwd / "tfreview.toml").write_text(f"[trust]\n{line}\n")
    cli.ok("package", "--app", "shop", "--version", "1.0.0")
    assert json.loads(cli.ok("policy", "show", "--format", "json").stdout)["pin"] == json.loads(line.split(" = ")[1])


# -- item 7: one rule for admins, one exit code for tampering ------------------------------------------------------
def test_only_admins_of_the_active_version_may_propose(team):
    before = {k: team.store.read(k) for k in team.keys()}
    proc = team.cli("policy", "propose", str(intruder_policy(team)), user=CAROL)
    refused(proc, f"{CAROL} is not an admin of policy version 2", "ask one of: alice@example.com")
    assert {k: team.store.read(k) for k in team.keys()} == before  # nothing stored, nothing logged


def test_audit_verify_exits_1_for_a_tampered_root(team):
    path = "policy/000001/policy.json"
    bob, mallory = helpers.public_key(BOB).split()[1], helpers.public_key("mallory").split()[1]
    pid = team.plan()
    team.store.write(path, team.store.read(path).replace(bob.encode(), mallory.encode()))
    refused(team.cli("approve", pid, "--yes", user=BOB), "policy version 1 is not signed")
    audit_fails(team, "policy version 1 is not signed")
    proc = team.cli("audit", "verify", "--format", "json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["ok"] is False


# -- the first day ---------------------------------------------------------------------------------------------------
def _newcomer(tmp_path: Path, key: str | None) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("TFREVIEW_")}
    env.update({"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path),
                "TFREVIEW_USER": "dana@example.com", "NO_COLOR": "1", "COLUMNS": "200"})
    if key:
        env["TFREVIEW_SIGNING_KEY"] = key
    return env


def _run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run([sys.executable, "-m", "tfreview", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_first_day_init_policy_init_pin_package(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    env = _newcomer(tmp_path, str(helpers.signing_key("dana@example.com")))
    proc = _run(repo, env, "init", "--app", "shop")
    assert proc.returncode == 0, proc.stderr
    steps = [x.strip() for x in proc.stdout.splitlines() if x.strip()[:2] in ("1.", "2.", "3.")]
    assert "tfreview policy init policy.toml" in steps[0]
    assert "policy_root" in steps[1] and "tfreview.toml" in steps[1]
    assert steps[2] == "3. tfreview package --app shop --version 0.1.0"
    policy = (repo / "policy.toml").read_text()
    assert 'admins = ["dana@example.com"]' in policy and helpers.public_key("dana@example.com").split()[1] in policy
    assert "# [policy.prod]" in policy and "# approvers = " in policy
    # Follow the steps as printed.
    out = _run(repo, env, "policy", "init", "policy.toml")
    assert out.returncode == 0, out.stderr
    pin_line = next(x for x in out.stdout.splitlines() if x.startswith("policy_root = "))
    config = (repo / "tfreview.toml").read_text()
    assert "# [trust]" in config
    (repo / "tfreview.toml").write_text(config + f"\n[trust]\n{pin_line}\n")
    pkg = _run(repo, env, "package", "--app", "shop", "--version", "0.1.0")
    assert pkg.returncode == 0, pkg.stderr


def test_the_first_day_without_a_key_says_how_to_make_one(tmp_path):
    env = _newcomer(tmp_path, None)
    proc = _run(tmp_path, env, "init", "--app", "shop", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["signing_key"] is None and "policy.toml" in out["files"]
    assert "ssh-keygen -t ed25519" in out["next"][0] and "policy init policy.toml" in out["next"][1]
    assert '# "dana@example.com" = "ssh-ed25519 AAAA..."' in (tmp_path / "policy.toml").read_text()


def test_init_on_a_store_with_a_policy_writes_the_pin(cli_factory):
    cli = cli_factory("init-pinned")
    cli.ensure_policy()
    import shutil

    shutil.rmtree(cli.cwd / "terraform")
    out = json.loads(cli.ok("init", "--app", "shop", "--format", "json").stdout)
    pin = json.loads(cli.ok("policy", "show", "--format", "json").stdout)["pin"]
    assert out["policy_root"] == pin and "policy.toml" not in out["files"]
    assert f'policy_root = "{pin}"' in (cli.cwd / "tfreview.toml").read_text()
    assert out["next"] == ["tfreview package --app shop --version 0.1.0"]
    cli.ok("package", "--app", "shop", "--version", "0.1.0")


def test_a_version_signed_but_never_activated_is_not_in_force_until_an_admin_approves_again(cli_factory, tmp_path,
                                                                                             request):
    """What a `policy propose` killed after its signature (written after its policy-approve entry) and before its
    policy-activate entry leaves."""
    from tfreview.trust.admin import _sign_version
    from tfreview.trust.policy import read_policy_file, sha256_of, store_version

    team = _team(cli_factory, tmp_path, "local", request, name="crash")
    pid = team.plan()
    v2 = tmp_path / "v2.toml"
    v2.write_text(policy_toml(TWO_APPROVALS))
    ctx = helpers.context_for(team.store, ALICE)
    v1 = ctx.policy.active
    raw = store_version(team.store, 2, read_policy_file(v2), v1.sha256, ALICE, "2026-12-07T00:00:00Z")
    ctx.audit("policy-propose", details={"version": 2, "policy_sha256": sha256_of(raw)})
    ctx.audit("policy-approve", details={"version": 2, "policy_sha256": sha256_of(raw)})
    _sign_version(ctx, 2, sha256_of(raw))  # killed here
    shown = json.loads(team.cli.ok("policy", "show", "--format", "json").stdout)
    assert shown["active"]["version"] == 1 and shown["pending"]["version"] == 2
    team.cli.ok("approve", pid, "--yes", user=BOB)  # enough under version 1
    team.cli.ok("policy", "approve", "2")  # alice signed already: this records the activation
    assert json.loads(team.cli.ok("policy", "show", "--format", "json").stdout)["active"]["version"] == 2
    refused(team.cli("apply", pid), "1 of 2")
    refused(team.cli("policy", "approve", "2"), "is not a proposal on the active version")
    assert team.cli("audit", "verify").returncode == 0
