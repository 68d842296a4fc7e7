#!/usr/bin/env python3
"""Benchmark what signatures cost: signing one statement (ssh-keygen -Y sign, a process), verifying one in-process,
the trust work of `approve` and `apply` (verify the plan record and its decisions, sign), and `audit verify`'s
signature check over N signed entries (entries per second).

The N audit entries are signed in this process with the same SSHSIG format (an ed25519 key read with
`cryptography`), only so that filling a log of 10^4-10^5 entries does not take one ssh-keygen run each; tfreview
itself always signs through ssh-keygen.

Usage:
    .venv/bin/python bench/trust.py [--entries 20000] [--repeat 20]
Prints a Markdown table (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.audit import InProcessSigner, timed as median_s  # noqa: E402
from tfreview.config import Settings  # noqa: E402
from tfreview.store.audit import append_event, read_log  # noqa: E402
from tfreview.store.base import dumps  # noqa: E402
from tfreview.store.local import LocalStore  # noqa: E402
from tfreview.trust import sshsig  # noqa: E402
from tfreview.trust.admin import init  # noqa: E402
from tfreview.trust.signer import find_signer  # noqa: E402
from tfreview.trust.verify import sign, statement_sha256, verify_log  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    from tfreview.usecases.context import Context
    from tfreview.usecases.decide import decide
    from tfreview.usecases.records import verified

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names = {"alice": "alice@example.com", "bob": "bob@example.com", "carol": "carol@example.com",
                 "dave": "dave@example.com"}
        for short in names:
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / short)], check=True)
        signers = {names[k]: find_signer({"TFREVIEW_SIGNING_KEY": str(root / k)}) for k in names}
        lines = "".join(f'"{p}" = "{s.public_key.line()}"\n' for p, s in signers.items())
        (root / "policy.toml").write_text(f'admins = ["alice@example.com"]\n[signers]\n{lines}'
                                          '[policy.qa]\nrequired_approvals = 3\n')
        store = LocalStore(str(root / "store"))
        init(Settings(store=str(root / "store")), store, signers["alice@example.com"], root / "policy.toml",
             context=Context)
        from tfreview.trust.policy import load_history

        history = load_history(store)
        ctx_of = {p: Context(Settings(store=store.url), store, p, identity={"user": p}, signer=s, policy=history)
                  for p, s in signers.items()}
        message = json.dumps({"kind": "approve", "plan_id": "x" * 40}).encode()
        alice = signers["alice@example.com"]
        armoured = alice.sign(message)
        rows = [("sign one statement (ssh-keygen -Y sign)", median_s(lambda: alice.sign(message), args.repeat))]
        rows.append(("verify one signature in-process", median_s(lambda: sshsig.verify(message, armoured),
                                                                  args.repeat * 50)))

        from tfreview.plan.redact import REDACTION_VERSION, redact_plan
        from tfreview.usecases.plan import plan_keys

        plan_json = redact_plan({"format_version": "1.2", "resource_changes": []})

        def new_plan(i: int) -> dict[str, Any]:
            binary = f"plan {i}".encode()
            record = sign(alice, {"kind": "plan", "id": f"shop-qa-{i}", "plan_kind": "deploy", "app": "shop",
                                  "env": "qa", "version": "1.0.0", "plan_sha256": hashlib.sha256(binary).hexdigest(),
                                  "json_sha256": hashlib.sha256(plan_json).hexdigest(),
                                  "json_redaction": REDACTION_VERSION, "package_sha256": "a" * 64, "state_lineage": "", "state_serial": 0,
                                  "terraform_version": "1.11.4", "planner": "alice@example.com",
                                  "created_at": "2099-01-01T00:00:00Z", "risky": False, "risk_reasons": [],
                                  "summary": {}, "policy_version": 1})
            keys = plan_keys(record["id"])
            store.create(keys["binary"], binary, private=True)
            store.create(keys["json"], plan_json)
            store.create(keys["record"], dumps(record))
            append_event(store, "plan", "alice@example.com", signer=alice, policy_version=1, plan_id=record["id"],
                         details={"statement_sha256": statement_sha256(record)})
            return record

        plans = [new_plan(i) for i in range(args.repeat)]
        approve_times, verify_times = [], []
        for record in plans:
            for who in ("bob@example.com", "carol@example.com", "dave@example.com"):
                start = time.perf_counter()
                decide(ctx_of[who], record["id"], "approve", "ok")
                approve_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            verified(ctx_of["alice@example.com"], record)
            verify_times.append(time.perf_counter() - start)
        rows.append(("approve: verify record + decisions, sign decision and audit entry, write",
                     statistics.median(approve_times)))
        rows.append(("apply: verify plan record + 3 approvals + their audit entries", statistics.median(verify_times)))

        fast = InProcessSigner(root / "bob")
        for i in range(args.entries):
            append_event(store, "approve", "bob@example.com", signer=fast, policy_version=1, app="shop", env="qa",
                         plan_id=f"p-{i}")
        entries, chain = read_log(store)
        assert chain.ok
        start = time.perf_counter()
        seq, why = verify_log(store, entries)
        took = time.perf_counter() - start
        assert not why, why
        print("| what | median |\n|---|---|")
        for what, seconds in rows:
            print(f"| {what} | {seconds * 1000:.1f} ms |")
        print(f"| audit verify, signatures + cross-checks of {len(entries)} entries | {took:.2f} s "
              f"({len(entries) / took:,.0f} entries/s) |")


if __name__ == "__main__":
    main()
