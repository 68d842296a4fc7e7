"""`Review`: everything a reviewer reads about one plan, computed once, sanitized, renderer-independent.

Per-resource diff trees are built lazily (first access of `ResourceDiff.tree`), so the summary of a 50k-resource
plan costs little more than decoding its JSON. The JSON form (`Review.to_json()`) is a documented, versioned
schema (`schema_version` 1, see docs in `to_json`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping

from tfreview.plan.classify import Classification, classify
from tfreview.plan.diff import (Node, OneSide, TwoSide, build_tree, fold_note, one_side, path_text, scrub,
                                split_folds, two_side)
from tfreview.plan.markers import Marker
from tfreview.plan.ecs import EcsStory, clean_definitions, ecs_stories
from tfreview.plan.model import REPLACE_ACTIONS, CheckResult, OutputChange, Plan, ResourceChange
from tfreview.plan.parse import parse_plan
from tfreview.plan.pause import paused_gc
from tfreview.plan.risk import Counts, RiskFlag, assess, count_changes, reason_text, relevant_drift
from tfreview.plan.roles import DEFAULT_ROLES, Roles

SCHEMA_VERSION = 1
_ECS_NORMALIZERS: dict[tuple[Any, ...], Callable[[Any], Any]] = {("container_definitions",): clean_definitions}


class ResourceDiff:
    """One resource instance change (or drift) as the reviewer sees it; `tree` is the sanitized attribute diff.

    A thin, immutable view over the parsed change: creating one costs almost nothing (a 50k-resource plan makes
    50k of them), the attribute tree is built on first access of `tree`.
    """

    __slots__ = ("_change", "_secrets", "is_drift", "_tree", "_full_tree")
    _change: ResourceChange
    _secrets: frozenset[str]
    is_drift: bool
    _tree: Node | None
    _full_tree: Node | None

    def __init__(self, change: ResourceChange, secrets: frozenset[str], is_drift: bool = False) -> None:
        object.__setattr__(self, "_change", change)
        object.__setattr__(self, "_secrets", secrets)
        object.__setattr__(self, "is_drift", is_drift)
        object.__setattr__(self, "_tree", None)
        object.__setattr__(self, "_full_tree", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("ResourceDiff is immutable")

    def __repr__(self) -> str:
        return f"ResourceDiff(address={self.address!r}, action={self.action!r}, is_drift={self.is_drift})"

    address = property(lambda self: self._change.address)
    previous_address = property(lambda self: self._change.previous_address)
    module_address = property(lambda self: self._change.module_address)
    mode = property(lambda self: self._change.mode)
    type = property(lambda self: self._change.type)
    name = property(lambda self: self._change.name)
    index = property(lambda self: self._change.index)
    deposed = property(lambda self: self._change.deposed)
    provider_name = property(lambda self: self._change.provider_name)
    actions = property(lambda self: self._change.actions)
    action = property(lambda self: self._change.action)
    action_reason = property(lambda self: self._change.action_reason)
    importing = property(lambda self: self._change.importing is not None)

    @property
    def reason(self) -> str:
        """Plain-English `action_reason` ("" when Terraform gives none)."""
        return reason_text(self._change.action_reason)

    @property
    def replace_paths(self) -> tuple[str, ...]:
        """Attributes forcing the replacement, Terraform-style (`ingress[0].cidr_blocks`)."""
        return tuple(path_text(p) for p in self._change.replace_paths)

    @property
    def importing_id(self) -> str | None:
        raw = self._change.importing.get("id") if self._change.importing is not None else None
        return raw if isinstance(raw, str) and raw not in self._secrets else None

    @property
    def tree(self) -> Node:
        """The attribute diff tree, unchanged objects/lists collapsed (built on first access, then kept)."""
        tree = self._tree
        if tree is None:
            tree = self._build(collapse=True)
            object.__setattr__(self, "_tree", tree)
        return tree

    @property
    def full_tree(self) -> Node:
        """The attribute diff tree with every unchanged attribute expanded (for `--full`)."""
        tree = self._full_tree
        if tree is None:
            tree = self._build(collapse=False)
            object.__setattr__(self, "_full_tree", tree)
        return tree

    def tree_for(self, full: bool, *, keep: bool = True) -> Node:
        """`full_tree` or `tree`. `keep=False`: a tree not built yet is built for this one use and not kept, for
        one pass over a big plan (plain text): each tree is freed as soon as it is written and its memory reused,
        instead of all of them held to the end (10k resources: 50 MB less at the peak, 7% less CPU)."""
        if keep:
            return self.full_tree if full else self.tree
        tree = self._full_tree if full else self._tree
        return tree if tree is not None else self._build(collapse=not full)

    def one_side(self, full: bool) -> OneSide | None:
        """What `tree_for(full)` is built from, when it is a created or deleted object made of one side alone
        (`diff.one_side`): a renderer may write its lines from the values. None for everything else, and for a
        replacement (its tree may be folded: `fold_empty_unset`)."""
        rc = self._change
        if (rc.action in REPLACE_ACTIONS and not self.is_drift) or (self._full_tree if full else self._tree) is not None:
            return None  # (a tree already built is written as it is)
        if rc.before is not None and rc.after is not None:  # both sides: never one-sided (`diff.one_side`)
            return None
        return one_side(*self._tree_args(), **self._tree_options(collapse=not full))

    def two_side(self, full: bool) -> TwoSide | None:
        """What the collapsed `tree` is built from, when it is an object on both sides (an update or a replacement,
        `diff.two_side`) and not built yet: a renderer may write its lines without a node per unchanged attribute
        (`diff.collapsed_root`; a replacement's empty attributes folded with `split_folds` and `fold_note`). None for
        `full`, and for everything else."""
        rc = self._change
        if full or self._tree is not None or not isinstance(rc.before, dict) or not isinstance(rc.after, dict):
            return None
        return two_side(*self._tree_args(), **self._tree_options(collapse=True))

    @property
    def folds_empty(self) -> bool:
        """The collapsed tree folds the empty attributes becoming unset (`fold_empty_unset`): a replacement."""
        return self._change.action in REPLACE_ACTIONS and not self.is_drift

    def _tree_args(self) -> tuple[Any, Any, Any, Any, Any]:
        """`build_tree`'s and `one_side`'s positional arguments: the change's values and marks."""
        rc = self._change
        return rc.before, rc.after, rc.after_unknown, rc.before_sensitive, rc.after_sensitive

    def _tree_options(self, *, collapse: bool) -> dict[str, Any]:
        """`build_tree`'s and `one_side`'s options for this change."""
        rc = self._change
        return {"secrets": self._secrets, "replace_paths": rc.replace_paths,
                "json_normalizers": _ECS_NORMALIZERS if rc.type == "aws_ecs_task_definition" else None,
                "collapse_unchanged": collapse}

    def _build(self, *, collapse: bool) -> Node:
        rc = self._change
        tree = build_tree(*self._tree_args(), **self._tree_options(collapse=collapse))
        if collapse and self.folds_empty:
            return fold_empty_unset(tree, rc.before)
        return tree

    @property
    def moved(self) -> bool:
        return self._change.moved

    @property
    def noteworthy(self) -> bool:
        """True when a reviewer must see this resource: any action but no-op, or an import or a move."""
        return self._change.noteworthy

    def to_json(self, *, full: bool = False) -> dict:
        return {
            "address": self.address,
            "previous_address": self.previous_address,
            "module_address": self.module_address,
            "mode": self.mode,
            "type": self.type,
            "name": self.name,
            "index": self.index if isinstance(self.index, (str, int)) else None,
            "deposed": self.deposed,
            "actions": list(self.actions),
            "action": self.action,
            "action_reason": self.action_reason,
            "reason": self.reason,
            "replace_paths": list(self.replace_paths),
            "importing": self.importing,
            "importing_id": self.importing_id,
            "changes": node_to_json(self.tree_for(full), full=full),
        }


@dataclass(frozen=True)
class OutputDiff:
    """One output change; a sensitive output's tree only says that it changed."""

    name: str
    action: str
    sensitive: bool
    _change: OutputChange = field(repr=False, compare=False)
    _secrets: frozenset[str] = field(repr=False, compare=False)

    @cached_property
    def tree(self) -> Node:
        oc = self._change
        before = oc.before if oc.action not in ("create",) else None
        after = oc.after if oc.action not in ("delete",) else None
        unknown = oc.after_unknown
        if oc.action == "no-op" and before is None and after is None:
            return Node("no-op", "value")
        return build_tree(before, after, unknown, oc.before_sensitive, oc.after_sensitive, secrets=self._secrets)

    def to_json(self) -> dict:
        return {"name": self.name, "action": self.action, "sensitive": self.sensitive, "changes": node_to_json(self.tree)}


@dataclass(frozen=True)
class Review:
    """The reviewed plan. Everything here is safe to print: secrets are masked before any renderer sees them."""

    format_version: str
    terraform_version: str | None
    timestamp: str | None
    applyable: bool | None
    complete: bool | None
    errored: bool
    counts: Counts
    resources: tuple[ResourceDiff, ...]
    drift: tuple[ResourceDiff, ...]
    drift_hidden: int
    outputs: tuple[OutputDiff, ...]
    ecs: tuple[EcsStory, ...]
    risks: tuple[RiskFlag, ...]
    checks: tuple[CheckResult, ...]
    deferred: tuple[tuple[str, str], ...]
    classification: Classification
    image_changes: tuple[tuple[str, str | None, str | None], ...]
    reveal_ecs_safe_fields: bool
    plan: Plan = field(repr=False, compare=False)
    # The plan record's `terraform_options` (-target, -destroy, -var...: plan/options.py), when it has any.
    terraform_options: Mapping[str, Any] | None = None

    @property
    def changed_resources(self) -> tuple[ResourceDiff, ...]:
        """Resources a reviewer must see (any action but no-op, imports and moves), in plan order."""
        return tuple(r for r in self.resources if r.noteworthy)

    @property
    def changed_outputs(self) -> tuple[OutputDiff, ...]:
        return tuple(o for o in self.outputs if o.action != "no-op")

    @property
    def failing_checks(self) -> tuple[CheckResult, ...]:
        """Checks that failed or errored, in plan order."""
        return tuple(c for c in self.checks if c.status in ("fail", "error"))

    def summary_json(self) -> dict:
        """`to_json()` without the per-resource attribute trees (cheap on huge plans): the schema_version 1
        top-level fields plus `resources` as [{address, action, actions}] of noteworthy resources."""
        return {**self._head(),
                "resources": [{"address": r.address, "action": r.action, "actions": list(r.actions)}
                              for r in self.changed_resources]}

    def _head(self) -> dict:
        """The top-level fields shared by `to_json` and `summary_json`."""
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": "tfreview",
            "format_version": self.format_version,
            "terraform_version": self.terraform_version,
            "timestamp": self.timestamp,
            "applyable": self.applyable,
            "complete": self.complete,
            "errored": self.errored,
            "counts": self.counts.to_json(),
            "classification": self.classification.to_json(),
            **({"terraform_options": dict(self.terraform_options)} if self.terraform_options else {}),
            "risks": [r.to_json() for r in self.risks],
            "ecs": [s.to_json() for s in self.ecs],
            "image_changes": [{"container": c, "old_image": o, "new_image": n} for c, o, n in self.image_changes],
        }

    def to_json(self, *, full: bool = False, resources: tuple[ResourceDiff, ...] | None = None) -> dict:
        """The review as JSON-ready data, schema_version 1:

        {schema_version, tool, format_version, terraform_version, timestamp, applyable, complete, errored,
         counts {add, change, destroy, replace, import, move, forget, read, no_op, drift, outputs_changed, summary},
         classification {kind, reasons, live_colours, target_colour},
         risks [{level, kind, address, reason}], ecs [{family, address, action, old_revision, verdict,
         containers, task_changes, flags, services}], image_changes [{container, old_image, new_image}],
         resources [resource], drift [resource] (only drift relevant to this plan, as Terraform shows it),
         drift_not_relevant N, outputs [{name, action, sensitive, changes}],
         checks [{address, kind, status, failing_instances, problems}], deferred [{address, reason}]}
        resource: {address, previous_address, module_address, mode, type, name, index, deposed, actions, action,
                   action_reason, reason, replace_paths, importing, importing_id, changes: node}
        node: {action, kind, before?, after?, forces_replacement?, note?, children?: [{key, ...node}],
               unchanged?: N}. kind "sensitive" values read "(sensitive value)", "unknown" "(known after apply)".
        Only noteworthy resources are listed (`resources`, default `changed_resources`: the renderer passes the
        filtered ones); `full` keeps unchanged attributes in the trees.
        """
        if resources is None:
            resources = self.changed_resources
        return {
            **self._head(),
            "resources": [r.to_json(full=full) for r in resources],
            "drift": [r.to_json(full=full) for r in self.drift],
            "drift_not_relevant": self.drift_hidden,
            "outputs": [o.to_json() for o in self.changed_outputs],
            "checks": [
                {"address": c.address, "kind": c.kind, "status": c.status,
                 "failing_instances": list(c.failing_instances), "problems": list(c.problems)}
                for c in self.checks
            ],
            "deferred": [{"address": a, "reason": r} for a, r in self.deferred],
        }


def fold_empty_unset(tree: Node, before: Any) -> Node:
    """A replacement's tree without the top-level attributes that go from an empty value (`""`, `[]`, `{}`,
    `false`) to unset or known after apply: they are counted and named in the root's note instead ("4 empty
    attributes become unset: ..."), so the attributes that matter stand out. Sensitive attributes and those
    forcing the replacement are never folded. `--full` (the full tree) shows each."""
    if tree.kind != "object" or not isinstance(before, dict) or not tree.children:
        return tree
    kept, folded, unknown = split_folds(tree.children, before)
    if not folded:
        return tree
    return tree._replace(children=tuple(kept), note=fold_note(folded, unknown))


def node_to_json(node: Node, *, full: bool = False) -> dict:
    """JSON form of a diff node (see `Review.to_json`); unchanged children are counted unless `full`."""
    out: dict[str, Any] = {"action": node.action, "kind": node.kind}
    if node.kind in ("value", "sensitive", "unknown"):
        if node.before is not None or node.action in ("update", "delete", "no-op"):
            out["before"] = _json_value(node.before)
        if node.after is not None or node.action in ("update", "create", "no-op"):
            out["after"] = _json_value(node.after)
    if node.forces_replacement:
        out["forces_replacement"] = True
    if node.note:
        out["note"] = node.note
    if node.children:
        children = []
        unchanged = 0
        for key, child in node.children:
            if child.action == "no-op" and not full and node.action in ("update", "no-op"):
                unchanged += 1
                continue
            item = {"key": key}
            item.update(node_to_json(child, full=full))
            children.append(item)
        if children:
            out["children"] = children
        if unchanged:
            out["unchanged"] = unchanged
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, Marker):
        return str(value)
    return value


def build_review(plan: Plan, *, reveal_ecs_safe_fields: bool = True, roles: Roles = DEFAULT_ROLES,
                 terraform_options: Mapping[str, Any] | None = None) -> Review:
    """Review of an already parsed plan (pure); `roles` find the release parts, `terraform_options` are shown."""
    secrets = plan.sensitive_strings
    drift = relevant_drift(plan)
    counts = count_changes(plan, drift=drift)
    stories = ecs_stories(plan.resource_changes, secrets, reveal_safe_fields=reveal_ecs_safe_fields)
    images = []
    for story in stories:
        for c in story.containers:
            if c.old_image != c.new_image:
                images.append((c.name, c.old_image, c.new_image))
    checks = tuple(
        CheckResult(c.address, c.kind, c.status, c.failing_instances, tuple(scrub(p, secrets) for p in c.problems))
        for c in plan.checks
    )
    return Review(
        format_version=plan.format_version,
        terraform_version=plan.terraform_version,
        timestamp=plan.timestamp,
        applyable=plan.applyable,
        complete=plan.complete,
        errored=plan.errored,
        counts=counts,
        resources=tuple(ResourceDiff(rc, secrets, False) for rc in plan.resource_changes),
        drift=tuple(ResourceDiff(rc, secrets, True) for rc in drift),
        drift_hidden=len(plan.resource_drift) - counts.drift,
        outputs=tuple(OutputDiff(o.name, o.action, o.sensitive, o, secrets) for o in plan.output_changes),
        ecs=stories,
        risks=assess(plan, stories, drift=drift, secrets=secrets),
        checks=checks,
        deferred=tuple((d.change.address, d.reason) for d in plan.deferred),
        classification=classify(plan, roles, stories),
        image_changes=tuple(images),
        reveal_ecs_safe_fields=reveal_ecs_safe_fields,
        plan=plan,
        terraform_options=terraform_options or None,
    )


def review_plan(doc: bytes | str | dict, *, reveal_ecs_safe_fields: bool = True, roles: Roles = DEFAULT_ROLES,
                terraform_options: Mapping[str, Any] | None = None) -> Review:
    """Parse a `terraform show -json` document (bytes/str decoded with orjson, or a dict) and review it.

    Raises InvalidPlan for documents that are not a readable plan (bad JSON, unknown major format_version...).
    `reveal_ecs_safe_fields`: when container_definitions is sensitive as a whole, still show container names,
    images, cpu, memory and ports in the ECS story (never environment values or secret references).
    """
    with paused_gc():
        return build_review(parse_plan(doc), reveal_ecs_safe_fields=reveal_ecs_safe_fields, roles=roles,
                            terraform_options=terraform_options)
