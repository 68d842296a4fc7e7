"""The entry files of the audit log as `read_log` needs them, the sealed ones compared with their segments in a
second process.

On the local store `audit verify` compares every entry file of a sealed segment byte for byte with its line in the
segment (tfreview.store.audit): at 10^5 entries that is 10^5 opens and reads, mostly system calls, half of the
command's CPU. `Child` runs that work in a forked process, on the machine's other CPU, while this one parses the
segments and checks signatures, policy and records. The work is a generator of messages: first what the walk of the
chain needs at once (`Unsealed`: the bytes of the entry files no segment covers, the names that are not entries),
then, when every sealed entry file has been read, the segments whose files are not exactly their lines
(`mismatches`). Where a child cannot be forked (no `fork`, other threads running, fork failed) or dies, the same
generator runs in this process: the checks are the same either way, only the time differs.
"""
from __future__ import annotations

import os
import pickle
import re
import struct
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from tfreview.errors import TfreviewError

_ENTRY_NAME = re.compile(r"^audit/entries/(\d{12})\.json$")


@dataclass(frozen=True)
class Unsealed:
    """The entries' folder as the chain's walk needs it: `files`, the bytes of each entry file no sealed segment
    covers (seq -> bytes, None when it vanished between the listing and the read), and `strays`, the keys there
    that are not an entry's name."""

    files: dict[int, bytes | None]
    strays: list[str]


def segment_lines(raw: bytes) -> list[bytes]:
    """The entries' bytes of a segment as stored (after its seal line), one per line, each with its newline."""
    return raw.partition(b"\n")[2].splitlines(keepends=True)


def split_listing(keys: Sequence[str], sealed: Mapping[int, int], size: int
                  ) -> tuple[list[tuple[int, str]], list[tuple[int, str]], list[str]]:
    """(sealed, unsealed, strays) of the entries' folder listing `keys`: (seq, key) of the entry files inside the
    sealed segments (`sealed`: first seq -> how many lines it holds), of the others, and the keys that are not an
    entry's name. Segments hold `size` entries. Pure."""
    inside: list[tuple[int, str]] = []
    outside: list[tuple[int, str]] = []
    strays: list[str] = []
    match = _ENTRY_NAME.match
    for key in keys:
        m = match(key)
        if m is None:
            strays.append(key)
            continue
        seq = int(m.group(1))
        first = (seq - 1) // size * size + 1
        (inside if seq - first < sealed.get(first, 0) else outside).append((seq, key))
    return inside, outside, strays


def mismatches(got: Sequence[tuple[int, bytes | None]], lines_of: Mapping[int, list[bytes]],
               size: int) -> dict[int, tuple[int, bool]]:
    """For each sealed segment (first seq -> its lines in `lines_of`) whose entry files (`got`: (seq, bytes or None)
    of those read) are not exactly its lines: the first entry that is not, and whether its file is missing. Pure."""
    slots: dict[int, list[bytes | None]] = {first: [None] * len(lines) for first, lines in lines_of.items()}
    for seq, raw in got:
        first = (seq - 1) // size * size + 1
        slots[first][seq - first] = raw
    out: dict[int, tuple[int, bool]] = {}
    for first, mine in slots.items():
        lines = lines_of[first]
        if mine != lines:  # one comparison of the lists at C speed; the loop only to name the entry
            at = next(i for i, (file, line) in enumerate(zip(mine, lines, strict=True)) if file != line)
            out[first] = (first + at, mine[at] is None)
    return out


def can_fork() -> bool:
    """Whether `Child` may fork here: the platform has `fork` and this process runs no other thread (a child of a
    threaded process may inherit a lock another thread held, and Python 3.12 warns about it)."""
    return hasattr(os, "fork") and threading.active_count() == 1


_LENGTH = struct.Struct(">Q")


class Child:
    """The messages of `work()` (a generator function), produced in a forked child when `fork` and `can_fork()`,
    else here; `next()` returns them in order. Errors of tfreview's own that the work raises (a folder that cannot
    be read...) are raised by `next()` as met. `close()` (or leaving a `with` block) reaps the child."""

    def __init__(self, work: Callable[[], Iterator[Any]], *, fork: bool = True) -> None:
        self._work = work
        self._here: Iterator[Any] | None = None
        self._taken = 0
        self._pid = 0
        self._fd = -1
        if fork and can_fork():
            self._start()

    @property
    def forked(self) -> bool:
        """Whether the messages come from a child process."""
        return self._pid != 0

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

    def next(self) -> Any:
        """The work's next message."""
        if self._pid:
            got = self._receive()
            if got is not None:
                self._taken += 1
                ok, value = got
                if ok:
                    return value
                kind, message, hint = value
                raise kind(message, hint)
            self.close()  # the child died (killed, out of memory...): the rest is done here
        if self._here is None:
            self._here = self._work()
            for _ in range(self._taken):  # what the child sent already
                next(self._here)
        self._taken += 1
        return next(self._here)

    def _receive(self) -> tuple[bool, Any] | None:
        head = self._read(_LENGTH.size)
        if head is None:
            return None
        body = self._read(_LENGTH.unpack(head)[0])
        return None if body is None else pickle.loads(body)

    def _read(self, n: int) -> bytes | None:
        parts, left = [], n
        while left:
            part = os.read(self._fd, min(left, 1 << 22))
            if not part:
                return None
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    def close(self) -> None:
        """Stop listening to the child and reap it (a child still writing gets a broken pipe and leaves)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._pid:
            os.waitpid(self._pid, 0)
            self._pid = 0

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _child(work: Callable[[], Iterator[Any]], rfd: int, wfd: int) -> None:  # pragma: no cover (in the child)
    """Send each message of `work()` (or tfreview's error it raised) through `wfd`, and leave at once: nothing of
    the parent's (atexit handlers, buffered output, pytest's machinery) runs twice."""
    code = 1
    try:
        os.close(rfd)
        messages = work()
        while True:
            try:
                payload: tuple[bool, Any] = (True, next(messages))
            except StopIteration:
                break
            except TfreviewError as exc:
                payload = (False, (type(exc), exc.message, exc.hint))
            data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(_LENGTH.pack(len(data)) + data)
            while view:
                view = view[os.write(wfd, view):]
            if not payload[0]:
                break
        code = 0
    except BaseException:  # noqa: BLE001 (the parent does the rest itself when the child sends nothing more)
        pass
    finally:
        os._exit(code)
