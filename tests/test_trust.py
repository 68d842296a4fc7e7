"""Identity is a key: every attack of issue 10 tried for real, through the `tfreview` command, and refused (exit 3)
or detected (`audit verify`, exit 1). Signatures are made by ssh-keygen with throw-away keys (tests/helpers.py) and
verified in-process; the stock `ssh-keygen -Y verify` checks one too. Terraform is a stub that fails loudly: every
refusal happens before it, and "reached terraform" means the policy let the apply through.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import ADMIN, policy_toml, public_key, signer, signing_key
from tests.test_approvals_cli import ALICE, BOB, CAROL, cli, policy, reached_terraform, record_plan, refused  # noqa: F401
from tfreview.errors import BadInput, PolicyRefusal
from tfreview.store.local import LocalStore
from tfreview.trust import sshsig
from tfreview.trust.policy import load_history, parse_document, valid_principal
from tfreview.trust.verify import identify


def approval_file(cli, pid: str) -> Path:
    [path] = (cli.store / "approvals" / pid).glob("*.json")
    return path


def edit_json(path: Path, **changes) -> None:
    doc = json.loads(path.read_bytes())
    doc.update(changes)
    path.write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n")


def audit_fails(cli, *words: str) -> None:
    proc = cli("audit", "verify")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr


# -- SSHSIG, verified in-process ----------------------------------------------------------------------------------
@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_ssh_keygen_signatures_verify_in_process_and_edits_do_not(tmp_path, key_type):
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(key)], check=True)
    message = b'{"approver":"bob@example.com"}'
    sig = subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", "tfreview", "-f", str(key)], input=message,
                         capture_output=True, check=True).stdout.decode()
    public = sshsig.verify(message, sig)
    assert public.blob == sshsig.parse_public_key((tmp_path / "key.pub").read_text()).blob
    with pytest.raises(sshsig.SignatureError, match="does not match"):
        sshsig.verify(message.replace(b"bob", b"eve"), sig)
    with pytest.raises(sshsig.SignatureError, match="namespace"):
        sshsig.verify(message, sig, namespace="git")


# -- principal names ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["\u0430lice@example.com", "alice\u200b@example.com", "alice@example.com\n",
                                  "ali ce", "", "alice\x1b[31m"])
def test_look_alike_and_control_character_names_are_not_principals(name):
    assert not valid_principal(name)
    with pytest.raises(BadInput, match="not a valid principal name"):
        parse_document({"admins": [ADMIN], "signers": {ADMIN: public_key(ADMIN), name: public_key(BOB)}})


def test_policy_documents_refuse_what_would_weaken_them():
    base = {"admins": [ADMIN], "signers": {ADMIN: public_key(ADMIN)}}
    with pytest.raises(BadInput, match="one key, one principal"):
        parse_document({**base, "signers": {ADMIN: public_key(ADMIN), BOB: public_key(ADMIN)}})
    with pytest.raises(BadInput, match="admin_quorum"):
        parse_document({**base, "admin_quorum": 2})
    with pytest.raises(BadInput, match="has no key"):
        parse_document({**base, "policy": {"prod": {"approvers": [BOB]}}})


# -- identity -----------------------------------------------------------------------------------------------------
def test_acting_as_someone_else_without_their_key_is_refused(cli):
    """The planner approves her own plan by typing bob's name: refused, and nothing is recorded."""
    pid = record_plan(cli, "shop", "1.1.0", "qa", planner=ALICE)
    refused(cli("approve", pid, "--yes", user=BOB, env={"TFREVIEW_SIGNING_KEY": str(signing_key(ALICE))}),
            f"TFREVIEW_USER is '{BOB}' but your signing key belongs to {ALICE}")
    assert not (cli.store / "approvals" / pid).exists()
    # A look-alike of another name with a key of its own: that key is in nobody's [signers].
    refused(cli("approve", pid, "--yes", user="b\u043eb@example.com"), "is not in the store's policy")


def test_break_glass_cannot_be_had_by_typing_the_on_call_name(cli):
    policy(cli, '[policy.prod]\nbreak_glass = ["oncall@example.com"]\n')
    pid = record_plan(cli, "shop", "1.1.0", "prod")
    refused(cli("apply", pid, "--break-glass", "--reason", "site down", user="oncall@example.com",
                env={"TFREVIEW_SIGNING_KEY": str(signing_key(ALICE))}), "your signing key belongs to alice@example.com")
    reached_terraform(cli("apply", pid, "--break-glass", "--reason", "site down", user="oncall@example.com"))


def test_commands_that_decide_need_a_key_and_a_policy(cli_factory, tmp_path):
    bare = cli_factory("trust-bare")
    bare.install_policy = False
    no_key = bare("package", "--app", "shop", "--version", "1.0.0", env={"TFREVIEW_SIGNING_KEY": "",
                                                                         "GIT_CONFIG_GLOBAL": "/dev/null"})
    assert no_key.returncode == 2 and "no signing key" in no_key.stderr and "ssh-keygen -t ed25519" in no_key.stderr
    no_policy = bare("package", "--app", "shop", "--version", "1.0.0")
    assert no_policy.returncode == 2 and "has no policy" in no_policy.stderr and "tfreview policy init" in no_policy.stderr
    file = tmp_path / "policy.toml"
    file.write_text(policy_toml())
    not_admin = bare("policy", "init", str(file), user=BOB)
    assert not_admin.returncode == 3 and "is not an admin's key" in not_admin.stderr
    assert not (bare.store / "policy").exists() or not any((bare.store / "policy").rglob("*.json"))


@pytest.mark.parametrize("rules, contains", [
    ('[policy.default]\nrequired_aprovals = 2\n', "unknown key 'required_aprovals'"),
    ('[policy.prod]\nrequired_approvals = "two"\n', "required_approvals must be"),
    ('[signers]\n', "Cannot declare"),
])
def test_a_bad_policy_file_is_bad_input_and_changes_nothing(cli, rules, contains):
    file = cli.cwd / "bad.toml"
    file.write_text(policy_toml(rules))
    proc = cli("policy", "propose", str(file))
    assert proc.returncode == 2 and contains in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert json.loads(cli("policy", "show", "--format", "json").stdout)["active"]["version"] == 1


def test_a_local_tfreview_toml_cannot_carry_policy(cli):
    (cli.cwd / "tfreview.toml").write_text("[policy.qa]\nrequired_approvals = 0\n")
    proc = cli("package", "--app", "shop", "--version", "1.2.0")
    assert proc.returncode == 2 and "[policy] no longer belongs in tfreview.toml" in proc.stderr
    assert "tfreview policy init" in proc.stderr


def test_aws_caller_must_match_the_principals_arn_pattern(tmp_path):
    extra = '[aws_principals]\n"bob@example.com" = "arn:aws:sts::123456789012:assumed-role/reviewer/bob*"\n'
    history = _history(tmp_path, policy_toml(extra=extra))
    bob = signer(BOB)
    assert identify(bob, history, {}, "arn:aws:sts::123456789012:assumed-role/reviewer/bob-session") == BOB
    with pytest.raises(PolicyRefusal, match="does not match bob@example.com's ARN pattern"):
        identify(bob, history, {}, "arn:aws:sts::123456789012:assumed-role/ci/build")


def _history(tmp_path: Path, text: str):
    """A local store with `text` installed as policy version 1 by the admin (through the real command)."""
    import os
    import sys

    file = tmp_path / "p.toml"
    file.write_text(text)
    env = {**os.environ, "TFREVIEW_STORE": str(tmp_path / "store"), "TFREVIEW_SIGNING_KEY": str(signing_key(ADMIN))}
    env.pop("TFREVIEW_USER", None)
    subprocess.run([sys.executable, "-m", "tfreview", "policy", "init", str(file)], env=env, check=True,
                   capture_output=True, cwd=tmp_path)
    return load_history(LocalStore(tmp_path / "store"))


# -- approvals are signed statements -----------------------------------------------------------------------------
def test_an_approval_edited_from_bob_to_carol_is_refused_and_detected(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    assert cli("approve", pid, "--yes", user=BOB).returncode == 0
    edit_json(approval_file(cli, pid), approver=CAROL)
    refused(cli("apply", pid), f"approval of plan {pid} by {CAROL}: the signature does not match the statement")
    audit_fails(cli, "does not match the statement")


def test_an_approval_signed_with_someone_elses_key_is_refused(cli):
    """Carol re-signs bob's approval with her own key: a valid signature, but not bob's."""
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)
    path = approval_file(cli, pid)
    from tfreview.trust.verify import sign

    path.write_text(json.dumps(sign(signer(CAROL), json.loads(path.read_bytes()))))
    refused(cli("apply", pid), f"approval of plan {pid} by {BOB}: says {BOB} but was signed with {CAROL}'s key",
            "(principal mismatch)")
    audit_fails(cli, f"gives {CAROL}, not {BOB}")


def test_an_approval_edited_after_signing_is_refused(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", "--comment", "fine", user=BOB)
    edit_json(approval_file(cli, pid), comment="fine, and the IAM change too")
    refused(cli("apply", pid), f"approval of plan {pid} by {BOB}: the signature does not match the statement")
    audit_fails(cli, "does not match the statement")


def test_a_forged_approval_without_its_audit_entry_is_refused(cli):
    """Carol's real, signed approval of another plan copied over as if she had approved this one."""
    other = record_plan(cli, "shop", "1.1.0", "qa")
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)
    path = approval_file(cli, pid)
    doc = json.loads(path.read_bytes())
    from tfreview.trust.verify import sign

    forged = sign(signer(CAROL), {**doc, "approver": CAROL})  # carol's own key, but she never ran approve
    forged["audit_seq"] = doc["audit_seq"]  # ...pointing at bob's audit entry
    (path.parent / "carol.json").write_text(json.dumps(forged))
    refused(cli("apply", pid), f"approval of plan {pid} by {CAROL}: its audit entry is missing")
    audit_fails(cli, "has no matching entry in the audit log")
    del other


def test_an_approval_signed_with_an_unknown_key_is_refused(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)
    path = approval_file(cli, pid)
    from tfreview.trust.verify import sign

    path.write_text(json.dumps(sign(signer("mallory"), json.loads(path.read_bytes()))))
    refused(cli("apply", pid), "unknown to policy version", "(unknown or revoked key)")


def test_an_approval_by_a_revoked_key_no_longer_counts(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)
    file = cli.cwd / "revoke.toml"
    file.write_text(policy_toml(principals=(ALICE, CAROL)))  # bob's key removed: version 2
    assert cli("policy", "propose", str(file)).returncode == 0
    refused(cli("apply", pid), f"approval of plan {pid} by {BOB}: signed with key", "unknown to policy version 2")


def test_approve_on_an_applied_plan_is_refused(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)
    LocalStore(cli.store).create(f"applies/{pid}/start.json", b"{}\n")
    refused(cli("approve", pid, "--yes", user=CAROL), f"plan {pid} was already applied")


def test_an_edited_plan_record_is_refused(cli):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)
    edit_json(cli.store / "plans" / pid / "record.json", planner=CAROL)
    refused(cli("apply", pid), f"plan record {pid}: the signature does not match the statement")


# -- the policy: versioned, signed, quorum of the current admins ------------------------------------------------
def test_policy_changes_need_a_quorum_of_the_current_admins(cli):
    two_admins = cli.cwd / "v2.toml"
    two_admins.write_text(policy_toml(admins=(ALICE, BOB), quorum=2))
    assert cli("policy", "propose", str(two_admins)).returncode == 0  # alice alone is the quorum of version 1
    lowered = cli.cwd / "v3.toml"
    lowered.write_text(policy_toml('[policy.qa]\nrequired_approvals = 0\n', admins=(ALICE, BOB), quorum=2))
    shown = json.loads(cli("policy", "propose", str(lowered), "--format", "json").stdout)
    assert shown["active"]["version"] == 2 and shown["pending"]["signed_by"] == [ALICE]
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    refused(cli("apply", pid), "is not approved")  # the lowered rules are not active with one admin's signature
    carol = cli("policy", "approve", "3", user=CAROL)
    assert carol.returncode == 3 and "is not an admin of policy version 2" in carol.stderr
    # A store writer adding a signature file by hand does not help either: it must verify as an admin's.
    assert cli("policy", "approve", "3", user=BOB).returncode == 0
    active = json.loads(cli("policy", "show", "--format", "json").stdout)["active"]
    assert active["version"] == 3 and sorted(active["signed_by"]) == [ALICE, BOB]
    reached_terraform(cli("apply", pid))
    assert cli("audit", "verify").returncode == 0


def test_a_tampered_policy_version_is_not_trusted(cli):
    cli("package", "--app", "shop", "--version", "1.2.0")
    path = cli.store / "policy" / "000001" / "policy.json"
    bob, mallory = public_key(BOB).split()[1], public_key("mallory").split()[1]
    path.write_text(path.read_text().replace(bob, mallory))  # a store writer slips their key in as bob's
    proc = cli("approve", "whatever", "--yes", user=BOB)
    assert proc.returncode == 3 and "policy version 1 is not signed by one of its admins" in proc.stderr


# -- truncation and rewind --------------------------------------------------------------------------------------
def test_a_truncated_or_rewound_log_no_longer_extends_its_checkpoint(cli, tmp_path):
    from tfreview.store.audit import HEAD_KEY, append_event, entry_key

    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", user=BOB)  # entries: policy, package, plan, approve
    checkpoint = tmp_path / "checkpoint.json"
    assert cli("audit", "checkpoint", "--output", str(checkpoint)).returncode == 0
    assert json.loads(checkpoint.read_text())["seq"] == 4
    assert cli("audit", "verify", "--checkpoint", str(checkpoint)).returncode == 0
    store = LocalStore(cli.store)
    # Someone with write access drops the approval and its entry and rewinds the head: the chain alone holds...
    shutil.rmtree(cli.store / "approvals" / pid)
    (cli.store / entry_key(4)).unlink()
    third = json.loads(store.read(entry_key(3)))
    store.write(HEAD_KEY, json.dumps({"seq": 3, "hash": third["hash"]}).encode())
    assert cli("audit", "verify").returncode == 0
    # ...but not against the checkpoint kept elsewhere.
    proc = cli("audit", "verify", "--checkpoint", str(checkpoint))
    assert proc.returncode == 1 and "the log has 3 entries, the checkpoint" in proc.stderr and "(truncated)" in proc.stderr
    # Writing another entry 4 in its place (a rewind) is caught too.
    append_event(store, "plan", ALICE, signer=signer(ALICE), policy_version=1, plan_id=pid)
    proc = cli("audit", "verify", "--checkpoint", str(checkpoint))
    assert proc.returncode == 1 and "entry 4 is not the one the checkpoint" in proc.stderr
    # A checkpoint edited to match is refused: it is signed.
    edit_json(checkpoint, head_hash=json.loads(store.read(entry_key(4)))["hash"])
    proc = cli("audit", "verify", "--checkpoint", str(checkpoint))
    assert proc.returncode == 1 and "the checkpoint signature" in proc.stderr


# -- auditors need no tfreview ------------------------------------------------------------------------------------
def test_an_approval_from_the_report_verifies_with_stock_ssh_keygen(cli, tmp_path):
    pid = record_plan(cli, "shop", "1.1.0", "qa")
    cli("approve", pid, "--yes", "--comment", "checked the task definition", user=BOB)
    report = json.loads(cli.ok("report", pid, "--format", "json").stdout)
    assert {s["verified"] for s in report["statements"]} == {"yes"}
    [approval] = [s for s in report["statements"] if s["what"] == f"approve by {BOB}"]
    (tmp_path / "allowed_signers").write_text(report["allowed_signers"][str(approval["policy_version"])])
    (tmp_path / "statement").write_text(approval["statement"])
    (tmp_path / "statement.sig").write_text(approval["signature"])
    command = f"ssh-keygen -Y verify -f allowed_signers -I {BOB} -n tfreview -s statement.sig < statement"
    ok = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0 and f'Good "tfreview" signature for {BOB}' in ok.stdout + ok.stderr
    # The same command on an edited statement, or for another principal, fails.
    (tmp_path / "statement").write_text(approval["statement"].replace("checked", "skimmed"))
    assert subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True).returncode != 0
    (tmp_path / "statement").write_text(approval["statement"])
    assert subprocess.run(command.replace(BOB, CAROL), shell=True, cwd=tmp_path, capture_output=True).returncode != 0
    markdown = cli.ok("report", pid, "--format", "markdown").stdout
    assert "## Signatures" in markdown and f"| approve by {BOB} | {BOB} | SHA256:" in markdown


def test_a_public_key_whose_private_half_is_in_ssh_agent_signs(tmp_path, monkeypatch):
    """TFREVIEW_SIGNING_KEY may name only a .pub: ssh-keygen asks the agent (how FIDO sk- keys work too)."""
    from tfreview.trust.signer import find_signer

    key = tmp_path / "agent-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public_only = tmp_path / "only.pub"
    public_only.write_text(Path(f"{key}.pub").read_text())
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        subprocess.run(["ssh-add", "-q", str(key)], check=True, capture_output=True)
        signer_ = find_signer({"TFREVIEW_SIGNING_KEY": str(public_only)})
        assert sshsig.verify(b"statement", signer_.sign(b"statement")).blob == signer_.public_key.blob
        # Without the agent the same .pub cannot sign: a one-line error, exit 2.
        monkeypatch.delenv("SSH_AUTH_SOCK")
        with pytest.raises(BadInput, match="cannot sign with"):
            signer_.sign(b"statement")
    finally:
        agent.terminate()
        agent.wait()
