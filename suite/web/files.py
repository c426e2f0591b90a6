"""
``/files/``: stored files over HTTP.

* ``GET /files/`` lists them: JSON for ``Accept: application/json``, HTML
  otherwise.
* ``GET``/``HEAD /files/NAME`` sends one, with ``ETag`` (its sha256),
  ``Last-Modified``, ``Accept-Ranges``, one ``Range`` (``206``/``416``)
  under ``If-Range``, ``If-None-Match`` (``304``) and a safe
  ``Content-Disposition``.
* ``PUT /files/NAME`` stores the body (streamed to storage as it arrives,
  see :mod:`suite.web.channel`): ``201`` when new, ``204`` when it replaced
  a file the request said to replace (``If-Match``).  ``If-None-Match: *``
  refuses an existing name with ``412``; without ``If-Match`` an existing
  name is refused with ``409``, as the upload service refuses it without
  its overwrite option.  ``Repr-Digest: sha-256=:B64:`` is verified before
  the file becomes visible.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from suite.files.contract import OpenedFile
from suite.files.wire import ErrorCode, FileError
from suite.web.channel import BodySink, WebRequest, peer_text
from suite.web.download import FileBodyProducer
from suite.web.errors import WebError
from suite.web.headers import (
    content_disposition,
    etag,
    etag_matches,
    http_date,
    if_range_holds,
    name_from_segment,
    parse_range,
    parse_repr_digest,
)

if TYPE_CHECKING:
    from suite.web.site import WebSite

__all__ = ["FilesResource", "UploadBody", "respond", "stored_json"]

log = Logger()


def stored_json(stored: Any) -> dict[str, Any]:
    """One file as the JSON listing and PUT replies describe it."""
    return {"name": stored.name, "size": stored.size, "sha256": stored.sha256, "mtime": stored.mtime}


def respond(request: WebRequest, work: Callable[[], Awaitable[None]]) -> Any:
    """Run an asynchronous handler; a :class:`WebError` (or a FileError) becomes its JSON answer."""

    def failed(failure: Any) -> None:
        if failure.check(WebError):
            request.write_error(failure.value)
        elif failure.check(FileError):
            request.write_error(WebError.of(failure.value))
        else:
            log.failure("{method} {path} failed", failure, method=request.method, path=request.path)
            request.write_error(WebError(ErrorCode.INTERNAL, "the server failed; see its log"))

    defer.ensureDeferred(work()).addErrback(failed)
    return NOT_DONE_YET


class UploadBody:
    """A ``PUT`` body going into an upload session (a ``BodySink``)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.on_written = None

    @property
    def pending(self) -> int:
        return self.session.pending

    @property
    def on_written(self) -> Any:
        return self.session.on_written

    @on_written.setter
    def on_written(self, callback: Any) -> None:
        self.session.on_written = callback

    def write(self, data: bytes) -> None:
        self.session.write(data)

    def lost(self) -> None:
        defer.ensureDeferred(self.session.abort(keep=False)).addErrback(log.failure, "aborting an upload")


class FilesResource(Resource):
    """``/files/`` and every ``/files/NAME`` (a leaf: names never contain ``/``)."""

    isLeaf = True

    def __init__(self, site: WebSite) -> None:
        super().__init__()
        self.site = site

    @staticmethod
    def _name(request: WebRequest) -> str | None:
        """The file the request names, or ``None`` for the listing."""
        postpath = request.postpath or [b""]
        if postpath == [b""]:
            return None
        if len(postpath) != 1:
            raise WebError(ErrorCode.BAD_NAME, "a name is one path segment; '/' is not allowed in names")
        return name_from_segment(postpath[0])

    # -- reading -------------------------------------------------------------------

    def render_GET(self, request: WebRequest) -> Any:
        return respond(request, lambda: self._get(request))

    render_HEAD = render_GET

    async def _get(self, request: WebRequest) -> None:
        self.site.authorize(request)
        name = self._name(request)
        if name is None:
            await self._list(request)
            return
        self.site.start_transfer()
        try:
            opened = await self.site.storage.open(name)
        except BaseException:
            self.site.end_transfer()
            raise
        try:
            await self._send(request, opened)
        finally:
            opened.close()
            self.site.end_transfer()

    async def _send(self, request: WebRequest, opened: OpenedFile) -> None:
        stored = opened.stored
        tag, modified = etag(stored.sha256), http_date(stored.mtime)
        headers = request.responseHeaders
        headers.setRawHeaders(b"ETag", [tag])
        headers.setRawHeaders(b"Last-Modified", [modified])
        headers.setRawHeaders(b"Accept-Ranges", [b"bytes"])
        headers.setRawHeaders(b"Content-Type", [b"application/octet-stream"])
        headers.setRawHeaders(b"Content-Disposition", [content_disposition(stored.name)])
        headers.setRawHeaders(b"X-Content-Type-Options", [b"nosniff"])
        if etag_matches(request.getHeader(b"If-None-Match"), tag):
            request.setResponseCode(304)
            request.finish()
            return
        wanted = None
        if if_range_holds(request.getHeader(b"If-Range"), tag, modified):
            wanted = parse_range(request.getHeader(b"Range"), stored.size)
        first, length = 0, stored.size
        if wanted is not None:
            request.setResponseCode(206)
            headers.setRawHeaders(b"Content-Range", [wanted.content_range()])
            first, length = wanted.first, wanted.length
        headers.setRawHeaders(b"Content-Length", [b"%d" % length])
        if request.method == b"HEAD" or length == 0:
            request.finish()
            return
        counters = self.site.counters
        producer = FileBodyProducer(
            request, opened.file, opened.fd, first, length, clock=self.site.reactor,
            send_timeout=self.site.send_timeout, on_sent=counters.served, on_sendfile=counters.sent_directly,
        )
        await producer.start()

    async def _list(self, request: WebRequest) -> None:
        files = await self.site.storage.list()
        accept = (request.getHeader(b"Accept") or b"").lower()
        if b"application/json" in accept:
            body = json.dumps([stored_json(f) for f in files]).encode()
            request.setHeader(b"Content-Type", b"application/json")
        else:
            rows = "".join(
                f'<tr><td><a href="{quote(f.name, safe="")}">{html.escape(f.name)}</a></td>'
                f"<td>{f.size}</td><td><code>{f.sha256}</code></td></tr>"
                for f in files
            )
            body = (
                "<!doctype html><meta charset=utf-8><title>files</title>"
                f"<table><tr><th>name<th>size<th>sha256</tr>{rows}</table>\n"
            ).encode()
            request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Content-Length", b"%d" % len(body))
        request.write(b"" if request.method == b"HEAD" else body)
        request.finish()

    # -- storing -------------------------------------------------------------------

    def begin_put(self, request: WebRequest, length: int | None) -> Callable[[], Awaitable[BodySink]]:
        """
        Decide on a ``PUT`` body before any of it is read; return what
        starts the upload (it may still refuse: exists, too-large, no-space...).

        :raises WebError: unauthorized, bad-name, length-required, a bad
            ``Repr-Digest``, a refused origin.
        """
        self.site.authorize(request, write=True)
        name = self._name(request)
        if name is None:
            raise WebError("method-not-allowed", "PUT a file to /files/NAME", headers={b"Allow": b"GET, HEAD"})
        if length is None:
            raise WebError("length-required", "send Content-Length (chunked uploads are not accepted)")
        if request.getHeader(b"Content-Range") is not None:
            # RFC 9110 section 14.5: a partial PUT must be refused, not stored whole.
            raise WebError(ErrorCode.BAD_COMMAND, "PUT stores a whole file; resume uploads with tus under /uploads/")
        sha256 = parse_repr_digest(request.getHeader(b"Repr-Digest"))
        create_only = etag_matches(request.getHeader(b"If-None-Match"), b"*")
        if_match = request.getHeader(b"If-Match")
        storage = self.site.storage

        async def begin() -> BodySink:
            overwrite = False
            if if_match is not None and not create_only:
                try:
                    current = await storage.stat(name)
                except FileError as e:
                    if e.code != ErrorCode.NOT_FOUND:
                        raise WebError.of(e) from None
                    raise WebError("precondition-failed", f"{name} does not exist (If-Match)") from None
                if not etag_matches(if_match, etag(current.sha256)):
                    raise WebError("precondition-failed", f"{name} has changed (If-Match)")
                overwrite = True
            try:
                # Not resumable: HTTP PUT has no way to continue; a cut PUT leaves nothing.
                session = await storage.begin_upload(name, length, sha256, overwrite=overwrite, resumable=False)
            except FileError as e:
                if e.code == ErrorCode.EXISTS:
                    if create_only:
                        raise WebError("precondition-failed", f"{name} exists (If-None-Match: *)") from None
                    raise WebError(ErrorCode.EXISTS, f"{name} exists; send If-Match: * to replace it") from None
                raise WebError.of(e) from None
            request.replacing = overwrite  # type: ignore[attr-defined]
            return UploadBody(session)

        return begin

    def render_PUT(self, request: WebRequest) -> Any:
        return respond(request, lambda: self._put(request))

    async def _put(self, request: WebRequest) -> None:
        body = await request.wait_sink()
        assert isinstance(body, UploadBody)
        try:
            stored = await body.session.commit()
        except FileError as e:
            self.site.counters.store_failed(e.code)
            raise WebError.of(e) from None
        self.site.counters.stored(stored.size)
        log.info("stored {name}: {size} bytes, sha256 {sha256} (HTTP from {peer})",
                 name=stored.name, size=stored.size, sha256=stored.sha256, peer=peer_text(request.getClientAddress()))
        if request._disconnected:
            return
        replaced = getattr(request, "replacing", False)
        request.setResponseCode(204 if replaced else 201)
        request.setHeader(b"ETag", etag(stored.sha256))
        if replaced:
            request.finish()
            return
        body_bytes = json.dumps(stored_json(stored)).encode()
        request.setHeader(b"Location", b"/files/" + quote(stored.name, safe="").encode())
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Content-Length", b"%d" % len(body_bytes))
        request.write(body_bytes)
        request.finish()
