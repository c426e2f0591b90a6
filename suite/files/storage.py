"""
The storage directory of the file service: the directory backend of
:class:`suite.files.contract.FileStore`.

Uploads go to hidden files created exclusively with the storage's mode
(0600 unless ``umask`` says otherwise), are fsynced and verified, and only
then linked or renamed into place.  An interrupted resumable upload keeps
its data as a partial (``.part-ID`` and ``.part-ID.json``) for
``resume_ttl`` seconds.  Sizes and digests of stored files are kept by
:class:`suite.files.index.Index`, checked against each file's inode, size
and mtime; its running total is the quota's.

Every blocking call (open, write, fsync, link, statvfs, scandir, the
index) runs through ``run`` (a thread by default), and goes through
``fs``, an ``os``-like object (a seam for tests to inject ENOSPC, EIO).
State (the index, reservations, who uploads what) changes only on the
reactor thread, so there is nothing to lock.  Entries that are not regular
files (FIFOs, sockets, devices, symlinks, directories) are never opened,
listed or replaced.  Reading (``open``, ``stat``, ``list``) is the
:class:`suite.files.reading.Reading` mixin, resumable partials the
:class:`suite.files.partials.Partials` one.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from suite._reactor import or_global_reactor
from suite.files.contract import partial_key
from suite.files.index import Entry, Index, read_journal
from suite.files.partials import Partials
from suite.files.reading import Reading
from suite.files.upload import DiskUpload, hash_fd, os_error
from suite.files.wire import ErrorCode, FileError, check_name

__all__ = ["Storage"]

log = Logger()

Runner = Callable[..., defer.Deferred[Any]]


def _thread_runner(f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    from twisted.internet.threads import deferToThread

    return deferToThread(f, *args)


class Storage(Reading, Partials):
    """
    A directory of stored files, with the limits that protect it.

    :param root: the directory (created 0700 if missing).
    :param max_file_size: largest upload in bytes (``None``: no limit).
    :param quota: most bytes stored in total (``None``: no quota).
    :param min_free: bytes of free disk space uploads must leave.
    :param resume_ttl: seconds an interrupted upload's data is kept.
    :param umask: permission bits taken away from stored files, partials
        and the index (``0o077``: 0600).
    :param clock: time source (the reactor).
    :param run: runs blocking disk work; returns a Deferred.
    :param fs: the ``os``-like object every disk call goes through.
    """

    INDEX = ".netsuite-index.jsonl"
    DEFAULT_MAX_FILE_SIZE = 4 << 30
    DEFAULT_MIN_FREE = 64 << 20
    DEFAULT_RESUME_TTL = 3600.0
    DEFAULT_UMASK = 0o077

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
        quota: int | None = None,
        min_free: int = DEFAULT_MIN_FREE,
        resume_ttl: float = DEFAULT_RESUME_TTL,
        umask: int = DEFAULT_UMASK,
        clock: IReactorTime | None = None,
        run: Runner = _thread_runner,
        fs: Any = os,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.max_file_size = max_file_size
        self.quota = quota
        self.min_free = min_free
        self.resume_ttl = resume_ttl
        self.mode = 0o666 & ~umask
        self.clock = or_global_reactor(clock)
        self.run = run
        self.fs = fs
        self.index = Index(str(self.root / self.INDEX), run, self.mode, fs)
        #: Names being uploaded (or swept, or set up): the open upload, if any.
        self.uploading: dict[str, DiskUpload | None] = {}
        #: Names whose upload is finishing or being aborted, with who waits for that.
        self._settling: dict[str, list[defer.Deferred[None]]] = {}
        self._reserved_quota = 0
        self._reserved_space = 0
        self._loaded = False
        self._load_waiters: list[defer.Deferred[None]] | None = None

    # -- paths -----------------------------------------------------------------

    def _path(self, name: str) -> str:
        return str(self.root / check_name(name))

    @property
    def stored_bytes(self) -> int:
        """Bytes in stored files: the index's running total (O(1))."""
        return self.index.total

    # -- start-up and housekeeping -------------------------------------------------

    async def ready(self) -> None:
        """Load the index (off the reactor thread) once; every operation waits for it."""
        if self._loaded:
            return
        waiter: defer.Deferred[None] = defer.Deferred()
        if self._load_waiters is None:
            self._load_waiters = [waiter]
            d = self.run(self._scan_at_start, self.clock.seconds())

            def loaded(result: Any) -> None:
                waiters, self._load_waiters = self._load_waiters or [], None
                if isinstance(result, defer.Failure):
                    for w in waiters:
                        w.errback(result)
                    return
                entries, removed, lines = result
                self.index.load(entries, lines)
                self._loaded = True
                log.info("{root}: {count} stored file(s), {bytes} bytes; removed {removed} stale temporary file(s)",
                         root=str(self.root), count=len(entries), bytes=self.index.total, removed=removed)
                for w in waiters:
                    w.callback(None)

            d.addBoth(loaded)
        else:
            self._load_waiters.append(waiter)
        await waiter

    def _scan_at_start(self, now: float) -> tuple[list[tuple[str, Entry]], int, int]:
        """
        Blocking: remove stale temporary files; every regular file with what
        the journal knows of it; the removed count; the journal's length.
        """
        known, lines = read_journal(str(self.root / self.INDEX), self.fs)
        removed = self._unlink(str(self.root / ".netsuite-index.json"))  # the older format
        entries = []
        for entry in self.fs.scandir(self.root):
            name = entry.name
            if name.startswith(".tmp-"):
                removed += self._unlink(entry.path)
            elif name.startswith(".part-") and not name.endswith(".json"):
                removed += self._expire(entry.path, now)
            elif not name.startswith(".") and entry.is_file(follow_symlinks=False):
                try:
                    check_name(name)
                    st = entry.stat(follow_symlinks=False)
                except (FileError, OSError):
                    continue
                size, sha256, mtime_ns, ino = known.get(name, (st.st_size, None, -1, -1))
                digest = sha256 if (size, mtime_ns, ino) == (st.st_size, st.st_mtime_ns, st.st_ino) else None
                entries.append((name, Entry(st.st_size, digest, st.st_mtime_ns, st.st_ino)))
        return entries, removed, lines

    # -- uploads -------------------------------------------------------------------------

    async def begin_upload(
        self, name: str, size: int, sha256: str | None = None, *,
        overwrite: bool = False, resume: bool = False, resumable: bool | None = None,
    ) -> DiskUpload:
        """See :meth:`suite.files.contract.FileStore.begin_upload`."""
        check_name(name)
        if size < 0:
            raise FileError(ErrorCode.BAD_SIZE, "the size is negative")
        if self.max_file_size is not None and size > self.max_file_size:
            raise FileError(ErrorCode.TOO_LARGE, f"{size} bytes is over the limit of {self.max_file_size}")
        resumable = sha256 is not None if resumable is None else resumable
        return await self._start(name, size, sha256, overwrite, resume, resumable)

    async def _start(
        self, name: str, size: int, sha256: str | None, overwrite: bool, resume: bool, resumable: bool,
        must_resume: bool = False,
    ) -> DiskUpload:
        await self.ready()
        while name in self._settling:
            # The last upload of this name is still being finished or put
            # aside (a client that reconnects at once to resume): wait.
            waiter: defer.Deferred[None] = defer.Deferred()
            self._settling[name].append(waiter)
            await waiter
        if name in self.uploading:
            raise FileError(ErrorCode.BUSY, f"{name} is being uploaded by another client")
        self.uploading[name] = None  # claimed while the disk is asked
        held = (0, 0)
        try:
            key = partial_key(name)
            kind, free, offset = await self.run(self._probe, self._path(name), key, size, sha256 if resume else "")
            if must_resume and offset is None:
                raise FileError(ErrorCode.NOT_FOUND, "there is no such partial upload")
            if kind == "other":
                raise FileError(ErrorCode.EXISTS, f"{name} exists and is not a regular file; it is never replaced")
            if kind == "file" and not overwrite:
                raise FileError(ErrorCode.EXISTS, f"{name} exists; ask to overwrite it")
            held = self._reserve(name, size, offset or 0, free)
            upload = await self.run(self._create, name, key, size, sha256, overwrite, resumable, offset)
        except BaseException as e:
            self._reserved_quota -= held[0]
            self._reserved_space -= held[1]
            del self.uploading[name]
            self._wake(name)
            if isinstance(e, OSError):
                raise os_error(e, f"starting the upload of {name}") from e
            raise
        upload.quota_held, upload.space_held = held
        upload.space_held -= upload.offset - (offset or 0)  # a partial longer than the probe saw
        self.uploading[name] = upload
        return upload

    def _probe(self, path: str, key: str, size: int, sha256: str | None) -> tuple[str, int, int | None]:
        """Blocking: what is at ``path``, free bytes, and how much of a matching partial exists."""
        try:
            kind = "file" if stat.S_ISREG(self.fs.lstat(path).st_mode) else "other"
        except FileNotFoundError:
            kind = "none"
        fs = self.fs.statvfs(self.root)
        offset = None
        if sha256 != "":
            part, meta_path = self._partial_paths(key)
            meta = self._read_meta(meta_path)
            if meta and meta.get("size") == size and meta.get("sha256") == sha256:
                try:
                    st = self.fs.lstat(part)
                    if stat.S_ISREG(st.st_mode) and st.st_size <= size:
                        offset = st.st_size
                except FileNotFoundError:
                    pass
        return kind, fs.f_bavail * fs.f_frsize, offset

    def _reserve(self, name: str, size: int, offset: int, free: int) -> tuple[int, int]:
        """Check the quota and space for the upload next to those in progress, and hold them."""
        entry = self.index.get(name)
        quota = max(0, size - (entry.size if entry else 0))
        if self.quota is not None and self.index.total + self._reserved_quota + quota > self.quota:
            raise FileError(ErrorCode.QUOTA_EXCEEDED, f"storing {size} more bytes would exceed the quota of {self.quota}")
        space = size - offset
        if space + self.min_free + self._reserved_space > free:
            raise FileError(
                ErrorCode.NO_SPACE,
                f"{size} bytes do not fit: {free} bytes free, {self._reserved_space} promised to uploads "
                f"in progress, {self.min_free} kept spare",
            )
        self._reserved_quota += quota
        self._reserved_space += space
        return quota, space

    def _create(
        self, name: str, key: str, size: int, sha256: str | None, overwrite: bool, resumable: bool, offset: int | None,
    ) -> DiskUpload:
        """Blocking: open (resume) or create the hidden file the upload goes to."""
        import secrets

        fs = self.fs
        part, meta_path = self._partial_paths(key)
        meta = {"name": name, "size": size, "sha256": sha256, "overwrite": overwrite, "updated": self.clock.seconds()}
        if offset is not None:
            fd = fs.open(part, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
            try:
                offset = fs.fstat(fd).st_size
                read_fd = fs.open(part, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    hasher = hash_fd(read_fd, hashlib.sha256(), offset)
                finally:
                    fs.close(read_fd)
                self.write_meta(meta_path, meta)
            except BaseException:
                fs.close(fd)
                raise
            log.info("resuming upload of {name} at byte {offset}", name=name, offset=offset)
            return DiskUpload(self, name, size, sha256, overwrite, part, fd, offset, hasher, key)
        # A fresh start: any older partial of this name is dropped.
        self._unlink(part)
        self._unlink(meta_path)
        path = part if resumable else str(self.root / f".tmp-{secrets.token_hex(12)}")
        fd = fs.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, self.mode)
        try:
            fs.fchmod(fd, self.mode)  # exactly the storage's mode, whatever the process umask
            if resumable:
                self.write_meta(meta_path, meta)
        except BaseException:
            fs.close(fd)
            self._unlink(path)
            self._unlink(meta_path)
            raise
        return DiskUpload(self, name, size, sha256, overwrite, path, fd, 0, hashlib.sha256(), key if resumable else None)

    async def close(self) -> None:
        """Shutting down: abort every upload in progress (partials kept), then flush the index."""
        for upload in [u for u in self.uploading.values() if u is not None]:
            try:
                await upload.abort()
            except Exception:
                log.failure("aborting the upload of {name}", name=upload.name)
        await self.index.flushed()

    # -- for DiskUpload ---------------------------------------------------------------------

    def settle(self, upload: DiskUpload) -> None:
        """The upload stops taking data; it is finishing or being aborted."""
        self._settling.setdefault(upload.name, [])

    def release(self, upload: DiskUpload) -> None:
        """The upload has ended: its reservation and its name are free."""
        self._reserved_quota -= upload.quota_held
        self._reserved_space -= upload.space_held
        upload.quota_held = upload.space_held = 0
        if self.uploading.get(upload.name) is upload:
            del self.uploading[upload.name]
        self._wake(upload.name)

    def _wake(self, name: str) -> None:
        for waiter in self._settling.pop(name, []):
            waiter.callback(None)
