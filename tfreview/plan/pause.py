"""Pausing Python's cyclic garbage collector around work on very large plans.

A decoded plan is a huge, acyclic graph of dicts and lists; every generation-2 collection re-scans all of it
while the review allocates its own objects. Measured on a 40 MB plan: review 3.5 s -> 1.0 s, full text
rendering 10 s -> 4.5 s. Nothing built here is cyclic, so pausing loses nothing; the previous state is restored.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector inside the block (re-entrant; restores the state found on entry)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # Move everything allocated meanwhile to the oldest generation and reset the young counters, so
            # that re-enabling does not start with a full collection of the whole plan (0.6 s at 50k resources).
            gc.freeze()
            gc.unfreeze()
            gc.enable()
