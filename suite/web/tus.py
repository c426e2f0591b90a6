"""
Resumable uploads with tus 1.0.0 (https://tus.io/protocols/resumable-upload)
under ``/uploads/``: core, creation, checksum and termination.

Each tus upload is one resumable partial of the storage contract: creation
(``POST /uploads/``) begins a resumable upload of the name in the
``filename`` metadata and puts it aside; each ``PATCH /uploads/ID`` resumes
it by id, streams its body into it (see :mod:`suite.web.channel`), and puts
it aside again, or commits it when the last byte came.  A ``PATCH`` cut off
keeps every byte that arrived; ``HEAD`` says where to continue.  The line
protocol's ``PUT ... resume`` and tus share these partials.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.resource import Resource

from suite.files.contract import Upload
from suite.files.wire import ErrorCode, FileError
from suite.web.channel import BodySink, WebRequest, peer_text
from suite.web.errors import WebError
from suite.web.files import respond
from suite.web.headers import name_from_segment

if TYPE_CHECKING:
    from suite.web.site import WebSite

__all__ = ["TusResource", "parse_metadata"]

log = Logger()

VERSION = b"1.0.0"
EXTENSIONS = b"creation,checksum,termination"
#: Checksum algorithms for ``Upload-Checksum`` (tus names them so).
ALGORITHMS = {b"sha1": hashlib.sha1, b"sha256": hashlib.sha256, b"md5": hashlib.md5}
_ID = re.compile(rb"[0-9a-f]{1,64}")
#: tus's status for a chunk whose checksum does not match.
CHECKSUM_MISMATCH = 460


def parse_metadata(header: bytes | None) -> dict[str, bytes]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs.  :raises WebError: 400."""
    result: dict[str, bytes] = {}
    for item in (header or b"").split(b","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition(b" ")
        try:
            result[key.decode("ascii")] = base64.b64decode(value.strip(), validate=True)
        except (UnicodeDecodeError, binascii.Error):
            raise WebError(ErrorCode.BAD_COMMAND, "Upload-Metadata is not 'key base64,...'") from None
    return result


def _number(request: WebRequest, header: bytes) -> int:
    text = request.getHeader(header)
    if text is None or not text.isdigit() or len(text) > 19:
        raise WebError(ErrorCode.BAD_SIZE, f"{header.decode()} must be a whole number of bytes")
    return int(text)


class TusChunk:
    """One ``PATCH`` body going into a resumed upload, hashed for ``Upload-Checksum``."""

    def __init__(self, upload: Upload, checksum: tuple[Any, bytes] | None, settling: dict[str, Any]) -> None:
        self.upload = upload
        self.settling = settling
        self.start = upload.received
        self.hasher = checksum[0]() if checksum else None
        self.expected = checksum[1] if checksum else None

    @property
    def pending(self) -> int:
        return self.upload.pending

    @property
    def on_written(self) -> Any:
        return self.upload.on_written

    @on_written.setter
    def on_written(self, callback: Any) -> None:
        self.upload.on_written = callback

    def write(self, data: bytes) -> None:
        if self.hasher is not None:
            self.hasher.update(data)
        self.upload.write(data)

    def lost(self) -> None:
        # Cut off: keep what came (a checksummed chunk cannot be verified: drop it).
        async def put_aside() -> None:
            if self.hasher is not None:
                await self.upload.truncate(self.start)
            await self.upload.suspend()

        # Until it is put aside, a HEAD or PATCH of this upload waits: the
        # offset it reads is then the one the next PATCH must send.
        upload_id = self.upload.upload_id
        d = defer.ensureDeferred(put_aside()).addErrback(log.failure, "putting a tus upload aside")
        if not d.called and upload_id is not None:
            self.settling[upload_id] = d
            d.addBoth(lambda _: [self.settling.pop(upload_id, None), None][1])


class TusResource(Resource):
    """``/uploads/`` (creation, ``OPTIONS``) and ``/uploads/ID`` (``HEAD``, ``PATCH``, ``DELETE``)."""

    isLeaf = True

    def __init__(self, site: WebSite) -> None:
        super().__init__()
        self.site = site
        #: Uploads whose cut-off PATCH is being put aside, by id.
        self.settling: dict[str, defer.Deferred[Any]] = {}

    @staticmethod
    def _tus_headers(request: WebRequest) -> None:
        request.setHeader(b"Tus-Resumable", VERSION)
        request.setHeader(b"Cache-Control", b"no-store")

    def _check(self, request: WebRequest, write: bool = False) -> None:
        self._tus_headers(request)
        self.site.authorize(request, write=write)
        if request.getHeader(b"Tus-Resumable") != VERSION:
            raise WebError("unsupported-version", "send Tus-Resumable: 1.0.0", headers={b"Tus-Version": VERSION})

    @staticmethod
    def _upload_id(request: WebRequest) -> str | None:
        postpath = [p for p in request.postpath or [] if p]
        if not postpath:
            return None
        if len(postpath) != 1 or not _ID.fullmatch(postpath[0]):
            raise WebError(ErrorCode.NOT_FOUND, "there is no such upload")
        return postpath[0].decode("ascii")

    def _max_size(self) -> int | None:
        return self.site.storage.max_file_size

    # -- discovery and creation ----------------------------------------------------

    def render_OPTIONS(self, request: WebRequest) -> bytes:
        request.setHeader(b"Tus-Resumable", VERSION)
        request.setHeader(b"Tus-Version", VERSION)
        request.setHeader(b"Tus-Extension", EXTENSIONS)
        request.setHeader(b"Tus-Checksum-Algorithm", b",".join(ALGORITHMS))
        if self._max_size() is not None:
            request.setHeader(b"Tus-Max-Size", b"%d" % self._max_size())
        request.setResponseCode(204)
        return b""

    def render_POST(self, request: WebRequest) -> Any:
        return respond(request, lambda: self._create(request))

    async def _create(self, request: WebRequest) -> None:
        self._check(request, write=True)
        if self._upload_id(request) is not None:
            raise WebError("method-not-allowed", "create uploads at /uploads/")
        if request.getHeader(b"Upload-Defer-Length") is not None:
            raise WebError(ErrorCode.BAD_SIZE, "the length must be known (Upload-Length)")
        size = _number(request, b"Upload-Length")
        metadata = parse_metadata(request.getHeader(b"Upload-Metadata"))
        raw_name = metadata.get("filename", metadata.get("name"))
        if raw_name is None:
            raise WebError(ErrorCode.BAD_NAME, "say the file's name in Upload-Metadata: filename BASE64")
        name = name_from_segment(raw_name)
        sha256 = metadata.get("sha256")
        if sha256 is not None and not re.fullmatch(rb"[0-9a-f]{64}", sha256):
            raise WebError(ErrorCode.BAD_COMMAND, "the sha256 metadata is 64 lowercase hex digits")
        try:
            upload = await self.site.storage.begin_upload(
                name, size, sha256.decode() if sha256 else None, resumable=True
            )
        except FileError as e:
            self.site.counters.store_failed(e.code)
            raise WebError.of(e) from None
        assert upload.upload_id is not None
        if size == 0:
            await self._commit(upload)
        else:
            await upload.suspend()
        log.info("tus upload {id} of {name} ({size} bytes) created by {peer}",
                 id=upload.upload_id, name=name, size=size, peer=peer_text(request.getClientAddress()))
        request.setResponseCode(201)
        request.setHeader(b"Location", b"/uploads/" + upload.upload_id.encode())
        request.setHeader(b"Upload-Offset", b"0")
        request.setHeader(b"Content-Length", b"0")
        request.finish()

    # -- state, transfer, termination ----------------------------------------------

    def render_HEAD(self, request: WebRequest) -> Any:
        return respond(request, lambda: self._head(request))

    async def _head(self, request: WebRequest) -> None:
        self._check(request)
        upload_id = self._upload_id(request)
        if upload_id is None:
            raise WebError("method-not-allowed", "HEAD an upload's URL")
        partial = await self._partial(upload_id)
        request.setHeader(b"Upload-Offset", b"%d" % partial.offset)
        request.setHeader(b"Upload-Length", b"%d" % partial.size)
        request.setHeader(b"Content-Length", b"0")
        request.finish()

    async def _partial(self, upload_id: str) -> Any:
        settling = self.settling.get(upload_id)
        if settling is not None:
            waiter: defer.Deferred[None] = defer.Deferred()
            settling.addBoth(lambda result: (waiter.callback(None), result)[1])
            await waiter
        try:
            return await self.site.storage.partial(upload_id)
        except FileError as e:
            raise WebError(ErrorCode.NOT_FOUND, "there is no such upload (finished, expired or never made)",
                           status=404 if e.code == ErrorCode.NOT_FOUND else None) from None

    def begin_patch(self, request: WebRequest, length: int | None) -> Callable[[], Awaitable[BodySink]]:
        """Decide on a ``PATCH`` body before any of it is read (see :meth:`WebSite.body_handler`)."""
        self._check(request, write=True)
        upload_id = self._upload_id(request)
        if upload_id is None:
            raise WebError("method-not-allowed", "PATCH an upload's URL")
        if request.getHeader(b"Content-Type") != b"application/offset+octet-stream":
            raise WebError(ErrorCode.BAD_COMMAND, "PATCH bodies are Content-Type: application/offset+octet-stream",
                           status=415)
        if length is None:
            raise WebError("length-required", "send Content-Length")
        offset = _number(request, b"Upload-Offset")
        checksum = self._checksum(request.getHeader(b"Upload-Checksum"))

        async def begin() -> BodySink:
            partial = await self._partial(upload_id)
            if partial.offset != offset:
                raise WebError(ErrorCode.BAD_OFFSET, f"the upload holds {partial.offset} bytes, not {offset}")
            if offset + length > partial.size:
                raise WebError(ErrorCode.TOO_LARGE, f"the upload is {partial.size} bytes; this body goes past its end")
            try:
                upload = await self.site.storage.resume_upload(upload_id)
            except FileError as e:
                raise WebError.of(e) from None
            if upload.received != offset:  # moved between the two looks
                await upload.suspend()
                raise WebError(ErrorCode.BAD_OFFSET, f"the upload holds {upload.received} bytes, not {offset}")
            return TusChunk(upload, checksum, self.settling)

        return begin

    @staticmethod
    def _checksum(header: bytes | None) -> tuple[Any, bytes] | None:
        if header is None:
            return None
        algorithm, _, value = header.strip().partition(b" ")
        if algorithm not in ALGORITHMS:
            raise WebError(ErrorCode.BAD_COMMAND, f"checksum algorithms: {', '.join(a.decode() for a in ALGORITHMS)}")
        try:
            return ALGORITHMS[algorithm], base64.b64decode(value.strip(), validate=True)
        except binascii.Error:
            raise WebError(ErrorCode.BAD_COMMAND, "Upload-Checksum is 'ALGORITHM BASE64'") from None

    def render_PATCH(self, request: WebRequest) -> Any:
        return respond(request, lambda: self._patch(request))

    async def _patch(self, request: WebRequest) -> None:
        chunk = await request.wait_sink()
        assert isinstance(chunk, TusChunk)
        upload = chunk.upload
        self._tus_headers(request)
        if chunk.hasher is not None and chunk.hasher.digest() != chunk.expected:
            await upload.truncate(chunk.start)
            await upload.suspend()
            raise WebError(ErrorCode.CHECKSUM_MISMATCH, "the chunk does not match Upload-Checksum; it was dropped",
                           status=CHECKSUM_MISMATCH)
        if upload.remaining == 0:
            await self._commit(upload)
        else:
            await upload.suspend()
        request.setResponseCode(204)
        request.setHeader(b"Upload-Offset", b"%d" % upload.received)
        request.finish()

    async def _commit(self, upload: Upload) -> None:
        try:
            stored = await upload.commit()
        except FileError as e:
            self.site.counters.store_failed(e.code)
            raise WebError.of(e) from None
        self.site.counters.stored(stored.size)
        log.info("stored {name}: {size} bytes, sha256 {sha256} (tus)", name=stored.name, size=stored.size,
                 sha256=stored.sha256)

    def render_DELETE(self, request: WebRequest) -> Any:
        return respond(request, lambda: self._delete(request))

    async def _delete(self, request: WebRequest) -> None:
        self._check(request, write=True)
        upload_id = self._upload_id(request)
        if upload_id is None:
            raise WebError("method-not-allowed", "DELETE an upload's URL")
        try:
            await self.site.storage.discard_partial(upload_id)
        except FileError as e:
            raise WebError.of(e) from None
        request.setResponseCode(204)
        request.finish()
