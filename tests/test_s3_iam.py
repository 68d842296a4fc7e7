"""The IAM policies of docs/s3-store.md, enforced: moto with IAM authorisation on plays AWS, each role works with
exactly the store operations its job needs, and a refused call is a one-line "access denied" naming the action and
the object. The policies are read from the document, so the document cannot drift from what is tested."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests import helpers

from tests.helpers import new_bucket
from tfreview.errors import NotFound, StoreError
from tfreview.plan.redact import redact_plan
from tfreview.store.audit import append_event, verify_chain
from tfreview.store.base import dumps
from tfreview.store.s3 import S3Store
from tfreview.usecases.plan import plan_keys

REPO = Path(__file__).resolve().parent.parent
PLAN_ID = "web-qa-20260101-000000-abcd"
PREFIX = "team"

pytestmark = pytest.mark.usefixtures("fake_aws_env")  # fake credentials, nothing from the outside


def documented_policy(role: str, bucket: str) -> str:
    """The JSON policy under `<!-- policy:ROLE -->` in docs/s3-store.md, for `bucket` and PREFIX."""
    text = (REPO / "docs" / "s3-store.md").read_text()
    match = re.search(rf"<!-- policy:{role} -->\s*```json\n(.*?)```", text, re.S)
    assert match, f"docs/s3-store.md has no policy for {role}"
    policy = match.group(1).replace("BUCKET", bucket).replace("PREFIX", PREFIX)
    json.loads(policy)
    return policy


def store_as(role_keys: tuple[str, str], bucket: str, endpoint: str) -> S3Store:
    """An S3Store that calls S3 with one IAM user's access key."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id=role_keys[0], aws_secret_access_key=role_keys[1],
                                    region_name="us-east-1")
    client = session.client("s3", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}))
    return S3Store(bucket, PREFIX, client=client)


@pytest.fixture
def team(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A bucket holding one plan, IAM users reviewer/ci/auditor with the documented policies; then IAM enforced."""
    import boto3
    from moto import settings as moto_settings
    from moto.core.authorization import ActionAuthenticatorMixin

    bucket = new_bucket(s3_endpoint)
    admin = S3Store(bucket, PREFIX, endpoint_url=s3_endpoint)
    plan_json = redact_plan((REPO / "fixtures" / "plans" / "cpu_memory.json").read_bytes())
    binary = b"terraform plan binary, secrets in clear"
    import hashlib

    record = {
        "kind": "plan", "id": PLAN_ID, "plan_kind": "deploy", "app": "web", "env": "qa", "version": "1.0.0",
        "plan_sha256": hashlib.sha256(binary).hexdigest(), "json_sha256": hashlib.sha256(plan_json).hexdigest(),
        "json_redaction": 1,
        "package_sha256": "a" * 64, "state_lineage": "", "state_serial": 0, "terraform_version": "1.11.4",
        "planner": "ci@example.com", "created_at": "2099-01-01T00:00:00Z", "risky": False, "risk_reasons": [],
        "summary": {"summary_line": "1 to change", "counts": {}, "risk_reasons": []},
    }
    record = helpers.sign_record(admin, record)  # installs the test policy first
    keys = plan_keys(PLAN_ID)
    admin.create(keys["binary"], binary, private=True)
    admin.create(keys["json"], plan_json)
    admin.create(keys["record"], dumps(record))
    admin.write("state/web/qa/terraform.tfstate", b'{"secret": "db password"}', private=True)
    append_event(admin, "plan", "ci@example.com", app="web", env="qa", plan_id=PLAN_ID)

    iam = boto3.client("iam", endpoint_url=s3_endpoint)
    stores = {}
    for role in ("reviewer", "ci", "auditor"):
        user = f"{role}-{bucket}"
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="tfreview", PolicyDocument=documented_policy(role, bucket))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        stores[role] = store_as((key["AccessKeyId"], key["SecretAccessKey"]), bucket, s3_endpoint)

    # From here on moto authorises every call like AWS does (undone by monkeypatch after the test).
    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
    yield {"bucket": bucket, **stores}


context_for = helpers.context_for


def test_auditor_reads_history_report_and_verifies_the_chain_without_writing(team: dict[str, Any]) -> None:
    from tfreview.usecases.report import render_report
    from tfreview.usecases.history import history

    auditor = team["auditor"]
    assert [row["id"] for row in history(auditor)] == [PLAN_ID]
    report = json.loads(render_report(auditor, PLAN_ID, "json"))
    assert report["plan"]["id"] == PLAN_ID and report["audit_chain"]["ok"]
    assert verify_chain(auditor).ok
    with pytest.raises(NotFound):  # ListBucket makes a missing key 404, not 403
        auditor.read("plans/nope/record.json")


def test_auditor_cannot_write_and_is_told_which_permission_is_missing(team: dict[str, Any]) -> None:
    auditor, bucket = team["auditor"], team["bucket"]
    with pytest.raises(StoreError) as err:
        auditor.create(f"approvals/{PLAN_ID}/auditor.json", b"{}")
    assert err.value.message == f"access denied: s3:PutObject on s3://{bucket}/team/approvals/{PLAN_ID}/auditor.json"
    assert f"grant s3:PutObject on arn:aws:s3:::{bucket}/team/approvals/{PLAN_ID}/auditor.json" in err.value.hint
    with pytest.raises(StoreError, match="access denied: s3:PutObject"):
        append_event(auditor, "approve", "auditor@example.com", plan_id=PLAN_ID)
    with pytest.raises(StoreError, match="access denied: s3:DeleteObject"):
        auditor.delete(f"plans/{PLAN_ID}/record.json")


def test_auditor_and_reviewer_cannot_read_terraform_state(team: dict[str, Any]) -> None:
    for role in ("auditor", "reviewer"):
        with pytest.raises(StoreError, match="access denied: s3:GetObject on .*/state/web/qa/terraform.tfstate"):
            team[role].read("state/web/qa/terraform.tfstate")


def test_reviewer_and_auditor_read_the_review_but_never_the_plan_binary(team: dict[str, Any]) -> None:
    from tfreview.usecases.records import load_plan, load_review

    keys = plan_keys(PLAN_ID)
    for role in ("auditor", "reviewer"):
        store = team[role]
        assert load_review(store, load_plan(store, PLAN_ID)).counts.change > 0  # show / report / approve
        with pytest.raises(StoreError) as err:
            store.read(keys["binary"])
        assert err.value.message == f"access denied: s3:GetObject on s3://{team['bucket']}/{PREFIX}/{keys['binary']}"
    assert team["ci"].read(keys["binary"]) == b"terraform plan binary, secrets in clear"  # apply needs it


def test_reviewer_approves_but_cannot_write_plans(team: dict[str, Any]) -> None:
    from tfreview.usecases.decide import decide
    from tfreview.usecases.records import approvals_of

    reviewer = team["reviewer"]
    decide(context_for(reviewer, "bob@example.com"), PLAN_ID, "approve", "lgtm")
    assert [a.approver for a in approvals_of(reviewer, PLAN_ID)] == ["bob@example.com"]
    assert verify_chain(reviewer).count == 3  # policy installed, plan, approval
    with pytest.raises(StoreError, match="access denied: s3:PutObject"):
        reviewer.create("plans/forged/record.json", b"{}")


def test_ci_plans_locks_and_audits_but_can_never_approve(team: dict[str, Any]) -> None:
    from tfreview.store.locks import acquire_lock, release_lock
    from tfreview.usecases.decide import decide

    ci = team["ci"]
    ci.create("plans/web-qa-2/record.json", b"{}")
    lock = acquire_lock(ci, "web", "qa", "ci@example.com", PLAN_ID)
    assert release_lock(ci, lock) is not False
    assert not ci.exists("locks/web/qa.json")
    ci.write("state/web/qa/terraform.tfstate", b"{}", private=True)
    append_event(ci, "apply-start", "ci@example.com", plan_id=PLAN_ID)
    with pytest.raises(StoreError, match="access denied: s3:PutObject on .*/approvals/"):
        decide(context_for(ci, "robot@example.com"), PLAN_ID, "approve", "self-approval by pipeline")
    with pytest.raises(StoreError, match="access denied: s3:DeleteObject"):
        ci.delete(f"plans/{PLAN_ID}/record.json")
