"""Team mode end to end: a whole release (package, plan, approve, apply) with TFREVIEW_STORE=s3://... and the
environment's terraform state in the S3 backend (use_lockfile), on the local AWS, through the real CLI."""
from __future__ import annotations

import json
import uuid

import pytest

pytestmark = pytest.mark.integration

APP = "teams3"
ENV = "sandbox"


@pytest.fixture(scope="module")
def team_release(aws_sandbox, cli_factory):
    """Release 1.0.0 with an S3 store and S3 state; then plan 1.1.0 (which must read the state back from S3)."""
    s3 = aws_sandbox.client("s3")
    bucket = f"tfr-team-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    cli = cli_factory("team-s3")
    (cli.cwd / "tfreview.toml").write_text(f'[backend.{ENV}]\ntype = "s3"\n')
    env = {"TFREVIEW_STORE": f"s3://{bucket}/team", "TFREVIEW_CONFIG": str(cli.cwd / "tfreview.toml")}
    cli.env.update(env)  # the test policy goes into this store before the first command
    cli.ok("package", "--app", APP, "--version", "1.0.0", env=env)
    first = json.loads(cli.ok("plan", "--app", APP, "--version", "1.0.0", "--env", ENV, "--format", "json",
                              env=env).stdout)
    cli.ok("approve", first["id"], "--yes", "--comment", "first release", user="bob@example.com", env=env)
    cli.ok("approve", first["id"], "--yes", "--comment", "IAM reviewed", user="carol@example.com", env=env)
    cli.ok("apply", first["id"], "--no-wait", env=env)
    cli.ok("package", "--app", APP, "--version", "1.1.0", env=env)
    second = json.loads(cli.ok("plan", "--app", APP, "--version", "1.1.0", "--env", ENV, "--format", "json",
                               env=env).stdout)
    return cli, env, s3, bucket, first, second


def test_the_release_lands_in_the_bucket_under_the_prefix(team_release):
    _cli, _env, s3, bucket, first, _second = team_release
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert f"team/packages/{APP}/1.0.0/terraform.zip" in keys
    assert f"team/plans/{first['id']}/record.json" in keys
    assert f"team/applies/{first['id']}/result.json" in keys
    assert any(k.startswith(f"team/approvals/{first['id']}/") for k in keys)
    assert any(k.startswith("team/audit/entries/") for k in keys)


def test_state_is_in_the_s3_backend_encrypted_and_unlocked_after_apply(team_release):
    _cli, _env, s3, bucket, _first, _second = team_release
    state_key = f"team/state/{APP}/{ENV}/terraform.tfstate"
    state = json.loads(s3.get_object(Bucket=bucket, Key=state_key)["Body"].read())
    assert state["resources"], "the apply wrote its resources to the S3 state"
    assert s3.head_object(Bucket=bucket, Key=state_key)["ServerSideEncryption"] == "AES256"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert f"{state_key}.tflock" not in keys  # terraform released its S3 lock


def test_every_object_of_the_team_bucket_is_encrypted(team_release):
    _cli, _env, s3, bucket, _first, _second = team_release
    for obj in s3.list_objects_v2(Bucket=bucket)["Contents"]:
        assert s3.head_object(Bucket=bucket, Key=obj["Key"]).get("ServerSideEncryption") in ("AES256", "aws:kms"), obj["Key"]


def test_the_next_plan_reads_the_state_back_from_s3(team_release):
    _cli, _env, _s3, _bucket, first, second = team_release
    assert first["counts"]["add"] > 10
    # Only the idle colour's new task definition revision: had the state been lost, everything would be added again.
    assert second["counts"]["add"] <= 2 < first["counts"]["add"]


def test_records_carry_the_aws_caller_arn_beside_the_user(team_release):
    _cli, _env, s3, bucket, first, _second = team_release
    record = json.loads(s3.get_object(Bucket=bucket, Key=f"team/plans/{first['id']}/record.json")["Body"].read())
    assert record["identity"]["user"] == "alice@example.com"
    assert record["identity"]["aws_arn"].startswith("arn:aws:")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"team/approvals/{first['id']}/")["Contents"]
    approvals = [json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listed]
    assert {a["identity"]["user"] for a in approvals} == {"bob@example.com", "carol@example.com"}
    assert all(a["identity"]["aws_arn"].startswith("arn:aws:") for a in approvals)


def test_audit_verify_and_history_work_on_the_team_store(team_release):
    cli, env, _s3, _bucket, first, _second = team_release
    cli.ok("audit", "verify", env=env)
    rows = json.loads(cli.ok("history", "--app", APP, "--format", "json", env=env).stdout)
    assert {r["id"]: r["outcome"] for r in rows}[first["id"]] == "applied"
