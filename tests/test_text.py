"""tfreview.text: the one function that keeps untrusted text from driving the terminal, and the console using it."""
from __future__ import annotations

import io
import json
import re
import sys
import unicodedata

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tfreview.console import SafeConsole
from tfreview.text import UNSAFE, UNSAFE_IN_LINES, _escape, json_safe, visible

DANGEROUS = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def test_the_unsafe_class_is_every_control_format_separator_and_surrogate_character():
    missed, extra = [], []
    for cp in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(cp))
        hit = UNSAFE.match(chr(cp)) is not None
        if category in DANGEROUS and not hit:
            missed.append(hex(cp))
        elif hit and category not in DANGEROUS and category != "Cn":  # Cn: format characters of newer Unicode
            extra.append(hex(cp))
    assert not missed and not extra, (missed[:10], extra[:10])


def test_visible_escapes_what_a_terminal_would_obey_and_keeps_lines():
    assert visible("a\x1b[31mb\x9bc\u202ed\ttab\nnext\r") == "a\\x1b[31mb\\x9bc\\u202ed\ttab\nnext\\x0d"
    assert visible("one\ntwo", keep_lines=False) == "one\\x0atwo"
    assert visible("\U000e0041 tag") == "\\U000e0041 tag"
    assert visible("plain ünïcode → ✓") == "plain ünïcode → ✓"


def test_json_safe_keeps_the_values_and_escapes_the_characters():
    doc = {"k\u2066": "x\u202e\x9b\U000e0041\x1b", "n": [1, 2]}
    text = json.dumps(doc, ensure_ascii=False, indent=2)
    safe = json_safe(text)
    assert json.loads(safe) == doc
    assert not UNSAFE.search(safe.replace("\n", ""))


def test_safe_console_prints_escapes_and_keeps_its_own_styles_and_widths():
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, width=60, force_terminal=True, color_system="standard")
    text = Text("name ")
    text.append("evil\x1b]52;c;aGk=\x1b\\\u202e", style="bold red")
    console.print(Panel(text))
    table = Table("who")
    table.add_row("mallory\x1b[2J")
    console.print(table)
    console.print("str \x9b31m", markup=False)
    out = buffer.getvalue()
    raw = [out[i:i + 4] for i in range(len(out)) if out[i] == "\x1b" and out[i + 1:i + 2] != "["]
    assert not raw, f"a non-style escape reached the terminal: {raw}"
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)  # rich's own styles
    assert "\\x1b]52;c;aGk=" in out and "\\u202e" in out and "mallory\\x1b[2J" in out and "\\x9b31m" in out
    plain = SafeConsole(file=io.StringIO(), width=60, color_system=None)
    plain.print(Panel(text))
    lines = plain.file.getvalue().splitlines()
    assert len({len(line) for line in lines}) == 1, "the panel's borders line up around the escaped text"
    assert "\x1b" not in plain.file.getvalue()


def test_safe_console_reads_no_markup_so_a_name_cannot_become_a_link():
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, width=80, force_terminal=True, color_system="standard")
    table = Table("planned by")
    table.add_row("[link=https://evil.example]alice[/link]")
    console.print(table)
    console.print("[link=https://evil.example]bob[/link]")
    out = buffer.getvalue()
    assert "\x1b]8;" not in out, "an OSC 8 hyperlink was written"
    assert "[link=https://evil.example]alice[/link]" in out


def test_visible_escapes_every_unsafe_character_wherever_it_is():
    # `visible` runs its regex only over what is not printable ASCII: same result as the regex over the whole text.
    for cp in range(sys.maxunicode + 1):
        text = f"plain {chr(cp)}\ttext\n"
        assert visible(text) == UNSAFE_IN_LINES.sub(_escape, text), hex(cp)
        assert visible(text, keep_lines=False) == UNSAFE.sub(_escape, text), hex(cp)
