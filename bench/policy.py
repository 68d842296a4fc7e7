#!/usr/bin/env python3
"""Benchmark the Rego policy checks (tfreview/trust/rego.py, regorus) beside the review summary of the same plan.

Ten rules (tests/data/rego/conftest_style: forbidden types, tags, registries, blast radius, stateful deletion,
public ingress, privileged, a v0 module, listeners, tfreview facts) over the synthetic plans of
bench/make_synthetic.py, in one run, each figure the median of `--repeat` runs:

- "JSON parse": `orjson.loads` of the plan bytes, the floor of anything that reads the plan;
- "checks": the checks alone (`rego.evaluate`, nothing else running): fork the engine process, add the modules
  once, hand the plan's bytes to the engine as its input, one query for deny/violation/warn, read the answer;
- "engine CPU": the engine process's CPU seconds taking the modules and the plan as input (before the facts)
  + running the query (after them), measured inside it (`CheckRun.engine_cpu_s`), median;
- "checks in `plan`": what `tfreview plan` waits for its checks, as it runs them: `rego.start` (fork; the engine
  adds the modules and takes the plan as input in its own process) right after `terraform show -json`, then the
  review summary in the parent (`plan` also redacts the JSON first: left out here, so the figure is on the
  high side), then `finish(facts)` (send the facts, the query, read the answer): the time spent in `start` +
  `finish`, i.e. what the checks add to `plan`'s own work;
- "review + checks in `plan`": that whole sequence, to compare with "review summary" + "checks";
- "policy check": the whole `tfreview policy check PLAN.json --policy DIR --format json` process (start-up,
  imports, reading and validating the plan, the checks, scrubbing and printing every message);
- "review summary": `review_plan(raw).summary_json()`, what the review of the same plan costs.

Usage:
    .venv/bin/python bench/policy.py [--sizes 1000,10000] [--repeat 3]
Prints a Markdown table (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.audit import timed  # noqa: E402  (median of `repeat` runs, in seconds)

from tfreview.plan import review_plan  # noqa: E402
from tfreview.trust import rego  # noqa: E402

POLICIES = REPO / "tests" / "data" / "rego" / "conftest_style"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000", help="comma-separated numbers of resource changes")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    modules = {p.name: p.read_text() for p in sorted(POLICIES.glob("*.rego")) if not rego.is_test_module(p.name)}
    facts = {"env": "prod", "plan_kind": "deploy", "planner": "alice@example.com"}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(REPO / "bench" / "make_synthetic.py"), "--sizes", args.sizes, "--out", tmp],
                       check=True, capture_output=True)
        print(f"| resource changes | plan JSON | JSON parse | {len(modules)} Rego modules: checks | engine CPU: input "
              "+ query | checks in `plan` | messages | review summary | review + checks in `plan` "
              "| `tfreview policy check` (process) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for n in (int(s) for s in args.sizes.split(",")):
            path = Path(tmp) / f"synthetic-{n // 1000}k.json"
            raw = path.read_bytes()
            found: list[int] = []
            engine: list[tuple[float, float]] = []

            def check(raw: bytes = raw, found: list[int] = found,
                      engine: list[tuple[float, float]] = engine) -> None:
                run = rego.evaluate(modules, raw, facts, timeout=600)
                assert run.error is None, run.error
                found.append(len(run.findings))
                engine.append(run.engine_cpu_s or (0.0, 0.0))

            waits: list[float] = []

            def in_plan(raw: bytes = raw, waits: list[float] = waits) -> None:
                t0 = time.perf_counter()
                started = rego.start(modules, raw, timeout=600)
                t1 = time.perf_counter()
                review_plan(raw).summary_json()  # what `plan` does before the facts are there (and more)
                t2 = time.perf_counter()
                run = started.finish(facts)
                waits.append(t1 - t0 + time.perf_counter() - t2)
                assert run.error is None, run.error

            def process(path: Path = path) -> None:
                proc = subprocess.run([sys.executable, "-m", "tfreview", "policy", "check", str(path), "--policy",
                                       str(POLICIES), "--format", "json", "--timeout", "600"],
                                      capture_output=True, env={**os.environ, "NO_COLOR": "1"})
                assert proc.returncode in (0, 3), proc.stderr.decode()

            parse = timed(lambda raw=raw: orjson.loads(raw), args.repeat)
            checks = timed(check, args.repeat)
            review = timed(lambda raw=raw: review_plan(raw).summary_json(), args.repeat)
            both = timed(in_plan, args.repeat)
            whole = timed(process, args.repeat)
            cpu_in, cpu_query = (statistics.median(e[i] for e in engine) for i in (0, 1))
            print(f"| {n:,} | {len(raw) / 1e6:.1f} MB | {parse:.2f} s | {checks:.2f} s | "
                  f"{cpu_in:.2f} + {cpu_query:.2f} s | {statistics.median(waits):.2f} s | {found[-1]:,} | {review:.2f} s | {both:.2f} s | "
                  f"{whole:.2f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
