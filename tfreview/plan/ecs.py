"""The ECS revision story: what a task-definition change really does, in one line per family.

Containers are matched by name; environment, secrets, portMappings, mountPoints (...) by their natural keys;
AWS defaults and empty-list noise are removed before comparing, so an env reorder or a re-stated default says
"only ordering/defaults changed". Each story links to the `aws_ecs_service`s running the family and says
what the change triggers there.

Secrets policy (documented, switchable with `reveal_ecs_safe_fields`):
- environment values are never shown, only names; names that look secret are shown, their values never;
- when `container_definitions` is sensitive as a whole (one env var from a sensitive variable is enough),
  Terraform shows nothing. With `reveal_ecs_safe_fields=True` (default) the story still reveals the fields that
  carry no secret (container names, images, cpu, memory, port numbers) and the names of the environment variables
  and secrets added, removed or changed (`env +FEATURE_X, ~DB_PASSWORD (value hidden)`): names are not secrets,
  values never appear; with False it only says that the sensitive definitions changed;
- any string equal to a value known to be sensitive is masked, wherever it appears.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable

import orjson

from tfreview import jsontext
from tfreview.plan.diff import SENSITIVE
from tfreview.plan.model import REPLACE_ACTIONS, ResourceChange

# Container fields AWS fills in (or that mean nothing when empty), dropped before comparing.
_CONTAINER_DEFAULTS: dict[str, Any] = {"essential": True, "cpu": 0}
# List fields compared as sets keyed by their natural key.
_NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "environment": ("name",),
    "secrets": ("name",),
    "portMappings": ("containerPort", "protocol"),
    "mountPoints": ("sourceVolume", "containerPath"),
    "volumesFrom": ("sourceContainer",),
    "ulimits": ("name",),
    "extraHosts": ("hostname",),
    "systemControls": ("namespace",),
    "dependsOn": ("containerName",),
    "environmentFiles": ("value",),
}
# Order of the parts of a container verdict: what reviewers look for first.
_PART_ORDER = {k: i for i, k in enumerate(("image", "cpu", "memory", "memoryReservation", "environment", "secrets", "portMappings"))}
_TASK_FIELDS_IGNORED = frozenset(
    {"container_definitions", "arn", "arn_without_revision", "revision", "id", "tags_all", "skip_destroy", "track_latest"}
)
_TASK_DEF_ARN = re.compile(r"(?:task-definition/)?(?P<family>[A-Za-z0-9_-]+)(?::(?P<rev>\d+))?$")


@dataclass(frozen=True, slots=True)
class ServiceLink:
    """An aws_ecs_service running the family, and what the new revision triggers there."""

    address: str
    action: str
    triggers: str


@dataclass(frozen=True, slots=True)
class ContainerStory:
    """The change of one container, matched by name. `verdict` never holds an environment or secret value."""

    name: str
    change: str  # added | removed | changed | unchanged | ordering-only
    verdict: str
    old_image: str | None
    new_image: str | None


@dataclass(frozen=True, slots=True)
class EcsStory:
    """The revision story of one task-definition family.

    verdict: the one-line summary, e.g. "web: image 1.0.0 → 1.1.0; env +FEATURE_X"
    flags: reviewer warnings (image rolled back, new revision without image change, cpu/memory change)
    """

    family: str
    address: str
    action: str
    old_revision: int | None
    verdict: str
    containers: tuple[ContainerStory, ...]
    task_changes: tuple[str, ...]
    flags: tuple[str, ...]
    services: tuple[ServiceLink, ...]
    sensitive: bool

    @property
    def line(self) -> str:
        """`family: verdict`, the line used in summaries."""
        return f"{self.family}: {self.verdict}"

    @property
    def revision_note(self) -> str:
        """` (revision N → new)` after the family name when an old revision is replaced, else ""."""
        return f" (revision {self.old_revision} → new)" if self.old_revision is not None and self.action != "delete" else ""

    def to_json(self) -> dict:
        return {
            "family": self.family,
            "address": self.address,
            "action": self.action,
            "old_revision": self.old_revision,
            "verdict": self.verdict,
            "containers": [
                {"name": c.name, "change": c.change, "verdict": c.verdict, "old_image": c.old_image, "new_image": c.new_image}
                for c in self.containers
            ],
            "task_changes": list(self.task_changes),
            "flags": list(self.flags),
            "services": [{"address": s.address, "action": s.action, "triggers": s.triggers} for s in self.services],
            "sensitive": self.sensitive,
        }


def ecs_stories(
    changes: Iterable[ResourceChange], secrets: frozenset[str] = frozenset(), *, reveal_safe_fields: bool = True
) -> tuple[EcsStory, ...]:
    """One story per changed aws_ecs_task_definition (no-op and data reads skipped), ordered by address."""
    changes = list(changes)
    index = _ServiceIndex([rc for rc in changes if rc.type == "aws_ecs_service" and rc.is_managed])
    # Same definitions before/after -> same container story: large plans repeat one change many times.
    cache: dict[tuple, tuple[ContainerStory, ...]] = {}
    stories = []
    for rc in changes:
        if rc.type != "aws_ecs_task_definition" or not rc.is_managed or rc.action in ("no-op", "read"):
            continue
        stories.append(_story(rc, index, secrets, reveal_safe_fields, cache))
    return tuple(sorted(stories, key=lambda s: s.address))


MAX_LINKS = 20


class _ServiceIndex:
    """Services by the family they run and by their slot (module, resource name, instance key), built once:
    linking stays linear in the size of the plan. Most specific match first: same family and same slot (the
    module's own `aws_ecs_service.app["green"]` for `aws_ecs_task_definition.app["green"]`), then same module and
    key, then any service running the family."""

    def __init__(self, services: list[ResourceChange]) -> None:
        self.tiers: dict[tuple, list[ResourceChange]] = {}
        for svc in services:
            families = {family_of(side.get("task_definition")) for side in (svc.before, svc.after) if isinstance(side, dict)}
            families.discard(None)
            if isinstance(svc.after_unknown, dict) and svc.after_unknown.get("task_definition") is True:
                families.add(None)  # runs whatever revision this plan registers: match by slot only
            name, key = _resource_name(svc.address), _key(svc.index)
            for family in families:
                for tier in ((family, svc.module_address, name, key), (family, svc.module_address, key), (family,)):
                    if tier != (None,):
                        self.tiers.setdefault(tier, []).append(svc)

    def services_of(self, td: ResourceChange, family: str) -> list[ResourceChange]:
        name, key = _resource_name(td.address), _key(td.index)
        for tier in (
            (family, td.module_address, name, key), (None, td.module_address, name, key),
            (family, td.module_address, key), (None, td.module_address, key), (family,),
        ):
            found = self.tiers.get(tier)
            if found:
                return found[:MAX_LINKS]
        return []


def _resource_name(address: str) -> str:
    base = address.split("[", 1)[0]
    return base.rsplit(".", 1)[-1]


def _key(index: Any) -> Any:
    return index if isinstance(index, (str, int)) else None


# --- one task definition ------------------------------------------------------------------------------------

def _story(
    rc: ResourceChange, services: "_ServiceIndex", secrets: frozenset[str], reveal: bool, cache: dict
) -> EcsStory:
    before = rc.before if isinstance(rc.before, dict) else {}
    after = rc.after if isinstance(rc.after, dict) else {}
    family = _mask(str(after.get("family") or before.get("family") or rc.name), secrets)
    sensitive = _marked(rc.before_sensitive, "container_definitions") or _marked(rc.after_sensitive, "container_definitions")
    after_unknown = isinstance(rc.after_unknown, dict) and rc.after_unknown.get("container_definitions") is True
    flags: list[str] = []
    containers: tuple[ContainerStory, ...] = ()
    if sensitive and not reveal:
        verdict = "container definitions are sensitive: changed (details hidden by policy)"
        if before.get("container_definitions") == after.get("container_definitions"):
            verdict = "container definitions are sensitive: unchanged"
    elif after_unknown:
        verdict = "container definitions known after apply"
    else:
        raw_old = before.get("container_definitions") if before else None
        raw_new = after.get("container_definitions") if after else None
        key = (raw_old, raw_new, sensitive) if isinstance(raw_old, (str, type(None))) and isinstance(raw_new, (str, type(None))) else None
        cached = cache.get(key) if key is not None else None
        if cached is not None:
            containers = cached
        else:
            containers = _compare_containers(_containers(raw_old), _containers(raw_new), secrets, sensitive)
            if key is not None:
                cache[key] = containers
        verdict = _verdict(rc, containers, before, after)
    task_changes = _task_changes(before, after, rc, secrets)
    if task_changes and containers and all(c.change in ("unchanged", "ordering-only") for c in containers):
        verdict = "; ".join(task_changes)
    elif task_changes:
        verdict = f"{verdict}; {'; '.join(task_changes)}"
    if rc.action != "delete" and before:
        images_changed = any(c.old_image != c.new_image for c in containers if c.change == "changed")
        if containers and not images_changed and not any(c.change in ("added", "removed") for c in containers):
            flags.append("new revision with no image change")
        for c in containers:
            if c.change == "changed" and c.old_image and c.new_image and _is_rollback(c.old_image, c.new_image):
                flags.append(f"{c.name}: image rolled back to an older tag ({image_tag(c.old_image)} → {image_tag(c.new_image)})")
        resource_changes = [c for c in containers if re.search(r"\b(cpu|memory|memoryReservation) ", c.verdict)]
        if resource_changes or any(t.startswith(("task cpu", "task memory")) for t in task_changes):
            flags.append("cpu/memory change")
    old_rev = before.get("revision") if isinstance(before.get("revision"), int) else None
    links = tuple(_link(rc, svc, family) for svc in services.services_of(rc, family))
    return EcsStory(
        family=family,
        address=rc.address,
        action=rc.action,
        old_revision=old_rev,
        verdict=verdict,
        containers=containers,
        task_changes=tuple(task_changes),
        flags=tuple(flags),
        services=links,
        sensitive=sensitive,
    )


def _marked(marks: Any, key: str) -> bool:
    return marks is True or (isinstance(marks, dict) and marks.get(key) is True)


def _mask(text: str, secrets: frozenset[str]) -> str:
    return str(SENSITIVE) if text in secrets else text


def _containers(raw: Any) -> list[dict]:
    if isinstance(raw, str):
        try:
            raw = jsontext.loads(raw)
        except orjson.JSONDecodeError:
            return []
    if not isinstance(raw, list):
        return []
    return [c for c in raw if isinstance(c, dict)]


def _normal_value(key: str, value: Any) -> Any:
    """One container field as compared: None for absent/empty/AWS default, keyed lists as dicts by natural key."""
    if value is None or value == [] or value == {}:
        return None
    if key in _CONTAINER_DEFAULTS and value == _CONTAINER_DEFAULTS[key]:
        return None
    if key == "portMappings" and isinstance(value, list):
        value = [_normalize_port(p) for p in value if isinstance(p, dict)]
    if key in _NATURAL_KEYS and isinstance(value, list):
        keyed = {}
        for item in value:
            if isinstance(item, dict):
                item = {k: v for k, v in item.items() if v is not None}
                keyed[tuple(str(item.get(k, "")) for k in _NATURAL_KEYS[key])] = item
            else:
                keyed[(str(item),)] = item
        return keyed
    return value


def normalize_container(container: dict) -> dict:
    """A container definition without AWS defaults, nulls and empty lists; keyed lists become dicts by natural key
    (so order never matters). Pure; returns a new dict."""
    out: dict[str, Any] = {}
    for key, value in container.items():
        value = _normal_value(key, value)
        if value is not None:
            out[key] = value
    return out


def clean_definitions(definitions: Any) -> Any:
    """Container definitions (decoded JSON) without AWS defaults, nulls and empty lists, keyed lists sorted by
    natural key: the shape the diff tree compares, so reorders and restated defaults are no changes."""
    if not isinstance(definitions, list):
        return definitions
    out = []
    for container in definitions:
        if not isinstance(container, dict):
            out.append(container)
            continue
        cleaned = normalize_container(container)
        for key in _NATURAL_KEYS:
            if isinstance(cleaned.get(key), dict):
                cleaned[key] = [cleaned[key][k] for k in sorted(cleaned[key])]
        out.append(cleaned)
    return out


def _normalize_port(port: dict) -> dict:
    port = {k: v for k, v in port.items() if v is not None}
    if port.get("protocol") == "tcp":
        port.pop("protocol")
    if port.get("hostPort") in (port.get("containerPort"), 0):
        port.pop("hostPort", None)
    return port


def _compare_containers(old: list[dict], new: list[dict], secrets: frozenset[str], sensitive: bool) -> tuple[ContainerStory, ...]:
    old_by = {str(c.get("name", "")): c for c in old}
    new_by = {str(c.get("name", "")): c for c in new}
    names = list(new_by) + [n for n in old_by if n not in new_by]
    stories = []
    for name in names:
        shown = _mask(name, secrets)
        o, n = old_by.get(name), new_by.get(name)
        old_image = _mask(str(o.get("image")), secrets) if o and o.get("image") else None
        new_image = _mask(str(n.get("image")), secrets) if n and n.get("image") else None
        if o is None:
            extra = f" (image {new_image})" if new_image else ""
            stories.append(ContainerStory(shown, "added", f"{shown}: container added{extra}", None, new_image))
            continue
        if n is None:
            stories.append(ContainerStory(shown, "removed", f"{shown}: container removed", old_image, None))
            continue
        if o == n:
            stories.append(ContainerStory(shown, "unchanged", f"{shown}: unchanged", old_image, new_image))
            continue
        parts = _container_parts(o, n, secrets, sensitive)
        if not parts:
            stories.append(ContainerStory(shown, "ordering-only", f"{shown}: only ordering/defaults changed", old_image, new_image))
        else:
            stories.append(ContainerStory(shown, "changed", f"{shown}: {'; '.join(parts)}", old_image, new_image))
    return tuple(stories)


def _container_parts(o: dict, n: dict, secrets: frozenset[str], sensitive: bool) -> list[str]:
    """What changed between two raw container definitions; only fields that differ are normalized."""
    parts = []
    differing = [k for k in set(o) | set(n) if o.get(k) != n.get(k)]
    keys = sorted(differing, key=lambda k: (_PART_ORDER.get(k, len(_PART_ORDER)), k))
    other = []
    for key in keys:
        ov, nv = _normal_value(key, o.get(key)), _normal_value(key, n.get(key))
        if ov == nv:
            continue
        if key in _NATURAL_KEYS and not all(isinstance(raw, (list, type(None))) for raw in (o.get(key), n.get(key))):
            other.append(key)  # not a list as AWS defines it (AWS refuses it at apply): told, not described
            continue
        if key == "image":
            parts.append(f"image {_image_change(str(ov or '-'), str(nv or '-'), secrets)}")
        elif key in ("cpu", "memory", "memoryReservation"):
            parts.append(f"{key} {_mask(str(ov if ov is not None else '-'), secrets)} → {_mask(str(nv if nv is not None else '-'), secrets)}")
        elif key in ("environment", "secrets"):
            label = "env" if key == "environment" else "secrets"
            parts.append(f"{label} {_keyed_change(ov or {}, nv or {}, secrets, values_hidden=sensitive)}")
        elif key == "portMappings":
            parts.append(f"ports {_port_change(ov or {}, nv or {})}")
        elif key == "name":
            continue
        else:
            other.append(key)
    if other:
        if sensitive:
            parts.append(f"{len(other)} other field(s) changed")
        else:
            parts.append(", ".join(sorted(other)) + " changed")
    return parts


def _keyed_change(old: dict, new: dict, secrets: frozenset[str], *, values_hidden: bool = False) -> str:
    """`+ADDED -REMOVED ~CHANGED` by name, never a value. With `values_hidden` (the definitions are sensitive as a
    whole, so Terraform shows nothing) the words are comma-separated and a changed name says its value is hidden."""
    added = [k for k in new if k not in old]
    removed = [k for k in old if k not in new]
    changed = [k for k in new if k in old and old[k] != new[k]]
    name = lambda key: _mask(key[0], secrets)  # noqa: E731 - the natural key's first part is the name
    words = [f"+{name(k)}" for k in sorted(added)]
    words += [f"-{name(k)}" for k in sorted(removed)]
    if values_hidden:
        words += [f"~{name(k)} (value hidden)" for k in sorted(changed)]
        return ", ".join(words)
    words += [f"~{name(k)}" for k in sorted(changed)]
    return " ".join(words)


def _port_change(old: dict, new: dict) -> str:
    def label(key: tuple) -> str:
        port, proto = key
        return f"{port}/{proto or 'tcp'}"

    words = [f"+{label(k)}" for k in new if k not in old]
    words += [f"-{label(k)}" for k in old if k not in new]
    words += [f"~{label(k)}" for k in new if k in old and old[k] != new[k]]
    return " ".join(words)


def _split_image(image: str) -> tuple[str, str]:
    if "@" in image:
        repo, digest = image.split("@", 1)
        return repo, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1:]
    return image, "latest"


def image_tag(image: str) -> str:
    """The tag (or "@digest") of an image reference: "repo/web:1.2.0" -> "1.2.0"; no tag means "latest"."""
    return _split_image(image)[1]


def _image_change(old: str, new: str, secrets: frozenset[str]) -> str:
    if old in secrets or new in secrets:
        return f"{_mask(old, secrets)} → {_mask(new, secrets)}"
    orepo, otag = _split_image(old)
    nrepo, ntag = _split_image(new)
    if orepo == nrepo and old != "-" and new != "-":
        return f"{otag} → {ntag}"
    return f"{old} → {new}"


_VERSION_PART = re.compile(r"\d+|[A-Za-z]+")


@lru_cache(maxsize=4096)
def version_key(tag: str) -> tuple | None:
    """Sortable key of a version-like tag ("v1.10.2", "1.2.0-rc1"), or None when the tag is not a version
    (latest, a digest, a git sha). Releases sort after their pre-releases."""
    text = tag[1:] if tag[:1] in ("v", "V") else tag
    if not text[:1].isdigit():
        return None
    main, _, pre = text.partition("-")
    numbers = main.split(".")
    if not all(p.isdigit() for p in numbers):
        return None
    pre_parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _VERSION_PART.findall(pre))
    return (tuple(int(p) for p in numbers), 0 if pre else 1, pre_parts)


def _is_rollback(old: str, new: str) -> bool:
    orepo, otag = _split_image(old)
    nrepo, ntag = _split_image(new)
    if orepo != nrepo:
        return False
    ok, nk = version_key(otag), version_key(ntag)
    if ok is None or nk is None:
        return False
    return nk < ok


def _verdict(rc: ResourceChange, containers: tuple[ContainerStory, ...], before: dict, after: dict) -> str:
    if rc.action == "delete":
        return "task definition deregistered"
    if not before:
        images = ", ".join(f"{c.name} {c.new_image}" for c in containers if c.new_image)
        return f"new task definition ({images})" if images else "new task definition"
    changed = [c for c in containers if c.change in ("changed", "added", "removed")]
    if changed:
        return " | ".join(c.verdict for c in changed)
    if any(c.change == "ordering-only" for c in containers):
        return "only ordering/defaults changed"
    return "containers unchanged"


def _task_changes(before: dict, after: dict, rc: ResourceChange, secrets: frozenset[str]) -> list[str]:
    if not before or not after:
        return []
    unknown = rc.after_unknown if isinstance(rc.after_unknown, dict) else {}
    out = []
    for key in sorted(set(before) | set(after)):
        if key in _TASK_FIELDS_IGNORED or unknown.get(key) is True:
            continue
        ov, nv = before.get(key), after.get(key)
        if ov == nv or (ov in (None, [], {}, "") and nv in (None, [], {}, "")):
            continue
        if _marked(rc.before_sensitive, key) or _marked(rc.after_sensitive, key):
            out.append(f"task {key} changed (sensitive)")
        elif key in ("cpu", "memory") and not isinstance(ov, (dict, list)) and not isinstance(nv, (dict, list)):
            out.append(f"task {key} {_mask(str(ov), secrets)} → {_mask(str(nv), secrets)}")
        else:
            out.append(f"task {key} changed")
    return out


# --- services -----------------------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _family(task_definition: str) -> str | None:
    tail = task_definition.rsplit("/", 1)[-1] if "task-definition/" in task_definition else task_definition
    family, _, revision = tail.partition(":")
    if not family or (revision and not revision.isdigit()) or ":" in revision:
        match = _TASK_DEF_ARN.search(task_definition)
        return match.group("family") if match else None
    return family


def family_of(task_definition: Any) -> str | None:
    """The family named by a service's task_definition (full ARN, "family:revision" or "family")."""
    return _family(task_definition) if isinstance(task_definition, str) and task_definition else None


def _link(td: ResourceChange, svc: ResourceChange, family: str) -> ServiceLink:
    after = svc.after if isinstance(svc.after, dict) else {}
    before = svc.before if isinstance(svc.before, dict) else {}
    td_unknown = isinstance(svc.after_unknown, dict) and svc.after_unknown.get("task_definition") is True
    if svc.action == "delete":
        triggers = "service removed"
    elif svc.action in REPLACE_ACTIONS:
        triggers = "service replaced (all tasks restarted)"
    elif svc.action == "create":
        triggers = "new service"
    elif td_unknown or before.get("task_definition") != after.get("task_definition"):
        triggers = "new deployment" + _deployment_detail(after)
    elif svc.action == "no-op":
        triggers = "no new deployment (service pins the family, not the revision)"
    else:
        triggers = "service updated"
    return ServiceLink(svc.address, svc.action, triggers)


def _deployment_detail(service: dict) -> str:
    controller = service.get("deployment_controller")
    kind = "ECS rolling update"
    if isinstance(controller, list) and controller and isinstance(controller[0], dict):
        kind = {"ECS": "ECS rolling update"}.get(str(controller[0].get("type")), str(controller[0].get("type")))
    lo = service.get("deployment_minimum_healthy_percent")
    hi = service.get("deployment_maximum_percent")
    detail = kind
    if lo is not None and hi is not None:
        detail += f", min {lo}% / max {hi}%"
    breaker = service.get("deployment_circuit_breaker")
    if isinstance(breaker, list) and breaker and isinstance(breaker[0], dict) and breaker[0].get("enable"):
        detail += ", circuit breaker" + (" with rollback" if breaker[0].get("rollback") else "")
    return f" ({detail})"
