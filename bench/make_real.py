#!/usr/bin/env python3
"""Make the real 1,000-resource plans of the benchmark: bench/real/main.tf planned by terraform against moto.

--mode create (default) writes bench/data/real1000/: a plan of 1,000 creates. Nothing is applied: a plan of
  creates needs only a configured provider, so moto (127.0.0.1:PORT, loopback only) just answers start-up calls.
--mode update writes bench/data/real1000-update/: the 1,000 resources are applied to moto first (a few minutes),
  then planned again with a new image tag (version_tag 1.4.2 -> 1.4.3): every resource is refreshed, the task
  definitions are replaced and their services updated, the rest is no-op: what a reviewer usually gets.
Each directory (gitignored) holds the initialised working directory, `plan.tfplan`, `plan.json`
(`terraform show -json`) and `expected.json` (terraform's own summary line). Stops moto at the end.

Usage:
    .venv/bin/python bench/make_real.py [--mode create|update] [--port 5102] [--scale 100]
Environment: TFREVIEW_PROVIDER_MIRROR (default /opt/tf-plugins), TF_PLUGIN_CACHE_DIR (default .cache/plugins).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "bench" / "real" / "main.tf"
DATA = REPO / "bench" / "data"
OUT = DATA / "real1000"  # set by main() from --mode


def terraform_env(port: int) -> dict[str, str]:
    """Environment for terraform: provider mirror, plugin cache, fake credentials, moto endpoint."""
    rc = OUT / "terraform.rc"
    mirror = os.environ.get("TFREVIEW_PROVIDER_MIRROR", "/opt/tf-plugins")
    rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n')
    cache = Path(os.environ.get("TF_PLUGIN_CACHE_DIR", REPO / ".cache" / "plugins"))
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "TF_PLUGIN_CACHE_DIR": str(cache), "TF_IN_AUTOMATION": "1",
           "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "NO_PROXY": "127.0.0.1,localhost"}
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "TF_LOG"):
        env.pop(var, None)
    return env


def run(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(["terraform", *args], cwd=OUT, env=env, text=True, capture_output=True)
    if proc.returncode != 0:
        sys.stderr.write((proc.stdout + proc.stderr)[-3000:])
        raise SystemExit(f"terraform {' '.join(args)} failed ({proc.returncode})")
    return proc.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=5102)
    ap.add_argument("--scale", type=int, default=100, help="100 gives 1,000 resources")
    ap.add_argument("--mode", choices=("create", "update"), default="create")
    args = ap.parse_args()
    global OUT
    OUT = DATA / ("real1000" if args.mode == "create" else "real1000-update")
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", args.port)) == 0:
            raise SystemExit(f"127.0.0.1:{args.port} is in use; pick another --port")

    OUT.mkdir(parents=True, exist_ok=True)
    shutil.copy(SOURCE, OUT / "main.tf")
    env = terraform_env(args.port)
    moto_bin = Path(sys.executable).parent / "moto_server"
    moto = subprocess.Popen([str(moto_bin), "-H", "127.0.0.1", "-p", str(args.port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(150):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", args.port)) == 0:
                    break
            time.sleep(0.2)
        run(["init", "-input=false", "-no-color"], env)
        extra = []
        if args.mode == "update":
            for stale in OUT.glob("terraform.tfstate*"):
                stale.unlink()  # moto starts empty: an old state would describe nothing that exists
            t0 = time.monotonic()
            run(["apply", "-auto-approve", "-input=false", "-no-color", f"-var=scale={args.scale}"], env)
            print(f"applied {args.scale * 10} resources in {time.monotonic() - t0:.0f} s", file=sys.stderr)
            extra = ["-var=version_tag=1.4.3"]
        t0 = time.monotonic()
        out = run(["plan", "-input=false", "-no-color", "-out=plan.tfplan", f"-var=scale={args.scale}", *extra], env)
        plan_s = time.monotonic() - t0
        m = re.search(r"^Plan: .*$", out, re.MULTILINE)
        summary = m.group(0) if m else "?"
        (OUT / "plan.json").write_text(run(["show", "-json", "plan.tfplan"], env))
        (OUT / "expected.json").write_text(json.dumps({"summary": summary, "plan_seconds": round(plan_s, 1)}) + "\n")
        print(f"{OUT}/plan.tfplan: {summary} (plan took {plan_s:.0f} s); "
              f"plan.json {(OUT / 'plan.json').stat().st_size / 1e6:.1f} MB", file=sys.stderr)
    finally:
        moto.terminate()
        moto.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
