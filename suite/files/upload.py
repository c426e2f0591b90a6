"""
One upload into the storage directory: the directory backend's
:class:`suite.files.contract.Upload`.

Data is gathered into blocks of :data:`BLOCK` bytes, hashed and written off
the reactor thread; blocks that arrive while a write is under way go
together in the next one.  Commit fsyncs, verifies, links (or renames)
into place and fsyncs the directory; if any step fails the file is taken
away again, so the caller's error and the directory agree.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from suite.files.contract import PartialUpload
from suite.files.index import write_all
from suite.files.wire import ErrorCode, FileError, StoredFile

if TYPE_CHECKING:
    from suite.files.storage import Storage

__all__ = ["BLOCK", "DiskUpload", "hash_fd", "os_error"]

log = Logger()

#: Bytes gathered before one disk write: large writes, not one per read.
BLOCK = 1 << 20
_HASH_CHUNK = 1 << 20


def hash_fd(fd: int, hasher: Any, length: int | None = None) -> Any:
    """Blocking: feed ``length`` bytes (all, if None) from the start of ``fd`` into ``hasher``."""
    position = 0
    while length is None or position < length:
        want = _HASH_CHUNK if length is None else min(_HASH_CHUNK, length - position)
        chunk = os.pread(fd, want, position)
        if not chunk:
            break
        hasher.update(chunk)
        position += len(chunk)
    return hasher


def os_error(error: OSError, doing: str) -> FileError:
    """The refusal a disk error means for the client; unexpected ones are logged."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return FileError(ErrorCode.DISK_FULL, "the disk is full; nothing was stored")
    if error.errno == errno.EFBIG:
        return FileError(ErrorCode.TOO_LARGE, "the file system refused a file this large; nothing was stored")
    log.error("{doing} failed: {error}", doing=doing, error=error)
    return FileError(ErrorCode.INTERNAL, "the server could not write the file; nothing was stored")


def _hash_blocks(hasher: Any, blocks: list[bytes]) -> None:
    for block in blocks:
        hasher.update(block)


class DiskUpload:
    """An upload in progress; see :class:`suite.files.contract.Upload`."""

    def __init__(
        self, storage: Storage, name: str, size: int, sha256: str | None, overwrite: bool,
        path: str, fd: int, offset: int, hasher: Any, upload_id: str | None,
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
        self.upload_id = upload_id
        self.pending = 0
        self.on_written: Callable[[], None] | None = None
        #: A disk error during a write: commit raises it.
        self.failure: FileError | None = None
        #: Quota and disk space still reserved for this upload.
        self.quota_held = 0
        self.space_held = 0
        self._fd = fd
        self._buffer: list[bytes] = []
        self._buffered = 0
        # Hashing and writing each take blocks from their own queue as soon
        # as they are free: a disk stall does not hold up the hashing, nor
        # a slow hash the disk.  A block stops being pending once both did it.
        self._queue: list[bytes] = []
        self._hash_queue: list[bytes] = []
        self._writing = False
        self._hashing = False
        self._submitted = self._written = self._hashed = 0
        self._idle_waiters: list[defer.Deferred[None]] = []
        self._ended = False

    @property
    def remaining(self) -> int:
        return self.size - self.received

    def write(self, data: bytes) -> None:
        if self._ended:
            raise FileError(ErrorCode.INTERNAL, "the upload has ended")
        if len(data) > self.remaining:
            raise FileError(ErrorCode.TOO_LONG, f"more than the declared {self.size} bytes came")
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
        self._submitted += len(block)
        self._queue.append(block)
        self._hash_queue.append(block)
        self._pump()

    def _failed(self, failure: Any) -> None:
        error = failure.value
        self.failure = os_error(error, f"writing {self.name}") if isinstance(error, OSError) else None
        if self.failure is None:
            log.failure("writing {name} failed", failure, name=self.name)
            self.failure = FileError(ErrorCode.INTERNAL, "the server could not write the file")

    def _done(self) -> None:
        """Some blocks were hashed or written: what both have done is no longer pending."""
        pending = self._submitted - min(self._written, self._hashed)
        if pending != self.pending:
            self.pending = pending
            if self.on_written is not None:
                self.on_written()
        self._pump()

    def _pump(self) -> None:
        """Hand every waiting block to the hashing and to the writing thread, each unless it is busy."""
        storage = self.storage
        if self._hash_queue and not self._hashing:
            # One trip to the threads per batch, not per block (hashing releases the GIL).
            blocks, self._hash_queue = self._hash_queue, []
            size = sum(map(len, blocks))
            self._hashing = True

            def hashed(_: None) -> None:
                self._hashing = False
                self._hashed += size
                self._done()

            d: defer.Deferred[Any] = storage.run(_hash_blocks, self.hasher, blocks)
            d.addErrback(self._failed).addCallback(hashed)
        if self._queue and not self._writing:
            blocks, self._queue = self._queue, []
            size = sum(map(len, blocks))
            self._writing = True

            def written(_: None) -> None:
                self._writing = False
                self._written += size
                # Those bytes are on the disk now: no longer promised.
                taken = min(size, self.space_held)
                self.space_held -= taken
                storage._reserved_space -= taken
                self._done()

            if self.failure is not None:  # an earlier write failed: drop the rest
                d = defer.succeed(None)
            else:
                d = storage.run(self._write_blocks, self._fd, blocks)
            d.addErrback(self._failed).addCallback(written)
        if not (self._writing or self._hashing or self._queue or self._hash_queue) and self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _write_blocks(self, fd: int, blocks: list[bytes]) -> None:
        """Blocking: write blocks in order."""
        for block in blocks:
            write_all(self.storage.fs, fd, block)

    def _flushed(self) -> defer.Deferred[None]:
        """Fires once every accepted byte has been written (or failed)."""
        self._submit()
        if not (self._writing or self._hashing or self._queue or self._hash_queue):
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    # -- the end -------------------------------------------------------------------

    async def commit(self) -> StoredFile:
        """See :meth:`suite.files.contract.Upload.commit`."""
        storage = self.storage
        if self._ended:
            raise FileError(ErrorCode.INTERNAL, "the upload has ended")
        storage.settle(self)
        try:
            await self._flushed()
            if self.failure is not None:
                raise self.failure
            if self.remaining:
                raise FileError(ErrorCode.SHORT, f"the data ended after {self.received} of {self.size} bytes")
            await storage.run(storage.fs.fsync, self._fd)
            digest = self.hasher.hexdigest()
            if self.sha256 is not None and digest != self.sha256:
                raise FileError(
                    ErrorCode.CHECKSUM_MISMATCH,
                    f"received data has sha256 {digest}, not the declared {self.sha256}; nothing was stored",
                )
            entry = storage.index.get(self.name)
            if storage.quota is not None and storage.index.total - (entry.size if entry else 0) + self.size > storage.quota:
                raise FileError(ErrorCode.QUOTA_EXCEEDED, f"storing {self.size} bytes would exceed the quota of {storage.quota}")
            st = await storage.run(self._commit_file)
            storage.index.set(self.name, self.size, digest, st)
            return StoredFile(self.name, self.size, digest, st.st_mtime)
        except OSError as e:
            await self._discard()
            raise os_error(e, f"storing {self.name}") from e
        except BaseException:
            await self._discard()
            raise
        finally:
            self._end()

    def _commit_file(self) -> os.stat_result:
        """Blocking: make the verified file visible under its name, or leave nothing visible."""
        fs = self.storage.fs
        st = fs.fstat(self._fd)
        fd, self._fd = self._fd, -1
        fs.close(fd)
        final = self.storage._path(self.name)
        try:
            if not stat.S_ISREG(fs.lstat(final).st_mode):
                raise FileError(ErrorCode.EXISTS, f"{self.name} exists and is not a regular file; it is never replaced")
        except FileNotFoundError:
            pass
        if self.overwrite:
            fs.replace(self.path, final)
        else:
            try:
                fs.link(self.path, final)  # fails if the name appeared meanwhile
            except FileExistsError:
                raise FileError(ErrorCode.EXISTS, f"{self.name} exists; ask to overwrite it") from None
        try:
            if not self.overwrite:
                fs.unlink(self.path)
            dir_fd = fs.open(str(self.storage.root), os.O_RDONLY | os.O_DIRECTORY)
            try:
                fs.fsync(dir_fd)
            finally:
                fs.close(dir_fd)
        except BaseException:
            # The caller will say the upload failed: then it must not be there.
            try:
                fs.unlink(final)
            except OSError as e:
                log.error("could not take back {name} after a failed commit: {error}", name=self.name, error=e)
            raise
        if self.upload_id is not None:
            try:
                fs.unlink(self.storage._partial_paths(self.upload_id)[1])
            except OSError:
                pass  # a description without its partial is swept
        return st

    async def _discard(self) -> None:
        """Remove everything of this upload (errors logged: the sweep finds the rest)."""
        fs = self.storage.fs

        def discard() -> None:
            if self._fd != -1:
                fd, self._fd = self._fd, -1
                fs.close(fd)
            for path in [self.path] + ([self.storage._partial_paths(self.upload_id)[1]] if self.upload_id else []):
                try:
                    fs.unlink(path)
                except FileNotFoundError:
                    pass

        try:
            await self.storage.run(discard)
        except OSError as e:
            log.error("could not remove the upload of {name}: {error}", name=self.name, error=e)

    async def _put_aside(self) -> None:
        """Keep what came for resuming: durable, described, closed."""
        storage = self.storage

        def put_aside() -> None:
            storage.fs.fsync(self._fd)
            fd, self._fd = self._fd, -1
            storage.fs.close(fd)
            assert self.upload_id is not None
            storage.write_meta(storage._partial_paths(self.upload_id)[1], {
                "name": self.name, "size": self.size, "sha256": self.sha256,
                "overwrite": self.overwrite, "updated": storage.clock.seconds(),
            })

        await storage.run(put_aside)

    async def abort(self, *, keep: bool = True) -> bool:
        """See :meth:`suite.files.contract.Upload.abort`."""
        if self._ended:
            return False
        self.storage.settle(self)
        try:
            await self._flushed()
            keep = keep and self.upload_id is not None and self.failure is None
            if keep:
                try:
                    await self._put_aside()
                    log.info("kept {bytes} bytes of {name} for resuming", bytes=self.received, name=self.name)
                except Exception:
                    log.failure("keeping the partial upload of {name}", name=self.name)
                    keep = False
            if not keep:
                await self._discard()
        finally:
            self._end()
        return keep

    async def suspend(self) -> PartialUpload:
        """See :meth:`suite.files.contract.Upload.suspend`."""
        if self.upload_id is None:
            raise FileError(ErrorCode.BAD_COMMAND, "a plain upload cannot be put aside")
        self.storage.settle(self)
        try:
            await self._flushed()
            if self.failure is not None:
                await self._discard()
                raise self.failure
            await self._put_aside()
        except OSError as e:
            await self._discard()
            raise os_error(e, f"putting aside {self.name}") from e
        finally:
            self._end()
        return PartialUpload(self.upload_id, self.name, self.size, self.received, self.sha256, self.overwrite)

    async def truncate(self, offset: int) -> None:
        """See :meth:`suite.files.contract.Upload.truncate`."""
        if not self.offset <= offset <= self.received:
            raise ValueError(f"cannot truncate to {offset}")
        await self._flushed()
        if self.failure is not None:
            raise self.failure
        fs = self.storage.fs

        def truncate() -> Any:
            fs.ftruncate(self._fd, offset)
            read_fd = fs.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                return hash_fd(read_fd, hashlib.sha256(), offset)
            finally:
                fs.close(read_fd)

        self.hasher = await self.storage.run(truncate)
        dropped = self.received - offset
        self.received = offset
        self.space_held += dropped
        self.storage._reserved_space += dropped

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self.storage.release(self)

    def __repr__(self) -> str:
        return f"<DiskUpload {self.name!r} {self.received}/{self.size}>"
