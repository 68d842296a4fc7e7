"""One store test suite, run on both backends: the local directory and S3 (moto on a loopback port).

The S3 backend talks real HTTP to moto served in-process (tfreview.sandbox); each test gets a fresh bucket.
moto evaluates an S3 condition and the write in two steps without a lock; AWS does both as one step. So the
sandbox serialises moto's S3 requests (`tfreview.sandbox.serialise_s3_requests`), a documented emulator fix that
gives AWS's semantics. It cannot hide a bug of ours: a store that skipped the conditions would still lose the races
below.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.helpers import new_bucket
from tfreview.errors import AwsError, BadInput, Conflict, NotFound, StoreError
from tfreview.store import open_store
from tfreview.store.local import LocalStore
from tfreview.store.s3 import S3Store, parse_s3_url

pytestmark = pytest.mark.usefixtures("fake_aws_env")  # fake credentials, nothing from the outside


def closed_loopback_port() -> int:
    """A loopback TCP port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return request.getfixturevalue("s3_store")


# -- the protocol, on both backends -----------------------------------------------------------------------------


def test_read_returns_what_create_wrote_with_the_same_etag(store: Any) -> None:
    etag = store.create("plans/p1/record.json", b'{"id":"p1"}\n')
    assert store.read("plans/p1/record.json") == b'{"id":"p1"}\n'
    assert store.read_versioned("plans/p1/record.json") == (b'{"id":"p1"}\n', etag)
    assert store.exists("plans/p1/record.json")


def test_create_refuses_an_existing_key_and_keeps_the_first_content(store: Any) -> None:
    store.create("approvals/p1/alice.json", b"first")
    with pytest.raises(Conflict) as err:
        store.create("approvals/p1/alice.json", b"second")
    assert "already exists" in err.value.message
    assert store.read("approvals/p1/alice.json") == b"first"


def test_replace_with_the_current_etag_advances_the_object(store: Any) -> None:
    etag1 = store.create("audit/head.json", b"1")
    etag2 = store.replace("audit/head.json", b"2", etag1)
    assert etag2 != etag1
    assert store.read_versioned("audit/head.json") == (b"2", etag2)


def test_replace_with_a_stale_etag_is_a_conflict_and_keeps_the_newer_content(store: Any) -> None:
    stale = store.create("audit/head.json", b"1")
    store.replace("audit/head.json", b"2", stale)
    with pytest.raises(Conflict) as err:
        store.replace("audit/head.json", b"3", stale)
    assert err.value.hint  # tells the user what to do
    assert store.read("audit/head.json") == b"2"


def test_replace_of_a_missing_key_is_a_conflict(store: Any) -> None:
    etag = store.create("locks/qa.json", b"x")
    store.delete("locks/qa.json")
    with pytest.raises(Conflict):
        store.replace("locks/qa.json", b"y", etag)
    assert not store.exists("locks/qa.json")


def test_write_overwrites_unconditionally_and_returns_the_new_etag(store: Any) -> None:
    store.write("state/qa/terraform.tfstate", b"v1", private=True)
    etag = store.write("state/qa/terraform.tfstate", b"v2", private=True)
    assert store.read_versioned("state/qa/terraform.tfstate") == (b"v2", etag)


def test_etags_change_with_content(store: Any) -> None:
    a = store.create("a.json", b"same")
    b = store.create("b.json", b"other")
    assert a != b


def test_a_missing_key_is_not_found_and_does_not_exist(store: Any) -> None:
    with pytest.raises(NotFound) as err:
        store.read("plans/nope/record.json")
    assert "plans/nope/record.json" in err.value.message
    with pytest.raises(NotFound):
        store.read_versioned("plans/nope/record.json")
    assert not store.exists("plans/nope/record.json")


def test_list_is_recursive_sorted_and_scoped_to_a_directory(store: Any) -> None:
    for key in ("plans/p2/record.json", "plans/p1/plan.tfplan", "plans/p1/record.json", "plansX/other.json",
                "packages/web/1.0.0/terraform.zip"):
        store.create(key, b"x")
    assert store.list("plans") == ["plans/p1/plan.tfplan", "plans/p1/record.json", "plans/p2/record.json"]
    assert store.list("plans/") == store.list("plans")
    assert store.list("plans/p1") == ["plans/p1/plan.tfplan", "plans/p1/record.json"]
    assert store.list("nothing-here") == []
    assert store.list("") == sorted(["plans/p2/record.json", "plans/p1/plan.tfplan", "plans/p1/record.json",
                                     "plansX/other.json", "packages/web/1.0.0/terraform.zip"])


def test_read_all_is_list_with_each_objects_bytes(store: Any) -> None:
    """`read_all` (audit verify's one-pass read of the entry files) names exactly the keys `list` names, in order,
    with the bytes `read` gives: on the local store its own scandir pass, on S3 list + parallel reads."""
    from tfreview.store.base import read_all

    for i, key in enumerate(("plans/p2/record.json", "plans/p1/plan.tfplan", "plans/p1/record.json",
                             "plansX/other.json", "plans/p1/deep/er/x.json")):
        store.create(key, f"content {i}\n".encode() * (i * 30_000 + 1))  # one bigger than a read's first chunk
    if isinstance(store, LocalStore):  # what `list` leaves out, `read_all` leaves out too
        (store.root / "plans" / "p1" / ".x.lock").write_bytes(b"")
        (store.root / "plans" / "p3").symlink_to(store.root / "plans" / "p1", target_is_directory=True)
    for prefix in ("plans", "plans/p1/", "", "nothing-here"):
        assert read_all(store, prefix) == [(key, store.read(key)) for key in store.list(prefix)], prefix


def test_delete_with_a_stale_etag_is_a_conflict_and_with_the_current_etag_removes(store: Any) -> None:
    stale = store.create("locks/prod.json", b"held by ci")
    current = store.replace("locks/prod.json", b"held by alice", stale)
    with pytest.raises(Conflict):
        store.delete("locks/prod.json", etag=stale)
    assert store.read("locks/prod.json") == b"held by alice"
    store.delete("locks/prod.json", etag=current)
    assert not store.exists("locks/prod.json")


def test_deleting_a_missing_key_is_ignored(store: Any) -> None:
    store.delete("locks/none.json")
    store.delete("locks/none.json", etag="whatever")
    assert store.list("locks") == []


@pytest.mark.parametrize("key", ["", "/", "../escape", "plans/../../etc", "./x"])
def test_keys_that_escape_or_name_nothing_are_refused(store: Any, key: str) -> None:
    with pytest.raises(StoreError):
        store.create(key, b"x")


def test_a_reader_sees_the_old_or_the_new_object_never_a_mix(store: Any) -> None:
    old, new = b"A" * 300_000, b"B" * 300_000
    store.write("reports/big.html", old)
    seen: set[bytes] = set()
    done = threading.Event()

    def writer() -> None:
        for i in range(15):
            store.write("reports/big.html", new if i % 2 == 0 else old)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not done.is_set() or reads < 5:
        data = store.read("reports/big.html")
        seen.add(data[:1] if data in (old, new) else b"torn")
        reads += 1
    thread.join()
    assert b"torn" not in seen


def test_ten_parallel_creates_of_one_key_have_exactly_one_winner(store: Any) -> None:
    barrier = threading.Barrier(10)

    def attempt(i: int) -> int | None:
        barrier.wait()
        try:
            store.create("approvals/p1/lock.json", f"writer {i}".encode())
            return i
        except Conflict:
            return None

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(attempt, range(10)))
    winners = [i for i in results if i is not None]
    assert len(winners) == 1
    assert store.read("approvals/p1/lock.json") == f"writer {winners[0]}".encode()


def cas_increment(store: Any, key: str, start: threading.Barrier | None = None) -> int:
    """Add 1 to the integer in `key` by read -> replace -> retry on Conflict; returns how many retries it took."""
    if start is not None:
        start.wait()
    retries = 0
    while True:
        data, etag = store.read_versioned(key)
        try:
            store.replace(key, str(int(data) + 1).encode(), etag)
            return retries
        except Conflict:
            retries += 1


def test_ten_parallel_cas_increments_lose_nothing(store: Any) -> None:
    store.create("counters/c.txt", b"0")
    barrier = threading.Barrier(10)
    with ThreadPoolExecutor(10) as pool:
        retries = list(pool.map(lambda _: cas_increment(store, "counters/c.txt", barrier), range(10)))
    assert store.read("counters/c.txt") == b"10"
    assert sum(retries) > 0, "the writers never collided: the test proved nothing"


def test_private_local_objects_are_owner_only(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.create("plans/p1/plan.tfplan", b"secret", private=True)
    store.create("plans/p1/record.json", b"{}")
    assert (store.path("plans/p1/plan.tfplan").stat().st_mode & 0o077) == 0
    assert (store.path("plans/p1/record.json").stat().st_mode & 0o022) == 0


# -- S3 only ----------------------------------------------------------------------------------------------------


def test_s3_keys_live_under_the_prefix_in_the_seed_layout(s3_store: S3Store) -> None:
    s3_store.create("packages/web/1.4.2/terraform.zip", b"PK\x03\x04")
    s3_store.create("packages/web/1.4.2/manifest.json", b"{}")
    listed = s3_store.client.list_objects_v2(Bucket=s3_store.bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["team/packages/web/1.4.2/manifest.json",
                                                 "team/packages/web/1.4.2/terraform.zip"]
    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key="team/packages/web/1.4.2/terraform.zip")
    assert head["ContentType"] == "application/zip"


def test_s3_requests_sse_s3_on_every_put(s3_store: S3Store) -> None:
    etag = s3_store.create("audit/head.json", b"1")
    s3_store.replace("audit/head.json", b"2", etag)
    s3_store.write("plans/p1/plan.tfplan", b"bin", private=True)
    s3_store.create("plans/p1/record.json", b"{}")
    with pytest.raises(Exception, match="ServerSideEncryptionConfigurationNotFound"):
        s3_store.client.get_bucket_encryption(Bucket=s3_store.bucket)  # no bucket default: the SSE below is ours
    for key in s3_store.list(""):
        head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=s3_store.object_key(key))
        assert head.get("ServerSideEncryption") == "AES256", key


def test_s3_uses_the_configured_kms_key_on_every_put(s3_endpoint: str) -> None:
    store = S3Store(new_bucket(s3_endpoint), "team", endpoint_url=s3_endpoint, kms_key_id="alias/tfreview-store")
    etag = store.create("audit/head.json", b"1")
    store.replace("audit/head.json", b"2", etag)
    store.write("state/prod/terraform.tfstate", b"{}", private=True)
    for key in store.list(""):
        head = store.client.head_object(Bucket=store.bucket, Key=store.object_key(key))
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"].endswith("alias/tfreview-store"), key


def test_s3_kms_key_can_come_from_the_environment(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFREVIEW_S3_KMS_KEY_ID", "arn:aws:kms:us-east-1:123456789012:key/abc")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    bucket = new_bucket(s3_endpoint)
    store = open_store(f"s3://{bucket}/team")
    assert isinstance(store, S3Store)
    store.create("x.json", b"{}")
    head = store.client.head_object(Bucket=bucket, Key="team/x.json")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/abc"


def test_s3_objects_carry_no_grant_beyond_the_owner(s3_store: S3Store) -> None:
    s3_store.create("plans/p1/plan.tfplan", b"secret", private=True)
    s3_store.create("plans/p1/record.json", b"{}")
    for key in ("plans/p1/plan.tfplan", "plans/p1/record.json"):
        acl = s3_store.client.get_object_acl(Bucket=s3_store.bucket, Key=s3_store.object_key(key))
        grantees = {g["Grantee"].get("URI") or g["Grantee"].get("ID") for g in acl["Grants"]}
        assert grantees == {acl["Owner"]["ID"]}, key


def test_open_store_routes_s3_urls_and_honours_aws_endpoint_url(s3_endpoint: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    bucket = new_bucket(s3_endpoint)
    store = open_store(f"s3://{bucket}/teams/web/")
    assert store.url == f"s3://{bucket}/teams/web"
    store.create("packages/web/1.0.0/manifest.json", b"{}")
    assert open_store(f"s3://{bucket}/teams/web").read("packages/web/1.0.0/manifest.json") == b"{}"


@pytest.mark.parametrize("url, expected", [
    ("s3://bucket", ("bucket", "")),
    ("s3://bucket/", ("bucket", "")),
    ("s3://bucket/a/b/", ("bucket", "a/b")),
])
def test_s3_urls_parse_into_bucket_and_prefix(url: str, expected: tuple[str, str]) -> None:
    assert parse_s3_url(url) == expected


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "https://bucket/x"])
def test_s3_urls_without_a_bucket_are_bad_input(url: str) -> None:
    with pytest.raises(BadInput):
        parse_s3_url(url)


def test_importing_the_store_does_not_import_boto3() -> None:
    code = "import sys, tfreview.store, tfreview.store.s3, tfreview.aws; sys.exit('boto3' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_s3_missing_bucket_is_a_store_error_naming_the_bucket(s3_endpoint: str) -> None:
    store = S3Store("tfr-no-such-bucket", "team", endpoint_url=s3_endpoint)
    for call in (lambda: store.read("x.json"), lambda: store.create("x.json", b"{}"), lambda: store.list("plans")):
        with pytest.raises(StoreError) as err:
            call()
        assert "bucket tfr-no-such-bucket does not exist" in err.value.message
        assert "TFREVIEW_STORE" in err.value.hint
        assert err.value.exit_code == 1


def test_s3_unreachable_endpoint_is_an_aws_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{closed_loopback_port()}"
    store = S3Store("tfr-any", "team", endpoint_url=url, max_attempts=1)
    with pytest.raises(AwsError) as err:
        store.read("x.json")
    assert f"cannot reach AWS at {url}" in err.value.message
    assert "AWS_ENDPOINT_URL" in err.value.hint
    assert store.client.meta.config.retries["total_max_attempts"] == 1  # asked once, not retried for minutes


class _AlwaysSlowDown(BaseHTTPRequestHandler):
    """An S3 that answers every request with 503 SlowDown, counting requests."""

    protocol_version = "HTTP/1.1"  # answers botocore's "Expect: 100-continue" at once instead of after 1 s
    requests = 0

    def _slow_down(self) -> None:
        type(self).requests += 1
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
                b"<Message>Please reduce your request rate.</Message></Error>")
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_DELETE = _slow_down

    def log_message(self, *args: Any) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free loopback port in a thread; yields its URL, then shuts the server down."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def slow_down_endpoint() -> Iterator[str]:
    _AlwaysSlowDown.requests = 0
    yield from _serve(_AlwaysSlowDown)


def test_s3_throttling_is_retried_with_backoff_then_an_aws_error(slow_down_endpoint: str) -> None:
    store = S3Store("tfr-busy", "team", endpoint_url=slow_down_endpoint, max_attempts=3)
    with pytest.raises(AwsError) as err:
        store.create("x.json", b"{}")
    assert _AlwaysSlowDown.requests == 3  # botocore retried: the first attempt and two more
    assert "throttling" in err.value.message and "3 attempts" in err.value.message
    assert "TFREVIEW_AWS_MAX_ATTEMPTS" in err.value.hint


def test_s3_access_denied_names_action_key_and_permission_stubbed_client() -> None:
    """moto's server does not enforce IAM; botocore's Stubber plays S3's 403 through the store's real code path."""
    from botocore.stub import Stubber

    from tfreview.aws import client

    s3 = client("s3", endpoint_url=f"http://127.0.0.1:{closed_loopback_port()}")
    store = S3Store("tfr-locked", "team", client=s3)
    with Stubber(s3) as stub:
        stub.add_client_error("put_object", service_error_code="AccessDenied", service_message="Access Denied",
                              http_status_code=403)
        with pytest.raises(StoreError) as err:
            store.create("approvals/p1/alice.json", b"{}")
    assert err.value.message == "access denied: s3:PutObject on s3://tfr-locked/team/approvals/p1/alice.json"
    assert "grant s3:PutObject on arn:aws:s3:::tfr-locked/team/approvals/p1/alice.json" in err.value.hint


def test_aws_caller_identity_is_the_sts_arn_or_none(s3_endpoint: str) -> None:
    from tfreview.aws import caller_identity

    assert (caller_identity(endpoint_url=s3_endpoint) or "").startswith("arn:aws:")
    assert caller_identity(endpoint_url=f"http://127.0.0.1:{closed_loopback_port()}") is None


def test_s3_store_without_a_prefix_uses_the_bucket_root(s3_endpoint: str) -> None:
    bucket = new_bucket(s3_endpoint)
    store = S3Store.from_url(f"s3://{bucket}", endpoint_url=s3_endpoint)
    assert store.url == f"s3://{bucket}"
    store.create("plans/p1/record.json", b"{}")
    store.create("plansX/y.json", b"{}")
    assert store.client.list_objects_v2(Bucket=bucket)["KeyCount"] == 2
    assert store.list("plans") == ["plans/p1/record.json"]
    assert store.list("") == ["plans/p1/record.json", "plansX/y.json"]


def test_s3_list_pages_through_more_than_one_page(s3_store: S3Store) -> None:
    for i in range(7):
        s3_store.create(f"audit/entries/{i:012d}.json", b"{}")
    pages: list[int] = []
    events = s3_store.client.meta.events
    events.register("before-parameter-build.s3.ListObjectsV2", lambda params, **_: params.__setitem__("MaxKeys", 3))
    events.register("after-call.s3.ListObjectsV2", lambda parsed, **_: pages.append(parsed.get("KeyCount", 0)))
    assert s3_store.list("audit/entries") == [f"audit/entries/{i:012d}.json" for i in range(7)]
    assert pages == [3, 3, 1]


class _LoseFirstAnswer(BaseHTTPRequestHandler):
    """A proxy to moto that forwards every request but, once per marked key and body, drops the answer of a PUT: the write
    lands, the client sees the connection close and botocore retries - a lost response, as on a flaky network."""

    protocol_version = "HTTP/1.1"
    upstream = ""
    dropped: set[tuple[str, bytes]] = set()

    def _relay(self) -> None:
        import http.client
        from urllib.parse import urlparse

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = urlparse(self.upstream)
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("expect", "connection")}
        conn.request(self.command, self.path, body=body, headers=headers)
        answer = conn.getresponse()
        payload = answer.read()
        conn.close()
        if self.command == "PUT" and "lost-answer" in self.path and (self.path, body) not in self.dropped:
            self.dropped.add((self.path, body))
            self.close_connection = True
            return  # the write happened upstream; the client never hears of it
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _relay

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def lossy_endpoint(s3_endpoint: str) -> Iterator[str]:
    _LoseFirstAnswer.upstream = s3_endpoint
    _LoseFirstAnswer.dropped = set()
    yield from _serve(_LoseFirstAnswer)


def test_s3_conditional_writes_whose_answer_was_lost_still_succeed(s3_endpoint: str, lossy_endpoint: str) -> None:
    bucket = new_bucket(s3_endpoint)
    store = S3Store(bucket, "team", endpoint_url=lossy_endpoint, max_attempts=3)
    etag = store.create("audit/lost-answer-create.json", b"mine")  # retried after the lost answer: 412, yet ours
    assert store.read_versioned("audit/lost-answer-create.json") == (b"mine", etag)
    base = store.create("audit/lost-answer-cas.json", b"1")
    new = store.replace("audit/lost-answer-cas.json", b"2", base)  # retried: If-Match fails on our own write
    assert store.read_versioned("audit/lost-answer-cas.json") == (b"2", new)
    assert len(_LoseFirstAnswer.dropped) == 3, "the proxy did not drop the answers: the test proved nothing"
    with pytest.raises(Conflict):  # someone else's content stays a conflict
        store.create("audit/lost-answer-create.json", b"theirs")
