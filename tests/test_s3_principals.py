"""AWS principals mean people (issue 20, item 6), in S3 mode through the real CLI: each person calls AWS as their own
IAM user on the local AWS (STS names that user); an approval from the planner's AWS principal, or from one another
approver already used, is refused (exit 3 naming it) and never counted by `apply`. Terraform is a stub that fails
loudly: "reached terraform" means the policy let the apply through."""
from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timezone

import pytest

from tests import helpers
from tests.conftest import Cli
from tests.test_approvals_cli import BOB, CAROL, PLAN_DOC, reached_terraform, refused
from tfreview.sandbox import FAKE_CREDENTIALS
from tfreview.store.s3 import S3Store

PLANNER = "ci@example.com"


def iam_user(endpoint: str, name: str) -> tuple[dict[str, str], str]:
    """(credentials as environment variables, caller ARN) of a new IAM user `name` on the local AWS."""
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="x")
    user = f"{name}-{uuid.uuid4().hex[:8]}"
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_SESSION_TOKEN": ""}, arn


@pytest.fixture
def team(s3_endpoint, tmp_path, cli_factory):
    """An S3 store (shop 1.1.0 packaged), a planner and two approvers each with their own IAM user."""
    bucket = helpers.new_bucket(s3_endpoint)
    base = cli_factory("s3-principals")
    stub = tmp_path / "terraform"
    stub.write_text("#!/bin/sh\necho \"stub terraform reached: $*\" >&2\nexit 1\n")
    stub.chmod(0o755)
    cli = Cli(store=f"s3://{bucket}/team", cwd=base.cwd,
              env={**FAKE_CREDENTIALS, "AWS_SESSION_TOKEN": "", "AWS_ENDPOINT_URL": s3_endpoint,
                   "TFREVIEW_TERRAFORM_BIN": str(stub)})
    cli.ok("package", "--app", "shop", "--version", "1.1.0")
    people = {who: iam_user(s3_endpoint, who.split("@")[0]) for who in (PLANNER, BOB, CAROL)}
    store = S3Store(bucket, "team", endpoint_url=s3_endpoint)
    yield cli, store, people
    shutil.rmtree(tmp_path, ignore_errors=True)


def _plan(store, people) -> str:
    return helpers.record_plan(store, PLAN_DOC, "shop", "1.1.0", "qa", PLANNER, aws_arn=people[PLANNER][1])


def test_an_approval_from_the_planners_aws_principal_is_refused_and_not_counted(team):
    cli, store, people = team
    pid = _plan(store, people)
    creds, arn = people[PLANNER]
    proc = cli("approve", pid, "--yes", user=BOB, env=creds)  # bob's key, the pipeline's AWS credentials
    refused(proc, f"{BOB} may not approve plan {pid}: its AWS principal {arn} is the planner's ({PLANNER})")
    assert not store.list(f"approvals/{pid}/")
    refused(cli("apply", pid, user=PLANNER, env=creds), "is not approved")
    cli.ok("approve", pid, "--yes", user=BOB, env=people[BOB][0])  # bob as himself
    reached_terraform(cli("apply", pid, user=PLANNER, env=creds))


def test_two_approvals_from_one_aws_principal_count_once_and_the_second_is_named(team):
    cli, store, people = team
    cli.set_rules("[policy.qa]\nrequired_approvals = 2\n")
    pid = _plan(store, people)
    creds, arn = people[BOB]
    cli.ok("approve", pid, "--yes", user=BOB, env=creds)
    refused(cli("approve", pid, "--yes", user=CAROL, env=creds),
            f"{CAROL} may not approve plan {pid}: its AWS principal {arn} is {BOB}'s, who approved already")
    refused(cli("apply", pid, user=PLANNER, env=people[PLANNER][0]), "has 1 of 2 required approvals")
    cli.ok("approve", pid, "--yes", user=CAROL, env=people[CAROL][0])
    reached_terraform(cli("apply", pid, user=PLANNER, env=people[PLANNER][0]))


def test_apply_names_an_approval_whose_aws_principal_is_shared():
    """The pure core, for approvals recorded before the check at `approve` existed (or written around it)."""
    from tfreview.review.policy import (Approval, CurrentFacts, PlanFacts, Policy, aws_principal_not_counted,
                                        check_apply)

    now = datetime.now(timezone.utc)
    facts = PlanFacts(plan_id="p", plan_sha256="s", package_sha256="k", app="a", env="qa", version="1",
                      state_lineage="", state_serial=0, terraform_version="1.11.4", planner=PLANNER, created_at=now,
                      planner_arn="arn:aws:iam::1:user/ci")
    bound = {f: getattr(facts, f) for f in ("plan_id", "plan_sha256", "package_sha256", "app", "env", "version",
                                             "state_lineage", "state_serial", "terraform_version", "planner")}
    approval = Approval(**bound, approver=BOB, comment="", approved_at=now, key="k-bob",
                        aws_arn="arn:aws:iam::1:user/ci")
    current = CurrentFacts(plan_sha256="s", package_sha256="k", state_lineage="", state_serial=0,
                           latest_plan_id="p", succeeded_in=frozenset())
    policy = Policy()
    with pytest.raises(Exception) as err:
        check_apply(policy, facts, [approval], now, current)
    assert "not counted: bob@example.com (its AWS principal arn:aws:iam::1:user/ci is the planner's" in str(err.value)
    assert aws_principal_not_counted(policy.for_env("qa"), facts, [], BOB, "arn:aws:iam::1:user/bob") is None
