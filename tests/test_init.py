"""`tfreview init --app APP` in an empty repository: a terraform/ tree that terraform validates and tfreview
packages, a tfreview.toml tfreview reads; refused (exit 2, nothing written) where a tree already is."""
from __future__ import annotations

import json

import pytest

from tests.conftest import Cli
from tests.helpers import assert_one_line_error, snapshot
from tests.test_cli_contract import assert_documented

pytestmark = pytest.mark.integration


def test_init_scaffolds_a_tree_terraform_validates_and_tfreview_packages(tmp_path):
    from tfreview.config import load_settings
    from tfreview.terraform import Terraform, _flag

    cli = Cli(store=tmp_path / ".tfreview", cwd=tmp_path)  # package needs the store policy
    out = assert_documented("init", cli.ok("init", "--app", "shop", "--format", "json"))
    assert "tfreview.toml" in out["files"] and "terraform/envs/qa/main.tf" in out["files"]
    assert load_settings(cwd=tmp_path, environ={}).roles_for("shop").production_listener == "aws_lb_listener.production"
    cli.ok("package", "--app", "shop", "--version", "0.1.0")
    env_dir = tmp_path / "terraform" / "envs" / "qa"
    tf = Terraform(load_settings(cwd=tmp_path), env_dir)
    tf.run("init", input=False, no_color=_flag(), backend="false")
    result = tf.run("validate", no_color=_flag(), json=_flag())
    assert json.loads(result.stdout)["valid"] is True


def test_init_refuses_to_overwrite(tmp_path):
    cli = Cli(store=tmp_path / ".tfreview", cwd=tmp_path, install_policy=False)
    (tmp_path / "tfreview.toml").write_text("# mine\n")
    before = snapshot(tmp_path)
    assert_one_line_error(cli("init", "--app", "shop"), 2, "tfreview.toml already exists")
    assert snapshot(tmp_path) == before
    assert_one_line_error(cli("init", "--app", "shop", "--dir", str(tmp_path / "nope")), 2, "is not a directory")
    assert_one_line_error(cli("init", "--app", "Bad_Name"), 2, "invalid app")


@pytest.mark.parametrize("table,contains", [
    ('colours = ["stable"]', "apps.shop.colours must be two different names"),
    ("service = 42", "apps.shop.service must be a string"),
    ('servise = "aws_ecs_service.web"', "unknown key 'servise' in [apps.shop]"),
])
def test_bad_roles_in_tfreview_toml_are_bad_config(tmp_path, table, contains):
    (tmp_path / "tfreview.toml").write_text(f"[apps.shop]\n{table}\n")
    cli = Cli(store=tmp_path / ".tfreview", cwd=tmp_path, install_policy=False)
    assert_one_line_error(cli("history"), 2, contains)


# -- the example policy (issue 22 item 9) ----------------------------------------------------------------------------
def _run(cwd, *args: str, key=None):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("TFREVIEW_")}
    env.update({"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd),
                "TFREVIEW_USER": "dana@example.com", "NO_COLOR": "1", "COLUMNS": "200"})
    if key:
        env["TFREVIEW_SIGNING_KEY"] = str(key)
    return subprocess.run([sys.executable, "-m", "tfreview", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_init_scaffolds_an_example_policy_its_test_passes_and_it_judges_plans(tmp_path):
    """The starter policy names policy/*.rego; the example's tests pass; it passes a plain image bump, warns on IAM
    changes, denies an image from another registry; `policy init` stores both modules in the signed version."""
    from pathlib import Path

    from tests import helpers

    plans = Path(__file__).resolve().parent.parent / "fixtures" / "plans"
    key = helpers.signing_key("dana@example.com")
    out = json.loads(_run(tmp_path, "init", "--app", "shop", "--format", "json", key=key).stdout)
    assert {"policy/example.rego", "policy/example_test.rego", "policy.toml"} <= set(out["files"])
    assert "tfreview policy test policy/" in out["next"][0]
    assert '\nchecks = ["policy/*.rego"]\n' in (tmp_path / "policy.toml").read_text()

    tested = _run(tmp_path, "policy", "test", "policy/")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "3 passed, 0 failed" in tested.stdout

    def check(plan: str):
        return _run(tmp_path, "policy", "check", str(plans / f"{plan}.json"), "--policy", "policy/")

    assert check("image_bump").returncode == 0
    warned = check("destroy")
    assert warned.returncode == 0
    assert "warn  main.warn: module.webapp.aws_iam_role.execution: IAM delete;" in warned.stdout
    denied = check("sidecar_added")
    assert denied.returncode == 3
    assert ('deny  main.deny: module.webapp.aws_ecs_task_definition.app["green"]: container log-router pulls '
            "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0; policy/example.rego allows images from "
            "example/ only") in denied.stdout

    # Breaking the rule fails its test: the test is real.
    rule = tmp_path / "policy" / "example.rego"
    rule.write_text(rule.read_text().replace("not allowed_image(container.image)", "allowed_image(container.image)"))
    broken = _run(tmp_path, "policy", "test", "policy/")
    assert broken.returncode == 1 and "FAIL example_test.rego" in broken.stdout
    rule.write_text((Path(__file__).resolve().parent.parent / "tfreview" / "policy_example" / "example.rego").read_text())

    installed = _run(tmp_path, "policy", "init", "policy.toml", key=key)
    assert installed.returncode == 0, installed.stderr
    shown = json.loads(_run(tmp_path, "policy", "show", "--format", "json", key=key).stdout)
    assert [m["name"] for m in shown["active"]["checks"]] == ["policy/example.rego", "policy/example_test.rego"]


def test_init_leaves_an_existing_policy_folder_alone(tmp_path):
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "ours.rego").write_text("package main\n")
    out = json.loads(_run(tmp_path, "init", "--app", "shop", "--format", "json").stdout)
    assert "policy.toml" in out["files"] and not any(f.startswith("policy/") for f in out["files"])
    assert sorted(p.name for p in (tmp_path / "policy").iterdir()) == ["ours.rego"]
    assert '\n# checks = ["policy/*.rego"]\n' in (tmp_path / "policy.toml").read_text()
