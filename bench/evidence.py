#!/usr/bin/env python3
"""Benchmark the evidence pack: `tfreview audit export` of a period of N plans with their decisions, and the pack's
own `verify.sh` (ssh-keygen and sha256sum only).

The store: a policy (keys made by ssh-keygen), N plan records signed by their planner, each approved by a second
person (a signed decision), each with its signed audit entry, the log sealed by segments of 1,000 entries, the
history index current (as a store in use keeps it). Signatures are made in this process in the SSHSIG format with
`cryptography` (tests.helpers.InProcessSigner: the bytes ssh-keygen writes) so that filling the store does not
take 2N ssh-keygen processes; verify.sh checks each of them with a real `ssh-keygen -Y verify`.

Measured (wall time, one run each, as processes):
  export      `tfreview audit export --since DAY --until DAY --output DIR` (audit verify first, then the pack)
  verify.sh   `sh verify.sh` in the pack (VERIFY_JOBS as given, default 4)

Usage:
    .venv/bin/python bench/evidence.py [--plans 10000] [--jobs 4]
Prints a Markdown table row (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers import InProcessSigner  # noqa: E402
from tfreview.config import Settings  # noqa: E402
from tfreview.store.audit import HEAD_KEY, entry_hash, entry_key, read_head  # noqa: E402
from tfreview.store.base import canonical, dumps  # noqa: E402
from tfreview.store.local import LocalStore  # noqa: E402

PLANNER, APPROVER = "alice@example.com", "bob@example.com"


def build(root: Path, n: int) -> tuple[LocalStore, str]:
    from tfreview.trust.admin import init
    from tfreview.trust.policy import load_history
    from tfreview.trust.signer import find_signer
    from tfreview.trust.verify import seal_log, statement_of, statement_sha256
    from tfreview.review.policy import make_approval
    from tfreview.text import iso, now_utc
    from tfreview.usecases.context import Context
    from tfreview.usecases.records import _facts

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for who in ("alice", "bob"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / who)], check=True)
    keys = {w: (root / f"{w}.pub").read_text().strip() for w in ("alice", "bob")}
    (root / "policy.toml").write_text(f'admins = ["{PLANNER}"]\n[signers]\n"{PLANNER}" = "{keys["alice"]}"\n'
                                      f'"{APPROVER}" = "{keys["bob"]}"\n')
    store = LocalStore(root / "store")
    init(Settings(store=store.url), store, find_signer({"TFREVIEW_SIGNING_KEY": str(root / "alice")}),
         root / "policy.toml", context=Context)
    alice, bob = InProcessSigner(root / "alice"), InProcessSigner(root / "bob")
    head = list(read_head(store)[:2])

    def put(key: str, data: bytes) -> None:  # the bytes store.create writes, without its fsync per file
        path = store.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def append(event: str, actor: str, signer: InProcessSigner, **fields: object) -> dict:
        """What append_event writes (a signed, chained entry), without its head round trips: one writer here."""
        statement = {"time": iso(now_utc()), "event": event, "actor": actor, "policy_version": 1, **fields}
        entry = {"seq": head[0] + 1, **statement, "signature": signer.sign(canonical(statement)), "prev_hash": head[1]}
        entry["hash"] = entry_hash(entry)
        put(entry_key(entry["seq"]), dumps(entry))
        head[:] = [entry["seq"], entry["hash"]]
        return entry

    def signed(signer: InProcessSigner, doc: dict) -> dict:
        body = statement_of(doc)
        return {**body, "signature": signer.sign(canonical(body))}

    for i in range(n):
        at = iso(now_utc())
        app, env = f"app{i % 20}", ("qa", "prod")[i % 2]
        pid = f"{app}-{env}-{at[:10].replace('-', '')}-{i:06d}"
        plan_sha = hashlib.sha256(pid.encode()).hexdigest()
        record = signed(alice, {
            "kind": "plan", "id": pid, "plan_kind": "deploy", "release_id": None, "app": app, "env": env,
            "version": f"1.{i % 50}.0", "plan_sha256": plan_sha, "json_sha256": plan_sha, "planner": PLANNER,
            "identity": {"user": PLANNER}, "created_at": at, "policy_version": 1, "risky": False,
            "summary": {"summary_line": "Plan: 0 to add, 1 to change, 0 to destroy.", "counts": {"update": 1},
                        "risk_reasons": [], "classification": {"kind": "deploy-to-idle"}},
            "risk_reasons": [], "escalation_reasons": [], "package_sha256": plan_sha, "state_lineage": "",
            "state_serial": 0, "terraform_version": "1.11.4"})
        append("plan", PLANNER, alice, app=app, env=env,
                     version=record["version"], plan_id=pid,
                     details={"plan_sha256": plan_sha, "statement_sha256": statement_sha256(record)})
        put(f"plans/{pid}/record.json", dumps(record))
        approval = make_approval(_facts(record), APPROVER, "looks good", now_utc())
        decision = signed(bob, {**approval.to_dict(), "identity": {"user": APPROVER}, "policy_version": 1})
        entry = append("approve", APPROVER, bob, app=app, env=env,
                             version=record["version"], plan_id=pid,
                             details={"comment": "looks good", "plan_sha256": plan_sha,
                                      "statement_sha256": statement_sha256(decision)})
        slug = hashlib.sha256(APPROVER.encode()).hexdigest()[:16]
        put(f"approvals/{pid}/{slug}.json", dumps({**decision, "audit_seq": entry["seq"]}))
    store.write(HEAD_KEY, dumps({"seq": head[0], "hash": head[1]}))
    ctx = Context(Settings(store=store.url), store, PLANNER, identity={"user": PLANNER}, signer=alice,
                  policy=load_history(store))
    seal_log(ctx)
    return store, iso(now_utc())[:10]


def wall(args: list[str], **kw: object) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the process and its children) of one run."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plans", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--root", default=str(REPO / "bench" / "data" / "evidence"))
    parser.add_argument("--no-verify-sh", action="store_true", help="time the export only (verify.sh of 10,000 plans "
                        "takes ~256 s of CPU: one ssh-keygen process per signature)")
    args = parser.parse_args()
    root = Path(args.root)
    start = time.perf_counter()
    store, day = build(root, args.plans)
    built = time.perf_counter() - start
    tfreview = str(Path(sys.executable).parent / "tfreview")
    env = {**os.environ, "TFREVIEW_STORE": store.url}
    wall([tfreview, "history", "--limit", "1"], env=env)  # the index current, as in a store in use
    out = root / "pack"
    export_s = wall([tfreview, "audit", "export", "--since", day, "--until", day, "--output", str(out)], env=env)
    files = sum(1 for p in out.rglob("*") if p.is_file())
    verify_s = (0.0, 0.0) if args.no_verify_sh else wall(["sh", "verify.sh"], cwd=out,
                                                          env={**os.environ, "VERIFY_JOBS": str(args.jobs)})
    print(f"store of {args.plans} plans built in {built:.0f} s; pack: {files} files")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| plans | signatures | export: wall / CPU (s) | verify.sh: wall / CPU (s) |")
    print("| --- | --- | --- | --- |")
    signatures = sum(1 for _ in (out / "signatures.tsv").open())
    print(f"| {args.plans:,} | {signatures:,} | {export_s[0]:.1f} / {export_s[1]:.1f} | {verify_s[0]:.1f} / "
          f"{verify_s[1]:.1f} (VERIFY_JOBS={args.jobs}) |")


if __name__ == "__main__":
    main()
