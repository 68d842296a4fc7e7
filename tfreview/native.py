"""Compiled twins of the hottest modules of a big review, used only while they match their source.

`make` compiles `tfreview/plan/diff.py` (the diff trees), `tfreview/render/lines.py` (their text lines),
`tfreview/plan/ecs.py` (the ECS stories and the container definitions' cleaning) and `tfreview/plan/parse.py`
(the plan document read into changes) with mypyc (scripts/build_native.py) into `.native/`, beside the package rather than in it: a compiled module in the
package would shadow its `.py` even after an edit. A package puts its directory of `.native/` first on its
`__path__` only while the build's stamp matches what it was built from: the Python, and the size and mtime of
every source that could change what was compiled (`SOURCES`). An edit, a checkout, another Python or a failed
build all fall back to the pure-Python modules, which stay the reference: both give the same bytes
(tests/test_native.py). `TFREVIEW_NATIVE=0` turns the compiled modules off.

Why: the full text review of a 10,000-resource plan spends about 0.7 s building and writing its trees; compiled,
about 0.45 s; `ecs` and `parse` compiled take a further 10% off the whole review's CPU (docs/benchmarks.md).
"""
from __future__ import annotations

import json
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".native"
STAMP = BUILD / "stamp.json"
COMPILED = ("tfreview/plan/diff.py", "tfreview/render/lines.py", "tfreview/plan/ecs.py", "tfreview/plan/parse.py")
# What the compiled modules were type-checked against: their packages' modules, and the two others they import.
SOURCES = ("tfreview/plan", "tfreview/render", "tfreview/errors.py", "tfreview/jsontext.py")


def source_state() -> dict[str, list[int]]:
    """Size and mtime (ns) of every `.py` of `SOURCES`, by path relative to the checkout."""
    files: list[Path] = []
    for name in SOURCES:
        path = ROOT / name
        files.extend(sorted(path.glob("*.py")) if path.is_dir() else [path])
    state = {}
    for path in files:
        st = path.stat()
        state[path.relative_to(ROOT).as_posix()] = [st.st_size, st.st_mtime_ns]
    return state


def build_tag() -> str:
    """The interpreter a build is for (its compiled modules load in no other)."""
    return f"{sys.implementation.cache_tag}-{sys.version}"


def is_fresh(stamp: Any, state: dict[str, list[int]], tag: str) -> bool:
    """A build's stamp matches the sources, the interpreter and the list of modules to compile as they are now."""
    return (isinstance(stamp, dict) and stamp.get("python") == tag and stamp.get("sources") == state
            and stamp.get("compiled") == list(COMPILED))


@cache
def fresh() -> bool:
    """There is a build, and its stamp matches the sources and the interpreter (checked once per process)."""
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):  # no build (a plain install, no compiler), or a damaged stamp
        return False
    return is_fresh(stamp, source_state(), build_tag())


def use(package_path: list[str], package: str) -> None:
    """Search `package`'s compiled modules first (see the module doc), when there is a fresh build of them."""
    here = BUILD / package.replace(".", "/")
    if os.environ.get("TFREVIEW_NATIVE") != "0" and fresh() and here.is_dir():
        package_path.insert(0, str(here))

