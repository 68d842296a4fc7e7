"""Test harness (not shipped): run `tfreview ARGS`, killing the process with SIGKILL right after its Nth write to
a local store, as `kill -9` from an operator or a CI runner would at that moment.

    python tests/kill_after.py N ARGS...

N = 0 never kills. TFREVIEW_TEST_WRITES_LOG=FILE appends one line per write ("N method key")."""
from __future__ import annotations

import os
import signal
import sys
from typing import Any

from tfreview.store.local import LocalStore


def _instrument(kill_at: int, log: str | None) -> None:
    count = 0

    def wrap(name: str) -> None:
        original = getattr(LocalStore, name)

        def wrapped(self: LocalStore, key: str, *args: Any, **kwargs: Any) -> Any:
            nonlocal count
            result = original(self, key, *args, **kwargs)
            count += 1
            if log:
                with open(log, "a") as fh:
                    fh.write(f"{count} {name} {key}\n")
            if count == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(LocalStore, name, wrapped)

    for method in ("create", "write", "replace", "delete"):
        wrap(method)


if __name__ == "__main__":
    _instrument(int(sys.argv[1]), os.environ.get("TFREVIEW_TEST_WRITES_LOG"))
    from tfreview.cli import main

    main(sys.argv[2:])
