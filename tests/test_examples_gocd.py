"""The GoCD example after a GitHub Actions run, against the local AWS (see tests/test_examples.py, whose fixtures
and readers this uses): GitHub Actions creates the qa and prod stacks with 1.0.1, then the GoCD pipeline (label
1.0.3) deploys to the idle colour in qa, then prod, and moves the traffic. A module of its own so that it runs beside
the GitLab test in `make test`'s workers."""
from __future__ import annotations

import json

import pytest

from tests.helpers import signing_key
from tests.test_examples import APP, CI, EXAMPLES, forges, github_actions_run_1, gocd_jobs, run

pytestmark = pytest.mark.integration
__all__ = ["forges", "run"]  # the fixtures, imported from tests/test_examples.py


def test_github_actions_then_gocd_release_in_order_against_the_local_aws(run, forges, tmp_path):
    github_actions_run_1(run, forges, tmp_path)
    cli = run.cli

    # GoCD, pipeline label 1.0.3: to the idle colour (green) in qa, then prod.
    go = {"GO_PIPELINE_LABEL": "1.0.3", "GO_PIPELINE_COUNTER": "3", "GO_TRIGGER_USER": "changes",
          "GITHUB_ACTIONS": "", "GITLAB_CI": "", "GITHUB_STEP_SUMMARY": ""}
    jobs = [(n, {**env, "TFREVIEW_SIGNING_KEY": str(signing_key(CI))}, lines, manual)  # not /var/go/.ssh
            for n, env, lines, manual in gocd_jobs(EXAMPLES / "gocd.gocd.yaml", go)]
    run(EXAMPLES / "gocd.gocd.yaml", iter(jobs))
    assert "<html" in (cli.cwd / "review-qa.html").read_text().lower()
    for env_name in ("qa", "prod"):
        status = json.loads(cli.ok("status", "--app", APP, "--env", env_name, "--format", "json").stdout)
        assert status["versions"][status["live_color"]] == "1.0.3", status
        assert status["live_color"] == "green" and status["versions"]["blue"] == "1.0.1", status
        assert status["last_release"]["outcome"] == "succeeded"
