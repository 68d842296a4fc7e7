"""The S3 store (team mode): the Store protocol on one bucket and prefix, `s3://bucket/prefix`.

Keys map to `<prefix>/<key>`; the workflow chooses keys (`packages/<app>/<version>/terraform.zip` beside its
manifest, plans, approvals, applies, locks, audit), this module only puts them under the prefix.

No lost writes, by S3's conditional writes:
  create   PutObject If-None-Match: *      412 PreconditionFailed (or 409 ConditionalRequestConflict) -> Conflict
  replace  PutObject If-Match: <etag>      412 / 409, or 404 (the object is gone)                        -> Conflict
  delete   DeleteObject If-Match: <etag>   412 / 409 -> Conflict; a missing key is ignored
S3 evaluates the condition and the write as one step, so of N concurrent creates exactly one wins and a CAS loop
(read_versioned -> replace -> retry on Conflict) loses nothing.

Every PutObject requests server-side encryption: SSE-S3 (AES256) by default, SSE-KMS with the configured key when
`kms_key_id` (or TFREVIEW_S3_KMS_KEY_ID) is set. Objects never carry an ACL: they are private to the bucket owner,
so `private=True` needs nothing more on S3 (the bucket must block public access; see docs/s3-store.md).

Etags are S3's ETag header values, verbatim (quotes included); callers treat them as opaque.
Retries and lost answers: if S3 applied a conditional write but its answer was lost, botocore's retry gets 412.
Only in that case (the request was retried), the store reads the object back: holding exactly our bytes, the write
was ours and succeeds; otherwise it is the Conflict it looks like.
"""
from __future__ import annotations

import os
import threading
from typing import Any

from tfreview.aws import error_code, retry_attempts, translate
from tfreview.errors import BadInput, Conflict, NotFound
from tfreview.store.base import key_parts

KMS_ENV = "TFREVIEW_S3_KMS_KEY_ID"

# Codes S3 returns when a conditional write loses: 412 on a failed precondition, 409 when another conditional
# write to the same key is in flight (AWS: "retry the request").
_LOST_RACE = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
_MISSING_KEY = frozenset({"NoSuchKey", "404", "NotFound"})

_CONTENT_TYPES = {
    ".json": "application/json",
    ".zip": "application/zip",
    ".md": "text/markdown; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of `s3://bucket/prefix`; the prefix has no leading or trailing '/' (may be "")."""
    if not url.startswith("s3://"):
        raise BadInput(f"{url!r} is not an s3:// URL", "use --store s3://BUCKET/PREFIX")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise BadInput(f"{url!r} names no bucket", "use --store s3://BUCKET/PREFIX")
    return bucket, prefix.strip("/")


def content_type(key: str) -> str:
    """The Content-Type stored with `key`, from its extension (auditors open reports in a browser)."""
    _, dot, ext = key.rpartition(".")
    return _CONTENT_TYPES.get(f".{ext.lower()}", "application/octet-stream") if dot else "application/octet-stream"


class S3Store:
    """The Store protocol on `s3://bucket/prefix`.

    `kms_key_id`: KMS key id/ARN/alias for SSE-KMS; None reads TFREVIEW_S3_KMS_KEY_ID; unset means SSE-S3.
    `endpoint_url`: None lets botocore honour AWS_ENDPOINT_URL. `max_attempts`: per call, the first included
    (None: TFREVIEW_AWS_MAX_ATTEMPTS, default 5). `client`: an existing boto3 S3 client (tests).
    The boto3 client is built on first use, so opening a store does no I/O and imports no boto3.
    """

    read_workers = 8  # each GET is a network round trip; botocore keeps 10 connections per client

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        kms_key_id: str | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        max_attempts: int | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.kms_key_id = kms_key_id if kms_key_id is not None else (os.environ.get(KMS_ENV) or None)
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._endpoint_url = endpoint_url
        self._region = region
        self._max_attempts = max_attempts
        self._client = client
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "S3Store":
        """The store at `s3://bucket/prefix`; `options` as for the constructor."""
        bucket, prefix = parse_s3_url(url)
        return cls(bucket, prefix, **options)

    # -- plumbing --------------------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The boto3 S3 client (built once, thread-safe)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from tfreview.aws import client

                    self._client = client("s3", endpoint_url=self._endpoint_url, region=self._region,
                                          max_attempts=self._max_attempts)
        return self._client

    @property
    def endpoint(self) -> str:
        """The URL the client talks to (for error messages)."""
        return str(self.client.meta.endpoint_url)

    def object_key(self, key: str) -> str:
        """The S3 object key of store key `key` (`<prefix>/<key>`)."""
        parts = key_parts(key)
        return "/".join([self.prefix, *parts]) if self.prefix else "/".join(parts)

    def _resource(self, object_key: str) -> str:
        return f"s3://{self.bucket}/{object_key}"

    def _error(self, exc: Exception, action: str, object_key: str) -> Exception:
        return translate(exc, action=action, resource=self._resource(object_key), endpoint=self._endpoint_or_none())

    def _endpoint_or_none(self) -> str | None:
        try:
            return self.endpoint
        except Exception:
            return self._endpoint_url

    def _encryption(self) -> dict[str, str]:
        # Requested on every put, whatever the bucket default: an auditor can check it per object.
        if self.kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        return {"ServerSideEncryption": "AES256"}

    def _put(self, key: str, data: bytes, **condition: str) -> str:
        okey = self.object_key(key)
        try:
            response = self.client.put_object(
                Bucket=self.bucket, Key=okey, Body=data, ContentType=content_type(okey),
                **self._encryption(), **condition,
            )
        except Exception as exc:
            code = error_code(exc)
            # Sent more than once: an earlier attempt may have landed.
            if condition and code in _LOST_RACE and retry_attempts(exc) > 0:
                landed = self._landed(key, data)
                if landed is not None:
                    return landed
            if "IfNoneMatch" in condition and code in _LOST_RACE:
                raise Conflict(f"{key} already exists in the store {self.url}",
                               "someone else wrote it first: run the command again to see the current state") from None
            if "IfMatch" in condition and (code in _LOST_RACE or code in _MISSING_KEY):
                raise Conflict(f"{key} changed while we were updating it", "retry the command") from None
            raise self._error(exc, "s3:PutObject", okey) from exc
        return str(response["ETag"])

    def _landed(self, key: str, data: bytes) -> str | None:
        """The etag of `key` if it now holds exactly `data` (our earlier attempt landed), else None."""
        try:
            current, etag = self.read_versioned(key)
        except NotFound:
            return None
        return etag if current == data else None

    # -- protocol --------------------------------------------------------------------------------------------
    def read(self, key: str) -> bytes:
        return self.read_versioned(key)[0]

    def read_versioned(self, key: str) -> tuple[bytes, str]:
        okey = self.object_key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=okey)
            data = response["Body"].read()
        except Exception as exc:
            if error_code(exc) in _MISSING_KEY:
                raise NotFound(f"{key} not found in store {self.url}",
                               "check --store / TFREVIEW_STORE, or restore the store from a backup") from None
            raise self._error(exc, "s3:GetObject", okey) from exc
        return data, str(response["ETag"])

    def exists(self, key: str) -> bool:
        okey = self.object_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=okey)
        except Exception as exc:
            if error_code(exc) in _MISSING_KEY:
                return False
            raise self._error(exc, "s3:GetObject", okey) from exc
        return True

    def create(self, key: str, data: bytes, *, private: bool = False) -> str:
        return self._put(key, data, IfNoneMatch="*")

    def write(self, key: str, data: bytes, *, private: bool = False) -> str:
        return self._put(key, data)

    def replace(self, key: str, data: bytes, etag: str, *, private: bool = False) -> str:
        return self._put(key, data, IfMatch=etag)

    def delete(self, key: str, etag: str | None = None) -> None:
        okey = self.object_key(key)
        condition = {"IfMatch": etag} if etag is not None else {}
        try:
            self.client.delete_object(Bucket=self.bucket, Key=okey, **condition)
        except Exception as exc:
            code = error_code(exc)
            if code in _MISSING_KEY:
                return  # already gone: deleting is idempotent
            if etag is not None and code in _LOST_RACE:
                raise Conflict(f"{key} changed while we were deleting it", "retry the command") from None
            raise self._error(exc, "s3:DeleteObject", okey) from exc

    def list(self, prefix: str, *, start_after: str = "") -> list[str]:
        parts = key_parts(prefix, what="prefix")
        # A prefix names a "directory", as in the local store: "plans" lists plans/..., never plansX.
        base = "/".join([self.prefix, *parts]) if self.prefix else "/".join(parts)
        s3_prefix = f"{base}/" if base else ""
        strip = len(f"{self.prefix}/") if self.prefix else 0
        out: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            after = {"StartAfter": self.object_key(start_after)} if start_after else {}
            for page in paginator.paginate(Bucket=self.bucket, Prefix=s3_prefix, **after):
                for obj in page.get("Contents", []):
                    name = obj["Key"]
                    if not name.endswith("/"):  # console "folder" markers are not objects of ours
                        out.append(name[strip:])
        except Exception as exc:
            raise self._error(exc, "s3:ListBucket", s3_prefix) from exc
        return sorted(out)
