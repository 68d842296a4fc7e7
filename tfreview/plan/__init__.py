"""Pure plan review core: parse a `terraform show -json` document, build one sanitized diff tree, tell the ECS
revision story, flag risks and classify the release. No I/O, no terraform, no AWS."""
from __future__ import annotations

from tfreview import native

native.use(__path__, __name__)  # compiled `diff`, when built and fresh (tfreview/native.py)

from tfreview.plan.classify import Classification, classify
from tfreview.plan.diff import SENSITIVE, UNKNOWN, Node
from tfreview.plan.ecs import EcsStory
from tfreview.plan.model import Plan
from tfreview.plan.parse import parse_plan
from tfreview.plan.review import OutputDiff, ResourceDiff, Review, build_review, review_plan
from tfreview.plan.risk import Counts, RiskFlag

__all__ = [
    "Classification", "Counts", "EcsStory", "Node", "OutputDiff", "Plan", "ResourceDiff", "Review", "RiskFlag",
    "SENSITIVE", "UNKNOWN", "build_review", "classify", "parse_plan", "review_plan",
]
