#!/usr/bin/env python3
"""Benchmark what an auditor waits for: `tfreview audit verify` over a log of N signed entries, unsealed (every
entry read and its signature checked) and sealed (segments of 1,000 entries, one seal signature each), on the
local store and on S3 (moto's server on loopback, real HTTP), side by side in one run.

The log: a store with a policy (keys made by ssh-keygen), N entries appended as tfreview appends them
(`append_event`: create-only entry, compare-and-swap head), each signed in this process in the SSHSIG format with
`cryptography` only so that filling 10^5 entries does not take one ssh-keygen process each (tfreview itself signs
through ssh-keygen; the seals here are made by `seal_log` with ssh-keygen, as `tfreview audit seal` does).
The S3 copy is the same objects uploaded to a bucket.

Measured, median of --repeat, each in this process (what `audit verify` does: read_log + verify_log):
  verify      read and check the chain, then every signature no seal covers, then the cross-checks
  verify --full   every entry object read and every signature checked, seals or not
and, on the local store, the wall time of the real command `tfreview audit verify` (a process: start-up included).

moto on loopback answers in a few milliseconds of CPU; a request to real S3 waits 10-50 ms on the network.
`--latency-ms D` emulates that wait: every S3 request first sleeps D ms in the client (a botocore before-send
hook; sleeping releases the interpreter lock as a network wait does).

Usage:
    .venv/bin/tfreview sandbox --port 5123 &      # moto in its own process (else one is started in this one)
    .venv/bin/python bench/audit.py [--entries 100000] [--repeat 3] [--latency-ms 20] [--endpoint URL] [--no-s3]
Prints a Markdown table (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tfreview.config import Settings  # noqa: E402
from tfreview.store.audit import SEGMENTS_PREFIX, append_event, read_log  # noqa: E402
from tfreview.store.local import LocalStore  # noqa: E402
from tests.helpers import InProcessSigner  # noqa: E402  (bench/trust.py imports it from here too)

WHO = "bob@example.com"


def timed(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def audit_verify(store: Any, full: bool = False) -> int:
    """What `tfreview audit verify [--full]` does; the number of entries it vouched for."""
    from tfreview.trust.verify import verify_log

    entries, result = read_log(store, full=full)
    seq, why = verify_log(store, entries, result.seals, full=full)
    assert result.ok and not why, (result, why)
    return result.count


def make_log(root: Path, n: int) -> tuple[LocalStore, Any]:
    """A local store with a policy and `n` signed entries (unsealed); returns it and bob's Context."""
    from tfreview.trust.admin import init
    from tfreview.trust.policy import load_history
    from tfreview.trust.signer import find_signer
    from tfreview.usecases.context import Context

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "bob")], check=True)
    signer = find_signer({"TFREVIEW_SIGNING_KEY": str(root / "bob")})
    (root / "policy.toml").write_text(f'admins = ["{WHO}"]\n[signers]\n"{WHO}" = "{signer.public_key.line()}"\n')
    store = LocalStore(root / "store")
    init(Settings(store=store.url), store, signer, root / "policy.toml", context=Context)
    fast = InProcessSigner(root / "bob")
    for i in range(n - 1):  # the policy's own entry is the first
        append_event(store, "approve", WHO, signer=fast, policy_version=1, app="shop", env="qa",
                     plan_id=f"shop-qa-{i}", details={"comment": "looks good", "plan_sha256": f"{i:064x}"})
    ctx = Context(Settings(store=store.url), store, WHO, identity={"user": WHO}, signer=signer,
                  policy=load_history(store))
    return store, ctx


def upload(local: LocalStore, s3: Any, bucket: str, prefix: str) -> None:
    keys = local.list("")

    def put(key: str) -> None:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=local.read(key), ServerSideEncryption="AES256")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))


def cli_wall(store: LocalStore, *args: str) -> float:
    env = {**os.environ, "TFREVIEW_STORE": store.url}
    start = time.perf_counter()
    proc = subprocess.run([str(REPO / ".venv/bin/tfreview"), "audit", "verify", *args], env=env,
                          capture_output=True, text=True)
    took = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--endpoint", help="S3 endpoint of a sandbox in another process (default: one in this "
                                           "process, which shares this process's interpreter lock)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="emulated network wait per S3 request")
    parser.add_argument("--no-s3", action="store_true", help="local store only")
    parser.add_argument("--full-repeat", type=int, default=1, help="runs of the slow --full measurements")
    args = parser.parse_args()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)
    from tfreview.trust.verify import seal_log

    rows: list[tuple[str, str, str, float]] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        start = time.perf_counter()
        local, ctx = make_log(Path(tmp), args.entries)
        print(f"filled {args.entries} signed entries in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        n = args.entries
        rows.append(("local", "unsealed", "verify", timed(lambda: audit_verify(local), args.repeat)))
        rows.append(("local", "unsealed", "`tfreview audit verify` (process)", timed(lambda: cli_wall(local),
                                                                                        args.repeat)))
        start = time.perf_counter()
        seals = seal_log(ctx)
        rows.append(("local", f"{len(seals)} segments", "seal them all (`tfreview audit seal`)",
                     time.perf_counter() - start))
        assert audit_verify(local) == n
        rows.append(("local", "sealed", "verify", timed(lambda: audit_verify(local), args.repeat)))
        rows.append(("local", "sealed", "`tfreview audit verify` (process)", timed(lambda: cli_wall(local),
                                                                                      args.repeat)))
        rows.append(("local", "sealed", "verify --full", timed(lambda: audit_verify(local, True), args.full_repeat)))
        if not args.no_s3:
            from tfreview.aws import client
            from tfreview.sandbox import start_sandbox
            from tfreview.store.s3 import S3Store

            endpoint = args.endpoint or stack.enter_context(start_sandbox()).endpoint
            bucket = f"bench-{uuid.uuid4().hex[:12]}"
            s3 = client("s3", endpoint_url=endpoint)
            s3.create_bucket(Bucket=bucket)
            start = time.perf_counter()
            upload(local, s3, bucket, "team")
            print(f"uploaded in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            if args.latency_ms:
                s3.meta.events.register("before-send.s3", lambda **_: time.sleep(args.latency_ms / 1000))
            store = S3Store(bucket, "team", client=s3)
            assert len(store.list(SEGMENTS_PREFIX)) == len(seals)
            rows.append(("s3 (moto)", "sealed", "verify", timed(lambda: audit_verify(store), args.repeat)))
    wait = f"{args.latency_ms:g} ms" if not args.no_s3 else "-"
    print(f"{n} signed entries; S3 wait per request: {wait}\n")
    print("| store | log | measurement | median |\n|---|---|---|---|")
    for where, log, what, seconds in rows:
        print(f"| {where} | {log} | {what} | {seconds:.2f} s |")


if __name__ == "__main__":
    main()
