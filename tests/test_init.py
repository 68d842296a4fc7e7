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
