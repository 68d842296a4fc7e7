#!/usr/bin/env python3
"""Benchmark what an auditor waits for: `audit verify` (verify_chain) and the audit listing (iter_entries) over a
log of N entries, on the local store and on S3 (moto served on loopback by tfreview.sandbox, real HTTP).

moto on loopback answers in a few milliseconds, all of it CPU; a GET from real S3 waits 10-50 ms on the network.
`--latency-ms D` emulates that wait: every S3 request first sleeps D ms in the client (a botocore before-send hook;
sleeping releases the interpreter lock as a network wait does). `--workers N` overrides how many entries are read
at once from S3 (S3Store.read_workers), to compare with reading one at a time.

Usage:
    .venv/bin/python bench/audit.py [--entries 1000] [--repeat 3] [--latency-ms 20] [--workers 1]
Prints a Markdown table (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tfreview.store.audit import append_event, iter_entries, verify_chain  # noqa: E402
from tfreview.store.local import LocalStore  # noqa: E402


def fill(store: Any, n: int) -> None:
    for i in range(n):
        append_event(store, "approve", f"user{i % 7}@example.com", app="shop", env="qa", plan_id=f"p-{i}")


def timed(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--endpoint", help="S3 endpoint of a sandbox in another process (default: one in this "
                                           "process, which shares this process's interpreter lock)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="emulated network wait per S3 request")
    parser.add_argument("--workers", type=int, help="entries read at once from S3 (default: S3Store.read_workers)")
    args = parser.parse_args()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)

    from tfreview.aws import client
    from tfreview.sandbox import start_sandbox
    from tfreview.store.s3 import S3Store

    rows = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        endpoint = args.endpoint or stack.enter_context(start_sandbox()).endpoint
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        s3 = client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket=bucket)
        if args.latency_ms:
            s3.meta.events.register("before-send.s3", lambda **_: time.sleep(args.latency_ms / 1000))
        s3_store = S3Store(bucket, "team", client=s3)
        if args.workers:
            s3_store.read_workers = args.workers
        stores = {"local": LocalStore(Path(tmp) / "store"), "s3 (moto)": s3_store}
        for name, store in stores.items():
            fill(store, args.entries)
            result = verify_chain(store)
            assert result.ok and result.count == args.entries, result
            verify_s = timed(lambda: verify_chain(store), args.repeat)
            list_s = timed(lambda: sum(1 for _ in iter_entries(store)), args.repeat)
            rows.append((name, store, verify_s, list_s))
    print("| store | S3 wait per request | entries read at once | entries | audit verify | per entry | audit log |")
    print("|---|---|---|---|---|---|---|")
    for name, store, verify_s, list_s in rows:
        wait = f"{args.latency_ms:g} ms" if name != "local" else "-"
        print(f"| {name} | {wait} | {store.read_workers} | {args.entries} | {verify_s:.2f} s "
              f"| {verify_s / args.entries * 1000:.2f} ms | {list_s:.2f} s |")


if __name__ == "__main__":
    main()
