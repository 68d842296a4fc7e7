"""typer's coercion of command-line values, without pydantic for the plain ones (start-up: issue 21).

typer 0.29 coerces every parameter of the command it runs through a pydantic `TypeAdapter`: importing pydantic
and building the adapters took about 0.2 s of an idle machine's 0.5 s `tfreview render` (more than a
1,000-resource review itself, docs/benchmarks.md). For the types tfreview's commands take (str, bool, int,
float, Path, an Enum of choices, lists of those), a value as click hands it over has one obvious result, the
one pydantic gives; `install` computes that, with typer's own helpers for choices and paths. Everything else (a
value of another shape, a number with bounds, a custom parser, an error of any kind) goes to typer's own
coercion, unchanged: the same results and the same error messages as without this module. A typer without that
coercion (older, or a future layout) is left alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

try:
    from typer._coercion import RuntimeParam, build_runtime_param
    from typer._param_types import coerce_cli_choice, coerce_cli_path, routes_to_path
except ImportError:  # pragma: no cover - a typer without pydantic coercion: nothing to do
    RuntimeParam = None  # type: ignore[assignment,misc]

_NO = (False, None)


def _leaf(annotation: Any, info: Any, value: Any, param: Any, ctx: Any) -> tuple[bool, Any]:
    """(True, the value typer's adapter gives) for a plain value of a plain type, else (False, None)."""
    if info.parser is not None:
        return _NO
    if annotation is str or annotation is bool:
        return (True, value) if type(value) is annotation else _NO
    if annotation is int or annotation is float:
        bounded = info.min is not None or info.max is not None
        return (True, value) if type(value) is annotation and not bounded else _NO
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return True, coerce_cli_choice(value, choices=list(annotation), case_sensitive=info.case_sensitive, ctx=ctx)
    if annotation is Path and info.path_type is None and routes_to_path(annotation, info):
        if type(value) is str and value:
            value = Path(value)  # what pydantic's Path validation makes of a non-empty str
        if type(value) is not type(Path()):
            return _NO
        return True, coerce_cli_path(value, info, path_type=Path, param=param, ctx=ctx)
    return _NO


def plain_value(annotation: Any, info: Any, value: Any, param: Any = None, ctx: Any = None) -> tuple[bool, Any]:
    """(True, coerced value) when `value` is plain for `annotation` (see the module doc), else (False, None)."""
    try:
        if get_origin(annotation) is list:
            args = get_args(annotation)
            if len(args) != 1 or not isinstance(value, (list, tuple)):
                return _NO
            out = []
            for item in value:
                done, result = _leaf(args[0], info, item, param, ctx)
                if not done:
                    return _NO
                out.append(result)
            return True, out
        return _leaf(annotation, info, value, param, ctx)
    except Exception:  # typer's own coercion says what is wrong, in its words
        return _NO


def _supported(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        args = get_args(annotation)
        return len(args) == 1 and _supported(args[0])
    return annotation in (str, bool, int, float, Path) or (isinstance(annotation, type) and issubclass(annotation, Enum))


if RuntimeParam is not None:

    @dataclass(frozen=True)
    class PlainParam(RuntimeParam):
        """A parameter's coercion: `plain_value`, else typer's own (built on first need)."""

        descriptor: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            done, result = plain_value(self.annotation, self.parameter_info, value, param, ctx)
            if done:
                return result
            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)


def install(command: Any) -> int:
    """Give every typer parameter of `command` (a click group or command, walked whole) whose type is plain the
    pydantic-free coercion, the `--help` option each command makes on first use included; the number of
    parameters given it now."""
    if RuntimeParam is None:  # pragma: no cover
        return 0
    count = 0
    stack = [command]
    while stack:
        cmd = stack.pop()
        stack.extend(getattr(cmd, "commands", {}).values())
        count += sum(_give(param) for param in getattr(cmd, "params", ()))
        made = getattr(cmd, "get_help_option", None)
        if made is not None:
            cmd.get_help_option = _helped(made)
    return count


def _helped(made: Any) -> Any:
    """A command's `get_help_option`, its option given the plain coercion."""
    def get_help_option(ctx: Any) -> Any:
        option = made(ctx)
        if option is not None:
            _give(option)
        return option
    return get_help_option


def _give(param: Any) -> bool:
    descriptor = getattr(param, "type_descriptor", None)
    if (descriptor is None or getattr(param, "_runtime_param", 0) is not None
            or descriptor.file_annotation is not None or not _supported(descriptor.annotation)):
        return False
    param._runtime_param = PlainParam(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation,
                                      descriptor=descriptor)
    return True
