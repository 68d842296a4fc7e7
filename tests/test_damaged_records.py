"""One damaged record never breaks `history` for the rest of the store (no terraform)."""
from __future__ import annotations

import json
import subprocess
import sys

from tfreview.store.base import dumps
from tfreview.store.local import LocalStore
from tfreview.usecases.history import history


def _record(store: LocalStore, plan_id: str, **over) -> None:
    hhmmss = plan_id.split("-")[3]
    doc = {"kind": "plan", "id": plan_id, "app": "shop", "env": "qa", "version": "1.0.0", "planner": "alice",
           "created_at": f"2026-11-26T{hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:]}Z", "summary": {"summary_line": "1 to add"}, **over}
    store.create(f"plans/{plan_id}/record.json", dumps({k: v for k, v in doc.items() if v is not None}))


def test_history_lists_the_good_records_and_names_the_damaged_ones(tmp_path):
    store = LocalStore(tmp_path / "store")
    _record(store, "shop-qa-20261126-100000-aaaa")
    _record(store, "shop-qa-20261126-110000-bbbb", planner=None, summary=None)  # an older run's record
    _record(store, "shop-qa-20261126-120000-cccc", app=None)  # a field every row needs is gone
    store.create("plans/shop-qa-20261126-130000-dddd/record.json", b"{not json")
    _record(store, "shop-qa-20261126-140000-eeee")
    store.create("applies/shop-qa-20261126-140000-eeee/start.json", dumps({"by": "bob", "plan_id": "x"}))
    store.create("applies/shop-qa-20261126-140000-eeee/result.json", dumps({"kind": "apply-result"}))  # no outcome

    rows = {r["id"]: r for r in history(store)}
    assert rows["shop-qa-20261126-100000-aaaa"]["outcome"] == "planned"
    assert rows["shop-qa-20261126-110000-bbbb"]["planner"] == "?"
    assert rows["shop-qa-20261126-120000-cccc"]["outcome"] == "unreadable"
    assert "record.json" in rows["shop-qa-20261126-130000-dddd"]["error"]
    assert rows["shop-qa-20261126-120000-cccc"]["error"] == (
        "store record plans/shop-qa-20261126-120000-cccc/record.json is damaged (app missing or of the wrong type)")
    assert rows["shop-qa-20261126-140000-eeee"]["outcome"] == "interrupted"
    assert [r["id"] for r in history(store, version="1.0.0")] == [
        "shop-qa-20261126-140000-eeee", "shop-qa-20261126-110000-bbbb", "shop-qa-20261126-100000-aaaa"]


def test_history_command_warns_about_a_damaged_record_and_still_lists_the_rest(tmp_path):
    store = LocalStore(tmp_path / "store")
    _record(store, "shop-qa-20261126-100000-aaaa")
    store.create("plans/shop-qa-20261126-130000-dddd/record.json", b"\xff\xfe")
    proc = subprocess.run([sys.executable, "-m", "tfreview", "--store", str(store.root), "history", "--format", "json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert {r["id"] for r in json.loads(proc.stdout)} == {"shop-qa-20261126-100000-aaaa", "shop-qa-20261126-130000-dddd"}
    assert "warning:" in proc.stderr and "shop-qa-20261126-130000-dddd" in proc.stderr and "Traceback" not in proc.stderr
