"""Command-line values coerced without pydantic (tfreview/coercion.py): the same results and the same errors as
typer's own coercion, for every parameter of every command, and `render` never imports pydantic."""
from __future__ import annotations

import os
import subprocess
import sys
from enum import Enum
from pathlib import Path

import pytest

from tfreview import coercion
from tfreview.cli import build_command

ROOT = Path(__file__).resolve().parent.parent
typer_coercion = pytest.importorskip("typer._coercion", reason="a typer without pydantic coercion: nothing installed")


def _candidates(annotation):
    if getattr(annotation, "__origin__", None) is list:
        return [("a", "b"), [], "a", ("1", 2), (Path("x"),)]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        members = list(annotation)
        return [*members, *(m.value for m in members), *(str(m.value).upper() for m in members), "nope", "", 3]
    return ["x", "", "ünï", "-", "3", "1.5", "true", "no", 3, -1, 1.5, True, False, Path("a/b"), b"raw", None]


def _outcome(runtime, value, param, ctx):
    try:
        result = runtime._coerce_value(value, param=param, ctx=ctx)
        return "ok", type(result), result
    except Exception as exc:  # noqa: BLE001 - the error is what is compared
        return "error", type(exc), str(exc)


def _params():
    root = build_command()
    stack, seen = [root], []
    while stack:
        cmd = stack.pop()
        stack.extend(getattr(cmd, "commands", {}).values())
        for param in cmd.params:
            if isinstance(getattr(param, "_runtime_param", None), coercion.PlainParam):
                seen.append((cmd, param))
    return seen


def test_every_plain_parameter_coerces_as_typer_does():
    from typer._click import Context

    params = _params()
    assert len(params) > 100, "the plain coercion was not installed on the commands"
    kinds = set()
    for cmd, param in params:
        ctx = Context(cmd)
        descriptor = param.type_descriptor
        kinds.add(repr(descriptor.annotation))
        reference = typer_coercion.build_runtime_param(descriptor)
        for value in _candidates(descriptor.annotation):
            if value is None:
                continue
            assert _outcome(param._runtime_param, value, param, ctx) == _outcome(reference, value, param, ctx), \
                f"{cmd.name} {param.name} ({descriptor.annotation!r}): {value!r}"
    assert {"<class 'str'>", "<class 'bool'>", "<class 'int'>", "<class 'float'>", "<class 'pathlib.Path'>",
            "list[str]"} <= kinds


def test_the_help_option_is_given_the_plain_coercion_when_a_command_makes_it():
    from typer._click import Context

    root = build_command()
    render = root.commands["render"]
    option = render.get_help_option(Context(render))
    assert isinstance(option._runtime_param, coercion.PlainParam)


def test_render_never_imports_pydantic_and_a_bad_choice_still_says_what_is_allowed(tmp_path):
    plan = ROOT / "fixtures" / "plans" / "image_bump.json"
    env = {**os.environ, "TFREVIEW_NATIVE": os.environ.get("TFREVIEW_NATIVE", "1")}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tfreview", "render", str(plan),
                           "--format", "text", "--action", "update", "--full"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode in (0, 4), proc.stderr[-2000:]
    assert "Resource changes" in proc.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")]
    assert "tfreview.cli" in imported
    assert not [m for m in imported if m.startswith("pydantic")], "render imported pydantic"
    bad = subprocess.run([sys.executable, "-m", "tfreview", "render", str(plan), "--format", "yaml"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "'yaml' is not one of 'text', 'markdown', 'html', 'json'" in bad.stderr
    assert "Traceback" not in bad.stderr
