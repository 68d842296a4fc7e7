#!/usr/bin/env python3
"""Benchmark an evidence pack's `verify.sh` against its floor: one `ssh-keygen -Y verify` process per signature.

Measured, as processes, one after the other in one run (CPU: user + system of every process, from getrusage):
  floor       every signature of the pack checked by a tight loop of `ssh-keygen -Y verify` commands, JOBS shells
              at a time, each running its share as a list of plain commands (principal and policy version found
              beforehand by this script: no reading, no parsing, one fork + exec per signature): what ssh-keygen
              alone costs, the least any POSIX script using it can cost
  verify.sh   the script of this tree (and of `--before COMMIT`), run in the pack as `sh -c SCRIPT verify.sh`
              (so the pack's own verify.sh is not needed), for each VERIFY_JOBS of `--jobs`; it must pass

The pack: `bench/data/evidence/pack` (written by bench/evidence.py: 10,000 plans, 20,022 signatures) or `--pack`;
`--plans N` measures a copy holding the statements of the first N plans only (hard links; signatures.tsv and the
manifest rewritten), for quicker comparisons.

Usage:
    .venv/bin/python bench/verify_sh.py [--pack DIR] [--plans N] [--before COMMIT] [--jobs 2,4] [--no-floor]
Prints a Markdown table (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def subpack(pack: Path, plans: int, dest: Path) -> Path:
    """A copy of `pack` (hard links) with the statements of its first `plans` plans only."""
    keep = set(sorted(p.name for p in (pack / "statements").iterdir())[:plans])
    for folder, dirs, files in os.walk(pack):
        rel = Path(folder).relative_to(pack)
        if rel.parts[:1] == ("statements",) and len(rel.parts) >= 2 and rel.parts[1] not in keep:
            dirs[:] = []
            continue
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            if str(rel / name) not in ("signatures.tsv", "MANIFEST.sha256"):
                os.link(Path(folder) / name, dest / rel / name)
    lines = [line for line in (pack / "signatures.tsv").read_text().splitlines(keepends=True)
             if not line.startswith("statements/") or line.split("/")[1] in keep]
    (dest / "signatures.tsv").write_text("".join(lines))
    manifest = []
    for line in (pack / "MANIFEST.sha256").read_text().splitlines(keepends=True):
        path = line.split("  ", 1)[1].rstrip("\n")
        if path == "signatures.tsv":
            line = f"{hashlib.sha256((dest / path).read_bytes()).hexdigest()}  {path}\n"
        if (dest / path).exists():
            manifest.append(line)
    (dest / "MANIFEST.sha256").write_text("".join(manifest))
    return dest


def script_at(commit: str | None) -> str:
    """VERIFY_SH of tfreview/usecases/evidence.py in this tree, or at `commit`."""
    if commit is None:
        from tfreview.usecases.evidence import VERIFY_SH

        return VERIFY_SH
    source = subprocess.run(["git", "show", f"{commit}:tfreview/usecases/evidence.py"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    scope: dict[str, object] = {}
    exec(compile(source, f"{commit}:evidence.py", "exec"), scope)  # noqa: S102 (this repository's own file)
    return str(scope["VERIFY_SH"])


def timed(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """(wall, user, system seconds, stdout) of one command and all its processes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{args[:2]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return took, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, proc.stdout


def floor_scripts(pack: Path, jobs: int, folder: Path) -> list[Path]:
    """JOBS shell scripts that together run `ssh-keygen -Y verify` once per signature of the pack, as plain commands."""
    shares: list[list[str]] = [[] for _ in range(jobs)]
    for n, line in enumerate((pack / "signatures.tsv").read_text().splitlines()):
        path, field = line.split("\t")
        body = (pack / f"{path}.stmt").read_text()
        who = re.search(rf'"{field}":"([^"]*)"', body).group(1)  # type: ignore[union-attr]
        version = max(1, int(re.search(r'"policy_version":(\d+)', body).group(1)))  # type: ignore[union-attr]
        shares[n % jobs].append(f"ssh-keygen -Y verify -f policy/{version:06d}/allowed_signers -I '{who}' -n tfreview "
                                f"-s '{path}.sig' < '{path}.stmt' >/dev/null 2>&1 || echo 'FAIL {path}'\n")
    out = []
    for j, share in enumerate(shares):
        script = folder / f"floor-{j}.sh"
        script.write_text("".join(share))
        out.append(script)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", default=str(REPO / "bench" / "data" / "evidence" / "pack"))
    parser.add_argument("--plans", type=int, default=0, help="only the statements of the first N plans (0: all)")
    parser.add_argument("--before", metavar="COMMIT", help="also the verify.sh of this commit")
    parser.add_argument("--jobs", default="2", help="VERIFY_JOBS values to time, comma-separated (default 2)")
    parser.add_argument("--no-floor", action="store_true", help="skip the ssh-keygen loop")
    args = parser.parse_args()
    pack = Path(args.pack).resolve()
    jobs = [int(j) for j in args.jobs.split(",")]
    with tempfile.TemporaryDirectory(prefix="verify-sh-") as tmp:
        if args.plans:
            pack = subpack(pack, args.plans, Path(tmp) / "pack")
        signatures = len((pack / "signatures.tsv").read_text().splitlines())
        rows = []
        if not args.no_floor:
            for j in sorted(set(jobs)):
                scripts = floor_scripts(pack, j, Path(tmp))
                wall, user, system, out = timed(["sh", "-c", " & ".join(f"sh {s}" for s in scripts) + " & wait"],
                                                pack)
                if "FAIL" in out:
                    raise SystemExit(f"the floor loop found a bad signature:\n{out[:2000]}")
                rows.append((f"floor: ssh-keygen alone, {j} at a time", j, wall, user, system))
        trees = ([(f"verify.sh at {args.before}", script_at(args.before))] if args.before else []) + [
            ("verify.sh, this tree", script_at(None))]
        for name, script in trees:
            for j in jobs:
                wall, user, system, out = timed(["sh", "-c", script, "verify.sh"], pack, {"VERIFY_JOBS": str(j)})
                assert out.splitlines()[-1].startswith("evidence pack verified: "), out[-2000:]
                rows.append((name, j, wall, user, system))
        shutil.rmtree(Path(tmp) / "pack", ignore_errors=True)
    print(f"{signatures:,} signatures; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| what | jobs | wall | CPU (user + sys) | CPU per signature |")
    print("|---|---|---|---|---|")
    for name, j, wall, user, system in rows:
        print(f"| {name} | {j} | {wall:.1f} s | {user + system:.1f} s ({user:.1f} + {system:.1f}) | "
              f"{(user + system) / signatures * 1000:.2f} ms |")


if __name__ == "__main__":
    main()
