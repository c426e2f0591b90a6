"""
Reading the storage directory: ``open``, ``stat`` and ``list`` of
:class:`suite.files.storage.Storage` (this mixin's class), and the rule
behind them: only regular files with valid names are ever opened or
listed (FIFOs, sockets, devices, symlinks and directories never are), and
a file's digest comes from the index when its inode, size and mtime still
match, else it is hashed (off the reactor thread) and remembered.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer, task

from suite.files.contract import OpenedFile
from suite.files.index import Index
from suite.files.upload import hash_fd
from suite.files.wire import ErrorCode, FileError, StoredFile, check_name

__all__ = ["Reading"]


def _not_found(name: str) -> FileError:
    return FileError(ErrorCode.NOT_FOUND, f"there is no file called {name}")


class Reading:
    """The reading half of a storage directory (a mixin of ``Storage``; see the module doc)."""

    root: Path
    fs: Any
    run: Callable[..., defer.Deferred[Any]]
    clock: Any
    index: Index
    #: Files :meth:`list` looks at per turn of the reactor.
    LIST_STEP = 2048

    async def ready(self) -> None:
        raise NotImplementedError

    def _path(self, name: str) -> str:
        raise NotImplementedError

    def _open_regular(self, path: str) -> tuple[int, os.stat_result] | None:
        """Blocking: open a regular file for reading; ``None`` for anything else."""
        try:
            # lstat first: a device or FIFO is never even opened.
            if not stat.S_ISREG(self.fs.lstat(path).st_mode):
                return None
            fd = self.fs.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.ENXIO):
                return None
            raise
        st = self.fs.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped since the lstat
            self.fs.close(fd)
            return None
        return fd, st

    async def _describe_fd(self, name: str, fd: int, st: os.stat_result) -> StoredFile:
        entry = self.index.get(name)
        if entry is not None and entry.sha256 is not None and entry.matches(st):
            return StoredFile(name, st.st_size, entry.sha256, st.st_mtime)
        hasher = await self.run(hash_fd, fd, hashlib.sha256())
        self.index.set(name, st.st_size, hasher.hexdigest(), st)
        return StoredFile(name, st.st_size, hasher.hexdigest(), st.st_mtime)

    async def open(self, name: str) -> OpenedFile:
        """Open a stored file for reading.  :raises FileError: bad-name, not-found."""
        path = self._path(name)
        await self.ready()
        opened = await self.run(self._open_regular, path)
        if opened is None:
            raise _not_found(name)
        fd, st = opened
        try:
            stored = await self._describe_fd(name, fd, st)
        except BaseException:
            self.fs.close(fd)
            raise
        return OpenedFile(stored, os.fdopen(fd, "rb"), fd)

    async def stat(self, name: str) -> StoredFile:
        """Size, sha256 and time of a stored file.  :raises FileError: bad-name, not-found."""
        opened = await self.open(name)
        opened.close()
        return opened.stored

    def _scan_files(self) -> list[tuple[str, os.stat_result]]:
        """Blocking: every regular file with a valid name, and its lstat."""
        found = []
        for entry in self.fs.scandir(self.root):
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            try:
                check_name(entry.name)
                found.append((entry.name, entry.stat(follow_symlinks=False)))
            except (FileError, OSError):
                continue
        return found

    async def list(self) -> list[StoredFile]:
        """Every stored file, by name; files put there by other means are hashed."""
        await self.ready()
        version = self.index.version
        found = await self.run(self._scan_files)
        files = []
        seen = set()
        for count, (name, st) in enumerate(found, 1):
            if count % self.LIST_STEP == 0:
                # A big directory: let other clients have the reactor in between.
                await task.deferLater(self.clock, 0)
            seen.add(name)
            entry = self.index.get(name)
            if entry is not None and entry.sha256 is not None and entry.matches(st):
                files.append(StoredFile(name, st.st_size, entry.sha256, st.st_mtime))
                continue
            opened = await self.run(self._open_regular, self._path(name))
            if opened is None:
                continue
            fd, st = opened
            try:
                files.append(await self._describe_fd(name, fd, st))
            finally:
                self.fs.close(fd)
        # Forget files gone from the directory, not those stored since the scan.
        for name in [n for n, e in self.index.entries.items() if n not in seen and e.version <= version]:
            self.index.drop(name)
        return sorted(files, key=lambda f: f.name)
