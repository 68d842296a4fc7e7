"""tfreview.aws.translate: every botocore failure a user can act on becomes one tfreview error with a hint.

These build botocore exceptions by hand (the shapes botocore raises); the store tests show the same errors
coming out of real calls (missing bucket, unreachable endpoint, throttling, IAM denial on moto).
"""
from __future__ import annotations

import pytest
from botocore import exceptions as bex

from tfreview.aws import error_code, translate
from tfreview.errors import AwsError, StoreError


def client_error_built_by_hand(code: str, status: int, message: str = "", retries: int = 0,
                               operation: str = "PutObject") -> bex.ClientError:
    response = {"Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": retries}}
    return bex.ClientError(response, operation)


def test_access_denied_on_s3_names_action_key_and_the_permission_to_grant() -> None:
    err = translate(client_error_built_by_hand("AccessDenied", 403, "Access Denied"), action="s3:GetObject",
                    resource="s3://acme/team/plans/p1/record.json")
    assert isinstance(err, StoreError) and err.exit_code == 1
    assert err.message == "access denied: s3:GetObject on s3://acme/team/plans/p1/record.json"
    assert err.hint.startswith("grant s3:GetObject on arn:aws:s3:::acme/team/plans/p1/record.json")


def test_access_denied_on_listing_points_at_the_bucket_arn() -> None:
    err = translate(client_error_built_by_hand("AccessDenied", 403), action="s3:ListBucket",
                    resource="s3://acme/team/plans/")
    assert "grant s3:ListBucket on arn:aws:s3:::acme " in err.hint


def test_access_denied_outside_s3_is_an_aws_error() -> None:
    err = translate(client_error_built_by_hand("AccessDeniedException", 400), action="ecs:UpdateService",
                    resource="arn:aws:ecs:us-east-1:1:service/c/s")
    assert isinstance(err, AwsError) and not isinstance(err, StoreError)
    assert "ecs:UpdateService" in err.message and "arn:aws:ecs:us-east-1:1:service/c/s" in err.hint


def test_missing_bucket_says_create_it_or_check_the_store_url() -> None:
    err = translate(client_error_built_by_hand("NoSuchBucket", 404), action="s3:PutObject",
                    resource="s3://acme/team/x.json", endpoint="https://s3.eu-west-1.amazonaws.com")
    assert isinstance(err, StoreError)
    assert err.message == "bucket acme does not exist (at https://s3.eu-west-1.amazonaws.com)"
    assert "aws s3 mb s3://acme" in err.hint and "TFREVIEW_STORE" in err.hint


@pytest.mark.parametrize("code, status", [("SlowDown", 503), ("ThrottlingException", 400),
                                          ("RequestLimitExceeded", 400), ("TooManyRequestsException", 429)])
def test_throttling_after_retries_is_an_aws_error_counting_attempts(code: str, status: int) -> None:
    err = translate(client_error_built_by_hand(code, status, retries=4), action="s3:PutObject",
                    resource="s3://acme/team/x.json")
    assert isinstance(err, AwsError)
    assert f"({code} after 5 attempts)" in err.message
    assert "TFREVIEW_AWS_MAX_ATTEMPTS" in err.hint


@pytest.mark.parametrize("exc", [
    bex.EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
    bex.ConnectTimeoutError(endpoint_url="http://127.0.0.1:9"),
    bex.ReadTimeoutError(endpoint_url="http://127.0.0.1:9"),
])
def test_unreachable_endpoint_names_the_url(exc: Exception) -> None:
    err = translate(exc, action="s3:GetObject", resource="s3://acme/x", endpoint="http://127.0.0.1:9")
    assert isinstance(err, AwsError)
    assert err.message.startswith("cannot reach AWS at http://127.0.0.1:9")
    assert "AWS_ENDPOINT_URL" in err.hint


def test_missing_and_rejected_credentials_say_how_to_log_in() -> None:
    assert "AWS_PROFILE" in translate(bex.NoCredentialsError(), action="s3:GetObject").hint
    rejected = translate(client_error_built_by_hand("ExpiredToken", 400), action="s3:GetObject")
    assert isinstance(rejected, AwsError) and "ExpiredToken" in rejected.message
    assert "aws sso login" in rejected.hint


def test_an_unknown_error_keeps_aws_code_and_message() -> None:
    # S3 answers 403 for an archived object: not a permission problem, so not called one
    err = translate(client_error_built_by_hand("InvalidObjectState", 403, "The operation is not valid"),
                    action="s3:GetObject", resource="s3://acme/x")
    assert isinstance(err, StoreError)
    assert err.message == "s3:GetObject on s3://acme/x failed: InvalidObjectState: The operation is not valid"


def test_a_bodiless_403_from_head_object_is_access_denied() -> None:
    err = translate(client_error_built_by_hand("403", 403, "Forbidden", operation="HeadObject"),
                    action="s3:GetObject", resource="s3://acme/x")
    assert err.message == "access denied: s3:GetObject on s3://acme/x"


def test_error_code_reads_client_errors_only() -> None:
    assert error_code(client_error_built_by_hand("PreconditionFailed", 412)) == "PreconditionFailed"
    assert error_code(client_error_built_by_hand("", 404)) == "404"
    assert error_code(ValueError("x")) == ""
