#!/usr/bin/env python3
"""Benchmark the check an auditor runs first: `tfreview audit verify` of a sealed 100,000-entry local log, timed
as a whole process (interpreter start-up, imports, listing and reading the store, every check), as they run it.

The log is built once and kept under bench/data/audit-verify-<N>/ (reused while its `complete` marker is there):
a policy made by `tfreview`'s own init (keys by ssh-keygen), then signed entries written as `append_event` writes
them (create-only entry files chained by hash, the head at the last one) but in one pass without the per-entry head
round trips, signed in this process in the SSHSIG format (tests.helpers.InProcessSigner: the bytes ssh-keygen
writes), each complete segment of 1,000 stored as `tfreview audit seal` stores it, its seal signed the same way
(`seal_log` would check 10^5 signatures first: half an hour here). `audit verify` must say the log is intact (its
checks vouch for the seals and bytes), or the bench fails.

Usage:
    .venv/bin/python bench/audit_verify.py [--entries 100000] [--repeat 5] [--rebuild] [--split] [--before DIR]
Prints a Markdown table row (docs/benchmarks.md). `--before DIR`: also time the `tfreview` package under DIR (an
export of another commit: `git archive COMMIT tfreview | tar -x -C DIR`), run after run with this tree's, same
venv, same store: the before/after of one run.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers import InProcessSigner  # noqa: E402
from tfreview.config import Settings  # noqa: E402
from tfreview.store.audit import HEAD_KEY, entry_hash, entry_key, read_head  # noqa: E402
from tfreview.store.base import canonical, dumps  # noqa: E402
from tfreview.store.local import LocalStore  # noqa: E402

WHO = "bob@example.com"


def build(root: Path, n: int) -> LocalStore:
    """A local store at root/store holding a policy and a log of exactly `n` signed entries, every complete segment
    sealed."""
    from tfreview.store.audit import SEGMENT_SIZE, seal_statement, store_segment
    from tfreview.trust.admin import init
    from tfreview.trust.signer import find_signer
    from tfreview.trust.verify import sign
    from tfreview.text import iso, now_utc

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "bob")], check=True)
    signer = find_signer({"TFREVIEW_SIGNING_KEY": str(root / "bob")})
    (root / "policy.toml").write_text(f'admins = ["{WHO}"]\n[signers]\n"{WHO}" = "{signer.public_key.line()}"\n')
    store = LocalStore(root / "store")
    init(Settings(store=store.url), store, signer, root / "policy.toml")
    fast = InProcessSigner(root / "bob")
    seq, prev = read_head(store)[:2]
    assert seq < SEGMENT_SIZE
    body = [store.read(entry_key(s)) for s in range(1, seq + 1)]  # the policy's own entries open segment 1
    seg_prev = "0" * 64
    folder = store.path(entry_key(1)).parent
    while seq < n:  # what append_event writes, one writer, without its fsync and head round trip per entry
        seq += 1
        statement = {"time": iso(now_utc()), "event": "approve", "actor": WHO, "policy_version": 1, "app": "shop",
                     "env": "qa", "plan_id": f"shop-qa-{seq}", "details": {"comment": "looks good",
                                                                            "plan_sha256": f"{seq:064x}"}}
        entry = {"seq": seq, **statement, "signature": fast.sign(canonical(statement)), "prev_hash": prev}
        entry["hash"] = prev = entry_hash(entry)
        data = dumps(entry)
        (folder / entry_key(seq).rsplit("/", 1)[1]).write_bytes(data)
        body.append(data)
        if seq % SEGMENT_SIZE == 0:  # what `tfreview audit seal` stores (signed here in-process: no process each)
            bytes_ = b"".join(body)
            seal = sign(fast, {**seal_statement(seq - SEGMENT_SIZE + 1, seg_prev, bytes_, prev), "sealer": WHO,
                               "time": iso(now_utc()), "policy_version": 1})
            assert store_segment(store, seal, bytes_)
            body, seg_prev = [], prev
    store.write(HEAD_KEY, dumps({"seq": seq, "hash": prev}))
    (root / "complete").write_text(f"{n}\n")
    return store


def environment(store: LocalStore, tree: Path | None = None) -> dict[str, str]:
    """The environment of a `tfreview` run on `store` (`tree`: a folder holding another tfreview package)."""
    return {**os.environ, "TFREVIEW_STORE": store.url, **({"PYTHONPATH": str(tree)} if tree else {})}


def run_verify(store: LocalStore, cwd: Path, *args: str, tree: Path | None = None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process and its child, its output) of one `tfreview audit verify`."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "tfreview"), "audit", "verify", *args], cwd=cwd,
                          env=environment(store, tree), capture_output=True, text=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0 and "audit log intact" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout.strip()


# `tfreview audit verify` run by this wrapper, which reports (on stderr, as JSON) the CPU of the command's own process
# and of its forked child (the reader of the sealed entry files): on an idle 2-CPU machine the wall time is about the
# larger of the two, the child's counted from the fork.
SPLIT = """
import atexit, json, resource, sys
def report():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"process": me.ru_utime + me.ru_stime, "child": kids.ru_utime + kids.ru_stime}), file=sys.stderr)
atexit.register(report)
sys.argv = ["tfreview", "audit", "verify"]
from tfreview.cli.entry import main
main()
"""


def split_cpu(store: LocalStore, cwd: Path, tree: Path | None = None) -> tuple[float, float]:
    """(CPU seconds of the `tfreview audit verify` process itself, of its child) of one run."""
    import json

    proc = subprocess.run([sys.executable, "-c", SPLIT], cwd=cwd, env=environment(store, tree), capture_output=True,
                          text=True)
    assert proc.returncode == 0 and "audit log intact" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    got = json.loads(proc.stderr.strip().splitlines()[-1])
    return got["process"], got["child"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true", help="build the log again even if it is cached")
    parser.add_argument("--split", action="store_true", help="also the CPU of the process and of its child, apart")
    parser.add_argument("--before", metavar="DIR", help="also time the tfreview package under DIR, run after run")
    args = parser.parse_args()
    root = REPO / "bench" / "data" / f"audit-verify-{args.entries}"
    if args.rebuild or not (root / "complete").exists():
        start = time.perf_counter()
        build(root, args.entries)
        print(f"built and sealed {args.entries:,} entries in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    store = LocalStore(root / "store")
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.before:
        trees.insert(0, (f"before ({args.before})", Path(args.before).resolve()))
    for _name, tree in trees:
        run_verify(store, root, tree=tree)  # the files in the page cache, as after the auditor's copy or a first run
    runs: dict[str, list[tuple[float, float, str]]] = {name: [] for name, _tree in trees}
    splits: dict[str, list[tuple[float, float]]] = {name: [] for name, _tree in trees}
    for _ in range(args.repeat):  # one run of each tree after the other: the same load for both
        for name, tree in trees:
            runs[name].append(run_verify(store, root, tree=tree))
            if args.split:
                splits[name].append(split_cpu(store, root, tree))
    print(runs["this tree"][0][2])
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| log | tree | `tfreview audit verify` (process): wall, median (min-max) | CPU, median | "
          "CPU of the process / of its child, median | target |")
    print("|---|---|---|---|---|---|")
    for name, _tree in trees:
        walls, cpus = sorted(r[0] for r in runs[name]), sorted(r[1] for r in runs[name])
        split = (f"{statistics.median(s[0] for s in splits[name]):.2f} s / "
                 f"{statistics.median(s[1] for s in splits[name]):.2f} s" if args.split else "")
        print(f"| {args.entries:,} entries, sealed, local | {name} | **{statistics.median(walls):.2f} s** "
              f"({walls[0]:.2f}-{walls[-1]:.2f}) | {statistics.median(cpus):.2f} s | {split} | <= 2 s |")


if __name__ == "__main__":
    main()
