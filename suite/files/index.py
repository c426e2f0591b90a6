"""
The storage directory's index: each stored file's size and sha256, checked
against its inode, size and modification time, and the running total of
stored bytes (the quota's), O(1) per change.

The index lives in memory and is changed only on the reactor thread.  On
disk it is a journal of JSON lines (``.netsuite-index.jsonl``): a commit
appends one line; when the journal has grown to twice the entries it is
rewritten from a snapshot.  Every disk step runs through the storage's
``run`` (a thread), one at a time, in order.  The index is a cache: a lost
or damaged journal only means files are hashed again.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

__all__ = ["Entry", "Index", "write_all"]

log = Logger()


@dataclass(frozen=True)
class Entry:
    """What the index knows of one file; ``sha256`` is ``None`` until hashed."""

    size: int
    sha256: str | None
    mtime_ns: int
    ino: int
    #: The index's change counter when this entry was set.
    version: int = 0

    def matches(self, st: os.stat_result) -> bool:
        return (self.size, self.mtime_ns, self.ino) == (st.st_size, st.st_mtime_ns, st.st_ino)


def write_all(fs: Any, fd: int, data: bytes | memoryview) -> None:
    """Blocking: write every byte (``write`` may take fewer)."""
    view = memoryview(data)
    while view:
        view = view[fs.write(fd, view):]


def read_journal(path: str, fs: Any = os) -> tuple[dict[str, tuple[int, str, int, int]], int]:
    """Blocking: the entries a journal describes (later lines win; damaged lines skipped), and its line count."""
    entries: dict[str, tuple[int, str, int, int]] = {}
    lines = 0
    try:
        fd = fs.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return entries, lines
    with os.fdopen(fd, "rb") as f:
        for raw in f:
            lines += 1
            try:
                record = json.loads(raw)
                name = record["n"]
                if record.get("gone"):
                    entries.pop(name, None)
                else:
                    entries[name] = (int(record["s"]), str(record["h"]), int(record["m"]), int(record["i"]))
            except (ValueError, KeyError, TypeError):
                continue
    return entries, lines


def _line(name: str, entry: Entry | None) -> bytes:
    if entry is None:
        return json.dumps({"n": name, "gone": True}).encode() + b"\n"
    return json.dumps({"n": name, "s": entry.size, "h": entry.sha256, "m": entry.mtime_ns, "i": entry.ino}).encode() + b"\n"


class Index:
    """
    File name -> :class:`Entry`, with :attr:`total` bytes.

    :param path: the journal's path.
    :param run: runs blocking work (a thread); returns a Deferred.
    :param mode: permission bits of the journal.
    :param fs: the ``os``-like module disk calls go through (a test seam).
    """

    def __init__(self, path: str, run: Callable[..., defer.Deferred[Any]], mode: int = 0o600, fs: Any = os) -> None:
        self.path = path
        self.run = run
        self.mode = mode
        self.fs = fs
        self.entries: dict[str, Entry] = {}
        #: Bytes in every file the index knows: the quota's running total.
        self.total = 0
        self.version = 0
        self._lines = 0
        self._queue: list[bytes] = []
        self._writing = False
        self._compact_wanted = False
        self._rewrite_later = False
        self._idle: list[defer.Deferred[None]] = []

    def load(self, entries: Iterable[tuple[str, Entry]], journal_lines: int) -> None:
        """
        Replace everything (at start-up, on the reactor thread); rewrite the
        journal unless it says exactly what is known.
        """
        self.entries = dict(entries)
        self.total = sum(e.size for e in self.entries.values())
        self._lines = sum(1 for e in self.entries.values() if e.sha256 is not None)
        if self._lines != journal_lines:
            self._compact_wanted = True
            self._kick()

    def get(self, name: str) -> Entry | None:
        return self.entries.get(name)

    def set(self, name: str, size: int, sha256: str | None, st: os.stat_result) -> Entry:
        """Record a file (a commit, or a file found or hashed) and journal it."""
        self.version += 1
        entry = Entry(size, sha256, st.st_mtime_ns, st.st_ino, self.version)
        old = self.entries.get(name)
        self.total += size - (old.size if old else 0)
        self.entries[name] = entry
        if sha256 is not None:
            self._append(_line(name, entry))
        return entry

    def drop(self, name: str) -> None:
        """Forget a file that is gone."""
        old = self.entries.pop(name, None)
        if old is not None:
            self.version += 1
            self.total -= old.size
            self._append(_line(name, None))

    # -- the journal on disk -----------------------------------------------------

    def _append(self, line: bytes) -> None:
        self._queue.append(line)
        self._lines += 1
        if self._rewrite_later or self._lines > 2 * len(self.entries) + 1000:
            self._rewrite_later = False
            self._compact_wanted = True
        self._kick()

    def _kick(self) -> None:
        """Start the next disk step unless one is under way."""
        if self._writing:
            return
        if self._compact_wanted:
            self._compact_wanted = False
            self._queue.clear()
            # A copy in one C-level step; the lines are formatted in the
            # thread (entries are immutable), not on the reactor.
            snapshot = list(self.entries.items())
            self._lines = len(snapshot)
            self._step(self._rewrite, snapshot)
        elif self._queue:
            lines, self._queue = self._queue, []
            self._step(self._write_lines, lines)
        else:
            waiters, self._idle = self._idle, []
            for waiter in waiters:
                waiter.callback(None)

    def _step(self, f: Callable[[Any], None], lines: Any) -> None:
        self._writing = True

        def finished(result: Any) -> None:
            self._writing = False
            if isinstance(result, defer.Failure):
                # A cache: the files are fine; they are hashed again if needed.
                # Rewritten whole with the next change, not retried at once
                # (a full disk would make that a busy loop).
                log.warn("could not write the index {path}: {error}", path=self.path, error=result.value)
                self._rewrite_later = True
            self._kick()

        self.run(f, lines).addBoth(finished)

    def _write_lines(self, lines: list[bytes]) -> None:
        """Blocking: append to the journal."""
        fd = self.fs.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, self.mode)
        try:
            self.fs.fchmod(fd, self.mode)
            write_all(self.fs, fd, b"".join(lines))
        finally:
            self.fs.close(fd)

    def _rewrite(self, snapshot: list[tuple[str, Entry]]) -> None:
        """Blocking: write a fresh journal beside the old one, then swap them."""
        lines = [_line(n, e) for n, e in snapshot if e.sha256 is not None]
        directory = os.path.dirname(self.path)
        temporary = os.path.join(directory, f".tmp-index-{secrets.token_hex(8)}")
        fd = self.fs.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.mode)
        try:
            self.fs.fchmod(fd, self.mode)  # exactly, whatever the process umask
            for start in range(0, len(lines), 4096):
                write_all(self.fs, fd, b"".join(lines[start : start + 4096]))
            self.fs.fsync(fd)
        except BaseException:
            self.fs.close(fd)
            self.fs.unlink(temporary)
            raise
        self.fs.close(fd)
        try:
            self.fs.replace(temporary, self.path)
        except BaseException:
            self.fs.unlink(temporary)
            raise

    def flushed(self) -> defer.Deferred[None]:
        """Fires when every change so far is on disk (or failed and was logged)."""
        if not self._writing and not self._queue and not self._compact_wanted:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._idle.append(waiter)
        return waiter
