"""Terraform's S3 backend for team environments: the `-backend-config` values of one app/environment.

The workflow writes `terraform { backend "s3" {} }` as an override file (the package stays untouched) and passes
these values to `terraform init`. State is locked by S3 itself (`use_lockfile = true`: a `<key>.tflock` object
written with If-None-Match), encrypted on the server, and kept beside the store:

    s3://<bucket>/<store prefix>/state/<app>/<env>/terraform.tfstate   (+ .tflock while someone holds the lock)

`[backend.<env>]` in tfreview.toml (type = "s3") may set: bucket (required when the store is not on S3), key,
region, kms_key_id, and any other S3 backend argument (passed to terraform as is, e.g. `role_arn`,
`dynamodb_table`, `use_path_style`; tfreview.config refuses names terraform does not know). Nothing here talks
to AWS: terraform does.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from tfreview.aws import region_from_env
from tfreview.errors import BadInput

# Arguments tfreview sets itself; anything else in [backend.<env>] goes to terraform verbatim.
_MANAGED = {"type", "bucket", "key", "region", "encrypt", "use_lockfile", "kms_key_id"}


def _hcl_value(value: Any) -> str:
    """A -backend-config value as terraform reads it: booleans lower-case, everything else as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def s3_backend_config(settings: Any, store: Any, backend: Mapping[str, Any], app: str, env: str) -> dict[str, str]:
    """`-backend-config` key/values for app/env's state in S3 (bucket, key, region, encrypt, use_lockfile...).

    Defaults come from the store when it is an S3Store (same bucket, key under its prefix, its KMS key);
    `backend` ([backend.<env>] of tfreview.toml) overrides them. Raises BadInput when no bucket is known.
    """
    from tfreview.store.s3 import S3Store

    s3_store = store if isinstance(store, S3Store) else None
    bucket = backend.get("bucket") or (s3_store.bucket if s3_store else None)
    if not bucket:
        raise BadInput(f"environment {env} keeps its state in S3 but no bucket is configured",
                       f"set bucket in [backend.{env}] of tfreview.toml, or use an s3:// store")
    state = f"state/{app}/{env}/terraform.tfstate"
    default_key = s3_store.object_key(state) if s3_store and s3_store.bucket == bucket else state
    config: dict[str, str] = {
        "bucket": str(bucket),
        "key": str(backend.get("key") or default_key).format(app=app, env=env),
        "region": str(backend.get("region") or region_from_env()),
        "encrypt": "true",  # SSE on the state object, like every object of the store
        "use_lockfile": "true",  # S3-native locking: no DynamoDB table needed (terraform >= 1.10)
    }
    kms_key_id = backend.get("kms_key_id") or (s3_store.kms_key_id if s3_store else None)
    if kms_key_id:
        config["kms_key_id"] = str(kms_key_id)
    if "use_path_style" not in backend and (os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")):
        # Emulators (moto, MinIO, LocalStack) serve buckets by path, not as <bucket>.<host> names.
        config["use_path_style"] = "true"
    for name, value in backend.items():
        if name not in _MANAGED:
            config[name] = _hcl_value(value)
    return config
