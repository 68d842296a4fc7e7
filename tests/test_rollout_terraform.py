"""The watcher on deployments made by real terraform (the ecs-webapp module, the real AWS provider) against the
sandbox: a new version on the idle colour is watched to success; every injected fault is detected, never a success,
and the production listener keeps all traffic on the live colour."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tfreview.rollout.status import colour_weights
from tfreview.rollout.watch import watch_colour
from tfreview.sandbox import FAULTS
from tfreview.terraform import cli_config_text

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
APP = "rwatch"


class Env:
    """The sandbox env root of the ecs-webapp module in a scratch directory, driven with plain terraform."""

    def __init__(self, root: Path, sandbox) -> None:
        self.root = root
        self.sandbox = sandbox
        mirror = os.environ.get("TFREVIEW_PROVIDER_MIRROR") or "/opt/tf-plugins"
        cfg = root.parent / "cli.tfrc"
        cfg.write_text(cli_config_text(mirror))
        cache = os.environ.get("TFREVIEW_PLUGIN_CACHE_DIR", str(REPO / ".cache" / "plugins"))
        self.env = {**os.environ, **sandbox.env(), "TF_CLI_CONFIG_FILE": str(cfg), "TF_IN_AUTOMATION": "1",
                    "TF_PLUGIN_CACHE_DIR": cache}
        Path(self.env["TF_PLUGIN_CACHE_DIR"]).mkdir(parents=True, exist_ok=True)

    def tf(self, *args: str) -> str:
        proc = subprocess.run(["terraform", *args, "-no-color"], cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, f"terraform {args[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        return proc.stdout

    def release(self, blue: str, green: str) -> dict:
        """Apply versions per colour (blue live with 100 %) and return the root outputs."""
        (self.root / "tfreview.auto.tfvars.json").write_text(json.dumps(
            {"app": APP, "blue_version": blue, "green_version": green}))
        self.tf("apply", "-auto-approve", "-input=false")
        return json.loads(self.tf("output", "-json"))


@pytest.fixture(scope="module")
def env(aws_sandbox, tmp_path_factory):
    work = tmp_path_factory.mktemp("rollout-tf")
    shutil.copytree(REPO / "terraform", work / "terraform")
    env = Env(work / "terraform" / "envs" / "sandbox", aws_sandbox)
    env.tf("init", "-input=false")
    env.release("1.0.0", "1.0.0")
    return env


def test_a_new_version_on_the_idle_colour_is_watched_to_success(env, aws_sandbox):
    outputs = env.release("1.0.0", "1.1.0")
    result = watch_colour(outputs, "green", endpoint_url=aws_sandbox.endpoint, timeout_s=60, poll_s=0.2)
    assert result.ok, result.reason
    assert result.task_definition == outputs["task_definitions"]["value"]["green"]
    assert colour_weights(aws_sandbox.client("elbv2"), outputs) == {"blue": 100, "green": 0}


@pytest.mark.parametrize("fault", FAULTS)
def test_each_injected_fault_is_a_failed_deployment_and_traffic_stays_on_blue(env, aws_sandbox, fault):
    service = f"{APP}-sandbox-green"
    version = f"2.0.{FAULTS.index(fault)}"
    aws_sandbox.set_fault(service, fault)
    try:
        outputs = env.release("1.0.0", version)
        lines = []
        result = watch_colour(outputs, "green", endpoint_url=aws_sandbox.endpoint, timeout_s=8, poll_s=0.2,
                              on_event=lines.append)
    finally:
        aws_sandbox.set_fault(service, None)
    assert not result.ok and result.state == "failed", result.reason
    assert any(line.kind == "result" and line.text.startswith("FAILED") for line in lines)
    assert colour_weights(aws_sandbox.client("elbv2"), outputs) == {"blue": 100, "green": 0}
    blue = watch_colour(outputs, "blue", endpoint_url=aws_sandbox.endpoint, timeout_s=5, poll_s=0.2)
    assert blue.ok, blue.reason  # the live colour was never touched


def test_after_the_failed_releases_a_good_one_is_watched_to_success(env, aws_sandbox):
    outputs = env.release("1.0.0", "3.0.0")
    result = watch_colour(outputs, "green", endpoint_url=aws_sandbox.endpoint, timeout_s=60, poll_s=0.2)
    assert result.ok, result.reason
    ecs = aws_sandbox.client("ecs")
    green = ecs.describe_services(cluster=outputs["cluster_name"]["value"],
                                  services=[outputs["services"]["value"]["green"]])["services"][0]
    assert [d["status"] for d in green["deployments"]] == ["PRIMARY"]  # the failed deployments were drained
