"""Name checks: apps, versions, environments, plan ids and identities, end to end (a base module: every layer
checks names with it, it imports nothing above it).
"""
from __future__ import annotations

import re

from tfreview.errors import BadInput


_APP = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$")
_ENV = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_PLAN_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


def check_name(kind: str, value: str) -> str:
    """`value` if it is a valid `kind` (app, version, env, plan id: the whole string, end to end; person: any
    identity without control characters, not blank), else BadInput naming it."""
    if kind == "person":
        return check_person(value, "person")
    pattern = {"app": _APP, "version": _VERSION, "env": _ENV, "plan id": _PLAN_ID}[kind]
    if not pattern.fullmatch(value or ""):  # not match(): `$` would accept a trailing newline
        hints = {
            "app": "use lowercase letters, digits and dashes (at most 21 characters), e.g. --app webapp",
            "version": "use a tag like 1.2.3 (letters, digits, '.', '_', '+', '-')",
            "env": "use a lowercase name like sandbox, qa or prod",
            "plan id": "copy the id printed by `tfreview plan` or listed by `tfreview history`",
        }
        raise BadInput(f"invalid {kind} {value!r}", hints[kind])
    return value


def check_person(value: str, what: str) -> str:
    """An identity (who acts, who is searched for): not blank, at most 256 characters, no control or format
    characters (they would be recorded and shown to others). `what` names its source in the error."""
    from tfreview.text import UNSAFE

    if not value.strip() or len(value) > 256 or UNSAFE.search(value):
        raise BadInput(f"invalid {what} {value!r}",
                       "an identity is a name or e-mail address on one line, without control characters")
    return value


def check_names(**names: str | None) -> None:
    """check_name for each given filter (keyword = kind with '_' for ' ': app, env, version, plan_id, person)."""
    for kind, value in names.items():
        if value is not None:
            check_name(kind.replace("_", " "), value)
