#!/usr/bin/env python3
"""Benchmark the redaction of the stored review JSON (tfreview/plan/redact.py): what `plan` pays once and `apply`
pays again when it re-derives the JSON from the binary, beside the review itself for scale.

Uses the synthetic plans of bench/make_synthetic.py (made on the fly in a temporary directory when missing).

Usage:
    .venv/bin/python bench/redact.py [--sizes 1000,10000] [--repeat 3]
Prints a Markdown table (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.audit import timed  # noqa: E402  (median of `repeat` runs, in seconds)

from tfreview.plan import review_plan  # noqa: E402
from tfreview.plan.redact import redact_plan  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000", help="comma-separated numbers of resource changes")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(REPO / "bench" / "make_synthetic.py"), "--sizes", args.sizes, "--out", tmp],
                       check=True, capture_output=True)
        print("| resource changes | plan JSON | redact + sha256 | review summary (for scale) |")
        print("|---|---|---|---|")
        for n in (int(s) for s in args.sizes.split(",")):
            raw = (Path(tmp) / f"synthetic-{n // 1000}k.json").read_bytes()
            redact = timed(lambda raw=raw: hashlib.sha256(redact_plan(raw)).hexdigest(), args.repeat)
            review = timed(lambda raw=raw: review_plan(raw).summary_json(), args.repeat)
            print(f"| {n:,} | {len(raw) / 1e6:.1f} MB | {redact:.2f} s | {review:.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
