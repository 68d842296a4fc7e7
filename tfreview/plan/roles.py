"""`Roles`: where an app's own Terraform keeps the parts a release needs (data, passed into the pure core).

A role is a resource address template; `{colour}` stands for a colour name. Defaults match the bundled
`modules/ecs-webapp`; `[apps.<app>]` in tfreview.toml overrides any of them (docs/bring-your-own-terraform.md):

  colours              the two colour names, e.g. ["blue", "green"], ["stable", "canary"], ["a", "b"]
  rolling_colour       the key of the one service of a rolling stack ("main")
  service              `aws_ecs_service.app["{colour}"]`
  task_definition      `aws_ecs_task_definition.app["{colour}"]`
  target_group         `aws_lb_target_group.app["{colour}"]`
  production_listener  `aws_lb_listener.production` (its forward weights say which colour is live)
  test_listener        `aws_lb_listener.test` (reaches the idle colour; "" when there is none)
  version_variable     `{colour}_version`  (release variables tfreview writes, per colour)
  weight_variable      `{colour}_weight`
  live_variable        `live_color` ("" for a module with weights only and no live-colour variable)
  rolling_version_variable  `app_version`
  image                how the version variables' value is built from the version: "" (the value is the version,
                       the image tag) or a template such as "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:{version}"
                       for modules that take the whole image URI

A template without `{colour}` names one resource: that stack has a single service and releases rolling.
Addresses match with or without module prefixes (`module.web.aws_lb_listener.production` matches
`aws_lb_listener.production`). No I/O here.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, Mapping

from tfreview.errors import BadInput

_TEMPLATE = re.compile(r'^[a-z0-9_]+\.[A-Za-z0-9_{}-]+(\["?[A-Za-z0-9_{}.-]*"?\])?$')
_COLOUR = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
_VARIABLE = re.compile(r"^[A-Za-z_{}][A-Za-z0-9_{}-]*$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@{}-]{0,511}$")  # an image reference with one {version}


@dataclass(frozen=True, slots=True)
class Roles:
    """Resource roles and release-variable names of one app's Terraform (see the module docstring)."""

    colours: tuple[str, str] = ("blue", "green")
    rolling_colour: str = "main"
    service: str = 'aws_ecs_service.app["{colour}"]'
    task_definition: str = 'aws_ecs_task_definition.app["{colour}"]'
    target_group: str = 'aws_lb_target_group.app["{colour}"]'
    production_listener: str = "aws_lb_listener.production"
    test_listener: str = "aws_lb_listener.test"
    version_variable: str = "{colour}_version"
    weight_variable: str = "{colour}_weight"
    live_variable: str = "live_color"
    rolling_version_variable: str = "app_version"
    image: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "roles") -> "Roles":
        """Roles from `[apps.<app>]` (other keys of that table are ignored); BadInput names a bad key."""
        data = data or {}
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key in names & set(data):
            value = data[key]
            if key == "colours":
                if (not isinstance(value, (list, tuple)) or len(value) != 2 or len(set(value)) != 2
                        or not all(isinstance(c, str) and _COLOUR.match(c) for c in value)):
                    raise BadInput(f"{where}.colours must be two different names like [\"blue\", \"green\"]",
                                   "fix tfreview.toml (see docs/bring-your-own-terraform.md)")
                values[key] = tuple(value)
                continue
            if not isinstance(value, str):
                raise BadInput(f"{where}.{key} must be a string", "fix tfreview.toml (see docs/bring-your-own-terraform.md)")
            if key == "image":
                if value and (not _IMAGE.match(value) or value.count("{version}") != 1
                              or value.replace("{version}", "").count("{") + value.count("}") != 1):
                    raise BadInput(f"{where}.image {value!r} is not an image reference with one {{version}}",
                                   'write e.g. image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:{version}"')
                values[key] = value
                continue
            optional = key in ("test_listener", "live_variable")
            pattern = _VARIABLE if key.endswith("variable") else (_COLOUR if key == "rolling_colour" else _TEMPLATE)
            if not (optional and value == "") and not pattern.match(value):
                raise BadInput(f"{where}.{key} {value!r} is not a valid "
                               f"{'variable name' if key.endswith('variable') else 'resource address'}",
                               "fix tfreview.toml (see docs/bring-your-own-terraform.md)")
            values[key] = value
        roles = cls(**values)
        if roles.rolling_colour in roles.colours:
            raise BadInput(f"{where}.rolling_colour {roles.rolling_colour!r} is also a colour", "choose another name")
        return roles

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["colours"] = list(self.colours)
        return out

    # -- addresses ----------------------------------------------------------------------------------------------
    @property
    def single_service(self) -> bool:
        """The stack has one service (no `{colour}` in the service role): it releases rolling."""
        return "{colour}" not in self.service

    def colour_of(self, role: str, address: str) -> str | None:
        """The colour (or the rolling colour) whose `role` ("service", "task_definition", "target_group") is
        `address`, else None."""
        for colour, template in _templates(self, role):
            if matches(address, template):
                return colour
        return None

    def deploy_colour(self, address: str) -> str | None:
        """The colour whose service or task definition `address` is, else None."""
        return self.colour_of("service", address) or self.colour_of("task_definition", address)

    def is_production_listener(self, address: str) -> bool:
        return matches(address, self.production_listener)

    def is_test_listener(self, address: str) -> bool:
        return bool(self.test_listener) and matches(address, self.test_listener)

    # -- release variables -----------------------------------------------------------------------------------
    def version_var(self, colour: str) -> str:
        return self.version_variable.replace("{colour}", colour)

    def weight_var(self, colour: str) -> str:
        return self.weight_variable.replace("{colour}", colour)

    def version_value(self, version: Any) -> Any:
        """What a version variable is set to for `version`: the version itself, or the `image` template filled in
        (a value that is already such an image is kept; None stays None)."""
        if not self.image or not isinstance(version, str) or self.version_of(version) != version:
            return version
        return self.image.replace("{version}", version)

    def version_of(self, value: Any) -> Any:
        """The version in a version variable's value (or an output): the part of an `image`-shaped value that
        `{version}` stands for; any other value unchanged."""
        if not self.image or not isinstance(value, str):
            return value
        m = _image_pattern(self.image).fullmatch(value)
        return m.group(1) if m else value

    @property
    def release_variables(self) -> frozenset[str]:
        """Every variable name tfreview sets for a release (a user's --var may not override them)."""
        names = {"app", "strategy", self.rolling_version_variable, *(self.version_var(c) for c in self.colours),
                 *(self.weight_var(c) for c in self.colours)}
        if self.live_variable:
            names.add(self.live_variable)
        return frozenset(names)


DEFAULT_ROLES = Roles()
ROLE_KEYS = tuple(f.name for f in fields(Roles))  # the keys of [apps.<app>] that describe roles


@lru_cache(maxsize=64)
def _image_pattern(image: str) -> re.Pattern[str]:
    head, _, tail = image.partition("{version}")
    return re.compile(re.escape(head) + r"([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})" + re.escape(tail))


# `_templates` by the `Roles` object they were made for (its identity: hashing a frozen dataclass's twelve fields
# cost more than the look-up it served, once per resource of a big plan), kept with it so an id is never reused.
_TEMPLATES: dict[tuple[int, str], tuple[Roles, tuple[tuple[str, str], ...]]] = {}


def _templates(roles: Roles, role: str) -> tuple[tuple[str, str], ...]:
    """(colour, address) of `role` per colour, the rolling colour last; one for a role without `{colour}` (it is
    the rolling colour's). Classifying a big plan asks for each resource: made once per `Roles`."""
    made = _TEMPLATES.get((id(roles), role))
    if made is not None and made[0] is roles:
        return made[1]
    if len(_TEMPLATES) >= 256:
        _TEMPLATES.clear()
    templates = _make_templates(roles, role)
    _TEMPLATES[(id(roles), role)] = (roles, templates)
    return templates


def _make_templates(roles: Roles, role: str) -> tuple[tuple[str, str], ...]:
    template = getattr(roles, role)
    if "{colour}" not in template:
        return ((roles.rolling_colour, template),)
    return tuple((c, template.replace("{colour}", c)) for c in (*roles.colours, roles.rolling_colour))


def matches(address: str, template: str) -> bool:
    """`address` is `template`, or `template` inside a module (`module.x.` prefixes); a template without an
    instance key also matches its `count` / `for_each` instances (`aws_lb_listener.test[0]`)."""
    if not template.endswith("]") and address.endswith("]") and "[" in address:
        address = address[:address.rindex("[")]
    return address == template or address.endswith("." + template)
