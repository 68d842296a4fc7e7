#!/usr/bin/env python3
"""Start-up time as a user meets it: `tfreview --help` as a whole process, side by side with `terraform version`,
interleaved, median and best of --repeat runs.

This is where start-up speed is watched (the suite only checks that `--help` imports no heavy library:
tests/test_cli_contract.py); a figure here never fails a build.

Usage:
    .venv/bin/python bench/startup.py [--repeat 15]
Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TFREVIEW = str(Path(sys.executable).parent / "tfreview")
COMMANDS = {
    "tfreview --help": [TFREVIEW, "--help"],
    "terraform version": ["terraform", "version"],
}


def once(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for argv in COMMANDS.values():
        once(argv)  # warm the page cache once
    for _ in range(args.repeat):
        for name, argv in COMMANDS.items():
            times[name].append(once(argv))
    floor = statistics.median(times["terraform version"])
    print("| command | median | best | vs `terraform version` |")
    print("|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median:.3f} s | {min(values):.3f} s | {median / floor:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
