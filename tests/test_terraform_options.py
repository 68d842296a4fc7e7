"""Terraform's plan controls through the real CLI and the real terraform, on a terraform_data-only package (no AWS):
-var/-var-file/-target/-replace/-destroy/-refresh-only recorded, shown in every review and report, secrets masked,
refused at the door when malformed, a targeted plan flagged, a destroy plan under its own policy rule."""
from __future__ import annotations

import json
import re

import pytest

from tests.conftest import Cli
from tests.helpers import assert_one_line_error, snapshot

pytestmark = pytest.mark.integration

APP, ENV = "opts", "qa"
ALICE, BOB, CAROL, DAVE = "alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"
SECRET = "hunter2-do-not-print"
FILE_SECRET = "from-the-var-file-7c1f"

MAIN_TF = """
terraform {
  backend "local" {}
}
variable "n" {
  type    = number
  default = 1
}
variable "token" {
  type      = string
  default   = "none"
  sensitive = true
}
variable "note" {
  type      = string
  default   = "plain"
  sensitive = true
}
resource "terraform_data" "a" {
  input = var.n
}
resource "terraform_data" "b" {
  input = "${var.token}-${var.note}"
}
"""

POLICY = f"""
[policy.{ENV}]
required_approvals = 1
escalate_on_risk = 0
destroy_approvals = 2
destroy_approvers = ["{CAROL}", "{DAVE}"]
"""


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    cwd = tmp_path_factory.mktemp("options")
    env_dir = cwd / "terraform" / "envs" / ENV
    env_dir.mkdir(parents=True)
    (env_dir / "main.tf").write_text(MAIN_TF)
    cli = Cli(store=cwd / ".tfreview", cwd=cwd)
    cli.set_rules(POLICY)
    cli.ok("package", "--app", APP, "--version", "1.0.0")
    return cli


def plan(cli: Cli, *args: str) -> dict:
    return json.loads(cli.ok("plan", "--app", APP, "--version", "1.0.0", "--env", ENV, "--format", "json",
                             *args).stdout)


def apply(cli: Cli, plan_id: str, *approvers: str) -> None:
    for who in approvers:
        cli.ok("approve", plan_id, "--yes", user=who)
    cli.ok("apply", plan_id, "--no-wait")


def test_options_are_recorded_shown_in_every_review_and_secrets_stay_masked(cli, tmp_path):
    var_file = tmp_path / "secret.tfvars"
    var_file.write_text(f'note = "{FILE_SECRET}"\n')
    proc = cli.ok("plan", "--app", APP, "--version", "1.0.0", "--env", ENV, "-var", "n=2", "--var", f"token={SECRET}",
                  "--var-file", str(var_file), "--target", "terraform_data.a", "--target", "terraform_data.b")
    assert SECRET not in proc.stdout + proc.stderr and FILE_SECRET not in proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if "Terraform options:" in ln)
    assert "-target=terraform_data.a -target=terraform_data.b" in line and "-var n=2" in line
    assert "-var token=(sensitive value)" in line and "-var-file=secret.tfvars (sha256 " in line
    plan_id = re.search(r"plan id: (\S+)", proc.stdout).group(1)

    record = json.loads((cli.store / "plans" / plan_id / "record.json").read_text())
    opts = record["terraform_options"]
    assert opts["targets"] == ["terraform_data.a", "terraform_data.b"] and not opts["destroy"]
    assert opts["variables"] == [{"name": "n", "value": "2"}, {"name": "token", "value": "(sensitive value)"}]
    assert opts["var_files"][0]["name"] == "secret.tfvars" and len(opts["var_files"][0]["sha256"]) == 64
    assert record["risky"] and any("targeted plan" in r for r in record["escalation_reasons"])
    # Nothing readable in the store holds the secrets (plan.json/plan.tfplan are owner-only: they hold them in clear).
    for path in cli.store.rglob("*"):
        if path.is_file() and path.name not in ("plan.json", "plan.tfplan"):
            data = path.read_bytes()
            assert SECRET.encode() not in data and FILE_SECRET.encode() not in data, path

    for fmt in ("markdown", "html", "text"):
        out = cli.ok("show", plan_id, "--format", fmt).stdout
        assert "-target=terraform_data.a" in out and "token=(sensitive value)" in out, fmt
        assert SECRET not in out and FILE_SECRET not in out, fmt
    shown = json.loads(cli.ok("show", plan_id, "--format", "json").stdout)
    assert shown["terraform_options"] == opts
    report = json.loads(cli.ok("report", plan_id, "--format", "json").stdout)
    assert report["plan"]["terraform_options"] == opts and report["diff"]["terraform_options"] == opts
    assert "-target=terraform_data.a" in cli.ok("report", plan_id, "--format", "markdown").stdout


@pytest.mark.parametrize("args,contains", [
    (("--var", "nonsense"), "--var number 1 is not NAME=VALUE"),
    (("--var", "=3"), "is not NAME=VALUE"),
    (("--var", "blue_version=9.9.9"), "release variable"),
    (("--var-file", "missing.tfvars"), "--var-file missing.tfvars does not exist"),
    (("--target", "not an address"), "is not a resource address"),
    (("--replace", "module.web"), "is not a resource address"),
    (("--destroy", "--refresh-only"), "cannot be combined"),
])
def test_bad_options_are_refused_at_the_door(cli, args, contains):
    before = snapshot(cli.store)
    proc = cli("plan", "--app", APP, "--version", "1.0.0", "--env", ENV, *args)
    assert_one_line_error(proc, 2, contains)
    assert snapshot(cli.store) == before


def test_a_secret_typed_without_equals_is_not_echoed(cli):
    proc = cli("plan", "--app", APP, "--version", "1.0.0", "--env", ENV, "--var", SECRET)
    assert_one_line_error(proc, 2, "is not NAME=VALUE")
    assert SECRET not in proc.stderr


def test_replace_and_refresh_only_reach_terraform(cli):
    first = plan(cli)
    apply(cli, first["id"], BOB)
    replaced = plan(cli, "--replace", "terraform_data.a")
    assert replaced["counts"]["replace"] == 1 and replaced["terraform_options"]["replace"] == ["terraform_data.a"]
    refresh = plan(cli, "--refresh-only")
    assert refresh["counts"]["add"] == refresh["counts"]["change"] == refresh["counts"]["destroy"] == 0
    assert refresh["terraform_options"]["refresh_only"] is True


def test_destroy_plan_needs_its_own_approvers_and_count(cli):
    if not (cli.store / "state").exists():
        apply(cli, plan(cli)["id"], BOB)
    destroy = plan(cli, "--destroy")
    assert destroy["counts"]["destroy"] == 2 and destroy["terraform_options"]["destroy"] is True
    pid = destroy["id"]
    assert_one_line_error(cli("approve", pid, "--yes", user=BOB), 3, f"{BOB} may not approve a destroy plan in {ENV}")
    cli.ok("approve", pid, "--yes", user=CAROL)
    assert_one_line_error(cli("apply", pid, "--no-wait"), 3, "has 1 of 2 required approvals")
    cli.ok("approve", pid, "--yes", user=DAVE)
    cli.ok("apply", pid, "--no-wait")
    state = json.loads(next((cli.store / "state").rglob("terraform.tfstate")).read_text())
    assert state["resources"] == []
