"""Risk flags: the most dangerous change is read first, with the reason."""
from __future__ import annotations

from tests.data.corpus import DATA
from tfreview.plan import review_plan
from tfreview.plan.risk import LEVELS


def risky():
    return review_plan((DATA / "risky_infrastructure.json").read_bytes())


def by_kind(review, kind):
    return [r for r in review.risks if r.kind == kind]


def test_flags_are_ordered_most_severe_first():
    ranks = [LEVELS.index(r.level) for r in risky().risks]
    assert ranks == sorted(ranks)


def test_target_group_replacement_is_downtime_with_reason_and_forcing_attribute():
    (flag,) = by_kind(risky(), "replace")
    assert flag.address == 'module.webapp.aws_lb_target_group.app["green"]'
    assert flag.reason.startswith("downtime")
    assert "cannot update it in place" in flag.reason and "forced by port" in flag.reason


def test_security_group_opened_to_the_world_is_flagged_with_port():
    (flag,) = by_kind(risky(), "open-ingress")
    assert flag.level == "high"
    assert "0.0.0.0/0 (port 22)" in flag.reason and "::/0 (port 22)" in flag.reason


def test_destroys_iam_imports_moves_checks_and_drift_are_flagged():
    review = risky()
    destroyed = {f.address for f in by_kind(review, "destroy")}
    assert destroyed == {"module.webapp.aws_cloudwatch_log_group.old", "module.webapp.aws_ecs_service.legacy"}
    assert by_kind(review, "iam")[0].address == "module.webapp.aws_iam_role.execution"
    assert by_kind(review, "import") and by_kind(review, "move")
    assert "health endpoint returned 503" in by_kind(review, "check")[0].reason
    assert by_kind(review, "drift")[0].address == 'module.webapp.aws_ecs_service.app["blue"]'


def test_drift_is_kept_apart_from_the_plans_own_changes():
    review = risky()
    assert [d.address for d in review.drift] == ['module.webapp.aws_ecs_service.app["blue"]']
    assert all(not r.is_drift for r in review.resources)
    assert review.counts.drift == 1


def test_errored_plan_is_critical():
    review = review_plan({"format_version": "1.2", "errored": True, "resource_changes": []})
    assert review.risks[0].level == "critical" and review.risks[0].kind == "errored"


def test_a_plan_without_changes_has_no_risks():
    assert review_plan((DATA / "no_changes.json").read_bytes()).risks == ()
