"""Test harness (not shipped): run `tfreview ARGS` with the local store's audit/ folder read-only, as a full disk, a
read-only mount or a permission change would make it. The tests run as root, who may write anywhere, so the
read-only folder is simulated (a named fake): every write under audit/ fails as the filesystem would, with EROFS.

    python tests/audit_readonly.py WHEN ARGS...

WHEN = "now": from the start; "after-apply": once terraform apply has run (the audit folder turns read-only in the
middle of an apply)."""
from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

from tfreview.store.local import LocalStore

READ_ONLY = [False]


def _instrument(when: str) -> None:
    original_tmp = LocalStore._tmp

    def _tmp(self: LocalStore, target: Path, data: bytes, private: bool) -> str:
        if READ_ONLY[0] and "audit" in target.relative_to(self.root).parts[:1]:
            from tfreview.errors import StoreError

            exc = OSError(errno.EROFS, os.strerror(errno.EROFS))
            raise StoreError(f"cannot write {target}: {exc.strerror}", "check the store directory's permissions")
        return original_tmp(self, target, data, private)

    LocalStore._tmp = _tmp  # type: ignore[method-assign]
    if when == "now":
        READ_ONLY[0] = True
        return
    from tfreview.terraform import Terraform

    original_apply = Terraform.apply

    def apply(self: Terraform, *args: Any, **kwargs: Any) -> Any:
        result = original_apply(self, *args, **kwargs)
        READ_ONLY[0] = True
        return result

    Terraform.apply = apply  # type: ignore[method-assign]


if __name__ == "__main__":
    _instrument(sys.argv[1])
    from tfreview.cli import main

    main(sys.argv[2:])
