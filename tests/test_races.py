"""Concurrent writers: packagers of one version with the same content all succeed, and the latest-plan pointer
moves only forward (so "superseded by a newer plan" is true to creation order)."""
from __future__ import annotations

import json
import random
import subprocess
import threading
from datetime import datetime, timedelta, timezone

from tfreview.store.local import LocalStore
from tfreview.workflow import _advance_latest_plan


def test_concurrent_packagers_of_the_same_content_all_succeed(cli_factory):
    cli = cli_factory("races")
    cli.ensure_policy()
    procs = [cli.popen("package", "--app", "webapp", "--version", "7.0.0", "--format", "json",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(6)]
    results = [(p.wait(120), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [rc for rc, _out, _err in results] == [0] * 6, results
    statuses = sorted(json.loads(out)["status"] for _rc, out, _err in results)
    assert statuses.count("created") >= 1 and set(statuses) <= {"created", "unchanged"}, statuses
    assert len(list((cli.store / "packages" / "webapp" / "7.0.0").glob("manifest.json"))) == 1
    assert cli("audit", "verify").returncode == 0


def test_the_latest_plan_pointer_only_moves_forward(tmp_path):
    store = LocalStore(tmp_path / "store")
    base = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)
    plans = [(f"web-qa-{i:03d}", base + timedelta(microseconds=i)) for i in range(40)]
    random.Random(7).shuffle(plans)  # finishing order is not creation order
    threads = [threading.Thread(target=_advance_latest_plan, args=(store, "web", "qa", pid, at)) for pid, at in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latest = json.loads(store.read("heads/web/qa/latest-plan.json"))
    assert latest["plan_id"] == "web-qa-039"
    # An older plan finishing late does not move it back.
    _advance_latest_plan(store, "web", "qa", "web-qa-old", base - timedelta(hours=1))
    assert json.loads(store.read("heads/web/qa/latest-plan.json"))["plan_id"] == "web-qa-039"
