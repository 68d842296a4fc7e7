"""Issue 20 items 3-5 on an S3 store (the local AWS), through the real CLI: an approval copied from another plan, a
review edited and re-hashed into its record, and records written without their audit entries are reported by
`audit verify` (exit 1) and never presented as genuine, as on a local store (tests/test_log_witness.py)."""
from __future__ import annotations

import hashlib
import json

from tests import helpers
from tests.test_approvals_cli import BOB, PLAN_DOC, refused
from tests.test_s3_principals import PLANNER, team  # noqa: F401


def _fails(cli, *words: str) -> None:
    proc = cli("audit", "verify")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr


def test_on_s3_copied_approvals_rehashed_reviews_and_unlogged_records_are_caught(team):  # noqa: F811
    cli, store, people = team
    planner_env = people[PLANNER][0]
    other = helpers.record_plan(store, PLAN_DOC, "shop", "1.1.0", "qa", PLANNER)
    pid = helpers.record_plan(store, PLAN_DOC, "shop", "1.1.0", "qa", PLANNER)
    cli.ok("approve", other, "--yes", user=BOB, env=people[BOB][0])
    cli.ok("audit", "verify", env=planner_env)

    # An approval of `other` copied beside `pid`: reported, never listed.
    [key] = store.list(f"approvals/{other}/")
    store.write(key.replace(other, pid), store.read(key))
    _fails(cli, f"names plan {other} but sits in the folder of plan {pid}")
    rows = {r["id"]: r for r in json.loads(cli.ok("history", "--rebuild-index", "--format", "json").stdout)}
    assert rows[pid]["approvals"] == [] and [a["by"] for a in rows[other]["approvals"]] == [BOB]
    assert json.loads(cli.ok("report", pid, "--format", "json").stdout)["approvals"] == []
    store.delete(key.replace(other, pid))
    cli.ok("audit", "verify")

    # The review edited and its sha256 written into the record: damaged for every reader.
    plan_key, record_key = f"plans/{pid}/plan.json", f"plans/{pid}/record.json"
    original = {plan_key: store.read(plan_key), record_key: store.read(record_key)}
    edited = original[plan_key].replace(b"r/shop:1.1.0", b"r/evil:6.6.6")
    record = json.loads(original[record_key])
    store.write(plan_key, edited)
    store.write(record_key, json.dumps({**record, "json_sha256": hashlib.sha256(edited).hexdigest()}).encode())
    for args in (("show", pid), ("report", pid)):
        proc = cli(*args)
        refused(proc, f"plan record plans/{pid}/record.json is damaged")
        assert "r/evil" not in proc.stdout
    expanded = json.loads(cli.ok("history", "--expand", "--format", "json").stdout)
    assert {r["id"]: r["outcome"] for r in expanded}[pid] == "damaged"
    for key, data in original.items():
        store.write(key, data)
    cli.ok("audit", "verify")

    # An apply result nobody logged.
    store.write(f"applies/{other}/result.json", json.dumps({"kind": "apply-result", "plan_id": other, "app": "shop",
                                                            "env": "qa", "outcome": "applied"}).encode())
    _fails(cli, f"applies/{other}/result.json", "apply-end")
