#!/usr/bin/env python3
"""Benchmark the Rego policy checks (tfreview/trust/rego.py, regorus) beside the review summary of the same plan.

Ten rules (tests/data/rego/conftest_style: forbidden types, tags, registries, blast radius, stateful deletion,
public ingress, privileged, a v0 module, listeners, tfreview facts) over the synthetic plans of
bench/make_synthetic.py ("synthetic": `resource_changes` is nearly all of the document) and the same plans with
`planned_values` and `prior_state` filled as terraform fills them ("state": the shape of a real plan), in one
run, each figure the median of `--repeat` runs:

- "JSON parse": `orjson.loads` of the plan bytes, the floor of anything that reads the plan;
- "checks": the checks alone (`rego.evaluate`, nothing else running): fork the engine process, add the modules
  once, hand the plan to the engine as its input, one query for deny/violation/warn, read the answer; "whole
  input" gives the engine the whole document (`slice_input=False`, as before issue 22 item 7's third round),
  "cut input" only the top-level keys the modules read (tfreview.trust.rego_input; "input given" names them),
  the two alternated run by run;
- "engine CPU": the engine process's CPU seconds taking the modules and the plan as input (before the facts;
  with the cut, reading which keys the modules need and cutting them too) + running the query (after them),
  measured inside it (`CheckRun.engine_cpu_s`), median;
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
    .venv/bin/python bench/policy.py [--sizes 1000,10000] [--repeat 3] [--shapes synthetic,state] [--no-process]
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
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.audit import timed  # noqa: E402  (median of `repeat` runs, in seconds)

from tfreview.plan import review_plan  # noqa: E402
from tfreview.trust import rego  # noqa: E402

POLICIES = REPO / "tests" / "data" / "rego" / "conftest_style"


def with_state(raw: bytes) -> bytes:
    """The synthetic plan with `planned_values` and `prior_state` filled as terraform fills them (every change's
    after and before values, listed under the root module): the shape of a real plan, where the document is
    two to three times its `resource_changes`."""
    doc = orjson.loads(raw)

    def resources(side: str) -> list[dict]:
        return [{"address": rc["address"], "mode": rc.get("mode", "managed"), "type": rc["type"], "name": rc["name"],
                 "values": rc["change"].get(side), "sensitive_values": rc["change"].get(f"{side}_sensitive")}
                for rc in doc["resource_changes"] if rc["change"].get(side) is not None]

    doc["planned_values"] = {"root_module": {"resources": resources("after")}}
    doc["prior_state"] = {"format_version": "1.0", "values": {"root_module": {"resources": resources("before")}}}
    return orjson.dumps(doc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000", help="comma-separated numbers of resource changes")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shapes", default="synthetic,state",
                    help="synthetic (bench/make_synthetic.py's plans) and/or state (the same with planned_values and "
                         "prior_state filled, as in a real plan)")
    ap.add_argument("--no-process", action="store_true", help="leave out the `tfreview policy check` column")
    args = ap.parse_args()
    modules = {p.name: p.read_text() for p in sorted(POLICIES.glob("*.rego")) if not rego.is_test_module(p.name)}
    facts = {"env": "prod", "plan_kind": "deploy", "planner": "alice@example.com"}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(REPO / "bench" / "make_synthetic.py"), "--sizes", args.sizes, "--out", tmp],
                       check=True, capture_output=True)
        print(f"| resource changes | plan | plan JSON | JSON parse | {len(modules)} Rego modules: checks, whole input "
              "(before) | checks, cut input (now) | engine CPU, whole: input + query | engine CPU, cut: input + query "
              "| input given | checks in `plan` | messages | review summary | review + checks in `plan` "
              "| `tfreview policy check` (process) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for n in (int(s) for s in args.sizes.split(",")):
            for shape in args.shapes.split(","):
                path = Path(tmp) / f"synthetic-{n // 1000}k.json"
                if shape == "state":
                    path.with_suffix(".state.json").write_bytes(with_state(path.read_bytes()))
                    path = path.with_suffix(".state.json")
                row(n, shape, path, modules, facts, args.repeat, not args.no_process)
    return 0


def row(n: int, shape: str, path: Path, modules: dict[str, str], facts: dict, repeat: int, process_too: bool) -> None:
    raw = path.read_bytes()
    found: list[int] = []
    engine: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    given: list[object] = []

    def check(cut: bool) -> None:
        run = rego.evaluate(modules, raw, facts, timeout=600, slice_input=cut)
        assert run.error is None, run.error
        found.append(len(run.findings))
        engine[cut].append(run.engine_cpu_s or (0.0, 0.0))
        if cut:
            given.append(run.input_keys)

    waits: list[float] = []

    def in_plan() -> None:
        t0 = time.perf_counter()
        started = rego.start(modules, raw, timeout=600)
        t1 = time.perf_counter()
        review_plan(raw).summary_json()  # what `plan` does before the facts are there (and more)
        t2 = time.perf_counter()
        run = started.finish(facts)
        waits.append(t1 - t0 + time.perf_counter() - t2)
        assert run.error is None, run.error

    def process() -> None:
        proc = subprocess.run([sys.executable, "-m", "tfreview", "policy", "check", str(path), "--policy",
                               str(POLICIES), "--format", "json", "--timeout", "600"],
                              capture_output=True, env={**os.environ, "NO_COLOR": "1"})
        assert proc.returncode in (0, 3), proc.stderr.decode()

    parse = timed(lambda: orjson.loads(raw), repeat)
    whole, cut = alternating(lambda: check(False), lambda: check(True), repeat)
    review = timed(lambda: review_plan(raw).summary_json(), repeat)
    both = timed(in_plan, repeat)
    whole_cpu, cut_cpu = (" + ".join(f"{statistics.median(e[i] for e in engine[c]):.2f}" for i in (0, 1)) + " s"
                          for c in (False, True))
    keys = ", ".join(given[-1]) if isinstance(given[-1], tuple) else "whole document"
    proc = f"{timed(process, repeat):.2f} s" if process_too else "-"
    print(f"| {n:,} | {shape} | {len(raw) / 1e6:.1f} MB | {parse:.2f} s | {whole:.2f} s | {cut:.2f} s | {whole_cpu} | "
          f"{cut_cpu} | {keys} | {statistics.median(waits):.2f} s | {found[-1]:,} | {review:.2f} s | {both:.2f} s | "
          f"{proc} |", flush=True)


def alternating(first: Any, second: Any, repeat: int) -> tuple[float, float]:
    """Median wall seconds of `first` and `second`, run one after the other `repeat` times (the load shared)."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


if __name__ == "__main__":
    sys.exit(main())
