"""Untrusted text stays text: the one function that makes plan, store and user text safe to show.

Addresses, values, ECS names, reasons, identities and comments come from plans, stores and people. A terminal
obeys what they may carry (ESC/CSI colour and cursor codes, OSC 52 clipboard writes, OSC 8 links, C1 controls)
and bidi overrides make text read differently from what it is. `visible` replaces every such character with a
visible escape (`\\x1b`, `\\u202e`), so what is shown is what is there. Every renderer and every console of the
CLI applies it at its edge (`tfreview.console.SafeConsole`, `tfreview.render.render`, the error line).
Pure and stdlib-only: it runs on every output, including `--help`-fast paths and errors.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

from tfreview.errors import BadInput

# Unicode categories Cc (C0, DEL, C1), Cf (format: bidi embeddings/overrides/isolates, zero-width, BOM, tags...),
# Zl/Zp (line/paragraph separators) and Cs (lone surrogates). tests/test_text.py checks this class against
# unicodedata over every code point.
_OTHERS = (
    "\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
UNSAFE = re.compile(f"[\x00-\x1f{_OTHERS}]")
UNSAFE_IN_LINES = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")  # the same but tab (\x09) and newline (\x0a)
# Printable ASCII (and tab and newline when lines are kept): never unsafe, and most of any text (see `visible`).
_SAFE_ASCII = bytes(range(0x20, 0x7F))
_SAFE_ASCII_IN_LINES = _SAFE_ASCII + b"\t\n"


def _escape(match: re.Match[str]) -> str:
    cp = ord(match.group())
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def visible(text: str, *, keep_lines: bool = True) -> str:
    """`text` with every control, format, separator or surrogate character shown as an escape (`\\x1b`,
    `\\u202e`, `\\U000e0001`). Newlines and tabs stay unless `keep_lines` is False (one-line messages)."""
    pattern = UNSAFE_IN_LINES if keep_lines else UNSAFE
    # For speed on big reviews (12 MB of text: 0.12 s for the regex alone): one C pass drops the printable ASCII
    # from the UTF-8 bytes, and the regex scans only the characters left. The text is returned as it is when none
    # of those is unsafe; otherwise the whole text is escaped as always. (surrogatepass: lone surrogates survive
    # the round trip, and are escaped.)
    rest = text.encode("utf-8", "surrogatepass").translate(None, _SAFE_ASCII_IN_LINES if keep_lines else _SAFE_ASCII)
    if not pattern.search(rest.decode("utf-8", "surrogatepass")):
        return text
    return pattern.sub(_escape, text)


def json_safe(json_text: str) -> str:
    """JSON text with the same characters escaped the JSON way (`\\u001b`, `\\u202e`): the decoded values are
    unchanged, the raw text carries nothing a terminal obeys. Valid because JSON allows them only inside strings,
    where `\\uXXXX` means the same character (astral characters become surrogate pairs)."""
    def esc(match: re.Match[str]) -> str:
        cp = ord(match.group())
        if cp > 0xFFFF:
            cp -= 0x10000
            return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"
        return f"\\u{cp:04x}"

    # Serialisers escape C0 inside strings already; indentation's newlines are outside strings and stay.
    return UNSAFE_IN_LINES.sub(esc, json_text)


# -- names: apps, versions, environments, plan ids and identities, end to end ---------------------------------------
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


# -- the clock: now in UTC, and the one text form every record's times are written in --------------------------------
def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
