#!/usr/bin/env python3
"""Benchmark `tfreview history` and `tfreview audit log` on big local stores (10,000 and 100,000 plans).

Builds a store of N plans as tfreview writes them (plan record; every tenth plan approved and applied, with a
release record every twentieth) with a real, hash-chained audit log of one entry per plan, by writing the files
directly (the same bytes `store.create` would write, much faster). Then, each in its own process, interleaved,
`--repeat` times (median wall time and peak RSS):

  history, cold     `tfreview history --format json` with no index: builds it from the records (once per store)
  history           `tfreview history --format json` (first page, 50 releases) from the index
  history --app     the same, filtered (the whole index is scanned)
  history, all      `tfreview history --format json --limit 0` (every row printed)
  audit log         `tfreview audit log --since <the last 1% of the log> --format json` (one page)
  before            `tfreview history --format json` run by the `tfreview` given by --before (an older
                    checkout's virtualenv, e.g. of 2a27c49, which reads every record: no index, no paging); only when
                    given, and skipped above --before-max plans

Usage:
    .venv/bin/python bench/history.py [--sizes 10000,100000] [--repeat 3] [--before OLD/.venv/bin/tfreview]
Prints a Markdown table (docs/benchmarks.md) and writes bench/data/history.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / "data"
TFREVIEW = str(Path(sys.executable).parent / "tfreview")


def dumps(obj: object) -> bytes:
    return (json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def build_store(root: Path, n: int) -> None:
    """N plans across 20 apps, 2 minutes apart, with a chained audit log (one `plan` entry per plan)."""
    if (root / ".complete").exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    prev = "0" * 64
    entries = root / "audit" / "entries"
    entries.mkdir(parents=True)
    t0 = 1_700_000_000
    for i in range(1, n + 1):
        app, env = f"app{i % 20}", ("qa", "prod")[i % 2]
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(t0 + 120 * i))
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 120 * i))
        pid = f"{app}-{env}-{stamp}-{i:04x}"
        plan_dir = root / "plans" / pid
        plan_dir.mkdir(parents=True)
        record = {"kind": "plan", "id": pid, "plan_kind": "deploy", "release_id": None, "app": app, "env": env,
                  "version": f"1.{i // 100}.{i % 100}", "planner": f"dev{i % 7}@example.com", "created_at": created,
                  "plan_sha256": hashlib.sha256(pid.encode()).hexdigest(), "package_sha256": "0" * 64,
                  "state_lineage": "lineage", "state_serial": i, "terraform_version": "1.11.4",
                  "summary": {"summary_line": "Plan: 0 to add, 2 to change, 0 to destroy.", "counts": {},
                              "classification": {"kind": "deploy-to-idle"}, "ecs": [], "risk_reasons": []},
                  "risky": False, "risk_reasons": [], "escalation_reasons": []}
        (plan_dir / "record.json").write_bytes(dumps(record))
        if i % 10 == 0:
            approval = {"kind": "approve", "plan_id": pid, "approver": "reviewer@example.com",
                        "approved_at": created, "comment": "ok", "plan_sha256": record["plan_sha256"],
                        "package_sha256": "0" * 64, "app": app, "env": env, "version": record["version"],
                        "terraform_version": "1.11.4", "planner": record["planner"], "state_lineage": "lineage",
                        "state_serial": i}
            (root / "approvals" / pid).mkdir(parents=True)
            (root / "approvals" / pid / "r.json").write_bytes(dumps(approval))
            (root / "applies" / pid).mkdir(parents=True)
            (root / "applies" / pid / "start.json").write_bytes(dumps({"by": "ci@example.com", "break_glass": None}))
            (root / "applies" / pid / "result.json").write_bytes(dumps({"outcome": "applied"}))
        entry = {"seq": i, "time": created, "event": "plan", "actor": record["planner"], "app": app, "env": env,
                 "plan_id": pid, "prev_hash": prev}
        entry["hash"] = prev = hashlib.sha256(dumps(entry)).hexdigest()
        (entries / f"{i:012d}.json").write_bytes(dumps(entry))
    (root / "audit" / "head.json").write_bytes(dumps({"seq": n, "hash": prev}))
    (root / ".complete").write_text("")


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds (user + system), peak RSS MB) of one command, its output discarded. On a shared
    machine the wall time includes waiting for a core; the CPU time is the work itself."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr.read().decode()[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", default="",
                        help="a tfreview with the previous history (no index); its own virtualenv's entry point")
    parser.add_argument("--before-max", type=int, default=100000)
    parser.add_argument("--only", help="run only the measurements whose name starts with this")
    opts = parser.parse_args()
    results = []
    for n in (int(s) for s in opts.sizes.split(",")):
        root = DATA / f"store-{n}"
        t = time.perf_counter()
        build_store(root, n)
        print(f"store of {n} plans ready ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
        tf = [TFREVIEW, "--store", str(root)]
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + 120 * int(n * 0.99)))
        shutil.rmtree(root / "index", ignore_errors=True)
        cold = run(tf + ["history", "--format", "json"])
        results.append({"plans": n, "name": "history, cold (builds the index)", "wall": cold[0], "cpu": cold[1],
                        "rss": cold[2]})
        cases = {
            "history": tf + ["history", "--format", "json"],
            "history --app": tf + ["history", "--app", "app3", "--format", "json"],
            "history, all rows": tf + ["history", "--format", "json", "--limit", "0"],
            "audit log (last 1%, one page)": tf + ["audit", "log", "--since", since, "--format", "json"],
        }
        if opts.before and n <= opts.before_max and Path(opts.before).is_file():
            cases["before: history (no index)"] = [opts.before, "--store", str(root), "history", "--format", "json"]
        if opts.only:
            cases = {k: v for k, v in cases.items() if k.startswith(opts.only)}
        samples: dict[str, list[tuple[float, float, float]]] = {k: [] for k in cases}
        for _ in range(opts.repeat):
            for name, args in cases.items():
                samples[name].append(run(args))
        for name, got in samples.items():
            results.append({"plans": n, "name": name, "wall": statistics.median(w for w, _c, _r in got),
                            "cpu": statistics.median(c for _w, c, _r in got), "rss": max(r for _w, _c, r in got)})
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "history.json").write_text(json.dumps(results, indent=2))
    print("| plans | measurement | wall (median) | CPU (median) | peak RSS |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['plans']:,} | {r['name']} | {r['wall']:.3f} s | {r['cpu']:.3f} s | {r['rss']:.0f} MB |")


if __name__ == "__main__":
    main()
