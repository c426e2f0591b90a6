"""
The storage contract of the file service.

:class:`FileStore` is what every front-end (the line protocol in
``suite.files.server``, the HTTP front-end) needs from storage, and what
every backend (``suite.files.storage.Storage`` on a directory,
``suite.files.memory.MemoryStore`` in memory) provides.  Front-ends use
nothing else, so one backend can be swapped for another and one contract
test suite (``tests/files/test_contract.py``) holds every backend to it.

Rules every backend keeps:

- **Names** are checked with :func:`suite.files.wire.check_name` before
  anything else: ``bad-name``.
- **Limits are decided before data.**  :meth:`FileStore.begin_upload`
  refuses (``too-large``, ``quota-exceeded``, ``no-space``, ``exists``,
  ``busy``) before a byte is accepted, and *reserves* the upload's quota and
  space: an upload that would not fit next to those in progress is refused
  at once, never after its data.  The reservation ends with the upload
  (commit, abort, suspension).
- **Atomic.**  Nothing of an upload is visible (``list``, ``stat``,
  ``open``) until :meth:`Upload.commit` returns; when commit raises, nothing
  of it is visible and the name shows what it showed before (or nothing,
  when an ``overwrite`` failed after the old file was replaced).  Commit and
  its result always agree.
- **Resumable partials.**  A resumable upload (one that declared its sha256,
  or asked ``resumable=True``) that is aborted keeps its bytes as a partial
  for the backend's ``resume_ttl``; it has an opaque :attr:`Upload.upload_id`
  by which the HTTP front-end (tus) finds it again.
- **Quota** is a running total of stored bytes, O(1) per upload.
- **Thread.**  Every method is called from the reactor thread and never
  blocks it: backends run blocking I/O elsewhere and answer with coroutines.

Errors are :class:`suite.files.wire.FileError` with a stable
:class:`suite.files.wire.ErrorCode`; anything else is a server fault.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

from suite.files.wire import ErrorCode, FileError, StoredFile

__all__ = [
    "ErrorCode",
    "FileError",
    "FileStore",
    "OpenedFile",
    "PartialUpload",
    "StoredFile",
    "Upload",
    "partial_key",
]


def partial_key(name: str) -> str:
    """
    The id of ``name``'s resumable partial: there is at most one per name,
    so the line protocol (which resumes by name) and tus (by id) meet.
    40 hexadecimal digits, safe in a URL and a file name.
    """
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:40]


@dataclass(frozen=True)
class PartialUpload:
    """A resumable upload put aside: what :meth:`FileStore.partial` tells."""

    upload_id: str
    name: str
    size: int
    #: Bytes held so far: the next byte to send.
    offset: int
    sha256: str | None
    overwrite: bool


class OpenedFile:
    """
    A stored file opened for reading: its description and its bytes.

    :attr:`stored` describes the very bytes opened, so a concurrent
    overwrite never pairs one version's bytes with another's digest.
    :attr:`file` is positioned at 0 and may be read from the reactor thread
    in large steps (a ``FileSender``); :attr:`fd` is a real file descriptor
    for ``os.sendfile`` when the backend has one, else ``None``.  Close it
    when done.
    """

    def __init__(self, stored: StoredFile, file: BinaryIO, fd: int | None = None) -> None:
        self.stored = stored
        self.file = file
        self.fd = fd

    def close(self) -> None:
        """Release the file; idempotent."""
        self.file.close()

    def __enter__(self) -> OpenedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@runtime_checkable
class Upload(Protocol):
    """
    One upload in progress.  Bytes go in with :meth:`write`, in order, at
    most :attr:`remaining`; then exactly one of :meth:`commit`,
    :meth:`abort` or :meth:`suspend` ends it.

    Flow control: :attr:`pending` is how many accepted bytes still wait for
    the backend; a front-end stops reading from its client while that is
    high, and :attr:`on_written` (set by the front-end) is called each time
    it fell.
    """

    name: str
    size: int
    #: The declared sha256 (lowercase hex), checked at commit, or ``None``.
    sha256: str | None
    overwrite: bool
    #: Where this session started: bytes a resumed partial already held.
    offset: int
    #: Bytes held so far (``offset`` plus what was written since).
    received: int
    pending: int
    on_written: Callable[[], None] | None
    #: The opaque id of a resumable upload, ``None`` for a plain one.
    upload_id: str | None

    @property
    def remaining(self) -> int:
        """Bytes still expected: ``size - received``."""

    def write(self, data: bytes) -> None:
        """
        Accept the next bytes (``len(data) <= remaining``).  Never blocks;
        a storage failure is kept and raised by :meth:`commit`.
        """

    async def commit(self) -> StoredFile:
        """
        Every byte came (``remaining == 0``): make the file visible.

        :raises FileError: ``checksum-mismatch`` (declared sha256 differs),
            ``disk-full``, ``exists`` (the name appeared meanwhile),
            ``quota-exceeded``, ``internal-error``.  Whatever is raised,
            nothing of this upload is visible and nothing is left behind.
        """

    async def abort(self, *, keep: bool = True) -> bool:
        """
        The upload will not complete.  A resumable upload keeps its bytes
        as a partial when ``keep`` and no storage error happened; otherwise
        everything is removed.  Returns whether a partial was kept.
        """

    async def suspend(self) -> PartialUpload:
        """
        Put a resumable upload aside between requests (tus ``PATCH``):
        everything written is made durable and the reservation ends.

        :raises FileError: ``bad-command`` for a plain upload; the error a
            write failed with (then the partial is discarded).
        """

    async def truncate(self, offset: int) -> None:
        """
        Forget every byte from ``offset`` on (``self.offset <= offset <=
        received``): a chunk whose checksum failed (tus) is dropped.
        """


@runtime_checkable
class FileStore(Protocol):
    """Stored files, uploads in progress and their limits.  See the module doc."""

    #: Largest upload in bytes (``None``: no limit).
    max_file_size: int | None
    #: Most bytes stored in total (``None``: no quota).
    quota: int | None

    @property
    def stored_bytes(self) -> int:
        """Bytes in stored files now (O(1))."""

    async def list(self) -> list[StoredFile]:
        """Every stored file, sorted by name (non-regular entries never)."""

    async def stat(self, name: str) -> StoredFile:
        """:raises FileError: ``bad-name``, ``not-found``."""

    async def open(self, name: str) -> OpenedFile:
        """Open a stored file for reading.  :raises FileError: ``bad-name``, ``not-found``."""

    async def begin_upload(
        self,
        name: str,
        size: int,
        sha256: str | None = None,
        *,
        overwrite: bool = False,
        resume: bool = False,
        resumable: bool | None = None,
    ) -> Upload:
        """
        Start receiving ``name`` (``size`` bytes), with its quota and space
        reserved.  ``resume`` continues a partial of the same name, size and
        sha256 (at :attr:`Upload.offset`); with no such partial it starts at
        0.  ``resumable`` (default: whether ``sha256`` is given) keeps an
        aborted upload's bytes as a partial.

        :raises FileError: ``bad-name``, ``bad-size``, ``busy``, ``exists``,
            ``too-large``, ``quota-exceeded``, ``no-space``.
        """

    async def resume_upload(self, upload_id: str) -> Upload:
        """
        Continue a partial by its id at the offset it holds, with its
        reservation taken again.

        :raises FileError: ``not-found``, ``busy`` (open elsewhere),
            ``quota-exceeded``, ``no-space``.
        """

    async def partial(self, upload_id: str) -> PartialUpload:
        """What a partial holds (also while open).  :raises FileError: ``not-found``."""

    async def discard_partial(self, upload_id: str) -> None:
        """Remove a partial that is not open.  :raises FileError: ``not-found``, ``busy``."""
