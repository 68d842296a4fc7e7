"""Typed, frozen model of a `terraform show -json` plan document (format_version 0.x and 1.x).

The model keeps references to the raw JSON values (no deep copies: a 50k-resource plan must stay cheap).
Raw values may hold secrets, so every field that carries one is excluded from `repr` and must never be
rendered directly: renderers only see the sanitized diff tree built by `plan.diff`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Terraform's action lists, as written in the JSON plan, and the one word we use for each.
ACTION_WORDS: dict[tuple[str, ...], str] = {
    ("no-op",): "no-op",
    ("create",): "create",
    ("read",): "read",
    ("update",): "update",
    ("delete",): "delete",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace-create-first",
    ("forget",): "forget",
    ("create", "forget"): "replace-forget",
    ("forget", "create"): "replace-forget",
}

REPLACE_ACTIONS = frozenset({"replace", "replace-create-first", "replace-forget"})


class ResourceChange(NamedTuple):
    """One entry of `resource_changes` (or `resource_drift`): what Terraform plans for one resource instance.

    A NamedTuple rather than a frozen dataclass: immutable all the same, and built ten times faster, which
    matters for plans of 50k resources. Never compared or hashed (the raw values are dicts)."""

    address: str
    mode: str
    type: str
    name: str
    index: Any
    module_address: str | None
    provider_name: str
    actions: tuple[str, ...]
    action: str
    action_reason: str | None
    previous_address: str | None
    deposed: str | None
    importing: dict | None
    replace_paths: tuple[tuple, ...]
    generated_config: str | None
    # Raw values: may hold secrets; never rendered directly (and left out of repr).
    before: Any = None
    after: Any = None
    after_unknown: Any = None
    before_sensitive: Any = None
    after_sensitive: Any = None

    def __repr__(self) -> str:
        return f"ResourceChange(address={self.address!r}, action={self.action!r})"

    @property
    def is_managed(self) -> bool:
        return self.mode != "data"

    @property
    def moved(self) -> bool:
        """True when the instance moved here from another address (a `moved` block)."""
        return bool(self.previous_address and self.previous_address != self.address)

    @property
    def noteworthy(self) -> bool:
        """True when a reviewer must see this change: any action but no-op, or an import or a move."""
        return self.action != "no-op" or self.importing is not None or self.moved


@dataclass(frozen=True, slots=True, eq=False)
class OutputChange:
    """One entry of `output_changes`; `sensitive` merges every place Terraform says the output is sensitive."""

    name: str
    actions: tuple[str, ...]
    action: str
    sensitive: bool
    before: Any = field(repr=False, default=None)
    after: Any = field(repr=False, default=None)
    after_unknown: Any = field(repr=False, default=None)
    before_sensitive: Any = field(repr=False, default=None)
    after_sensitive: Any = field(repr=False, default=None)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One `checks` entry: a check block, precondition or postcondition with its status and problems."""

    address: str
    kind: str
    status: str  # pass | fail | error | unknown
    failing_instances: tuple[str, ...]
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeferredChange:
    """One `deferred_changes` entry: a resource Terraform could not plan yet, and why."""

    reason: str
    change: ResourceChange


@dataclass(frozen=True, slots=True)
class Plan:
    """A parsed plan document. `sensitive_strings` are string values known to be secret (from sensitive
    variables, sensitive attributes and sensitive outputs): any string equal to one is masked when rendered."""

    format_version: str
    terraform_version: str | None
    applyable: bool | None
    complete: bool | None
    errored: bool
    resource_changes: tuple[ResourceChange, ...]
    resource_drift: tuple[ResourceChange, ...]
    output_changes: tuple[OutputChange, ...]
    checks: tuple[CheckResult, ...]
    deferred: tuple[DeferredChange, ...]
    relevant_attributes: tuple[tuple[str, tuple], ...]
    timestamp: str | None
    sensitive_strings: frozenset[str] = field(repr=False, default=frozenset())
