"""Terraform's S3 backend for team environments: which -backend-config values tfreview passes (no AWS needed)."""
from __future__ import annotations

import pytest

from tfreview.config import Settings
from tfreview.errors import BadInput
from tfreview.store.backend import s3_backend_config
from tfreview.store.local import LocalStore
from tfreview.store.s3 import S3Store


@pytest.fixture(autouse=True)
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "TFREVIEW_S3_KMS_KEY_ID", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")


def test_state_lives_beside_the_store_encrypted_and_locked_by_s3() -> None:
    store = S3Store("acme-tfreview", "team")
    config = s3_backend_config(Settings(store=store.url), store, {"type": "s3"}, "web", "qa")
    assert config == {
        "bucket": "acme-tfreview",
        "key": "team/state/web/qa/terraform.tfstate",
        "region": "eu-west-1",
        "encrypt": "true",
        "use_lockfile": "true",
    }


def test_the_stores_kms_key_encrypts_the_state_too() -> None:
    store = S3Store("acme-tfreview", "team", kms_key_id="alias/tfreview")
    config = s3_backend_config(Settings(store=store.url), store, {"type": "s3"}, "web", "prod")
    assert config["kms_key_id"] == "alias/tfreview"
    assert config["encrypt"] == "true"


def test_environment_table_overrides_and_extra_arguments_pass_through() -> None:
    store = S3Store("acme-tfreview", "team")
    backend = {"type": "s3", "bucket": "acme-prod-state", "key": "{app}/{env}.tfstate", "region": "us-west-2",
               "kms_key_id": "arn:aws:kms:us-west-2:1:key/k", "role_arn": "arn:aws:iam::1:role/deploy",
               "use_path_style": False}
    config = s3_backend_config(Settings(store=store.url), store, backend, "web", "prod")
    assert config["bucket"] == "acme-prod-state"
    assert config["key"] == "web/prod.tfstate"
    assert config["region"] == "us-west-2"
    assert config["kms_key_id"] == "arn:aws:kms:us-west-2:1:key/k"
    assert config["role_arn"] == "arn:aws:iam::1:role/deploy"
    assert config["use_path_style"] == "false"
    assert "type" not in config


def test_another_bucket_gets_the_key_without_the_store_prefix() -> None:
    store = S3Store("acme-tfreview", "team")
    config = s3_backend_config(Settings(store=store.url), store, {"type": "s3", "bucket": "other"}, "web", "qa")
    assert config["key"] == "state/web/qa/terraform.tfstate"


def test_an_emulator_endpoint_asks_for_path_style_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    store = S3Store("acme-tfreview", "team")
    assert s3_backend_config(Settings(store=store.url), store, {"type": "s3"}, "web", "qa")["use_path_style"] == "true"


def test_a_local_store_needs_a_bucket_for_s3_state(tmp_path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(BadInput) as err:
        s3_backend_config(Settings(store=str(tmp_path)), store, {"type": "s3"}, "web", "qa")
    assert "[backend.qa]" in err.value.hint
    config = s3_backend_config(Settings(store=str(tmp_path)), store, {"type": "s3", "bucket": "acme"}, "web", "qa")
    assert config["bucket"] == "acme" and config["key"] == "state/web/qa/terraform.tfstate"
