"""The CI examples cannot rot: each example's tfreview commands run, in the pipeline's order, against the local AWS.

examples/github-actions.yml, examples/gitlab-ci.yml and examples/gocd.gocd.yaml are read as their CI reads them
(jobs in order, each job's variables, `${{ ... }}` expressions for GitHub); every `tfreview ...` line of their
scripts runs in bash with the variables the CI would set. Before each manual job (a GitHub environment, GitLab's
`when: manual`, GoCD's manual approval) the reviewers' command written in the example's header runs as two people
with their own SSH keys. The pipeline signs as the test principal ci@example.com: its key is where each example
says (GitHub: the file under runner.temp; GitLab: the File variable TFREVIEW_CI_SIGNING_KEY; GoCD's agent path
/var/go/.ssh is replaced by the test key's path). Lines that are not tfreview (installing, checking out, AWS
credentials, artifacts) are the CI's business and are not run; everything runs in one working directory, so the
files the CI would pass as artifacts are there.

Each test releases ONE app with two pipelines one after the other, as two pipeline runs would: the GitHub Actions
run creates the qa and prod stacks, then the GitLab (here) or GoCD (tests/test_examples_gocd.py) pipeline deploys a
new version to the idle colour and shifts traffic. The store is a local directory
(the examples use S3; tests/test_s3_release.py covers that), pull-request comments go to the FAKE forges of
tests/fake_forges.py, and the examples' knobs (app name, bake time, traffic steps) are set for speed (CHEAP).
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import COMMAND_TIMEOUT_S
from tests.fake_forges import FakeForge
from tests.helpers import signing_key

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
APP = "ciexample"  # the examples' "webapp", renamed so the shared local AWS has no name clash
CI = "ci@example.com"  # a principal of the test policy (tests/helpers.py), as "ci" would be in a team's policy
REVIEWERS = ("bob@example.com", "carol@example.com")
GH_TOKEN, GL_TOKEN = "ghs_FAKEexampleToken000000000000000000", "glpat-FAKEexampleToken0000"
Job = tuple[str, dict[str, str], list[tuple[str, dict[str, str]]], bool]  # name, variables, (line, step vars), manual
FAST = {"TFREVIEW_ROLLOUT_POLL": "0.3", "TFREVIEW_ROLLOUT_TIMEOUT": "90"}
# The examples' own knobs, set for a quick test: the app's name, no bake, all traffic in one step (each step is a
# plan and an apply: the examples' 50,100 and 10,50,100 would add five per run).
CHEAP = {"APP": APP, "BAKE_SECONDS": "0", "QA_STEPS": "100", "PROD_STEPS": "100"}


# -- reading the examples -------------------------------------------------------------------------------------------
def logical_lines(script: str) -> Iterator[str]:
    """The script's commands: backslash continuations joined, blank lines and comments dropped."""
    for line in re.sub(r"\\\n\s*", " ", script).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def tfreview_lines(script: str) -> list[str]:
    return [line for line in logical_lines(script) if line.startswith("tfreview ")]


def reviewer_command(path: Path) -> str:
    """The reviewers' command the example's header shows (`reviewer$ tfreview approve PLAN_ID ...`)."""
    found = re.findall(r"^#\s+reviewer\$ (tfreview approve .*)$", path.read_text(), re.M)
    assert len(found) == 1, f"{path.name}: the header must show the reviewers' command once"
    return found[0]


def expand(value: Any, env: dict[str, str]) -> str:
    """$VAR / ${VAR} from `env` (GitLab expands variables in variables; unknown ones stay empty, as there)."""
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), str(value))


def github_jobs(path: Path, context: dict[str, str]) -> Iterator[Job]:
    """(job, env, tfreview lines, manual) in the workflow's order; ${{ expr }} from `context` (unknown: error)."""
    import yaml

    def resolve(value: Any) -> str:
        def one(m: re.Match) -> str:
            assert m.group(1) in context, f"{path.name}: the test does not know ${{{{ {m.group(1)} }}}}"
            return context[m.group(1)]
        return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", one, str(value))

    doc = yaml.safe_load(path.read_text())
    base = {k: resolve(v) for k, v in (doc.get("env") or {}).items()}
    for name, job in doc["jobs"].items():
        env = {**base, **{k: resolve(v) for k, v in (job.get("env") or {}).items()}}
        lines: list[tuple[str, dict[str, str]]] = []
        for step in job["steps"]:
            if "run" in step:
                step_env = {k: resolve(v) for k, v in (step.get("env") or {}).items()}
                lines += [(line, step_env) for line in tfreview_lines(step["run"])]
        yield name, env, lines, "environment" in job


def gitlab_jobs(path: Path, ci: dict[str, str]) -> Iterator[Job]:
    import yaml

    doc = yaml.safe_load(path.read_text())
    base = dict(ci)
    for key, value in (doc.get("variables") or {}).items():
        base[key] = expand(value, base)
    jobs = [(name, job) for name, job in doc.items() if isinstance(job, dict) and "script" in job]
    for stage in doc["stages"]:
        for name, job in jobs:
            if job.get("stage") != stage:
                continue
            env = dict(base)
            for key, value in (job.get("variables") or {}).items():
                env[key] = expand(value, env)
            no_step_vars: dict[str, str] = {}
            lines = [(line, no_step_vars) for cmd in job["script"] for line in tfreview_lines(cmd)]
            yield name, env, lines, job.get("when") == "manual"


def gocd_jobs(path: Path, go: dict[str, str]) -> Iterator[Job]:
    import yaml

    doc = yaml.safe_load(path.read_text())
    assert doc["format_version"] == 10
    (pipeline,) = doc["pipelines"].values()
    no_step_vars: dict[str, str] = {}
    base = {**go, **{k: str(v) for k, v in pipeline.get("environment_variables", {}).items()}}
    for entry in pipeline["stages"]:
        (stage_name, stage), = entry.items()
        approval = stage.get("approval")
        manual = approval == "manual" or (isinstance(approval, dict) and approval.get("type") == "manual")
        stage_env = {**base, **{k: str(v) for k, v in stage.get("environment_variables", {}).items()}}
        for job_name, job in stage["jobs"].items():
            env = {**stage_env, **{k: str(v) for k, v in job.get("environment_variables", {}).items()}}
            lines: list[tuple[str, dict[str, str]]] = []
            for task in job["tasks"]:
                if "exec" in task:
                    assert task["exec"]["command"] == "bash" and task["exec"]["arguments"][0] == "-c"
                    lines += [(line, no_step_vars) for line in tfreview_lines(task["exec"]["arguments"][1])]
            yield f"{stage_name}/{job_name}", env, lines, manual
            manual = False  # the approval gates the stage, once


# -- running them ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(aws_sandbox, sandbox, cli_factory, tmp_path_factory):
    """Runs an example's jobs in order in one working directory (quick ECS deployments: the `sandbox` fixture);
    returns what was run, per job."""
    cli = cli_factory("examples")
    cli.ok("policy", "show")  # the Cli installs the test policy (the team's admins would: tfreview policy init)
    runner_temp = tmp_path_factory.mktemp("runner")  # GitHub's runner.temp: the workflow writes the CI key there
    shutil.copy(signing_key(CI), runner_temp / "tfreview-ci-key")  # the private key only, as the workflow writes it
    (runner_temp / "tfreview-ci-key").chmod(0o600)

    def sh(line: str, env: dict[str, str], user: str) -> subprocess.CompletedProcess:
        full = {**cli.environment(user), **env, **FAST, **CHEAP, "TFREVIEW_STORE": str(cli.store)}
        tfreview = f"{shlex.quote(sys.executable)} -m tfreview"  # this checkout's tfreview, as `pip install` gives
        proc = subprocess.run(["bash", "-o", "pipefail", "-ec", re.sub(r"^tfreview ", tfreview + " ", line)],
                              cwd=cli.cwd, env=full, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
        assert proc.returncode == 0, f"`{line}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    def run_example(path: Path, jobs: Iterator[Job]) -> list[tuple[str, str]]:
        ran = []
        approve = reviewer_command(path)
        for name, env, lines, manual in jobs:
            if manual:  # the pipeline waits; the reviewers approve the plan this job applies
                plan_id = json.loads((cli.cwd / env["PLAN_FILE"]).read_text())["id"]
                for reviewer in REVIEWERS:
                    # --yes stands for the reviewer's "y" at the terminal prompt
                    sh(approve.replace("PLAN_ID", plan_id) + " --yes", {"TFREVIEW_SIGNING_KEY": str(signing_key(reviewer))},
                       reviewer)
                    ran.append((name, f"reviewer {reviewer}: {approve}"))
            for line, step_env in lines:
                t0 = time.monotonic()
                sh(line, {**env, **step_env}, CI)
                ran.append((name, line))
                print(f"{time.monotonic() - t0:6.1f}s  {path.name} {name}: {line}")  # shown with -s or on failure
        return ran

    run_example.cli, run_example.runner_temp = cli, runner_temp
    return run_example


@pytest.fixture(scope="module")
def forges():
    github = FakeForge("github", "acme/webapp", 41, GH_TOKEN).start()
    gitlab = FakeForge("gitlab", "acme/webapp", 17, GL_TOKEN).start()
    yield github, gitlab
    github.stop()
    gitlab.stop()


def github_actions_run_1(run, forges, tmp_path: Path) -> None:
    """GitHub Actions, run 1: creates the qa and prod stacks with 1.0.1 (the first part of each test below)."""
    github, _gitlab = forges
    cli = run.cli
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"number": github.number, "pull_request": {"number": github.number}}))
    summary = tmp_path / "step-summary.md"
    context = {"github.run_number": "1", "runner.temp": str(run.runner_temp),
               "secrets.GITHUB_TOKEN": GH_TOKEN, "secrets.TFREVIEW_CI_SIGNING_KEY": "(not used here)",
               "vars.AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/deployer"}
    actions = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": github.project, "GITHUB_API_URL": github.url,
               "GITHUB_EVENT_PATH": str(event), "GITHUB_REF": f"refs/pull/{github.number}/merge",
               "GITHUB_STEP_SUMMARY": str(summary)}
    jobs = [(n, {**actions, **env}, lines, manual)
            for n, env, lines, manual in github_jobs(EXAMPLES / "github-actions.yml", context)]
    ran = run(EXAMPLES / "github-actions.yml", iter(jobs))
    assert [n for n, _ in ran] == ["build", "plan-qa", "plan-qa", "apply-qa", "apply-qa", "apply-qa", "apply-qa",
                                   "promote", "promote", "apply-prod", "apply-prod", "apply-prod", "apply-prod"]
    assert len(github.comments) == 2, "one comment per environment (qa, prod)"
    assert "1.0.1" in summary.read_text() and "## Terraform plan review" in summary.read_text()
    status = json.loads(cli.ok("status", "--app", APP, "--env", "prod", "--format", "json").stdout)
    assert status["versions"] == {"blue": "1.0.1", "green": "1.0.1"}


# The pipelines release one app one after the other, as a team's CI would: GitHub Actions creates the stacks, then a
# later pipeline deploys a new version to the idle colour and moves the traffic. GitLab and GoCD each get their own
# test, on its own stacks made by the GitHub run, so the two run side by side in `make test`'s workers (the three in
# one test took 12 minutes, the suite's longest; docs/design-notes.md, "A suite twice as fast"). The GoCD test is in
# tests/test_examples_gocd.py: a module is one worker's.
def test_github_actions_then_gitlab_ci_release_in_order_against_the_local_aws(run, forges, tmp_path):
    github_actions_run_1(run, forges, tmp_path)
    _github, gitlab = forges
    cli = run.cli

    # GitLab CI, pipeline 2: deploys 1.0.2 to the idle colour in qa, then prod.
    ci = {"GITLAB_CI": "true", "CI_PIPELINE_IID": "2", "GITLAB_USER_EMAIL": "dev@example.com",
          "CI_PROJECT_ID": gitlab.project, "CI_MERGE_REQUEST_IID": str(gitlab.number), "CI_API_V4_URL": gitlab.url,
          "GITLAB_TOKEN": GL_TOKEN, "CI_JOB_TOKEN": "job-token-not-used", "TFREVIEW_CI_SIGNING_KEY": str(signing_key(CI)),
          "GITHUB_ACTIONS": "", "GITHUB_STEP_SUMMARY": ""}
    ran = run(EXAMPLES / "gitlab-ci.yml", gitlab_jobs(EXAMPLES / "gitlab-ci.yml", ci))
    assert any("tfreview promote" in line for _, line in ran)
    assert len(gitlab.comments) == 2
    for env_name in ("qa", "prod"):
        status = json.loads(cli.ok("status", "--app", APP, "--env", env_name, "--format", "json").stdout)
        assert status["weights"][status["live_color"]] == 100 and status["live_color"] == "green", status
        assert status["versions"] == {"blue": "1.0.1", "green": "1.0.2"}, status
        assert status["last_release"]["outcome"] == "succeeded"


def test_every_example_has_the_whole_flow():
    """Cheap check of the shape (no AWS): package, plan for qa, review posted, manual apply, promote, apply prod."""
    for name in ("github-actions.yml", "gitlab-ci.yml", "gocd.gocd.yaml"):
        text = (EXAMPLES / name).read_text()
        assert reviewer_command(EXAMPLES / name).startswith("tfreview approve PLAN_ID")
        for step in ("tfreview package ", "--env qa", "tfreview apply ", "tfreview promote ", "--to prod",
                     "--fail-on critical", "TFREVIEW_SIGNING_KEY"):
            assert step in text, f"{name} lacks {step!r}"
        assert "tfreview comment " in text or "--format html" in text, f"{name} does not publish the review"
