"""
Resumable partials of the storage directory and their housekeeping: a
partial is ``.part-ID`` (the bytes so far) and ``.part-ID.json`` (what it
belongs to), ID being :func:`suite.files.contract.partial_key` of the name.

:class:`Partials` is a mixin of :class:`suite.files.storage.Storage`: it
finds partials by id (for tus), describes them atomically, and removes
those older than ``resume_ttl``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from suite.files.contract import PartialUpload, partial_key
from suite.files.index import write_all
from suite.files.wire import ErrorCode, FileError

if TYPE_CHECKING:
    from suite.files.upload import DiskUpload

__all__ = ["Partials"]

log = Logger()

_PARTIAL_ID = re.compile(r"[0-9a-f]{40}")


class Partials:
    """Partial uploads of a storage directory (a mixin of ``Storage``; see the module doc)."""

    root: Path
    fs: Any
    run: Callable[..., defer.Deferred[Any]]
    clock: Any
    resume_ttl: float
    mode: int
    uploading: dict[str, DiskUpload | None]
    _settling: dict[str, list[defer.Deferred[None]]]

    async def ready(self) -> None:
        raise NotImplementedError

    async def _start(self, *args: Any, **kwargs: Any) -> DiskUpload:
        raise NotImplementedError

    def _wake(self, name: str) -> None:
        raise NotImplementedError

    def _partial_paths(self, key: str) -> tuple[str, str]:
        return str(self.root / f".part-{key}"), str(self.root / f".part-{key}.json")

    def _expire(self, part: str, now: float, busy: frozenset[str] = frozenset()) -> int:
        """Blocking: remove a partial (and its description) that is too old."""
        meta = self._read_meta(part + ".json")
        if meta is None or (meta.get("name") not in busy and now - float(meta.get("updated", 0)) > self.resume_ttl):
            return self._unlink(part) + self._unlink(part + ".json")
        return 0

    def sweep(self) -> defer.Deferred[int]:
        """Remove partial uploads older than ``resume_ttl``; fires with how many files went."""
        busy = frozenset(self.uploading)
        now = self.clock.seconds()

        def sweep_now() -> int:
            removed = 0
            for entry in self.fs.scandir(self.root):
                if entry.name.startswith(".part-") and not entry.name.endswith(".json"):
                    removed += self._expire(entry.path, now, busy)
            return removed

        def report(removed: int) -> int:
            if removed:
                log.info("removed {count} expired partial upload file(s) from {root}", count=removed, root=str(self.root))
            return removed

        return self.run(sweep_now).addCallback(report)

    def _unlink(self, path: str) -> int:
        try:
            self.fs.unlink(path)
            return 1
        except FileNotFoundError:
            return 0

    def _read_meta(self, path: str) -> dict[str, Any] | None:
        try:
            fd = self.fs.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            meta = json.loads(os.read(fd, 1 << 16))
            return meta if isinstance(meta, dict) else None
        except (OSError, ValueError):
            return None
        finally:
            self.fs.close(fd)

    def write_meta(self, path: str, meta: dict[str, Any]) -> None:
        """
        Blocking: describe a partial (with the storage's mode), atomically:
        written beside and renamed over, so a reader never finds it half
        written or missing.
        """
        import secrets

        temporary = str(self.root / f".tmp-meta-{secrets.token_hex(8)}")
        fd = self.fs.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, self.mode)
        try:
            try:
                self.fs.fchmod(fd, self.mode)
                write_all(self.fs, fd, json.dumps(meta).encode())
            finally:
                self.fs.close(fd)
            self.fs.replace(temporary, path)
        except BaseException:
            self._unlink(temporary)
            raise

    async def resume_upload(self, upload_id: str) -> DiskUpload:
        """See :meth:`suite.files.contract.FileStore.resume_upload`."""
        meta = await self._meta_of(upload_id)
        return await self._start(meta["name"], int(meta["size"]), meta.get("sha256"), bool(meta.get("overwrite")),
                                 True, True, must_resume=True)

    async def _meta_of(self, upload_id: str) -> dict[str, Any]:
        await self.ready()
        meta = None
        if _PARTIAL_ID.fullmatch(upload_id):
            meta = await self.run(self._read_meta, self._partial_paths(upload_id)[1])
        if meta is None or partial_key(str(meta.get("name"))) != upload_id:
            raise FileError(ErrorCode.NOT_FOUND, "there is no such partial upload")
        return meta

    async def partial(self, upload_id: str) -> PartialUpload:
        """See :meth:`suite.files.contract.FileStore.partial`."""
        meta = await self._meta_of(upload_id)
        name = meta["name"]
        upload = self.uploading.get(name)
        if upload is not None and upload.upload_id == upload_id:
            held = upload.received
        else:
            st = await self.run(self.fs.lstat, self._partial_paths(upload_id)[0])
            held = st.st_size
        return PartialUpload(upload_id, name, int(meta["size"]), held, meta.get("sha256"), bool(meta.get("overwrite")))

    async def discard_partial(self, upload_id: str) -> None:
        """See :meth:`suite.files.contract.FileStore.discard_partial`."""
        meta = await self._meta_of(upload_id)
        name = meta["name"]
        if name in self.uploading or name in self._settling:
            raise FileError(ErrorCode.BUSY, f"{name} is being uploaded by another client")
        part, meta_path = self._partial_paths(upload_id)
        self.uploading[name] = None
        try:
            await self.run(lambda: self._unlink(part) + self._unlink(meta_path))
        finally:
            del self.uploading[name]
            self._wake(name)
