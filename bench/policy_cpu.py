#!/usr/bin/env python3
"""CPU seconds of `tfreview plan`'s policy step, for one source tree (run it with an older tree to compare).

Ten conftest-style modules (tests/data/rego/conftest_style) over the synthetic plans of bench/make_synthetic.py;
the median of `--repeat` runs of:
- a tree without `rego.start` (before issue 22 item 7's second round): `trust.checks.run_checks`, the checks
  then the plan parsed again for its secrets, all on `plan`'s path;
- a tree with it: `start_checks` (fork; the engine takes the plan as input), the redaction and the review summary
  in the parent (not counted), `finish(facts)` and the scrubbing with the redaction's secrets. "On plan's path":
  the parent's own CPU in start and finish plus the engine's CPU after the facts (the query); "all processes":
  every CPU second of the step, the engine's input parse included.
CPU, not wall time, so a loaded machine still compares the two trees fairly.

Usage:
    git archive <old commit> tfreview | tar -x -C /tmp/old
    .venv/bin/python bench/policy_cpu.py --tree /tmp/old ; .venv/bin/python bench/policy_cpu.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cpu() -> tuple[float, float]:
    t = os.times()
    return t.user + t.system, t.children_user + t.children_system


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", default=str(REPO), help="the folder holding the tfreview package to measure")
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sys.path.insert(0, args.tree)
    from tfreview.plan import review_plan
    from tfreview.review.policy import EnvPolicy
    from tfreview.trust import checks, rego

    policies = REPO / "tests" / "data" / "rego" / "conftest_style"
    modules = {f"policy/{p.name}": p.read_text() for p in sorted(policies.glob("*.rego"))
               if not rego.is_test_module(p.name)}
    env_policy = EnvPolicy(checks=("policy/*.rego",))
    facts = {"env": "prod", "plan_kind": "deploy", "planner": "alice@example.com"}
    new = hasattr(rego, "start")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(REPO / "bench" / "make_synthetic.py"), "--sizes", args.sizes, "--out", tmp],
                       check=True, capture_output=True)
        for n in (int(s) for s in args.sizes.split(",")):
            raw = (Path(tmp) / f"synthetic-{n // 1000}k.json").read_bytes()
            path_cpu, all_cpu, messages = [], [], 0
            for _ in range(args.repeat):
                if not new:
                    p0, c0 = cpu()
                    run = checks.run_checks(modules, env_policy, raw, facts)
                    p1, c1 = cpu()
                    path_cpu.append(p1 - p0 + c1 - c0)
                    all_cpu.append(p1 - p0 + c1 - c0)
                else:
                    from tfreview.plan.redact import redact_plan_with_secrets

                    p0, c0 = cpu()
                    started = checks.start_checks(modules, env_policy, raw)
                    p1, _ = cpu()
                    _, secrets = redact_plan_with_secrets(raw)  # plan's own work meanwhile
                    review_plan(raw).summary_json()
                    p2, _ = cpu()
                    run = checks._scrubbed(started.finish(facts), secrets)
                    p3, c3 = cpu()
                    path_cpu.append(p1 - p0 + p3 - p2 + (run.engine_cpu_s or (0.0, 0.0))[1])
                    all_cpu.append(p1 - p0 + p3 - p2 + c3 - c0)
                assert run.error is None, run.error
                messages = len(run.findings)
            print(f"{'new' if new else 'old'} tree, {n:,} changes: on plan's path {statistics.median(path_cpu):.2f} s "
                  f"CPU, all processes {statistics.median(all_cpu):.2f} s CPU ({messages:,} messages)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
