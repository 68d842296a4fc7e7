#!/usr/bin/env python3
"""Issue 21's speed goals, measured as whole processes side by side in one run (docs/benchmarks.md):

  1. the full text review (`tfreview render FILE`, stdout a pipe the benchmark drains) against a bare
     `orjson.loads` of the same file, at 10,000 and 50,000 resources, on the synthetic plans of our real ECS
     changes (`synthetic-<n>k.json`) and of every plan family (`synthetic-all-<n>k.json`, bench/make_synthetic.py
     --families all): time <= 3x, peak memory <= 2x, time linear in size;
  2. `tfreview render plan.json` of a 1,000-resource terraform_data plan (bench/tfdata, planned here by terraform)
     against `terraform show plan.tfplan` of it (both to a pipe): no slower;
  3. `tfreview --help` against `terraform version`: at most 2x.

Each measurement runs in a fresh process, `--repeat` times, interleaved round by round (a shared machine's load
hits them alike); median wall time, peak RSS of the process (os.wait4). The load average before and after is
printed with the tables.

Usage:
    .venv/bin/python bench/make_synthetic.py --sizes 10000,50000
    .venv/bin/python bench/make_synthetic.py --families all --sizes 10000,50000
    .venv/bin/python bench/review_speed.py [--repeat 3] [--sizes 10k,50k] [--baseline DIR]

`--baseline DIR`: also run `tfreview` from another checkout's package (DIR holds its `tfreview/`, compiled
modules built there: `git archive REV tfreview scripts | tar -x -C DIR`, then `scripts/build_native.py` and
`compileall` in DIR) in the same rounds, as "baseline": before and after, side by side under the same load.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / "data"
TFDATA = DATA / "tfdata1000"
PY = sys.executable
TFREVIEW = str(Path(PY).parent / "tfreview")
BASELINE = ""  # --baseline
LOADS = [PY, "-c", "import sys, orjson; orjson.loads(open(sys.argv[1], 'rb').read())"]


def measure(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MB, CPU seconds: user + system) of one process whose stdout is a pipe read to its
    end. CPU is what a loaded machine distorts least (wall time there is mostly waiting for a core)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    while proc.stdout.read(1 << 16):
        pass
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def tf_env() -> dict[str, str]:
    rc = DATA / "empty.tfrc"
    rc.parent.mkdir(parents=True, exist_ok=True)
    rc.write_text("")
    return {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}


def make_tfdata(env: dict[str, str]) -> None:
    """bench/tfdata/main.tf planned by terraform (built-in provider only: nothing to download)."""
    if (TFDATA / "plan.json").is_file():
        return
    TFDATA.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "bench" / "tfdata" / "main.tf", TFDATA / "main.tf")
    for args in (["init", "-no-color"], ["plan", "-no-color", "-out", "plan.tfplan"]):
        subprocess.run(["terraform", *args], cwd=TFDATA, env=env, check=True, stdout=subprocess.DEVNULL)
    with open(TFDATA / "plan.json", "wb") as out:
        subprocess.run(["terraform", "show", "-json", "plan.tfplan"], cwd=TFDATA, env=env, check=True, stdout=out)


def run_group(name: str, specs: dict[str, tuple[list[str], Path]], env: dict[str, str], repeat: int) -> dict:
    runs: dict[str, list[tuple[float, float, float]]] = {label: [] for label in specs}
    envs = {label: {**env, "PYTHONPATH": BASELINE} if label.startswith("baseline") and BASELINE else env
            for label in specs}
    for label, (argv, cwd) in specs.items():  # warm the page cache
        measure(argv, cwd, envs[label])
    for _ in range(repeat):
        for label, (argv, cwd) in specs.items():
            runs[label].append(measure(argv, cwd, envs[label]))
    out = {}
    for label, got in runs.items():
        walls = [w for w, _, _ in got]
        out[label] = {"median": statistics.median(walls), "min": min(walls), "max": max(walls),
                      "rss": max(r for _, r, _ in got), "cpu": statistics.median(c for _, _, c in got)}
    print(f"measured {name}", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="10k,50k")
    ap.add_argument("--families", default="synthetic,synthetic-all")
    ap.add_argument("--baseline", default="", help="a directory holding another checkout's tfreview/ package")
    args = ap.parse_args()
    global BASELINE
    BASELINE = str(Path(args.baseline).resolve()) if args.baseline else ""
    env = tf_env()
    make_tfdata(env)
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for family in args.families.split(","):
        for size in args.sizes.split(","):
            path = DATA / f"{family}-{size}.json"
            if not path.is_file():
                raise SystemExit(f"{path} is missing: run bench/make_synthetic.py (see --help)")
            specs = {"loads": ([*LOADS, str(path)], REPO), "review": ([TFREVIEW, "render", str(path)], REPO)}
            if BASELINE:
                specs["baseline review"] = ([TFREVIEW, "render", str(path)], REPO)
            got = run_group(path.name, specs, env, args.repeat)
            rows.append((path.name, path.stat().st_size / 1e6, got))
    tfd_specs = {"terraform show": (["terraform", "show", "-no-color", "plan.tfplan"], TFDATA),
                 "tfreview render": ([TFREVIEW, "render", "plan.json"], TFDATA)}
    if BASELINE:
        tfd_specs["baseline tfreview render"] = ([TFREVIEW, "render", "plan.json"], TFDATA)
    tfd = run_group("tfdata", tfd_specs, env, args.repeat)
    start = run_group("startup", {"terraform version": (["terraform", "version"], REPO),
                                  "tfreview --help": ([TFREVIEW, "--help"], REPO)}, env, max(args.repeat, 7))
    load_after = os.getloadavg()

    print(f"Run of {started}, {args.repeat} interleaved runs each (startup: {max(args.repeat, 7)}); load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after, on {os.cpu_count()} cores.\n")
    print("| plan | size | `orjson.loads` | full text review to a pipe | time ratio (goal <= 3x) | peak RSS loads / review | memory ratio (goal <= 2x) |")
    print("|---|---|---|---|---|---|---|")
    for name, mb, got in rows:
        lo, rv = got["loads"], got["review"]
        print(f"| {name} | {mb:.1f} MB | {lo['median']:.2f} s ({lo['min']:.2f}-{lo['max']:.2f}) | "
              f"{rv['median']:.2f} s ({rv['min']:.2f}-{rv['max']:.2f}) | {rv['median'] / lo['median']:.1f}x | "
              f"{lo['rss']:.0f} / {rv['rss']:.0f} MB | {rv['rss'] / lo['rss']:.2f}x |")
    print("\nCPU (user + system, median), the same runs:\n")
    print("| plan | `orjson.loads` | review | CPU ratio |" + (" baseline review | CPU ratio |" if BASELINE else ""))
    print("|---|---|---|---|" + ("---|---|" if BASELINE else ""))
    for name, _, got in rows:
        lo, rv = got["loads"]["cpu"], got["review"]["cpu"]
        line = f"| {name} | {lo:.2f} s | {rv:.2f} s | {rv / lo:.1f}x |"
        if BASELINE:
            base = got["baseline review"]["cpu"]
            line += f" {base:.2f} s | {base / lo:.1f}x |"
        print(line)
    if BASELINE:
        print(f"\nBaseline ({BASELINE}), the same rounds:\n")
        print("| plan | baseline review | time ratio | review now | time ratio |")
        print("|---|---|---|---|---|")
        for name, _, got in rows:
            lo, rv, base = got["loads"], got["review"], got["baseline review"]
            print(f"| {name} | {base['median']:.2f} s ({base['min']:.2f}-{base['max']:.2f}) | "
                  f"{base['median'] / lo['median']:.1f}x | {rv['median']:.2f} s | {rv['median'] / lo['median']:.1f}x |")
    by_family: dict[str, list[tuple[str, float]]] = {}
    for name, _, got in rows:
        family, size = name.removesuffix(".json").rsplit("-", 1)
        by_family.setdefault(family, []).append((size, got["review"]["median"]))
    for family, points in by_family.items():
        if len(points) == 2:
            (s1, t1), (s2, t2) = points
            print(f"\nLinearity, {family}: review {t1:.2f} s at {s1}, {t2:.2f} s at {s2}: {t2 / t1:.1f}x the time for "
                  f"{int(s2[:-1]) / int(s1[:-1]):.0f}x the resources.")
    print("\n| 1,000 terraform_data | median | range | peak RSS |")
    print("|---|---|---|---|")
    for label, got in tfd.items():
        print(f"| `{label}` | {got['median']:.2f} s | {got['min']:.2f}-{got['max']:.2f} s | {got['rss']:.0f} MB |")
    print(f"\nratio tfreview / terraform: {tfd['tfreview render']['median'] / tfd['terraform show']['median']:.2f}x "
          "(goal <= 1x)")
    print("\n| start-up | median | range |")
    print("|---|---|---|")
    for label, got in start.items():
        print(f"| `{label}` | {got['median']:.3f} s | {got['min']:.3f}-{got['max']:.3f} s |")
    print(f"\nratio: {start['tfreview --help']['median'] / start['terraform version']['median']:.1f}x (goal <= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
