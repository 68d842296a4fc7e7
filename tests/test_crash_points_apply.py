"""Killed at each of its store writes, `tfreview apply` leaves a store that tells the truth (see
tests/test_crash_points.py: the same check for package, plan and approve; a module of its own so that the two run
side by side in `make test`'s workers). Real terraform, no AWS (tests/data/tfdata)."""
from __future__ import annotations

import pytest

from tests.test_crash_points import KILLS_BEFORE_APPLY, KILLS_IN_APPLY, Project, kill_9_after_each_store_write

pytestmark = pytest.mark.integration


def test_kill_9_after_each_store_write_of_apply_leaves_a_store_that_tells_the_truth(cli_factory, tmp_path):
    killed = kill_9_after_each_store_write(Project(cli_factory("crash-apply")), tmp_path, {"apply"})
    assert sum(killed.values()) >= KILLS_IN_APPLY, killed
    assert KILLS_BEFORE_APPLY + KILLS_IN_APPLY >= 15  # as many kills as when the two were one test
