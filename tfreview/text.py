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
