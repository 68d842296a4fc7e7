#!/usr/bin/env python3
"""Compile tfreview's hottest modules (`native.COMPILED`) with mypyc into .native/ (see tfreview/native.py); `make` runs this.

Optional by design: without mypyc or a C compiler, or when a build fails, this says so in one line and leaves
no stamp, and tfreview runs its pure-Python modules (the same output, slower on big plans). Exit 0 either way,
unless --strict.

Does nothing when the build is fresh (tfreview/native.py); `make` runs it every time.

Usage: .venv/bin/python scripts/build_native.py [--strict]
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tfreview import native  # noqa: E402  (the checkout's, not an installed copy)


def build() -> str | None:
    """Build into a temporary directory, then move it into place with its stamp; the reason on failure."""
    mypyc = Path(sys.executable).parent / "mypyc"
    if not mypyc.exists():
        return "mypyc is not installed (pip install mypy)"
    state = native.source_state()  # before compiling: an edit meanwhile leaves the build stale, never wrong
    with tempfile.TemporaryDirectory(prefix="tfreview-native-") as tmp:
        work = Path(tmp)
        for source in native.COMPILED:  # one at a time: each module's runtime library stays in its package
            (work / Path(source).parent).mkdir(parents=True, exist_ok=True)
            proc = subprocess.run([str(mypyc), str(native.ROOT / source)], cwd=work, capture_output=True, text=True)
            if proc.returncode != 0:
                last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                return f"mypyc {source} failed: {last[0]}"
        for scratch in ("build", ".mypy_cache"):
            shutil.rmtree(work / scratch, ignore_errors=True)
        for leftover in work.glob("*.so"):  # nothing belongs at the top (one module per build)
            leftover.unlink()
        (work / "stamp.json").write_text(json.dumps({"python": native.build_tag(), "sources": state,
                                                            "compiled": list(native.COMPILED)}, indent=1))
        shutil.copytree(work, native.BUILD)
    return None


def main() -> int:
    strict = "--strict" in sys.argv[1:]
    if native.fresh():  # what `tfreview` would use is up to date: the stamp is the one list of sources
        return 0
    shutil.rmtree(native.BUILD, ignore_errors=True)  # a failed build must not leave an older one in use
    reason = build()
    if reason is None:
        print(f"compiled {', '.join(native.COMPILED)} into {native.BUILD.relative_to(native.ROOT)}/")
        return 0
    print(f"tfreview runs pure Python: {reason}", file=sys.stderr)
    return 1 if strict else 0


if __name__ == "__main__":
    sys.exit(main())
