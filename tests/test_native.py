"""The compiled modules (tfreview/native.py): used only while fresh, and the same bytes as pure Python.

`make` builds them with mypyc into .native/; these tests need that build and are skipped, with the reason, where
it could not be made (no C compiler). The fallback test runs on a copy of the package, so it edits nothing here.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data.corpus import data_plans, fixture_plans, peer_plans
from tfreview import native

ROOT = Path(__file__).resolve().parent.parent
# Where each compiled module is imported from (a .so of .native/, or its .py).
WHICH = "import importlib\n" + "".join(
    f"print(importlib.import_module({name.removesuffix('.py').replace('/', '.')!r}).__file__)\n" for name in native.COMPILED)


needs_build = pytest.mark.skipif(not native.fresh(), reason="no fresh compiled build in .native/: `make native` "
                                 "(needs mypy's mypyc and a C compiler) builds it, or says why it cannot")


def _run(code: str, root: Path, **env: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root), **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.splitlines()


@needs_build
def test_a_fresh_build_is_used_and_tfreview_native_0_turns_it_off():
    assert all(f.endswith(".so") and "/.native/" in f for f in _run(WHICH, ROOT)), "the compiled modules are not used"
    assert all(f.endswith(".py") for f in _run(WHICH, ROOT, TFREVIEW_NATIVE="0"))


@needs_build
def test_an_edited_source_a_damaged_stamp_or_another_python_fall_back_to_pure_python(tmp_path):
    """A compiled module must never run in place of a source edited since: any change to what it was built
    from (here a module it does not even import) turns the whole build off until `make` rebuilds it."""
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "tfreview", copy / "tfreview", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(native.BUILD, copy / ".native")  # copy2: sizes and mtimes kept, so the stamp still matches
    assert all(".native" in f for f in _run(WHICH, copy)), "the copy's build should be used before any edit"

    risk = copy / "tfreview" / "plan" / "risk.py"
    risk.write_text(risk.read_text() + "\n# edited\n")
    assert all(f.endswith(".py") for f in _run(WHICH, copy)), "a stale build was used after an edit"

    shutil.copy2(ROOT / "tfreview" / "plan" / "risk.py", risk)  # as built again: size and mtime of the original
    stamp = copy / ".native" / "stamp.json"
    data = json.loads(stamp.read_text())
    stamp.write_text(json.dumps({**data, "python": "cpython-399"}))
    assert all(f.endswith(".py") for f in _run(WHICH, copy)), "a build for another Python was used"
    stamp.write_text(json.dumps({**data, "compiled": list(native.COMPILED[:2])}))
    assert all(f.endswith(".py") for f in _run(WHICH, copy)), "a build of another list of modules was used"
    stamp.write_text("{not json")
    assert all(f.endswith(".py") for f in _run(WHICH, copy))


RENDER_ALL = """
import hashlib, json, sys
from pathlib import Path
from tfreview.plan import review_plan
from tfreview.render import render
out = {}
for name in sys.argv[1:]:
    review = review_plan(Path(name).read_bytes())
    for fmt in ("text", "markdown", "html", "json"):
        for full in (False, True):
            text = render(review, fmt, full=full)
            out[f"{Path(name).name} {fmt} full={full}"] = hashlib.sha256(text.encode()).hexdigest()
print(json.dumps(out))
"""


@needs_build
def test_compiled_and_pure_python_reviews_are_the_same_bytes():
    """Every plan of the corpora, in every format, whole and --full, rendered by each."""
    plans = [str(p) for p in (*data_plans(), *fixture_plans(), *peer_plans()[:60])]
    assert len(plans) >= 10
    code = RENDER_ALL.replace("sys.argv[1:]", json.dumps(plans))
    compiled = json.loads(_run(code, ROOT)[0])
    pure = json.loads(_run(code, ROOT, TFREVIEW_NATIVE="0")[0])
    assert compiled.keys() == pure.keys()
    differ = [k for k in compiled if compiled[k] != pure[k]]
    assert not differ, f"{len(differ)} renderings differ, e.g. {differ[:3]}"
