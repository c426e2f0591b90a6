"""
The storage directory of the file service.

Rules (docs/protocols/files.md): uploads go to hidden temporary files
created exclusively with mode 0600, are fsynced and verified, and only then
are linked or renamed into place, so a partial, short, over-long or
checksum-failed upload is never visible.  An interrupted upload that
declared its sha256 keeps its data as a partial for ``resume_ttl`` seconds.
Stored files' sizes and sha256 digests are kept in a hidden index, checked
against each file's inode, size and mtime.

Blocking disk work (writes, fsync, hashing) runs through ``run`` (a thread
by default), so the reactor keeps serving other clients.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from suite._reactor import or_global_reactor
from suite.files.wire import ErrorCode, FileError, StoredFile, check_name

__all__ = ["Storage", "StoredFile", "UploadSession"]

log = Logger()

Runner = Callable[..., defer.Deferred[Any]]

#: Bytes gathered before one disk write: large writes, not one per read.
BLOCK = 1 << 20
_HASH_CHUNK = 1 << 20


def _thread_runner(f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    from twisted.internet.threads import deferToThread

    return deferToThread(f, *args)


def _hash_fd(fd: int, hasher: Any, length: int | None = None) -> Any:
    """Feed ``length`` bytes (all, if None) from the start of ``fd`` into ``hasher``."""
    position = 0
    while length is None or position < length:
        want = _HASH_CHUNK if length is None else min(_HASH_CHUNK, length - position)
        chunk = os.pread(fd, want, position)
        if not chunk:
            break
        hasher.update(chunk)
        position += len(chunk)
    return hasher


def _hash_blocks(hasher: Any, blocks: list[bytes]) -> None:
    for block in blocks:
        hasher.update(block)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class Storage:
    """
    A directory of stored files, with the limits that protect it.

    :param root: the directory (created if missing).
    :param max_file_size: largest upload in bytes (``None``: no limit).
    :param quota: most bytes stored in total (``None``: no quota).
    :param min_free: bytes of free disk space an upload must leave.
    :param resume_ttl: seconds an interrupted upload's data is kept.
    :param clock: time source (the reactor).
    :param run: runs blocking disk work; returns a Deferred.
    """

    INDEX = ".netsuite-index.json"
    DEFAULT_MAX_FILE_SIZE = 4 << 30
    DEFAULT_MIN_FREE = 64 << 20
    DEFAULT_RESUME_TTL = 3600.0

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
        quota: int | None = None,
        min_free: int = DEFAULT_MIN_FREE,
        resume_ttl: float = DEFAULT_RESUME_TTL,
        clock: IReactorTime | None = None,
        run: Runner = _thread_runner,
    ) -> None:
        clock = or_global_reactor(clock)
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.max_file_size = max_file_size
        self.quota = quota
        self.min_free = min_free
        self.resume_ttl = resume_ttl
        self.clock = clock
        self.run = run
        self.uploading: set[str] = set()
        #: Names whose upload is finishing or being aborted, with who waits for that.
        self._settling: dict[str, list[defer.Deferred[None]]] = {}
        self._reserved = 0
        self._index: dict[str, dict[str, Any]] = self._load_index()
        self.sweep(startup=True)

    # -- paths and the index ---------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    @staticmethod
    def _partial_key(name: str) -> str:
        return hashlib.sha256(name.encode()).hexdigest()[:40]

    def _partial_paths(self, name: str) -> tuple[Path, Path]:
        key = self._partial_key(name)
        return self.root / f".part-{key}", self.root / f".part-{key}.json"

    def _load_index(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads((self.root / self.INDEX).read_text())
            return {k: v for k, v in data.items() if isinstance(v, dict)}
        except (OSError, ValueError, AttributeError):
            return {}

    def _save_index(self) -> None:
        temporary = self.root / f".tmp-index-{secrets.token_hex(8)}"
        temporary.write_text(json.dumps(self._index))
        os.replace(temporary, self.root / self.INDEX)

    def _remember(self, name: str, st: os.stat_result, sha256: str) -> StoredFile:
        self._index[name] = {"size": st.st_size, "sha256": sha256, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}
        return StoredFile(name, st.st_size, sha256, st.st_mtime)

    def _known(self, name: str, st: os.stat_result) -> StoredFile | None:
        entry = self._index.get(name)
        if entry and (entry.get("size"), entry.get("mtime_ns"), entry.get("ino")) == (
            st.st_size, st.st_mtime_ns, st.st_ino
        ):
            return StoredFile(name, st.st_size, entry["sha256"], st.st_mtime)
        return None

    @property
    def stored_bytes(self) -> int:
        """Bytes in stored files, as the index knows them."""
        return sum(int(entry.get("size", 0)) for entry in self._index.values())

    # -- housekeeping ------------------------------------------------------------

    def sweep(self, startup: bool = False) -> int:
        """
        Remove stale temporary files: every ``.tmp-*`` at start-up, and
        partial uploads older than ``resume_ttl``.  Returns how many files
        were removed.
        """
        removed = 0
        now = self.clock.seconds()
        for entry in os.scandir(self.root):
            name = entry.name
            if startup and name.startswith(".tmp-"):
                removed += self._unlink(entry.path)
            elif name.startswith(".part-") and not name.endswith(".json"):
                meta = self._read_meta(Path(entry.path + ".json"))
                if meta is None or (meta.get("name") not in self.uploading and now - meta.get("updated", 0) > self.resume_ttl):
                    removed += self._unlink(entry.path) + self._unlink(entry.path + ".json")
        if removed:
            log.info("removed {count} stale temporary file(s) from {root}", count=removed, root=str(self.root))
        return removed

    @staticmethod
    def _unlink(path: str | Path) -> int:
        try:
            os.unlink(path)
            return 1
        except FileNotFoundError:
            return 0

    @staticmethod
    def _read_meta(path: Path) -> dict[str, Any] | None:
        try:
            meta = json.loads(path.read_text())
            return meta if isinstance(meta, dict) else None
        except (OSError, ValueError):
            return None

    # -- uploads -------------------------------------------------------------------

    async def begin_upload(
        self, name: str, size: int, sha256: str | None = None, *, overwrite: bool = False, resume: bool = False
    ) -> UploadSession:
        """
        Start receiving ``name``: check every rule and limit before a byte is
        accepted, and find where a resumed upload continues.

        :raises FileError: bad-name, busy, exists, too-large,
            quota-exceeded or no-space.
        """
        path = self._path(name)
        if name in self._settling:
            # The last upload of this name is still being finished or put
            # aside (a client that reconnects at once to resume): wait.
            waiter: defer.Deferred[None] = defer.Deferred()
            self._settling[name].append(waiter)
            await waiter
        if name in self.uploading:
            raise FileError(ErrorCode.BUSY, f"{name} is being uploaded by another client")
        existing = 0
        if os.path.lexists(path):
            if not overwrite:
                raise FileError(ErrorCode.EXISTS, f"{name} exists; ask to overwrite it")
            existing = int(self._index.get(name, {}).get("size", 0))
        if self.max_file_size is not None and size > self.max_file_size:
            raise FileError(ErrorCode.TOO_LARGE, f"{size} bytes is over the limit of {self.max_file_size}")
        if self.quota is not None and self.stored_bytes - existing + self._reserved + size > self.quota:
            raise FileError(ErrorCode.QUOTA_EXCEEDED, f"storing {size} more bytes would exceed the quota of {self.quota}")
        self._check_free_space(size)
        self.uploading.add(name)
        self._reserved += size
        try:
            return await self._open_upload(name, size, sha256, overwrite, resume)
        except BaseException:
            self.uploading.discard(name)
            self._reserved -= size
            raise

    def _check_free_space(self, size: int) -> None:
        fs = os.statvfs(self.root)
        free = fs.f_bavail * fs.f_frsize
        if size + self.min_free > free:
            raise FileError(ErrorCode.NO_SPACE, f"{size} bytes do not fit: {free} bytes free, {self.min_free} kept spare")

    async def _open_upload(
        self, name: str, size: int, sha256: str | None, overwrite: bool, resume: bool
    ) -> UploadSession:
        part, meta_path = self._partial_paths(name)
        hasher = hashlib.sha256()
        offset = 0
        fd = -1
        if resume:
            meta = self._read_meta(meta_path)
            if meta and meta.get("size") == size and meta.get("sha256") == sha256 and part.exists():
                fd = os.open(part, os.O_WRONLY | os.O_APPEND)
                offset = os.fstat(fd).st_size
                if offset > size:
                    os.close(fd)
                    fd = -1
                    offset = 0
                else:
                    read_fd = os.open(part, os.O_RDONLY)
                    try:
                        hasher = await self.run(_hash_fd, read_fd, hasher, offset)
                    finally:
                        os.close(read_fd)
                    log.info("resuming upload of {name} at byte {offset}", name=name, offset=offset)
        if fd == -1:
            # A fresh start: any older partial of this name is dropped.
            self._unlink(part)
            self._unlink(meta_path)
            if sha256 is not None:
                path = part  # resumable if cut off
                meta_path.write_text(json.dumps({"name": name, "size": size, "sha256": sha256, "updated": self.clock.seconds()}))
            else:
                path = self.root / f".tmp-{secrets.token_hex(12)}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        else:
            path = part
        return UploadSession(self, name, size, sha256, overwrite, path, fd, offset, hasher)

    def _write_blocks(self, fd: int, blocks: list[bytes]) -> None:
        """Blocking: write blocks in order."""
        for block in blocks:
            self._write_block(fd, block)

    # Disk writes go through here, so tests can inject failures (ENOSPC).
    def _write_block(self, fd: int, block: bytes) -> None:
        _write_all(fd, block)

    def _commit(self, session: UploadSession) -> StoredFile:
        """Blocking: make a verified upload visible under its name."""
        final = self._path(session.name)
        if session.overwrite:
            os.replace(session.path, final)
        else:
            try:
                os.link(session.path, final)  # fails if the name appeared meanwhile
            except FileExistsError:
                raise FileError(ErrorCode.EXISTS, f"{session.name} exists; ask to overwrite it") from None
            os.unlink(session.path)
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        stored = self._remember(session.name, os.stat(final), session.hasher.hexdigest())
        self._save_index()
        return stored

    def _settle(self, session: UploadSession) -> None:
        """The session stops taking data; it is finishing or being aborted."""
        self._settling.setdefault(session.name, [])

    def _end_upload(self, session: UploadSession) -> None:
        self.uploading.discard(session.name)
        self._reserved -= session.size
        for waiter in self._settling.pop(session.name, []):
            waiter.callback(None)

    # -- reading -------------------------------------------------------------------

    async def describe(self, name: str) -> StoredFile:
        """Size, sha256 and time of a stored file.  :raises FileError: not-found."""
        f, stored = await self.open(name)
        f.close()
        return stored

    async def open(self, name: str) -> tuple[BinaryIO, StoredFile]:
        """
        Open a stored file for reading, never through a symlink.

        The description belongs to the very inode opened, so a concurrent
        overwrite cannot pair one file's bytes with another's digest.

        :raises FileError: bad-name or not-found.
        """
        check_name(name)
        try:
            fd = os.open(self._path(name), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EISDIR):
                raise FileError(ErrorCode.NOT_FOUND, f"there is no file called {name}") from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise FileError(ErrorCode.NOT_FOUND, f"there is no file called {name}")
            stored = self._known(name, st)
            if stored is None:
                hasher = await self.run(_hash_fd, fd, hashlib.sha256())
                stored = self._remember(name, st, hasher.hexdigest())
                self._save_index()
        except BaseException:
            os.close(fd)
            raise
        return os.fdopen(fd, "rb"), stored

    async def list(self) -> list[StoredFile]:
        """Every stored file, by name."""
        files = []
        names = set()
        for entry in os.scandir(self.root):
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            try:
                check_name(entry.name)
            except FileError:
                continue
            names.add(entry.name)
            stored = self._known(entry.name, entry.stat(follow_symlinks=False))
            if stored is None:
                try:
                    stored = await self.describe(entry.name)
                except FileError:
                    continue
            files.append(stored)
        for gone in set(self._index) - names:
            del self._index[gone]
        return sorted(files, key=lambda f: f.name)


class UploadSession:
    """
    One upload in progress: bytes in, in order, to a hidden file.

    Data is gathered into blocks of :data:`BLOCK` bytes, hashed and written
    off the reactor thread; blocks that arrive while a write is under way
    go together in the next one.  :attr:`pending`
    is what is waiting for the disk; the caller pauses its input while it
    is high, and :attr:`on_written` tells it when a write has finished.
    """

    def __init__(
        self, storage: Storage, name: str, size: int, sha256: str | None, overwrite: bool,
        path: Path, fd: int, offset: int, hasher: Any,
    ) -> None:
        self.storage = storage
        self.name = name
        self.size = size
        self.sha256 = sha256
        self.overwrite = overwrite
        self.path = path
        self.offset = offset
        self.received = offset
        self.hasher = hasher
        self.pending = 0
        #: Called each time a block reached the disk (``pending`` fell).
        self.on_written: Callable[[], None] | None = None
        self.failure: FileError | None = None
        self._fd = fd
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._queue: list[bytes] = []
        self._writing = False
        self._idle_waiters: list[defer.Deferred[None]] = []
        self._ended = False

    @property
    def remaining(self) -> int:
        """Bytes still expected."""
        return self.size - self.received

    def write(self, data: bytes) -> None:
        """Accept the next bytes of the file (never more than :attr:`remaining`)."""
        assert len(data) <= self.remaining
        self.received += len(data)
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered >= BLOCK:
            self._submit()

    def _submit(self) -> None:
        if not self._buffer:
            return
        block = self._buffer[0] if len(self._buffer) == 1 else b"".join(self._buffer)
        self._buffer.clear()
        self._buffered = 0
        self.pending += len(block)
        self._queue.append(block)
        self._pump()

    def _pump(self) -> None:
        """Hand every waiting block to the disk in one go, unless a write is under way."""
        if self._writing or not self._queue:
            if not self._writing and self._idle_waiters:
                waiters, self._idle_waiters = self._idle_waiters, []
                for waiter in waiters:
                    waiter.callback(None)
            return
        blocks, self._queue = self._queue, []
        size = sum(map(len, blocks))
        self._writing = True

        def failed(failure: Any) -> None:
            error = failure.value
            if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
                self.failure = FileError(ErrorCode.DISK_FULL, "the disk is full; nothing was stored")
            else:
                log.failure("writing {name} failed", failure, name=self.name)
                self.failure = FileError(ErrorCode.INTERNAL, "the server could not write the file")

        def written(_: None) -> None:
            self._writing = False
            self.pending -= size
            if self.on_written is not None:
                self.on_written()
            self._pump()

        if self.failure is not None:  # an earlier write failed: drop the rest
            d: defer.Deferred[Any] = defer.succeed(None)
        else:
            # One trip to the threads per batch, not per block: while the
            # disk works, the next blocks gather here.  Hashing and writing
            # run side by side (both release the GIL).
            hashed = self.storage.run(_hash_blocks, self.hasher, blocks)
            stored = self.storage.run(self.storage._write_blocks, self._fd, blocks)
            d = defer.gatherResults([stored, hashed], consumeErrors=True)
            d.addErrback(lambda f: f.value.subFailure if isinstance(f.value, defer.FirstError) else f)
        d.addErrback(failed).addCallback(written)

    def _flushed(self) -> defer.Deferred[None]:
        """Fires once every accepted byte has been written (or failed)."""
        self._submit()
        if not self._writing and not self._queue:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    async def finish(self) -> StoredFile:
        """
        All bytes are in: write the rest, fsync, verify and make the file visible.

        :raises FileError: disk-full, checksum-mismatch or exists; the
            temporary file is removed.
        """
        assert self.remaining == 0
        self.storage._settle(self)
        await self._flushed()
        try:
            if self.failure is not None:
                raise self.failure
            await self.storage.run(os.fsync, self._fd)
            digest = self.hasher.hexdigest()
            if self.sha256 is not None and digest != self.sha256:
                raise FileError(
                    ErrorCode.CHECKSUM_MISMATCH,
                    f"received data has sha256 {digest}, not the declared {self.sha256}; nothing was stored",
                )
            self._close_fd()
            stored = await self.storage.run(self.storage._commit, self)
            self._drop_meta()
            return stored
        except BaseException:
            self._discard()
            raise
        finally:
            self._end()

    async def abort(self) -> bool:
        """
        The upload will not complete.  Keep its data for resuming when it
        declared a sha256 and nothing went wrong on disk; otherwise remove
        it.  Returns whether the data was kept.
        """
        self.storage._settle(self)
        await self._flushed()
        keep = self.sha256 is not None and self.failure is None
        try:
            if keep:
                await self.storage.run(os.fsync, self._fd)
                self._close_fd()
                meta = self.storage._partial_paths(self.name)[1]
                meta.write_text(json.dumps({
                    "name": self.name, "size": self.size, "sha256": self.sha256,
                    "updated": self.storage.clock.seconds(),
                }))
                log.info("kept {bytes} bytes of {name} for resuming", bytes=self.received, name=self.name)
            else:
                self._discard()
        finally:
            self._end()
        return keep

    def _close_fd(self) -> None:
        if self._fd != -1:
            os.close(self._fd)
            self._fd = -1

    def _discard(self) -> None:
        self._close_fd()
        Storage._unlink(self.path)
        self._drop_meta()

    def _drop_meta(self) -> None:
        Storage._unlink(self.storage._partial_paths(self.name)[1])

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self.storage._end_upload(self)
