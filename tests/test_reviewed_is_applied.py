"""The reviewed plan is the applied plan, and secrets stay out of reviewers' reach (issue 10, items 5 and 6).

- `show`, `approve` and `report` refuse (exit 3) a stored review JSON that is not the one the plan record binds;
- `apply` derives the JSON again from the binary it is about to apply and refuses (exit 3, before terraform
  applies anything) unless it hashes as recorded; an old record that binds nothing is refused with a clear line;
- the stored review JSON holds no secret; the binary, which must keep them, is owner-only.

The first tests need no terraform (plans recorded as `tfreview plan` records them, terraform a stub that fails
if reached). Those marked `integration` run the real terraform on a `terraform_data`-only package with a
sensitive variable: no AWS, a few seconds each.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import helpers
from tests.data.corpus import DATA
from tfreview.store.base import dumps
from tfreview.store.local import LocalStore

BOB = "bob@example.com"
SECRET = "hunter2-db-password-7f3a"
NO_CHANGES = (DATA / "no_changes.json").read_bytes()
PLAN_DOC = {
    "format_version": "1.2", "terraform_version": "1.11.4",
    "variables": {"db_password": {"value": SECRET}},
    "configuration": {"root_module": {"variables": {"db_password": {"sensitive": True}}}},
    "resource_changes": [{
        "address": "terraform_data.db", "mode": "managed", "type": "terraform_data", "name": "db",
        "provider_name": "terraform.io/builtin/terraform",
        "change": {"actions": ["create"], "before": None, "after": {"input": SECRET, "triggers_replace": None},
                   "after_unknown": {"id": True, "output": True}, "before_sensitive": False,
                   "after_sensitive": {"input": True, "output": True}}}],
}


def refused(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 3, f"exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, f"{w!r} not in {err!r}"
    return err


def rewrite_record(store_dir: Path, plan_id: str, **changes: object) -> None:
    """Edit a plan record in place, as someone with write access to the store could (None drops a field)."""
    path = store_dir / "plans" / plan_id / "record.json"
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_bytes(dumps({k: v for k, v in record.items() if v is not None}))


# -- without terraform -----------------------------------------------------------------------------------------------

@pytest.fixture
def cli(cli_factory, tmp_path):
    """A fresh store with shop 1.1.0 packaged and one recorded plan of PLAN_DOC; terraform is a stub that fails."""
    c = helpers.failing_terraform_cli(cli_factory("bind"), tmp_path)
    c.plan_id = helpers.record_plan(LocalStore(c.store), PLAN_DOC, "shop", "1.1.0", "qa", "alice@example.com")
    return c


@pytest.mark.parametrize("command", [("show",), ("approve", "--yes"), ("report", "--format", "markdown")],
                         ids=lambda c: c[0])
def test_review_json_replaced_after_planning_is_refused_before_rendering(cli, command):
    cli.ok(command[0], cli.plan_id, *command[1:], user=BOB)  # untouched: shown, approved, reported
    (cli.store / "plans" / cli.plan_id / "plan.json").write_bytes(NO_CHANGES)
    proc = cli(command[0], cli.plan_id, *command[1:], user="carol@example.com")
    refused(proc, f"plan {cli.plan_id}: the stored review JSON does not match the plan record", "make a new plan")
    assert "No changes" not in proc.stdout


def test_record_without_json_hash_is_one_clear_line(cli):
    rewrite_record(cli.store, cli.plan_id, json_sha256=None)
    refused(cli("show", cli.plan_id), f"plan {cli.plan_id} has no json_sha256 in its record")


def test_apply_refuses_a_record_from_before_the_binding(cli):
    cli.ok("approve", cli.plan_id, "--yes", user=BOB)
    rewrite_record(cli.store, cli.plan_id, json_redaction=None)
    refused(cli("apply", cli.plan_id, "--no-wait"), f"plan {cli.plan_id} was made by an older tfreview",
            "make a new plan")


def test_stored_review_json_holds_no_secret_but_reviews_the_same(cli):
    stored = (cli.store / "plans" / cli.plan_id / "plan.json").read_bytes()
    assert SECRET.encode() not in stored and b"(sensitive value #1)" in stored
    assert (cli.store / "plans" / cli.plan_id / "plan.json").stat().st_mode & 0o777 == 0o644  # reviewers read it
    shown = cli.ok("show", cli.plan_id, "--full").stdout
    assert "+ input = (sensitive value)" in shown and SECRET not in shown
    binary = cli.store / "private" / "plans" / cli.plan_id / "plan.tfplan"
    for path in (binary, binary.parent, binary.parent.parent, binary.parent.parent.parent):
        assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))


# -- real terraform, no AWS -----------------------------------------------------------------------------------------

MAIN_TF = """
terraform {
  backend "local" {}
}

variable "db_password" {
  type      = string
  sensitive = true
  default   = "%s"
}

resource "terraform_data" "db" {
  input = var.db_password
}

output "password" {
  value     = terraform_data.db.output
  sensitive = true
}
""" % SECRET


def _real(cli_factory, tmp_path, terraform: str | None = None):
    """A store with data 1.0.0 packaged (a terraform_data resource fed by a sensitive variable) and one plan of it
    for qa, made by `terraform` (default: the real one)."""
    c = cli_factory("bind-real")
    source = tmp_path / "src"
    (source / "envs" / "qa").mkdir(parents=True)
    (source / "envs" / "qa" / "main.tf").write_text(MAIN_TF)
    c.ok("package", "--app", "data", "--version", "1.0.0", "--source", str(source))
    env = {"TFREVIEW_TERRAFORM_BIN": terraform} if terraform else None
    c.plan_id = json.loads(c.ok("plan", "--app", "data", "--version", "1.0.0", "--env", "qa", "--format", "json",
                                env=env).stdout)["id"]
    return c


@pytest.fixture
def real(cli_factory, tmp_path):
    return _real(cli_factory, tmp_path)


def _state(cli) -> dict:
    path = cli.store / "state" / "data" / "qa" / "terraform.tfstate"
    return json.loads(path.read_text()) if path.is_file() else {}


@pytest.mark.integration
def test_real_plan_stores_no_secret_and_applies_what_was_reviewed(real):
    stored = (real.store / "plans" / real.plan_id / "plan.json").read_bytes()
    record = json.loads((real.store / "plans" / real.plan_id / "record.json").read_text())
    assert SECRET.encode() not in stored and record["json_sha256"] == hashlib.sha256(stored).hexdigest()
    shown = real.ok("show", real.plan_id, "--full").stdout
    assert "(sensitive value)" in shown and SECRET not in shown
    real.ok("approve", real.plan_id, "--yes", user=BOB)
    applied = json.loads(real.ok("apply", real.plan_id, "--no-wait", "--format", "json").stdout)
    assert applied["outcome"] == "applied"  # terraform's show -json in apply's own workspace redacts identically
    assert [r["type"] for r in _state(real)["resources"]] == ["terraform_data"]


@pytest.mark.integration
def test_apply_refuses_a_binary_whose_json_is_not_the_reviewed_one(cli_factory, tmp_path):
    # The planner's terraform lies: `show -json` says "no changes" while the binary creates a resource. The record
    # is honestly signed over that JSON, so reviewers see nothing to worry about and approve.
    fake = tmp_path / "no_changes.json"
    fake.write_bytes(NO_CHANGES)
    lying = tmp_path / "terraform-that-lies"
    lying.write_text(f'#!/bin/sh\nif [ "$1" = show ]; then cat "{fake}"; exit 0; fi\n'
                     f'exec "{shutil.which("terraform")}" "$@"\n')
    lying.chmod(0o755)
    real = _real(cli_factory, tmp_path, terraform=str(lying))
    assert "No changes" in real.ok("show", real.plan_id).stdout
    real.ok("approve", real.plan_id, "--yes", user=BOB)
    refused(real("apply", real.plan_id, "--no-wait"),  # the real terraform from here on
            f"plan {real.plan_id}: its binary does not show the JSON its reviewers read", "do not apply it")
    assert not _state(real).get("resources")  # terraform applied nothing
    assert not (real.store / "applies" / real.plan_id).exists()  # and no apply was started


@pytest.mark.integration
def test_apply_refuses_a_binary_swapped_after_review(real):
    binary = real.store / "private" / "plans" / real.plan_id / "plan.tfplan"
    data = binary.read_bytes()
    binary.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    real.ok("approve", real.plan_id, "--yes", user=BOB)
    refused(real("apply", real.plan_id, "--no-wait"), f"plan {real.plan_id} changed since it was made")
    assert not _state(real).get("resources")
