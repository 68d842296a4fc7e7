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
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

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


def line_count(raw: bytes) -> int:
    """`len(segment_lines(raw))`, without making the lines (no copy of the 720 KB): the newlines after the seal
    line, one more when the last line has none. Pure."""
    start = raw.find(b"\n") + 1
    if not start:
        return 0
    if raw.find(b"\r", start) >= 0:  # splitlines splits there too: let it count
        return len(segment_lines(raw))
    return raw.count(b"\n", start) + (0 if raw.endswith(b"\n") else 1)


def sealed_names(counts: Mapping[int, int]) -> list[str]:
    """The names (in the entries' folder: tfreview.store.audit.entry_key without its folder) of the entry files the
    sealed segments cover (`counts`: first seq -> how many lines the segment holds), segment after segment, in seq
    order."""
    return [f"{seq:012d}.json" for first, count in counts.items() for seq in range(first, first + count)]


def others(keys: Iterable[str], prefix: str, sealed: set[str]) -> tuple[list[tuple[int, str]], list[str]]:
    """(unsealed, strays) of the listing `keys` of the entries' folder `prefix`: (seq, key) of the entry files no
    sealed segment covers (`sealed`: their names, `sealed_names`), sorted, and the keys that are not an entry's
    name. Pure."""
    unsealed: list[tuple[int, str]] = []
    strays: list[str] = []
    cut = len(prefix)
    for key in [key for key in keys if key[cut:] not in sealed or not key.startswith(prefix)]:  # the few
        m = _ENTRY_NAME.match(key)
        if m is None:
            strays.append(key)
        else:
            unsealed.append((int(m.group(1)), key))
    return sorted(unsealed), sorted(strays)


def mismatches(lines_of: Mapping[int, list[bytes]], files: Sequence[bytes | None]) -> dict[int, tuple[int, bool]]:
    """For each sealed segment (first seq -> its lines in `lines_of`) whose entry files (`files`: the bytes of each,
    None when missing, in the order of `sealed_names`) are not exactly its lines: the first entry that is not, and
    whether its file is missing. Pure."""
    out: dict[int, tuple[int, bool]] = {}
    at = 0
    for first, lines in lines_of.items():
        mine = files[at:at + len(lines)]
        at += len(lines)
        if mine != lines:  # one comparison of the lists at C speed; the loop only to name the entry
            i = next(i for i, (file, line) in enumerate(zip(mine, lines, strict=True)) if file != line)
            out[first] = (first + i, mine[i] is None)
    return out


Reader = Callable[[list[str]], Sequence["bytes | None"]]  # the bytes of entry files by name (None: missing)


def compare(groups: Iterable[Sequence[int]], lines_of: Callable[[int], list[bytes]],
            read: Reader) -> tuple[set[int], dict[int, tuple[int, bool]]]:
    """(the segments compared, `mismatches` among them) for each group of sealed segments (their first seqs) in
    `groups`: their entry files read by `read`, compared with their lines (`lines_of(first)`)."""
    covered: set[int] = set()
    found: dict[int, tuple[int, bool]] = {}
    for group in groups:
        lines = {first: lines_of(first) for first in group}
        found.update(mismatches(lines, read(sealed_names({first: len(got) for first, got in lines.items()}))))
        covered.update(group)
    return covered, found


_TOKEN = struct.Struct(">I")
MAX_GROUPS = 512  # tokens in the pipe: 2 KiB, within any pipe's buffer (POSIX: at least 512 bytes atomic), never blocking


class Shares:
    """The sealed segments' entry files, shared out between `Child`'s process and this one: the segments are cut
    into groups (at most MAX_GROUPS), one token per group is written into a pipe before the fork, and whichever
    process is free takes the next token (`take`; a read of one token from a pipe is one read of 4 bytes, which
    the kernel never splits between two readers). So the child compares from the start of the log and this
    process joins in once its own checks are done, and both end at about the same time whatever the load. Every
    group is taken exactly once; `settle` still compares here any group the child took and did not report (it
    died). Without a pipe (none could be made), the child's side takes every group and this side none."""

    def __init__(self, firsts: Sequence[int]) -> None:
        size = -(-len(firsts) // MAX_GROUPS) or 1
        self.groups = [list(firsts[i:i + size]) for i in range(0, len(firsts), size)]
        self._fd = -1
        try:
            rfd, wfd = os.pipe()
        except OSError:
            return
        try:
            os.write(wfd, b"".join(_TOKEN.pack(i) for i in range(len(self.groups))))
        finally:
            os.close(wfd)  # every token is in: an empty pipe reads as the end, never blocks
        self._fd = rfd

    def take(self, *, helper: bool = False) -> Iterator[list[int]]:
        """The groups this process takes, one at a time (`helper`: this side, which takes none without a pipe)."""
        if self._fd < 0:
            yield from ([] if helper else self.groups)
            return
        while len(got := os.read(self._fd, _TOKEN.size)) == _TOKEN.size and (i := _TOKEN.unpack(got)[0]) < len(
                self.groups):  # anything else (the pipe's end) stops: `settle` compares what is left
            yield self.groups[i]

    def settle(self, child: "Child", lines_of: Callable[[int], list[bytes]],
               read: Reader) -> dict[int, tuple[int, bool]]:
        """`mismatches` of every sealed segment: the groups left when this process gets here, compared here, then
        the child's findings (its last message: `compare` of what it took), then any group neither compared."""
        covered, found = compare(self.take(helper=True), lines_of, read)
        theirs, more = child.next()
        covered |= theirs
        found.update(more)
        _rest, rest = compare([g for g in self.groups if not covered.issuperset(g)], lines_of, read)
        found.update(rest)
        self.close()
        return found

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


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
