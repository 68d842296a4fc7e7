"""While terraform works, a resource it still creates or destroys gets terraform's own "still creating (1m0s
elapsed)" line every progress interval (30 s by default; a setting), so nothing sits silent."""
from __future__ import annotations

import pytest

from tfreview.config import load_settings
from tfreview.errors import BadInput
from tfreview.terraform import StillWorking, elapsed_text, progress_text


def start(addr: str, action: str) -> dict:
    return {"type": "apply_start", "hook": {"resource": {"addr": addr}, "action": action}}


def test_durations_read_as_terraform_writes_them():
    assert [elapsed_text(s) for s in (0, 30, 60, 150, 3600, 3725)] == ["0s", "30s", "1m0s", "2m30s", "1h0m0s",
                                                                     "1h2m5s"]


def test_a_resource_still_working_is_said_once_per_interval_until_it_completes():
    still = StillWorking(30)
    still.see(start("aws_lb.front", "create"), 0.0)
    still.see(start("aws_ecs_service.old", "delete"), 10.0)
    assert still.due(29.0) == []
    lines = [progress_text(e) for e in still.due(30.0)]
    assert lines == ["aws_lb.front: still creating (30s elapsed)"]
    assert [progress_text(e) for e in still.due(40.0)] == ["aws_ecs_service.old: still destroying (30s elapsed)"]
    assert [progress_text(e) for e in still.due(60.0)] == ["aws_lb.front: still creating (1m0s elapsed)"]
    still.see({"type": "apply_complete", "hook": {"resource": {"addr": "aws_lb.front"}, "action": "create"}}, 61.0)
    still.see({"type": "apply_errored", "hook": {"resource": {"addr": "aws_ecs_service.old"}}}, 62.0)
    assert still.due(500.0) == []


def test_the_interval_is_a_setting_checked_like_the_others(tmp_path):
    assert load_settings(environ={}, cwd=tmp_path).progress_interval_s == 30.0
    assert load_settings(environ={"TFREVIEW_PROGRESS_INTERVAL": "2"}, cwd=tmp_path).progress_interval_s == 2.0
    (tmp_path / "tfreview.toml").write_text("progress_interval_s = 5\n")
    assert load_settings(environ={}, cwd=tmp_path).progress_interval_s == 5
    with pytest.raises(BadInput, match="progress_interval_s must be a number"):
        load_settings(environ={"TFREVIEW_PROGRESS_INTERVAL": "0"}, cwd=tmp_path)
