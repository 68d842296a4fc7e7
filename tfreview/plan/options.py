"""Terraform's own plan controls (`-var`, `-var-file`, `-target`, `-replace`, `-destroy`, `-refresh-only`) as data.

`TerraformOptions` is what a planner asked for, checked at the door (`parse_options`: BadInput, exit 2, one line,
never echoing a value); `record_options` is the form kept in the plan record (and so bound into approvals): variable
values in clear only when Terraform does not treat them as sensitive, var-files by name and sha256 only, never
their contents. `options_line` is the line every review and report shows. No I/O here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from tfreview.errors import BadInput
from tfreview.text import visible

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_INDEX = r'(?:\[(?:[0-9]+|"[^"\\]*")\])?'
_MODULE = rf"module\.[A-Za-z_][A-Za-z0-9_-]*{_INDEX}"
_RESOURCE = rf"(?!module\.)(?:data\.)?[A-Za-z_][A-Za-z0-9_-]*\.[A-Za-z_][A-Za-z0-9_-]*{_INDEX}"
_TARGET = re.compile(rf"^(?:{_MODULE}\.)*(?:{_MODULE}|{_RESOURCE})$")
_INSTANCE = re.compile(rf"^(?:{_MODULE}\.)*{_RESOURCE}$")
SENSITIVE = "(sensitive value)"


@dataclass(frozen=True)
class TerraformOptions:
    """Plan controls: `variables` ((name, value) in command-line order), `var_files` (paths as given),
    `targets`, `replace` (resource addresses), `destroy`, `refresh_only`."""

    variables: tuple[tuple[str, str], ...] = ()
    var_files: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    destroy: bool = False
    refresh_only: bool = False

    def __bool__(self) -> bool:
        return bool(self.variables or self.var_files or self.targets or self.replace or self.destroy
                    or self.refresh_only)


def parse_options(variables: Iterable[str] = (), var_files: Iterable[str] = (), targets: Iterable[str] = (),
                  replace: Iterable[str] = (), destroy: bool = False, refresh_only: bool = False,
                  reserved: Iterable[str] = ()) -> TerraformOptions:
    """Check the plan controls as typed; `reserved` are the release variables tfreview sets itself."""
    pairs: list[tuple[str, str]] = []
    reserved = frozenset(reserved)
    for n, item in enumerate(variables, 1):
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or not _NAME.match(name):
            shown = f" {name!r}" if eq and _NAME.match(name) else ""  # never echo what may be a value
            raise BadInput(f"--var number {n}{shown} is not NAME=VALUE",
                           "write --var NAME=VALUE, e.g. --var desired_count=2")
        if name in reserved:
            raise BadInput(f"--var {name} is a release variable tfreview sets itself",
                           "versions, weights and the live colour come from the release: drop this --var")
        pairs.append((name, value))
    for kind, addresses, pattern in (("--target", targets, _TARGET), ("--replace", replace, _INSTANCE)):
        for address in addresses:
            if not pattern.match(address.strip()):
                raise BadInput(f"{kind} {address[:120]!r} is not a resource address",
                               "write an address as terraform prints it, e.g. 'aws_ecs_service.app[\"blue\"]' "
                               "or module.web.aws_lb.this")
    if destroy and refresh_only:
        raise BadInput("--destroy and --refresh-only cannot be combined", "choose one")
    if refresh_only and replace:
        raise BadInput("--replace cannot be combined with --refresh-only", "choose one")
    files = tuple(var_files)
    for path in files:
        if not path.strip():
            raise BadInput("--var-file is empty", "give the path of a .tfvars or .tfvars.json file")
    return TerraformOptions(tuple(pairs), files, tuple(a.strip() for a in targets), tuple(a.strip() for a in replace),
                            destroy, refresh_only)


def record_options(options: TerraformOptions, hidden: frozenset[str], var_files: Mapping[str, str]) -> dict[str, Any]:
    """The plan record's `terraform_options`: the values of the `hidden` variables (sensitive ones: the plan's
    redaction replaced them) are masked; `var_files` maps each path to the sha256 of its bytes (contents are never
    kept)."""
    return {
        "variables": [{"name": n, "value": SENSITIVE if n in hidden else v} for n, v in options.variables],
        "var_files": [{"name": p.rsplit("/", 1)[-1], "sha256": var_files[p]} for p in options.var_files],
        "targets": list(options.targets),
        "replace": list(options.replace),
        "destroy": options.destroy,
        "refresh_only": options.refresh_only,
    }


def options_line(recorded: Mapping[str, Any] | None) -> str | None:
    """"Terraform options: -destroy -target=... -var name=value" for a recorded `terraform_options`, or None."""
    if not recorded:
        return None
    parts = []
    if recorded.get("destroy"):
        parts.append("-destroy")
    if recorded.get("refresh_only"):
        parts.append("-refresh-only")
    parts += [f"-target={a}" for a in recorded.get("targets") or ()]
    parts += [f"-replace={a}" for a in recorded.get("replace") or ()]
    parts += [f"-var-file={f['name']} (sha256 {f['sha256'][:12]})" for f in recorded.get("var_files") or ()]
    parts += [f"-var {v['name']}={v['value']}" for v in recorded.get("variables") or ()]
    # One line whatever was typed: newlines and control characters (terminal escapes) shown escaped.
    return "Terraform options: " + visible(" ".join(parts), keep_lines=False) if parts else None


def option_risks(recorded: Mapping[str, Any] | None) -> list[str]:
    """Risk reasons of the options themselves: a targeted plan applies part of the configuration."""
    if recorded and recorded.get("targets"):
        return [f"targeted plan (-target {', '.join(recorded['targets'][:3])}): applies part of the configuration, "
                "the rest is not checked"]
    return []
