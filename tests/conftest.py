"""Shared test fixtures.

Integration tests (marked `integration`) run the real terraform binary with the real AWS provider against ONE
local AWS for the whole session: tfreview's sandbox (moto + the ECS deployment lifecycle) on 127.0.0.1, started
here in-process. The provider mirror comes from TFREVIEW_PROVIDER_MIRROR (the Makefile finds it); the plugin
cache is shared so each fresh working directory links the provider instead of copying it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _require_terraform() -> None:
    if shutil.which(os.environ.get("TFREVIEW_TERRAFORM_BIN", "terraform")) is None:
        pytest.fail("terraform is not on PATH: integration tests need the real binary (see README)")


@pytest.fixture(scope="session")
def aws_sandbox():
    """The local AWS for the whole session; its endpoint and fake credentials are exported to subprocesses."""
    from tfreview.sandbox import start_sandbox

    _require_terraform()
    os.environ.setdefault("TFREVIEW_PLUGIN_CACHE_DIR", str(REPO / ".cache" / "plugins"))
    sandbox = start_sandbox(port=0, step_s=float(os.environ.get("TFREVIEW_SANDBOX_STEP_S", "0.2")))
    saved = {k: os.environ.get(k) for k in sandbox.env()}
    os.environ.update(sandbox.env())
    yield sandbox
    sandbox.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@dataclass
class Cli:
    """Runs the real `tfreview` command (a subprocess, as users and CI do) against one store."""

    store: Path
    cwd: Path

    def __call__(self, *args: str, user: str = "alice@example.com", input: str | None = None,
                 env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        full_env = {**os.environ, "TFREVIEW_STORE": str(self.store), "TFREVIEW_USER": user, "NO_COLOR": "1",
                    "COLUMNS": "160", **(env or {})}
        full_env.pop("TFREVIEW_DEBUG", None)
        return subprocess.run([sys.executable, "-m", "tfreview", *args], cwd=self.cwd, env=full_env,
                              capture_output=True, text=True, input=input, timeout=timeout)

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess:
        proc = self(*args, **kw)
        assert proc.returncode == 0, f"tfreview {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return proc


@pytest.fixture(scope="session")
def cli_factory(tmp_path_factory):
    """Make a Cli bound to a fresh store; the working directory holds a copy of the repo's terraform/ tree."""

    def make(name: str) -> Cli:
        cwd = tmp_path_factory.mktemp(name)
        shutil.copytree(REPO / "terraform", cwd / "terraform")
        return Cli(store=cwd / ".tfreview", cwd=cwd)

    return make


def ecs_client(sandbox):
    return sandbox.client("ecs")
