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


# -- alarm settings (pure) ---------------------------------------------------------------------------------------


def test_alarm_names_come_from_the_app_per_environment_and_the_command_line_each_once():
    from tfreview.rollout.alarms import alarm_names

    assert alarm_names(["shop-{env}-5xx", "shared"], "prod", ("shared", "extra")) == ("shop-prod-5xx", "shared",
                                                                                     "extra")
    table = {"prod": ["shop-prod-5xx"], "default": ["shop-any"]}
    assert alarm_names(table, "prod") == ("shop-prod-5xx",) and alarm_names(table, "qa") == ("shop-any",)
    assert alarm_names(None, "qa", ("x",)) == ("x",)


def test_bad_alarm_settings_are_bad_config_naming_the_key(tmp_path):
    (tmp_path / "tfreview.toml").write_text('[apps.shop]\nalarms = "shop-5xx"\n')
    with pytest.raises(BadInput, match="apps.shop.alarms must be a list"):
        load_settings(environ={}, cwd=tmp_path)
    (tmp_path / "tfreview.toml").write_text('[apps.shop]\nalarms = ["ok", "bad\\u0007bell"]\n')
    with pytest.raises(BadInput, match="is not a CloudWatch alarm name"):
        load_settings(environ={}, cwd=tmp_path)
    (tmp_path / "tfreview.toml").write_text('[apps.shop.alarms]\nprod = ["shop-prod-5xx"]\n')
    assert load_settings(environ={}, cwd=tmp_path).alarms_for("shop", "prod", ("x",)) == ("shop-prod-5xx", "x")


def test_parse_alarms_reads_state_reason_and_when_it_changed():
    from datetime import datetime, timezone

    from tfreview.rollout.alarms import firing, missing, parse_alarms

    answer = {"MetricAlarms": [{"AlarmName": "a", "StateValue": "ALARM", "StateReason": "Threshold\nCrossed",
                                "StateUpdatedTimestamp": datetime(2026, 12, 7, 13, 0, tzinfo=timezone.utc),
                                "StateTransitionedTimestamp": datetime(2026, 12, 7, 12, 59, 1, tzinfo=timezone.utc)}],
              "CompositeAlarms": [{"AlarmName": "c", "StateValue": "INSUFFICIENT_DATA"}]}
    found = parse_alarms(answer)
    assert found["a"].to_dict() == {"name": "a", "state": "ALARM", "reason": "Threshold Crossed",
                                    "fired_at": "2026-12-07T12:59:01Z"}
    assert [a.name for a in firing(["c", "a"], found)] == ["a"]  # INSUFFICIENT_DATA does not stop a release
    assert missing(["a", "b", "c"], found) == ["b"]


def test_an_image_template_turns_versions_into_images_and_back():
    from tfreview.plan.roles import Roles
    from tfreview.rollout.status import explicit_tag, running_version

    roles = Roles.from_dict({"image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:{version}"})
    image = roles.version_value("1.1.0")
    assert image == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:1.1.0"
    assert roles.version_value(image) == image and roles.version_of(image) == "1.1.0"
    assert running_version(image, roles) == "1.1.0" and running_version("other/repo:2.0", roles) == "2.0"
    assert [explicit_tag(i) for i in ("web", "web:1.2", "host:5000/web", "web@sha256:ab")] == [None, "1.2", None, None]
    with pytest.raises(BadInput, match="not an image reference with one"):
        Roles.from_dict({"image": "repo/shop:latest"})
