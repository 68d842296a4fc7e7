"""Shared test fixtures (helpers that tests import are in tests/helpers.py).

ONE local AWS serves the whole session (`local_aws`): tfreview's sandbox (moto + the ECS deployment lifecycle) on
127.0.0.1, started here in-process. Integration tests (marked `integration`) run the real terraform binary with the
real AWS provider against it (`aws_sandbox` exports its endpoint and credentials); the S3 store tests and the ECS
sandbox tests talk to it with boto3. The provider mirror comes from TFREVIEW_PROVIDER_MIRROR (the Makefile finds
it); the plugin cache is shared so each fresh working directory links the provider instead of copying it.

Parallel runs (`make test`: pytest-xdist, `--dist loadfile`): each worker is a process with its own local AWS on its
own free port (moto's state is per process) and its own temporary directories; a test module runs whole on one
worker, so its module-scoped stacks are built once. The one thing workers share is the plugin cache, which the first
of them fills under a lock (`_fill_plugin_cache`). Workers run the longest modules first, then the others that drive
terraform (`pytest_collection_modifyitems`), so the longest ones do not start last.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.helpers import SANDBOX_STEP_S, new_bucket, policy_toml, signing_key
from tfreview.sandbox import FAKE_CREDENTIALS

REPO = Path(__file__).resolve().parent.parent


def _require_terraform() -> None:
    if shutil.which(os.environ.get("TFREVIEW_TERRAFORM_BIN", "terraform")) is None:
        pytest.fail("terraform is not on PATH: integration tests need the real binary (see README)")


@pytest.fixture(scope="session")
def local_aws():
    """The one local AWS of the session (tfreview's sandbox on a free loopback port; moto's backends are
    process-global anyway), ECS deployment steps of TFREVIEW_SANDBOX_STEP_S or 0.2 s. Nothing is exported."""
    from tfreview.sandbox import start_sandbox

    sandbox = start_sandbox(port=0, step_s=float(os.environ.get("TFREVIEW_SANDBOX_STEP_S", "0.2")))
    yield sandbox
    sandbox.stop()


def _fill_plugin_cache() -> None:
    """Install the AWS provider into the shared plugin cache once, before any test's terraform init links it.

    Terraform does not make a plugin cache safe for concurrent installs, and parallel workers would all find it empty
    on a fresh clone (and copy the 700 MB provider at once). One process at a time, under a lock file beside the
    cache, runs `terraform init` in a scratch directory with tfreview's own terraform environment (mirror, cache);
    once the provider is there, the others only find it."""
    from tfreview.config import Settings
    from tfreview.terraform import Terraform, plugin_cache_lock

    cache = Path(os.environ["TFREVIEW_PLUGIN_CACHE_DIR"])
    cache.mkdir(parents=True, exist_ok=True)
    with plugin_cache_lock(cache):  # the lock tfreview's own terraform init takes
        if list(cache.glob("registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws*")):
            return
        with tempfile.TemporaryDirectory(prefix="tfreview-plugin-cache-") as scratch:
            shutil.copy(REPO / "terraform" / "modules" / "ecs-webapp" / "versions.tf", scratch)
            settings = Settings(terraform_bin=os.environ.get("TFREVIEW_TERRAFORM_BIN", "terraform"),
                                provider_mirror=os.environ.get("TFREVIEW_PROVIDER_MIRROR") or None,
                                plugin_cache_dir=str(cache))
            proc = subprocess.run([settings.terraform_bin, "init", "-backend=false", "-input=false", "-no-color"],
                                  cwd=scratch, env=Terraform(settings, scratch).environment(), capture_output=True,
                                  text=True, timeout=600)
            assert proc.returncode == 0, f"terraform init (filling the plugin cache) failed:\n{proc.stdout}{proc.stderr}"


@pytest.fixture(scope="session")
def aws_sandbox(local_aws):
    """The local AWS for terraform; its endpoint and fake credentials are exported to subprocesses."""
    _require_terraform()
    os.environ.setdefault("TFREVIEW_PLUGIN_CACHE_DIR", str(REPO / ".cache" / "plugins"))
    _fill_plugin_cache()
    saved = {k: os.environ.get(k) for k in local_aws.env()}
    os.environ.update(local_aws.env())
    yield local_aws
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def sandbox(local_aws):
    """The local AWS with quick ECS deployments (SANDBOX_STEP_S per step) while the module using it runs."""
    previous = local_aws.step_s
    local_aws.step_s = SANDBOX_STEP_S
    yield local_aws
    local_aws.step_s = previous


@pytest.fixture
def no_faults_left_behind(local_aws):
    """Clears every injected ECS fault after the test (modules opt in with `pytest.mark.usefixtures`)."""
    yield
    local_aws.clear_faults()


# -- S3 -----------------------------------------------------------------------------------------------------------

FAKE_ENV = {k: v for k, v in FAKE_CREDENTIALS.items() if k != "AWS_SESSION_TOKEN"}  # keys and region, no token


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, no profile, session token, endpoint, store KMS key or retry setting from the outside
    (modules opt in with `pytest.mark.usefixtures`)."""
    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "TFREVIEW_S3_KMS_KEY_ID",
                "TFREVIEW_AWS_MAX_ATTEMPTS"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def s3_endpoint(local_aws) -> str:
    """Endpoint URL of the session's local AWS, for S3 over real HTTP."""
    return local_aws.endpoint


@pytest.fixture
def s3_store(s3_endpoint: str):
    """An S3Store under prefix "team" in a fresh bucket of the session's local AWS."""
    from tfreview.store.s3 import S3Store

    return S3Store(new_bucket(s3_endpoint), "team", endpoint_url=s3_endpoint)


@pytest.fixture
def mock_s3_store(fake_aws_env) -> Iterator[Any]:
    """An S3Store under prefix "team" in moto's in-process `mock_aws` (bucket "test-bucket"), its S3 requests made
    atomic as on AWS (`serialise_s3_requests`, the documented emulator fix)."""
    import boto3
    from moto import mock_aws

    from tfreview.sandbox import serialise_s3_requests
    from tfreview.store.s3 import S3Store

    serialise_s3_requests()
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="test-bucket")
        yield S3Store("test-bucket", "team", client=client)


# -- the CLI --------------------------------------------------------------------------------------------------------

DEFAULT_USER = "alice@example.com"
# A guard against a hung command, not a budget: an apply with two traffic steps (four terraform runs) takes a minute
# or two on an idle machine, and took more than 10 on this 2-core one shared by 7 parallel suites (load 20).
COMMAND_TIMEOUT_S = 1800


@dataclass
class Cli:
    """Runs the real `tfreview` command (a subprocess, as users and CI do) against one store.

    Each user signs with their own throw-away test key (tests/helpers.py). Before its first command, the Cli
    installs the test policy in its store (`install_policy`): helpers.TEST_PRINCIPALS as signers, alice as admin,
    default rules; `set_rules` makes [policy.<env>] tables the active rules (a new version, signed by alice).
    `env` is added to the environment of every command this Cli runs (after the store and user it sets)."""

    store: Path
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    install_policy: bool = True

    def environment(self, user: str = DEFAULT_USER, env: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a command run as `user`: ours, the store, the user and their signing key, no colours,
        160 columns, `self.env`, then `env`; never TFREVIEW_DEBUG. The store gets its policy first."""
        self.ensure_policy()
        full_env = {**os.environ, "TFREVIEW_STORE": str(self.store), "TFREVIEW_USER": user,
                    "TFREVIEW_SIGNING_KEY": str(signing_key(user)), "NO_COLOR": "1", "COLUMNS": "160", **self.env,
                    **(env or {})}
        full_env.pop("TFREVIEW_DEBUG", None)
        return full_env

    def _run(self, args: tuple[str, ...], user: str, input: str | None, env: dict[str, str] | None,
             timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tfreview", *args], cwd=self.cwd, env=self.environment(user, env),
                              capture_output=True, text=True, input=input, timeout=timeout)

    def ensure_policy(self) -> None:
        """Install the test policy in the store unless done (or `install_policy` was turned off). Every command
        does it first (`environment`); tests that write to the store before any command call it themselves."""
        if self.install_policy:
            self.install_policy = False
            self._policy_command("init", "")

    def _policy_command(self, verb: str, rules: str) -> None:
        path = self.cwd / f"policy-{verb}.toml"
        path.write_text(policy_toml(rules))
        proc = self._run(("policy", verb, str(path)), DEFAULT_USER, None, None, 120)
        assert proc.returncode == 0, f"tfreview policy {verb} failed:\n{proc.stdout}\n{proc.stderr}"

    def set_rules(self, rules: str) -> None:
        """Make `rules` ([policy.<env>] tables of a policy file) the store's active rules."""
        self._policy_command("propose", rules)

    def __call__(self, *args: str, user: str = DEFAULT_USER, input: str | None = None,
                 env: dict[str, str] | None = None, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
        return self._run(args, user, input, env, timeout)

    def popen(self, *args: str, user: str = DEFAULT_USER, env: dict[str, str] | None = None,
              **kw: Any) -> subprocess.Popen:
        """Start `tfreview ARGS` (text mode) without waiting; `kw` goes to subprocess.Popen (stdin, stdout...)."""
        return subprocess.Popen([sys.executable, "-m", "tfreview", *args], cwd=self.cwd,
                                env=self.environment(user, env), text=True, **kw)

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


# -- parallel runs --------------------------------------------------------------------------------------------------

# The modules that take minutes, longest first, in seconds on one worker of `make test` (CI, an idle 2-core machine,
# docs/benchmarks.md): only their order matters. A module not listed comes after them, by the rule below.
LONG_MODULES = {
    "tests/test_examples.py": 480,  # a GitHub Actions run creates two stacks, a GitLab pipeline deploys to them
    "tests/test_examples_gocd.py": 480,  # the same with GoCD
    "tests/test_blue_green_faults.py": 450,
    "tests/test_own_terraform.py": 300,
    "tests/test_walking_skeleton.py": 300,
    "tests/test_blue_green_alarms.py": 300,
    "tests/test_blue_green.py": 300,
    "tests/test_s3_release.py": 260,
    "tests/test_blue_green_rolling.py": 250,
    "tests/test_approvals_cli.py": 200,
    "tests/test_crash_points.py": 180,  # kill -9 at each write of package, plan, approve; SIGINT/SIGTERM
    "tests/test_drift.py": 150,
    "tests/test_crash_points_apply.py": 140,  # kill -9 at each write of apply
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a pytest-xdist worker, the modules that take minutes go first, longest first (LONG_MODULES); then the others
    that run terraform: those on the local AWS (the provider's load balancer alone waits a minute per stack), then
    the other integration modules, most such tests first; then the rest.

    With `--dist loadfile --no-loadscope-reorder` (`make test`) a module is one unit of work, handed out in this order
    as workers free up: the few modules that take minutes must start early, not last. One more thing of xdist's: a
    worker whose module has at most 2 tests left is sent its next module at once, queued behind them. So right after
    the first module of each worker come as many quick ones (modules that run no terraform), which is what the
    workers given a long module of one or two tests queue behind it, and not another long one. Every worker computes
    the same order. A run without workers keeps pytest's order."""
    if not hasattr(config, "workerinput"):
        return
    weight: dict[str, tuple[int, int, int]] = {}
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        fixtures = getattr(item, "fixturenames", ())
        on_aws, terraform, local_aws = weight.get(module, (0, 0, 0))
        weight[module] = (on_aws + ("aws_sandbox" in fixtures),
                          terraform + (item.get_closest_marker("integration") is not None),
                          local_aws + ("local_aws" in fixtures))
    position = {module: i for i, module in enumerate(weight)}

    def key(module: str) -> tuple[int, bool, int, int]:
        on_aws, terraform, _ = weight[module]
        return -LONG_MODULES.get(module, 0), not on_aws, -terraform, position[module]

    order = sorted(weight, key=key)
    workers = int(config.workerinput.get("workercount", 1))
    quick = [m for m in order if weight[m] == (0, 0, 0) and m not in LONG_MODULES][:workers]
    order = [m for m in order[:workers] if m not in quick] + quick + [m for m in order[workers:] if m not in quick]
    rank = {module: i for i, module in enumerate(order)}
    items.sort(key=lambda item: rank[item.nodeid.split("::", 1)[0]])
