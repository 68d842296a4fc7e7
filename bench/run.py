#!/usr/bin/env python3
"""Benchmark tfreview's review of big plans against the floor (a bare orjson.loads) and against terraform show.

Every measurement runs in its own subprocess, `--repeat` times, interleaved (round 1 runs each measurement of a
plan once, then round 2...) so that the load of a shared machine hits them alike. We report the median wall time
and the peak resident set size of that process (os.wait4's ru_maxrss: the largest single process of its tree, in
MB). Python children also report the in-process time of the operation itself (`op`: from reading the file to the
last byte written), which leaves out interpreter start-up and imports.

Measured, per synthetic plan (bench/make_synthetic.py: 1k, 10k, 50k resource changes):
  loads     read the file + orjson.loads                                  (the floor)
  loads, gc off   the same with Python's cyclic GC disabled             (a stricter floor: GC is most of loads)
  summary   read + tfreview.plan.review_plan + render_terminal(summary_only=True) printed to a terminal console
  render    `tfreview render FILE` > /dev/null, the whole per-resource diff (only at sizes <= --render-max), with
            the compiled modules when `make native` built them (tfreview/native.py), and again in pure Python
and on the real 1,000-resource plans (bench/make_real.py: 1,000 creates; --mode update: an image bump over 1,000
applied resources):
  terraform show PLAN, terraform show -json PLAN, loads, summary, `tfreview render plan.json`,
  `tfreview render plan.tfplan` (which itself runs terraform show -json).

Usage:
    .venv/bin/python bench/make_synthetic.py && .venv/bin/python bench/make_real.py
    .venv/bin/python bench/run.py [--repeat 3] [--sizes 1k,10k,50k] [--render-max 10000]
Writes the figures as JSON to bench/data/results.json and prints Markdown tables (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / "data"
REALS = [DATA / "real1000", DATA / "real1000-update"]  # bench/make_real.py --mode create / --mode update
PY = sys.executable
TFREVIEW = str(Path(PY).parent / "tfreview")


# -- child side: one operation, its in-process time printed as JSON on stdout ----------------------------------
def child(mode: str, path: str) -> None:
    """Imports first, then the timed operation: read the file and process it."""
    if mode in ("loads", "loads-nogc"):
        import gc

        import orjson

        t0 = time.perf_counter()
        if mode == "loads-nogc":  # the cyclic GC, triggered by the allocations, is most of a bare loads
            gc.disable()
        orjson.loads(Path(path).read_bytes())
    elif mode == "summary":
        from rich.console import Console

        from tfreview.plan import review_plan
        from tfreview.render.terminal import render_terminal

        t0 = time.perf_counter()
        review = review_plan(Path(path).read_bytes())
        with open(os.devnull, "w") as sink:
            Console(file=sink, width=120, force_terminal=True, color_system="truecolor").print(
                render_terminal(review, summary_only=True))
    else:
        raise SystemExit(f"unknown child mode {mode}")
    print(json.dumps({"op_s": time.perf_counter() - t0}))


# -- parent side -------------------------------------------------------------------------------------------------
def measure_once(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> dict:
    """Run argv once; wall time (s), peak RSS (MB) from wait4, and the child's own op time if it printed one.
    Output of commands other than our own children goes to /dev/null (what is timed is producing it).
    A run longer than `timeout` seconds is killed and reported as {"timeout_s": timeout}."""
    ours = "--child" in argv
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out if ours else subprocess.DEVNULL, stderr=err)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                return {"timeout_s": timeout, "rss_mb": usage.ru_maxrss / 1024}
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            return {"error": f"exit {proc.returncode}: {err.read().decode(errors='replace')[-1500:]}",
                    "rss_mb": usage.ru_maxrss / 1024}
        result = {"wall_s": wall, "rss_mb": usage.ru_maxrss / 1024}
        lines = out.read().decode(errors="replace").splitlines()
    if lines and lines[-1].startswith('{"op_s"'):
        result["op_s"] = json.loads(lines[-1])["op_s"]
    return result


def measure_group(specs: list[tuple], repeat: int) -> list[dict]:
    """Run every (label, argv, cwd, env) of one plan `repeat` times, interleaved round by round so that the
    load of a shared machine hits all of them alike; median wall and op time, max peak RSS. A measurement
    stops repeating after a run slower than --slow seconds, a timeout or a failure."""
    runs: dict[str, list[dict]] = {spec[0]: [] for spec in specs}
    for _ in range(repeat):
        for label, argv, cwd, env in specs:
            done = runs[label]
            if done and ("wall_s" not in done[-1] or done[-1]["wall_s"] > OPTS["slow"]):
                continue
            done.append(measure_once(argv, cwd, env, OPTS["timeout"]))
    rows = []
    for label, argv, _, _ in specs:
        got = runs[label]
        row = {"label": label, "argv": argv, "runs": got, "rss_mb": max(r["rss_mb"] for r in got)}
        rows.append(row)
        if "error" in got[-1]:
            row["error"] = got[-1]["error"]
            print(f"  {label:<44} FAILED: {row['error']}", file=sys.stderr, flush=True)
            continue
        if "timeout_s" in got[-1]:
            row["timeout_s"] = got[-1]["timeout_s"]
            print(f"  {label:<44} TIMEOUT after {row['timeout_s']:.0f} s (peak so far {row['rss_mb']:.1f} MB)",
                  file=sys.stderr, flush=True)
            continue
        row["wall_s"] = statistics.median(r["wall_s"] for r in got)
        if all("op_s" in r for r in got):
            row["op_s"] = statistics.median(r["op_s"] for r in got)
        print(f"  {label:<44} wall {row['wall_s']:8.3f} s  op {row.get('op_s', float('nan')):8.3f} s  "
              f"peak {row['rss_mb']:8.1f} MB  ({len(got)} run(s))", file=sys.stderr, flush=True)
    return rows


OPTS = {"timeout": 600.0, "slow": 60.0}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    tf = subprocess.run(["terraform", "version"], capture_output=True, text=True).stdout.splitlines()[0]
    import orjson

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "tfreview"], cwd=REPO, capture_output=True, text=True).stdout
    which = subprocess.run([str(Path(PY).parent / "python"), "-c", "import tfreview.plan.diff as d; print(d.__file__)"],
                           cwd=REPO, capture_output=True, text=True).stdout.strip()
    return {"commit": commit + (" (tfreview/ modified: " + " ".join(line[3:] for line in dirty.splitlines()) + ")"
                                if dirty.strip() else ""),
            "cpu": cpu, "cores": os.cpu_count(), "mem_gb": round(mem_kb / 1e6, 1), "python": platform.python_version(),
            "orjson": orjson.__version__, "terraform": tf, "kernel": platform.release(),
            "loadavg_start": os.getloadavg(),
            "compiled_modules": not which.endswith(".py")}  # tfreview/native.py: `make native` built them


def to_markdown(results: dict) -> str:
    def fmt(row: dict | None, key: str, unit: str) -> str:
        if row and "timeout_s" in row and key != "rss_mb":
            return f"> {row['timeout_s']:.0f} s (killed)"
        if row and "error" in row and key != "rss_mb":
            return "failed"
        return "n/a" if not row or key not in row else f"{row[key]:.3f} {unit}" if unit == "s" else f"{row[key]:.0f} {unit}"

    lines = ["| plan | size | measurement | wall (median) | op (median) | peak RSS | runs |",
             "|---|---|---|---|---|---|---|"]
    for plan in results["plans"]:
        for row in plan["rows"]:
            lines.append(f"| {plan['name']} | {plan['mb']:.1f} MB | {row['label']} | {fmt(row, 'wall_s', 's')} | "
                         f"{fmt(row, 'op_s', 's')} | {fmt(row, 'rss_mb', 'MB')} | {len(row['runs'])} |")
    lines += ["", "| plan | summary time / loads (op) | (wall) | summary peak RSS / loads | "
              "summary time / loads with gc off (op) | summary op time per 1k resources |", "|---|---|---|---|---|---|"]
    for plan in results["plans"]:
        rows = {r["label"]: r for r in plan["rows"]}
        loads, nogc, summary = rows.get("loads"), rows.get("loads, gc off"), rows.get("tfreview summary")
        if not loads or not summary or "error" in summary or "error" in loads:
            continue
        if "timeout_s" in summary:
            lines.append(f"| {plan['name']} | > {summary['timeout_s'] / loads['op_s']:.0f}x | | | | |")
            continue
        strict = f"{summary['op_s'] / nogc['op_s']:.1f}x" if nogc and "op_s" in nogc else "n/a"
        lines.append(f"| {plan['name']} | {summary['op_s'] / loads['op_s']:.1f}x | "
                     f"{summary['wall_s'] / loads['wall_s']:.1f}x | {summary['rss_mb'] / loads['rss_mb']:.2f}x | "
                     f"{strict} | {summary['op_s'] / plan['resources'] * 1000:.3f} s |")
    lines += ["", "| plan | `tfreview render` / loads (wall) | peak RSS / loads | pure Python / loads (wall) |",
              "|---|---|---|---|"]
    for plan in results["plans"]:
        rows = {r["label"]: r for r in plan["rows"]}
        loads, render, pure = rows.get("loads"), rows.get("tfreview render FILE (full diff)"), rows.get(PURE)
        if not loads or not render or "wall_s" not in render or "wall_s" not in loads:
            continue
        slow = f"{pure['wall_s'] / loads['wall_s']:.1f}x" if pure and "wall_s" in pure else "n/a"
        lines.append(f"| {plan['name']} | {render['wall_s'] / loads['wall_s']:.1f}x | "
                     f"{render['rss_mb'] / loads['rss_mb']:.2f}x | {slow} |")
    return "\n".join(lines)


PURE = "tfreview render FILE, pure Python (TFREVIEW_NATIVE=0)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="1k,10k,50k", help="synthetic plans bench/data/synthetic-<size>.json")
    ap.add_argument("--render-max", type=int, default=10000,
                    help="also time the full `tfreview render` on synthetic plans up to this many resources")
    ap.add_argument("--no-real", action="store_true", help="skip the real 1,000-resource plan")
    ap.add_argument("--timeout", type=float, default=600, help="kill a run after this many seconds")
    ap.add_argument("--slow", type=float, default=60, help="do not repeat a measurement whose run took longer")
    ap.add_argument("--out", type=Path, default=DATA / "results.json")
    args = ap.parse_args()
    OPTS.update(timeout=args.timeout, slow=args.slow)

    results: dict = {"machine": machine(), "repeat": args.repeat, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                         time.gmtime()), "plans": []}
    me = str(Path(__file__).resolve())
    for size in args.sizes.split(","):
        path = DATA / f"synthetic-{size}.json"
        if not path.exists():
            raise SystemExit(f"{path} missing: run bench/make_synthetic.py first")
        n = int(size[:-1]) * 1000 if size.endswith("k") else int(size)
        print(f"{path.name} ({n} resources, {path.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
        specs = [("loads", [PY, me, "--child", "loads", str(path)], REPO, None),
                 ("loads, gc off", [PY, me, "--child", "loads-nogc", str(path)], REPO, None),
                 ("tfreview summary", [PY, me, "--child", "summary", str(path)], REPO, None)]
        if n <= args.render_max:
            specs.append(("tfreview render FILE (full diff)", [TFREVIEW, "render", str(path)], REPO, None))
            specs.append((PURE, [TFREVIEW, "render", str(path)], REPO, {**os.environ, "TFREVIEW_NATIVE": "0"}))
        rows = measure_group(specs, args.repeat)
        results["plans"].append({"name": path.name, "resources": n, "mb": path.stat().st_size / 1e6, "rows": rows})

    for real in ([] if args.no_real else REALS):
        plan_json, plan_bin = real / "plan.json", real / "plan.tfplan"
        if not plan_bin.exists():
            if real == REALS[0]:
                raise SystemExit(f"{plan_bin} missing: run bench/make_real.py first")
            continue  # the update plan is optional (bench/make_real.py --mode update)
        env = {**os.environ, "TF_CLI_CONFIG_FILE": str(real / "terraform.rc"), "CHECKPOINT_DISABLE": "1",
               "TFREVIEW_PROVIDER_MIRROR": os.environ.get("TFREVIEW_PROVIDER_MIRROR", "/opt/tf-plugins")}
        summary = json.loads((real / "expected.json").read_text())["summary"]
        print(f"{real.name}: {summary} ({plan_json.stat().st_size / 1e6:.1f} MB JSON)", file=sys.stderr)
        rows = measure_group([
            ("terraform show PLAN", ["terraform", "show", "-no-color", "plan.tfplan"], real, env),
            ("terraform show -json PLAN", ["terraform", "show", "-json", "plan.tfplan"], real, env),
            ("loads", [PY, me, "--child", "loads", str(plan_json)], REPO, None),
            ("loads, gc off", [PY, me, "--child", "loads-nogc", str(plan_json)], REPO, None),
            ("tfreview summary", [PY, me, "--child", "summary", str(plan_json)], REPO, None),
            ("tfreview render plan.json (full diff)", [TFREVIEW, "render", str(plan_json)], REPO, None),
            ("tfreview render plan.tfplan (full diff)", [TFREVIEW, "render", str(plan_bin)], real, env),
        ], args.repeat)
        results["plans"].append({"name": f"{real.name} ({summary})", "resources": 1000,
                                 "mb": plan_json.stat().st_size / 1e6, "rows": rows})

    results["machine"]["loadavg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(to_markdown(results))
    print(f"\nmachine: {json.dumps(results['machine'])}\nresults: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        sys.exit(0)
    sys.exit(main())
