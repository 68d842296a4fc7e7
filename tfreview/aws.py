"""AWS access shared by the store, the rollout watcher and identity: clients and error translation.

boto3 is imported lazily (inside the functions), so importing this module costs nothing: `tfreview --help` stays
fast. Clients retry through botocore's own configuration ("standard" mode: exponential backoff with jitter on
throttling, 5xx and connection errors), and every botocore failure a user can act on becomes one tfreview error
with a hint: missing bucket, access denied, expired or missing credentials, endpoint unreachable, throttling.

Environment:
  AWS_ENDPOINT_URL              where AWS is (the local emulator in tests and demos); honoured by botocore itself
  AWS_REGION / AWS_DEFAULT_REGION  region; default us-east-1
  TFREVIEW_AWS_MAX_ATTEMPTS     attempts per call including the first (default 5)
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from tfreview.errors import AwsError, StoreError, TfreviewError

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_REGION = "us-east-1"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0

# Error codes AWS uses for "slow down" (S3: SlowDown/503; most JSON APIs: Throttling*; EC2: RequestLimitExceeded).
THROTTLING_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "RequestThrottled", "RequestThrottledException", "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "BandwidthLimitExceeded", "EC2ThrottledException", "PriorRequestNotComplete",
})
ACCESS_DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AllAccessDisabled", "Forbidden", "403",
})
CREDENTIAL_CODES = frozenset({
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
    "InvalidToken", "UnrecognizedClientException", "TokenRefreshRequired",
})
MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})

_client_lock = threading.Lock()


def max_attempts_from_env() -> int:
    """TFREVIEW_AWS_MAX_ATTEMPTS as an int >= 1 (attempts per call, the first included); default 5."""
    raw = os.environ.get("TFREVIEW_AWS_MAX_ATTEMPTS", "")
    try:
        return max(1, int(raw)) if raw.strip() else DEFAULT_MAX_ATTEMPTS
    except ValueError:
        raise AwsError(f"TFREVIEW_AWS_MAX_ATTEMPTS={raw!r} is not a number",
                       "set it to a whole number of attempts, e.g. 5") from None


def region_from_env() -> str:
    """The region botocore would use, or us-east-1 when none is configured."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def client(
    service: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    max_attempts: int | None = None,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    read_timeout: float = READ_TIMEOUT_S,
) -> Any:
    """A boto3 client for `service` with standard-mode retries.

    `endpoint_url`: explicit endpoint; None lets botocore honour AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>).
    `max_attempts`: attempts per call including the first; None reads TFREVIEW_AWS_MAX_ATTEMPTS (default 5).
    `connect_timeout`, `read_timeout`: seconds.
    Thread-safe to build (boto3's default session is not), and the client itself is thread-safe to use.
    """
    import boto3  # lazy: heavy
    from botocore.config import Config

    config = Config(
        # total_max_attempts counts the first attempt; botocore's "max_attempts" would count retries only.
        retries={"mode": "standard", "total_max_attempts": max_attempts or max_attempts_from_env()},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        region_name=region or region_from_env(),
    )
    with _client_lock:
        session = boto3.session.Session()
        return session.client(service, endpoint_url=endpoint_url, config=config)


def caller_identity(*, endpoint_url: str | None = None, region: str | None = None) -> str | None:
    """The ARN of the AWS identity making calls (STS GetCallerIdentity), or None when it cannot be known
    (no credentials, AWS unreachable). Recorded beside TFREVIEW_USER; never the reason a command fails."""
    try:
        sts = client("sts", endpoint_url=endpoint_url, region=region, max_attempts=2, connect_timeout=2.0,
                     read_timeout=5.0)
        return str(sts.get_caller_identity()["Arn"])
    except Exception:  # identity is best-effort: a missing ARN is recorded as None
        return None


# -- error translation (pure: data in, error out) ---------------------------------------------------------------


def _iam_action(action: str) -> str:
    return action if ":" in action else f"s3:{action}"


def translate(exc: BaseException, *, action: str, resource: str = "", endpoint: str | None = None) -> TfreviewError:
    """The tfreview error for a botocore/boto3 exception raised by `action` (an IAM action, e.g. "s3:PutObject")
    on `resource` (e.g. "s3://bucket/key"); `endpoint` is the URL the client talked to.

    S3 actions (and AccessDenied on them) become StoreError; reachability and throttling become AwsError.
    Anything unrecognised keeps AWS's code and message so the user can still search for it.
    """
    from botocore import exceptions as bex  # lazy; botocore comes with boto3

    service = action.split(":", 1)[0] if ":" in action else "s3"
    where = endpoint or "the default AWS endpoint"
    on = f" on {resource}" if resource else ""

    if isinstance(exc, TfreviewError):
        return exc
    if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectTimeoutError, bex.ConnectionClosedError,
                        bex.ReadTimeoutError, bex.ProxyConnectionError)):
        return AwsError(f"cannot reach AWS at {where} ({action}{on})",
                        "check AWS_ENDPOINT_URL and the network (VPN, proxy, firewall)")
    if isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError)):
        return AwsError(f"no AWS credentials for {action}{on}",
                        "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or log in (aws sso login)")
    if isinstance(exc, (bex.TokenRetrievalError, bex.SSOTokenLoadError, bex.UnauthorizedSSOTokenError)):
        return AwsError(f"AWS credentials have expired ({action}{on})", "log in again (aws sso login) and retry")
    if isinstance(exc, bex.ClientError):
        err = exc.response.get("Error", {}) or {}
        code = error_code(exc) or "Unknown"
        message = str(err.get("Message") or "").strip()
        status = (exc.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode")
        attempts = retry_attempts(exc) + 1
        bucket = err.get("BucketName") or _bucket_of(resource)
        if code in MISSING_BUCKET_CODES:
            name = bucket or resource
            return StoreError(f"bucket {name} does not exist (at {where})",
                              f"create it (aws s3 mb s3://{name}) or check TFREVIEW_STORE")
        if code in CREDENTIAL_CODES:
            return AwsError(f"AWS rejected the credentials for {action}{on}: {code}",
                            "refresh or fix the credentials (AWS_PROFILE, aws sso login, AWS_ACCESS_KEY_ID)")
        if code in ACCESS_DENIED_CODES:  # a HEAD has no body: its 403 arrives as code "403"
            kind = StoreError if service == "s3" else AwsError
            arn = _arn_of(_bucket_of(resource) and f"s3://{_bucket_of(resource)}") if action == "s3:ListBucket" \
                else _arn_of(resource)
            return kind(f"access denied: {_iam_action(action)}{on}",
                        f"grant {_iam_action(action)} on {arn or 'the resource'} to this identity "
                        "(see docs/s3-store.md for the reviewer, CI and auditor policies)")
        if code in THROTTLING_CODES or status in (429, 503):
            return AwsError(f"AWS is throttling {action}{on} ({code} after {attempts} attempts)",
                            "retry later, or raise TFREVIEW_AWS_MAX_ATTEMPTS")
        kind = StoreError if service == "s3" else AwsError
        detail = f"{code}: {message}" if message else code
        return kind(f"{action}{on} failed: {detail}", "retry; if it persists, run with TFREVIEW_DEBUG=1 for details")
    if isinstance(exc, bex.BotoCoreError):
        return AwsError(f"{action}{on} failed: {exc}", "check the AWS configuration (AWS_PROFILE, AWS_REGION)")
    return AwsError(f"{action}{on} failed: {type(exc).__name__}: {exc}", "retry; run with TFREVIEW_DEBUG=1 for details")


@contextmanager
def translated(action: str, *, resource: str = "", endpoint: str | None = None) -> Iterator[None]:
    """Run the block, re-raising any botocore failure as the tfreview error `translate` picks (cause kept)."""
    try:
        yield
    except TfreviewError:
        raise
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, (BotoCoreError, ClientError)):
            raise translate(exc, action=action, resource=resource, endpoint=endpoint) from exc
        raise


def error_code(exc: BaseException) -> str:
    """AWS's error code of a ClientError ("NoSuchKey", "PreconditionFailed", "404"...), "" for anything else."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    code = (response.get("Error") or {}).get("Code")
    if code:
        return str(code)
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return str(status) if status else ""


def retry_attempts(exc: BaseException) -> int:
    """How many times botocore retried the request before this error (0: sent once, or not an AWS error)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return 0
    return int((response.get("ResponseMetadata") or {}).get("RetryAttempts") or 0)


def _bucket_of(resource: str) -> str:
    if resource.startswith("s3://"):
        return resource[len("s3://"):].split("/", 1)[0]
    return ""


def _arn_of(resource: str) -> str:
    if resource.startswith("s3://"):
        path = resource[len("s3://"):]
        return f"arn:aws:s3:::{path}" if path else ""
    return resource if resource.startswith("arn:") else ""
