"""The entry files of the audit log as `read_log` needs them, and the sealed ones compared with their segments in a
second process.

On the local store `audit verify` compares every entry file of a sealed segment byte for byte with its line in the
segment (tfreview.store.audit.read_log): at 10^5 entries that is 10^5 opens and reads, mostly system calls, about
half of the command's CPU. `beside` runs that work in a forked child, on the machine's other CPU, while this process
reads and parses the segments; the child sends back only what the walk needs (`EntryFiles`: the bytes of the entry
files no segment covers, the names that are not entries, and the first entry of each segment whose file is missing
or not its line). Where a child cannot be forked (no `fork`, other threads running, fork failed) or died, the same
work runs in this process: the checks are the same either way, only the time differs.
"""
from __future__ import annotations

import os
import pickle
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterable, Iterator, Mapping, TypeVar
from contextlib import contextmanager

from tfreview.errors import TfreviewError

T = TypeVar("T")

_ENTRY_NAME = re.compile(r"^audit/entries/(\d{12})\.json$")


@dataclass(frozen=True)
class EntryFiles:
    """What the entry files hold, for the walk of the log: `files`, the bytes of each entry file no sealed segment
    covers (seq -> bytes, None when it vanished between the listing and the read); `strays`, the keys under the
    entries' folder that are not an entry's name; `mismatched`, for each sealed segment (its first seq) whose entry
    files are not exactly its lines, the first entry that is not and whether its file is missing."""

    files: dict[int, bytes | None] = field(default_factory=dict)
    strays: list[str] = field(default_factory=list)
    mismatched: dict[int, tuple[int, bool]] = field(default_factory=dict)


def segment_lines(raw: bytes) -> list[bytes]:
    """The entries' bytes of a segment as stored (after its seal line), one per line, each with its newline."""
    return raw.partition(b"\n")[2].splitlines(keepends=True)


def compare(listing: Iterable[tuple[str, bytes | None]], lines_of: Mapping[int, list[bytes]],
            size: int) -> EntryFiles:
    """`EntryFiles` of the entry files in `listing` ((key, bytes) of every object under the entries' folder; bytes
    None: vanished) against the sealed segments `lines_of` (first seq -> the segment's lines), whose segments hold
    `size` entries each. Pure."""
    out = EntryFiles()
    got: dict[int, list[bytes | None]] = {first: [None] * len(lines) for first, lines in lines_of.items()}
    match = _ENTRY_NAME.match
    for key, raw in listing:
        m = match(key)
        if m is None:
            out.strays.append(key)
            continue
        seq = int(m.group(1))
        first = (seq - 1) // size * size + 1
        slots = got.get(first)
        if slots is not None and seq - first < len(slots):
            slots[seq - first] = raw
        else:
            out.files[seq] = raw
    for first, slots in got.items():
        lines = lines_of[first]
        if slots != lines:  # one comparison of the lists at C speed; the loop only to name the entry
            at = next(i for i, (mine, line) in enumerate(zip(slots, lines)) if mine != line)
            out.mismatched[first] = (first + at, slots[at] is None)
    return out


def can_fork() -> bool:
    """Whether `beside` may fork here: the platform has `fork` and this process runs no other thread (a child of a
    threaded process may inherit a lock another thread held, and Python 3.12 warns about it)."""
    return hasattr(os, "fork") and threading.active_count() == 1


class Pending(Generic[T]):
    """`work()` started in a child process, or to be run here (see `beside`)."""

    def __init__(self, work: Callable[[], T], fork: bool) -> None:
        self._work = work
        self._pid = 0
        self._fd = -1
        if fork and can_fork():
            self._start()

    def _start(self) -> None:
        rfd, wfd = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(rfd)
            os.close(wfd)
            return
        if pid == 0:  # pragma: no cover (the child: coverage does not follow it)
            _child(self._work, rfd, wfd)
        os.close(wfd)
        self._pid, self._fd = pid, rfd

    def result(self) -> T:
        """The work's value: from the child when it sent one, else computed here. Errors of tfreview's own (a folder
        that cannot be read...) are raised here as the child met them."""
        if not self._pid:
            return self._work()
        chunks = []
        try:
            while chunk := os.read(self._fd, 1 << 20):
                chunks.append(chunk)
        finally:
            status = self.close()
        if status != 0 or not chunks:  # the child died (killed, out of memory...): do the work here
            return self._work()
        ok, value = pickle.loads(b"".join(chunks))
        if ok:
            return value  # type: ignore[no-any-return]
        kind, message, hint = value
        raise kind(message, hint)

    def close(self) -> int:
        """Stop listening to the child and reap it (its exit status; 0 when there is none). A child still writing
        gets a broken pipe and exits."""
        status = 0
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._pid:
            status = os.waitpid(self._pid, 0)[1]
            self._pid = 0
        return status


def _child(work: Callable[[], Any], rfd: int, wfd: int) -> None:  # pragma: no cover (runs in the child)
    """Run `work`, send its value (or tfreview's error it raised) through `wfd`, and leave at once: nothing of the
    parent's (atexit handlers, buffered output, pytest's machinery) runs twice."""
    code = 1
    try:
        os.close(rfd)
        try:
            payload: tuple[bool, Any] = (True, work())
        except TfreviewError as exc:
            payload = (False, (type(exc), exc.message, exc.hint))
        view = memoryview(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
        while view:
            view = view[os.write(wfd, view):]
        code = 0
    except BaseException:  # noqa: BLE001 (the parent does the work itself when the child sends nothing)
        pass
    finally:
        os._exit(code)


@contextmanager
def beside(work: Callable[[], T], *, fork: bool = True) -> Iterator[Pending[T]]:
    """`work()` running in a forked child (when `fork` and `can_fork()`) while the `with` block runs; `.result()`
    inside the block returns its value. Leaving the block reaps the child whatever happened."""
    pending = Pending(work, fork)
    try:
        yield pending
    finally:
        pending.close()
