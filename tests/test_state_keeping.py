"""Terraform state outlives every command, and stays in the store the plan was made for.

Real terraform, no AWS: the package is `tests/data/tfdata` (terraform_data only, built into terraform)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import policy_toml
from tfreview.config import Settings, load_settings

pytestmark = pytest.mark.integration

TFDATA = Path(__file__).parent / "data" / "tfdata"


def _project(cli_factory, name: str):
    """A project directory holding the terraform_data package as terraform/ (the default --source)."""
    cli = cli_factory(name)
    shutil.rmtree(cli.cwd / "terraform")
    shutil.copytree(TFDATA, cli.cwd / "terraform")
    cli.ensure_policy()  # the test policy in the default store (.tfreview)
    return cli


def _run(cli, *args: str, user: str = "alice@example.com", cwd: Path | None = None,
         store: str | None = None) -> subprocess.CompletedProcess:
    """`tfreview ARGS` as `user` in the project directory, with the default store unless `store` is given."""
    env = cli.environment(user)
    env.pop("TFREVIEW_STORE", None)
    if store is not None:
        env["TFREVIEW_STORE"] = store
    return subprocess.run([sys.executable, "-m", "tfreview", *args], cwd=cwd or cli.cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _plan(cli, version: str, **kw) -> dict:
    proc = _ok(_run(cli, "plan", "--app", "data", "--version", version, "--env", "qa", "--format", "json", **kw))
    return json.loads(proc.stdout)


def _release(cli, version: str, **kw) -> dict:
    _ok(_run(cli, "package", "--app", "data", "--version", version, **kw))
    planned = _plan(cli, version, **kw)
    _ok(_run(cli, "approve", planned["id"], "--yes", user="bob@example.com", **kw))
    _ok(_run(cli, "apply", planned["id"], "--no-wait", **kw))
    return planned


def test_default_store_keeps_state_between_apply_and_the_next_plan(cli_factory):
    cli = _project(cli_factory, "default-store")
    first = _release(cli, "1.0.0")
    assert first["counts"]["add"] == 1, first
    # The state lives in the project's .tfreview, not beside terraform's temporary working directory.
    assert (cli.cwd / ".tfreview" / "state" / "data" / "qa" / "terraform.tfstate").is_file()
    again = _plan(cli, "1.0.0")
    assert again["summary_line"].startswith("No changes"), again


def test_a_relative_store_is_resolved_once_from_where_tfreview_runs(cli_factory):
    cli = _project(cli_factory, "relative-store")
    (cli.cwd / "policy.toml").write_text(policy_toml(""))
    _ok(_run(cli, "policy", "init", "policy.toml", store="stores/team"))
    _release(cli, "1.0.0", store="stores/team")
    assert (cli.cwd / "stores" / "team" / "state" / "data" / "qa" / "terraform.tfstate").is_file()
    assert _plan(cli, "1.0.0", store="stores/team")["summary_line"].startswith("No changes")


def test_apply_refuses_a_plan_made_for_another_store(cli_factory):
    cli = _project(cli_factory, "copied-store")
    _ok(_run(cli, "package", "--app", "data", "--version", "1.0.0"))
    planned = _plan(cli, "1.0.0")
    _ok(_run(cli, "approve", planned["id"], "--yes", user="bob@example.com"))
    shutil.copytree(cli.cwd / ".tfreview", cli.cwd / "copy")
    proc = _run(cli, "apply", planned["id"], "--no-wait", store=str(cli.cwd / "copy"))
    assert proc.returncode == 3, proc.stderr
    assert "keeps its state elsewhere" in proc.stderr and str(cli.cwd / ".tfreview") in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    # Nothing was written into either store's state.
    assert not (cli.cwd / ".tfreview" / "state" / "data" / "qa" / "terraform.tfstate").exists()
    assert not (cli.cwd / "copy" / "state" / "data" / "qa" / "terraform.tfstate").exists()


def test_settings_paths_are_absolute(tmp_path):
    settings = load_settings({}, environ={"TFREVIEW_PLUGIN_CACHE_DIR": "cache", "TFREVIEW_WORK_DIR": "work"},
                             cwd=tmp_path)
    assert settings.store == str(tmp_path / ".tfreview")
    assert settings.plugin_cache_dir == str(tmp_path / "cache")
    assert settings.work_dir == str(tmp_path / "work")
    assert load_settings({"store": "s3://bucket/team"}, environ={}, cwd=tmp_path).store == "s3://bucket/team"


def test_an_s3_store_keeps_team_state_in_s3_by_default():
    assert Settings(store="s3://acme/team").backend_for("qa") == {"type": "s3"}
    assert Settings(store="/srv/tfreview").backend_for("qa") == {"type": "local"}
    explicit = Settings(store="s3://acme/team", backends={"prod": {"type": "s3", "bucket": "state"}})
    assert explicit.backend_for("prod")["bucket"] == "state"
