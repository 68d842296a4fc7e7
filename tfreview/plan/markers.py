"""The values that stand for others in a diff tree: sensitive, known after apply, a collapsed container.

Their own module (not `diff`'s): `diff` may be compiled (tfreview/native.py), and a compiled module cannot
define a subclass of `str`.
"""
from __future__ import annotations


class Marker(str):
    """A value that stands for something else and is printed verbatim, never quoted."""

    __slots__ = ()


SENSITIVE = Marker("(sensitive value)")
UNKNOWN = Marker("(known after apply)")
COMPLEX = Marker("{...}")
COMPLEX_LIST = Marker("[...]")
