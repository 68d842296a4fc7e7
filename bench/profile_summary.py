#!/usr/bin/env python3
"""Profile tfreview's terminal summary of one plan with cProfile: where does the time go?

    .venv/bin/python bench/profile_summary.py bench/data/synthetic-10k.json [--top 25] [--what-if-family-index]

Prints the top functions by cumulative and by own time, and the phase times (parse+review, render).

--what-if-family-index measures the engine as it would be with one fix, without editing it: the service <->
task definition linking of `tfreview.plan.ecs.ecs_stories` done through a dict family -> services built once
(O(task definitions + services)) instead of scanning every service for every task definition with a regex
(O(task definitions x services)). The patch lives here only; the engine is untouched.
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


def family_index_patch() -> None:
    """Replace ecs_stories' per-pair linking with a family index (same results for services whose
    task_definition names a family; services whose task_definition is unknown keep the module/index rule)."""
    import tfreview.plan.ecs as ecs

    original_story = ecs._story

    def ecs_stories(changes, secrets=frozenset(), *, reveal_safe_fields=True):
        changes = list(changes)
        services = [rc for rc in changes if rc.type == "aws_ecs_service" and rc.is_managed]
        by_family: dict[str, list] = {}
        unknown: list = []
        for svc in services:
            families = set()
            for side in (svc.before, svc.after):
                if isinstance(side, dict):
                    families.add(ecs.family_of(side.get("task_definition")))
            for fam in families - {None}:
                by_family.setdefault(fam, []).append(svc)
            if isinstance(svc.after_unknown, dict) and svc.after_unknown.get("task_definition") is True:
                unknown.append(svc)
        unknown_by_key: dict = {}
        for svc in unknown:
            unknown_by_key.setdefault((svc.module_address, repr(svc.index)), []).append(svc)
        stories = []
        for rc in changes:
            if rc.type != "aws_ecs_task_definition" or not rc.is_managed or rc.action in ("no-op", "read"):
                continue
            before = rc.before if isinstance(rc.before, dict) else {}
            after = rc.after if isinstance(rc.after, dict) else {}
            family = ecs._mask(str(after.get("family") or before.get("family") or rc.name), secrets)
            candidates = by_family.get(family, []) + unknown_by_key.get((rc.module_address, repr(rc.index)), [])
            seen = {id(s): s for s in candidates}  # _story still checks each candidate with _uses_family
            stories.append(original_story(rc, list(seen.values()), secrets, reveal_safe_fields))
        return tuple(sorted(stories, key=lambda s: s.address))

    ecs.ecs_stories = ecs_stories
    import tfreview.plan.review as review_module

    review_module.ecs_stories = ecs_stories


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plan", type=Path)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--what-if-family-index", action="store_true")
    args = ap.parse_args()

    from rich.console import Console

    from tfreview.plan import review_plan
    from tfreview.render.terminal import render_terminal

    if args.what_if_family_index:
        family_index_patch()
        from tfreview.plan import review as review_module

        review_plan = review_module.review_plan  # noqa: F811 (same function, patched module globals)

    data = args.plan.read_bytes()
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    review = review_plan(data)
    t1 = time.perf_counter()
    with open(os.devnull, "w") as sink:
        Console(file=sink, width=120, force_terminal=True, color_system="truecolor").print(
            render_terminal(review, summary_only=True))
    profiler.disable()
    t2 = time.perf_counter()
    print(f"{args.plan.name}: review_plan {t1 - t0:.2f} s, render summary {t2 - t1:.2f} s (under cProfile)")
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats(key).print_stats(args.top)
        print(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
