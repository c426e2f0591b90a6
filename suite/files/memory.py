"""
An in-memory :class:`suite.files.contract.FileStore`, for tests and
embedders that want the file service without a disk.

Same rules as the directory backend (``suite.files.storage``): limits
checked and reserved before data, atomic commits, resumable partials with
ids, an O(1) quota total.  ``capacity`` plays the disk's size, so
``no-space`` can be tested too.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.interfaces import IReactorTime

from suite._reactor import or_global_reactor
from suite.files.contract import OpenedFile, PartialUpload, partial_key
from suite.files.wire import ErrorCode, FileError, StoredFile, check_name

__all__ = ["MemoryStore", "MemoryUpload"]

DEFAULT_MAX_FILE_SIZE = 4 << 30


@dataclass
class _Partial:
    name: str
    size: int
    sha256: str | None
    overwrite: bool
    data: bytearray = field(default_factory=bytearray)


class MemoryStore:
    """
    Stored files in a dict.

    :param max_file_size: largest upload (``None``: no limit).
    :param quota: most bytes stored in total (``None``: none).
    :param capacity: bytes the "disk" holds: stored files, partials and
        reservations together (``None``: unlimited).
    :param clock: time source for modification times.
    """

    def __init__(
        self,
        *,
        max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
        quota: int | None = None,
        capacity: int | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        self.max_file_size = max_file_size
        self.quota = quota
        self.capacity = capacity
        self.clock = or_global_reactor(clock)
        self._files: dict[str, tuple[StoredFile, bytes]] = {}
        self._partials: dict[str, _Partial] = {}
        self._open: dict[str, MemoryUpload] = {}
        self._stored = 0
        self._reserved_quota = 0
        self._reserved_space = 0

    # -- reading ---------------------------------------------------------------

    @property
    def stored_bytes(self) -> int:
        return self._stored

    async def list(self) -> list[StoredFile]:
        return [self._files[name][0] for name in sorted(self._files)]

    async def stat(self, name: str) -> StoredFile:
        return self._get(name)[0]

    async def open(self, name: str) -> OpenedFile:
        stored, data = self._get(name)
        return OpenedFile(stored, io.BytesIO(data), None)

    def _get(self, name: str) -> tuple[StoredFile, bytes]:
        check_name(name)
        try:
            return self._files[name]
        except KeyError:
            raise FileError(ErrorCode.NOT_FOUND, f"there is no file called {name}") from None

    # -- uploads ---------------------------------------------------------------

    def _used(self) -> int:
        """Stored bytes, partials put aside, and the whole size of uploads in progress."""
        return self._stored + sum(
            p.size if p.name in self._open else len(p.data) for p in self._partials.values()
        )

    def _reserve(self, name: str, size: int, offset: int, overwrite: bool) -> tuple[int, int]:
        """Check limits for ``size - offset`` more bytes; return the (quota, space) reserved."""
        existing = self._files[name][0].size if name in self._files else 0
        if name in self._files and not overwrite:
            raise FileError(ErrorCode.EXISTS, f"{name} exists; ask to overwrite it")
        if self.max_file_size is not None and size > self.max_file_size:
            raise FileError(ErrorCode.TOO_LARGE, f"{size} bytes is over the limit of {self.max_file_size}")
        quota = max(0, size - existing)
        if self.quota is not None and self._stored + self._reserved_quota + quota > self.quota:
            raise FileError(ErrorCode.QUOTA_EXCEEDED, f"storing {size} more bytes would exceed the quota of {self.quota}")
        space = size - offset
        held = sum(len(p.data) for p in self._partials.values() if p.name == name)
        if self.capacity is not None and self._used() - held + size > self.capacity:
            raise FileError(ErrorCode.NO_SPACE, f"{size} bytes do not fit")
        self._reserved_quota += quota
        self._reserved_space += space
        return quota, space

    async def begin_upload(
        self, name: str, size: int, sha256: str | None = None, *,
        overwrite: bool = False, resume: bool = False, resumable: bool | None = None,
    ) -> MemoryUpload:
        check_name(name)
        if size < 0:
            raise FileError(ErrorCode.BAD_SIZE, "the size is negative")
        if name in self._open:
            raise FileError(ErrorCode.BUSY, f"{name} is being uploaded by another client")
        resumable = sha256 is not None if resumable is None else resumable
        key = partial_key(name)
        partial = self._partials.get(key)
        if not (resume and partial and (partial.size, partial.sha256) == (size, sha256) and len(partial.data) <= size):
            partial = _Partial(name, size, sha256, overwrite)
        # Checked before an older partial is dropped: a refusal changes nothing.
        reserved = self._reserve(name, size, len(partial.data), overwrite)
        partial.overwrite = overwrite
        self._partials[key] = partial  # a fresh start replaces an older partial
        return self._start(key if resumable else None, partial, reserved)

    async def resume_upload(self, upload_id: str) -> MemoryUpload:
        partial = self._partials.get(upload_id)
        if partial is None:
            raise FileError(ErrorCode.NOT_FOUND, "there is no such partial upload")
        if partial.name in self._open:
            raise FileError(ErrorCode.BUSY, f"{partial.name} is being uploaded by another client")
        reserved = self._reserve(partial.name, partial.size, len(partial.data), partial.overwrite)
        return self._start(upload_id, partial, reserved)

    def _start(self, upload_id: str | None, partial: _Partial, reserved: tuple[int, int]) -> MemoryUpload:
        upload = MemoryUpload(self, upload_id, partial, reserved)
        self._open[partial.name] = upload
        return upload

    async def partial(self, upload_id: str) -> PartialUpload:
        p = self._partials.get(upload_id)
        if p is None:
            raise FileError(ErrorCode.NOT_FOUND, "there is no such partial upload")
        return PartialUpload(upload_id, p.name, p.size, len(p.data), p.sha256, p.overwrite)

    async def discard_partial(self, upload_id: str) -> None:
        p = self._partials.get(upload_id)
        if p is None:
            raise FileError(ErrorCode.NOT_FOUND, "there is no such partial upload")
        if p.name in self._open:
            raise FileError(ErrorCode.BUSY, f"{p.name} is being uploaded by another client")
        del self._partials[upload_id]

    def _end(self, upload: MemoryUpload) -> None:
        self._open.pop(upload.name, None)
        self._reserved_quota -= upload._reserved[0]
        self._reserved_space -= upload._reserved[1]
        upload._reserved = (0, 0)


class MemoryUpload:
    """An upload into a :class:`MemoryStore`; see :class:`suite.files.contract.Upload`."""

    def __init__(self, store: MemoryStore, upload_id: str | None, partial: _Partial, reserved: tuple[int, int]) -> None:
        self.store = store
        self.upload_id = upload_id
        self.name = partial.name
        self.size = partial.size
        self.sha256 = partial.sha256
        self.overwrite = partial.overwrite
        self.offset = len(partial.data)
        self.pending = 0
        self.on_written: Callable[[], None] | None = None
        self._partial = partial
        self._reserved = reserved
        self._ended = False

    @property
    def received(self) -> int:
        return len(self._partial.data)

    @property
    def remaining(self) -> int:
        return self.size - self.received

    def write(self, data: bytes) -> None:
        if self._ended:
            raise FileError(ErrorCode.INTERNAL, "the upload has ended")
        if len(data) > self.remaining:
            raise FileError(ErrorCode.TOO_LONG, f"more than the declared {self.size} bytes came")
        self._partial.data += data

    def _finish(self, keep: bool) -> None:
        if not self._ended:
            self._ended = True
            if not keep or self.upload_id is None:
                self.store._partials.pop(partial_key(self.name), None)
            self.store._end(self)

    async def commit(self) -> StoredFile:
        store = self.store
        try:
            if self._ended:
                raise FileError(ErrorCode.INTERNAL, "the upload has ended")
            if self.remaining:
                raise FileError(ErrorCode.SHORT, f"the data ended after {self.received} of {self.size} bytes")
            data = bytes(self._partial.data)
            digest = hashlib.sha256(data).hexdigest()
            if self.sha256 is not None and digest != self.sha256:
                raise FileError(
                    ErrorCode.CHECKSUM_MISMATCH,
                    f"received data has sha256 {digest}, not the declared {self.sha256}; nothing was stored",
                )
            old = store._files.get(self.name)
            if old is not None and not self.overwrite:
                raise FileError(ErrorCode.EXISTS, f"{self.name} exists; ask to overwrite it")
            existing = old[0].size if old else 0
            if store.quota is not None and store._stored - existing + self.size > store.quota:
                raise FileError(ErrorCode.QUOTA_EXCEEDED, f"storing {self.size} bytes would exceed the quota")
            stored = StoredFile(self.name, self.size, digest, store.clock.seconds())
            store._files[self.name] = (stored, data)
            store._stored += self.size - existing
            return stored
        finally:
            self._finish(keep=False)

    async def abort(self, *, keep: bool = True) -> bool:
        kept = keep and self.upload_id is not None and not self._ended
        self._finish(kept)
        return kept

    async def suspend(self) -> PartialUpload:
        if self.upload_id is None:
            raise FileError(ErrorCode.BAD_COMMAND, "a plain upload cannot be put aside")
        self._finish(keep=True)
        return await self.store.partial(self.upload_id)

    async def truncate(self, offset: int) -> None:
        if not self.offset <= offset <= self.received:
            raise ValueError(f"cannot truncate to {offset}")
        del self._partial.data[offset:]

    def __repr__(self) -> Any:
        return f"<MemoryUpload {self.name!r} {self.received}/{self.size}>"
