#!/usr/bin/env python3
"""`tfreview policy check PLAN.json --policy DIR` in-process, before and after the engine started early.

"before": the plan redacted (`redact_plan_with_secrets`), then the checks (`rego.evaluate`), one after the other,
as the command ran them until issue 22 item 7's third round; "now": `usecases.policycheck.check`, which starts the
engine (`rego.start`) before the redaction so that it takes the plan as input meanwhile. Both alternated run by
run over bench/make_synthetic.py's plans and the ten conftest-style modules; wall and CPU seconds (this process
and its reaped children), median of `--repeat`.

Usage:
    .venv/bin/python bench/policy_check_overlap.py [--sizes 1000,10000] [--repeat 5]
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tfreview.plan.redact import redact_plan_with_secrets  # noqa: E402
from tfreview.trust import rego  # noqa: E402
from tfreview.usecases import policycheck  # noqa: E402

POLICIES = REPO / "tests" / "data" / "rego" / "conftest_style"


def before(path: Path) -> None:
    raw = path.read_bytes()
    redact_plan_with_secrets(raw)
    modules = policycheck.read_dir(POLICIES)
    rego.check_modules(modules)
    run = rego.evaluate({n: s for n, s in modules.items() if not rego.is_test_module(n)}, raw, {"env": None})
    assert run.error is None, run.error


def now(path: Path) -> None:
    result = policycheck.check(str(path), None, POLICIES, None, (), 600)
    assert result["error"] is None, result["error"]


def measure(fn, path: Path) -> tuple[float, float]:
    t0, c0, k0 = time.perf_counter(), time.process_time(), os.times()
    fn(path)
    k1 = os.times()
    cpu = time.process_time() - c0 + (k1.children_user - k0.children_user) + (k1.children_system - k0.children_system)
    return time.perf_counter() - t0, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(REPO / "bench" / "make_synthetic.py"), "--sizes", args.sizes, "--out", tmp],
                       check=True, capture_output=True)
        print("| resource changes | before: redact, then checks (wall / CPU) | now: overlapped (wall / CPU) |")
        print("|---|---|---|")
        for n in (int(s) for s in args.sizes.split(",")):
            path = Path(tmp) / f"synthetic-{n // 1000}k.json"
            got: dict[str, list[tuple[float, float]]] = {"before": [], "now": []}
            for _ in range(args.repeat):
                got["before"].append(measure(before, path))
                got["now"].append(measure(now, path))
            cells = [f"{statistics.median(w for w, _ in got[k]):.2f} s / {statistics.median(c for _, c in got[k]):.2f} s"
                     for k in ("before", "now")]
            print(f"| {n:,} | {cells[0]} | {cells[1]} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
