"""`tfreview drift`: a refresh-only plan of what the last apply left, for scheduled CI. Exit 0 without drift, 2 with
it (naming the resources), 1 for any error (an environment never applied); nothing stored but an audit entry, so a pending
plan is not superseded. A small SSM stack on the session's local AWS."""
from __future__ import annotations

import json

import pytest

from tests.conftest import Cli
from tests.helpers import assert_one_line_error
from tests.test_cli_contract import assert_documented

pytestmark = pytest.mark.integration

APP, ENV = "drifty", "qa"
MAIN_TF = """
terraform {
  backend "local" {}
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
    }
  }
}
provider "aws" {
  region = "us-east-1"
}
variable "app" { type = string }
resource "aws_ssm_parameter" "flag" {
  name  = "/${var.app}/flag"
  type  = "String"
  value = "on"
}
"""


@pytest.fixture(scope="module")
def cli(aws_sandbox, tmp_path_factory) -> Cli:
    cwd = tmp_path_factory.mktemp("drift")
    (cwd / "terraform" / "envs" / ENV).mkdir(parents=True)
    (cwd / "terraform" / "envs" / ENV / "main.tf").write_text(MAIN_TF)
    return Cli(store=cwd / ".tfreview", cwd=cwd)


def test_drift_errors_exit_1_as_terraform_detailed_exitcode(cli):
    # 2 means drift: an environment never applied, a bad name, are errors (1), as with -detailed-exitcode.
    assert_one_line_error(cli("drift", "--app", APP, "--env", ENV), 1, "has never been applied to qa")
    assert_one_line_error(cli("drift", "--app", "Bad_Name", "--env", ENV), 1, "invalid app")


def test_no_drift_then_drift_after_a_change_outside_terraform(cli, aws_sandbox):
    cli.ok("package", "--app", APP, "--version", "1.0.0")
    pid = json.loads(cli.ok("plan", "--app", APP, "--version", "1.0.0", "--env", ENV, "--format", "json").stdout)["id"]
    cli.ok("approve", pid, "--yes", user="bob@example.com")
    cli.ok("apply", pid, "--no-wait")
    clean = cli("drift", "--app", APP, "--env", ENV)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert f"{APP} in {ENV}: no drift (checked against 1.0.0, plan {pid})" in clean.stdout

    pending = json.loads(cli.ok("plan", "--app", APP, "--version", "1.0.0", "--env", ENV, "--format", "json").stdout)
    aws_sandbox.client("ssm").put_parameter(Name=f"/{APP}/flag", Value="off", Type="String", Overwrite=True)
    drifted = cli("drift", "--app", APP, "--env", ENV, "--format", "json")
    assert drifted.returncode == 2, drifted.stderr
    doc = assert_documented("drift", drifted)
    assert doc["drifted"] is True and doc["plan_id"] == pid
    assert doc["resources"] == [{"address": "aws_ssm_parameter.flag", "action": "update",
                                 "attributes": ["value", "version"]}]
    head = json.loads((cli.store / "heads" / APP / ENV / "latest-plan.json").read_text())
    assert head["plan_id"] == pending["id"]  # the drift check superseded nothing
    events = [json.loads(p.read_text()).get("event") for p in (cli.store / "audit").rglob("*.json")]
    assert events.count("drift-check") == 2
