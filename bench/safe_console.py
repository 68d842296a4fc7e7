"""What making untrusted text visible costs the terminal review: one review printed by rich's Console and by
tfreview's SafeConsole (best of 3, seconds). Run: .venv/bin/python bench/safe_console.py [RESOURCES]"""
from __future__ import annotations

import copy
import io
import json
import sys
import time
from pathlib import Path

from rich.console import Console

from tfreview.console import SafeConsole
from tfreview.plan import review_plan
from tfreview.render.terminal import render_terminal

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def plan(n: int) -> dict:
    """n copies of the image-bump task definition change (tests/data), each under its own address."""
    base = json.loads((DATA / "ecs_image_bump.json").read_text())
    td = base["resource_changes"][0]
    base["resource_changes"] = [{**copy.deepcopy(td), "address": f'module.webapp.aws_ecs_task_definition.app["c{i}"]',
                                 "index": f"c{i}"} for i in range(n)]
    return base


def best(console_cls: type, review: object) -> float:
    times = []
    for _ in range(3):
        console = console_cls(file=io.StringIO(), width=120, force_terminal=True, color_system="standard")
        t0 = time.perf_counter()
        console.print(render_terminal(review))
        times.append(time.perf_counter() - t0)
    return min(times)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    review = review_plan(plan(n))
    plain, safe = best(Console, review), best(SafeConsole, review)
    print(f"{n} resources: Console {plain:.2f} s, SafeConsole {safe:.2f} s ({safe / plain:.2f}x)")
