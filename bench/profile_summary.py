#!/usr/bin/env python3
"""Profile tfreview's terminal summary of one plan with cProfile: where does the time go?

    .venv/bin/python bench/profile_summary.py bench/data/synthetic-10k.json [--top 25]

Prints the phase times (parse + review, render of the summary) and the top functions by cumulative and by own
time. (Named profile_summary, not profile: a bench/profile.py would shadow the stdlib module cProfile imports.)
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plan", type=Path)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--full", action="store_true", help="profile the whole diff (`tfreview render FILE`), not the summary")
    args = ap.parse_args()

    from rich.console import Console

    from tfreview.plan import review_plan
    from tfreview.render.terminal import render_terminal

    data = args.plan.read_bytes()
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    review = review_plan(data)
    t1 = time.perf_counter()
    with open(os.devnull, "w") as sink:
        Console(file=sink, width=120, force_terminal=True, color_system="truecolor").print(
            render_terminal(review, summary_only=not args.full))
    profiler.disable()
    t2 = time.perf_counter()
    print(f"{args.plan.name}: review_plan {t1 - t0:.2f} s, render {'full diff' if args.full else 'summary'} {t2 - t1:.2f} s (under cProfile)")
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats(key).print_stats(args.top)
        print(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
