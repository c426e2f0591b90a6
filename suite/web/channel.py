"""
The HTTP connection of the web service: ``twisted.web``'s ``HTTPChannel``
and ``Request`` with two changes.

* A request body meant for storage (``PUT /files/NAME``, a tus ``PATCH``)
  is never buffered.  When its headers are complete the site decides,
  before a byte of the body is read, whether to accept it: the transport
  is paused while storage checks the name, size, quota and space; a refusal
  is answered at once and the connection closed (nothing of the body is
  read); an acceptance sends ``100 Continue`` if asked and streams every
  chunk into the upload as it arrives, pausing the socket while the disk
  is behind.  Other request bodies are limited to a small size.
* Time limits: the headers of a request must be complete within
  ``header_timeout`` seconds of its first byte (slow headers), and no
  connection may be silent for ``idle_timeout`` seconds (a slow body gets
  ``408``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet import abstract, defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource

from suite.admission import AdmittedConnection
from suite.files.wire import ErrorCode
from suite.limits import cancel_call, close_then_abort, peer_text
from suite.web.errors import WebError, error_body, raw_error_response

if TYPE_CHECKING:
    from suite.web.site import WebSite

__all__ = ["BodySink", "WebChannel", "WebRequest", "peer_text"]  # peer_text: from suite.limits

log = Logger()

#: Bytes read from the socket at a time while a body streams to storage.
UPLOAD_READ_SIZE = 1 << 20


class BodySink(Protocol):
    """Where a streamed request body goes (an upload session, or a slice of one)."""

    #: Bytes accepted and not yet on disk; reading pauses while this is high.
    pending: int
    #: Called each time some of ``pending`` reached the disk.
    on_written: Callable[[], None] | None

    def write(self, data: bytes) -> None:
        """The next bytes of the body."""

    def lost(self) -> None:
        """The body will not be complete (connection lost, timeout)."""


class WebRequest(server.Request):
    """A ``Request`` whose body may stream into a :class:`BodySink`."""

    channel: WebChannel
    #: Set when the body streams to storage.
    sink: BodySink | None = None
    #: Body bytes received.
    received = 0
    _early: list[bytes] | None = None
    _disk_paused = False
    _body_done = False
    _settled: tuple[BodySink | None, WebError | None] | None = None
    _sink_waiters: list[defer.Deferred[BodySink]] | None = None

    def wait_sink(self) -> defer.Deferred[BodySink]:
        """Fires with the body's sink once storage accepted it; fails with the refusal."""
        if self._settled is not None:
            sink, error = self._settled
            return defer.fail(error) if error is not None else defer.succeed(sink)  # type: ignore[arg-type]
        d: defer.Deferred[BodySink] = defer.Deferred()
        if self._sink_waiters is None:
            self._sink_waiters = []
        self._sink_waiters.append(d)
        return d

    def settle(self, sink: BodySink | None, error: WebError | None) -> None:
        """Storage accepted (``sink``) or refused (``error``) the body."""
        if self._settled is not None:
            return
        self._settled = (sink, error)
        for d in self._sink_waiters or []:
            if error is not None:
                d.errback(error)
            else:
                d.callback(sink)
        self._sink_waiters = None

    def gotLength(self, length: int | None) -> None:
        if self.sink is not None or self._early is not None:
            self.content = io.BytesIO()  # the body goes to the sink, not here
        else:
            super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        self.received += len(data)
        if self._early is not None:
            # Came in the same read as the headers, while storage decides.
            self._early.append(data)
        elif self.sink is not None:
            self.sink.write(data)
            self._check_disk()
        elif self.received > self.channel.site.max_small_body:
            self.channel.refuse(self, WebError(
                ErrorCode.TOO_LARGE, f"request bodies here are at most {self.channel.site.max_small_body} bytes"
            ))
        else:
            super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self._body_done = True
        super().requestReceived(command, path, version)

    def accept_body(self, sink: BodySink) -> None:
        """Storage accepted the body: hand it what came so far, and read on."""
        transport = self.channel.transport
        if hasattr(transport, "bufferSize"):
            # Twisted reads 64 KiB at a time; a file body in 1 MiB reads
            # takes 16 times fewer trips through the reactor and the parser.
            transport.bufferSize = UPLOAD_READ_SIZE
        early, self._early = self._early or [], None
        self.sink = sink
        sink.on_written = self._check_disk
        for chunk in early:
            sink.write(chunk)
        self._check_disk()

    def _check_disk(self) -> None:
        # Pause reading while the disk is behind; resume at half the
        # buffer, so the disk keeps working while the network refills it.
        # After the response, Twisted deletes the request's channel.
        sink, channel = self.sink, getattr(self, "channel", None)
        if sink is None or channel is None or self._body_done:
            return
        limit = channel.site.disk_buffer
        if not self._disk_paused and sink.pending > limit:
            self._disk_paused = True
            channel.transport.pauseProducing()
        elif self._disk_paused and sink.pending <= limit // 2:
            self._disk_paused = False
            channel.transport.resumeProducing()

    def connectionLost(self, reason: Failure) -> None:
        if self.sink is not None and not self._body_done:
            self.sink.lost()
        super().connectionLost(reason)

    def render(self, resrc: Any) -> None:
        # A method the resource does not have: the JSON 405, not Twisted's HTML page.
        method = self.method.decode("ascii", "replace")
        if (
            isinstance(resrc, Resource) and type(resrc).render is Resource.render
            and not hasattr(resrc, "render_" + method)
            and not (method == "HEAD" and hasattr(resrc, "render_GET"))
        ):
            allowed = ", ".join(sorted(n[7:] for n in dir(resrc) if n.startswith("render_"))).encode()
            self.write_error(WebError("method-not-allowed", f"{method} is not allowed here", 405,
                                      headers={b"Allow": allowed}))
            return
        super().render(resrc)

    def write_error(self, error: WebError) -> None:
        """Answer with ``error`` as JSON (if nothing was written yet) and finish."""
        if self._disconnected or self.finished:
            return
        if error.delay > 0:
            later = WebError(error.code, error.message, error.status, error.headers)
            call = self.channel.site.reactor.callLater(error.delay, self.write_error, later)
            self.notifyFinish().addErrback(lambda _: cancel_call(call))
            return
        if self.startedWriting:
            # Mid-response: the only honest signal left is closing the connection.
            self.channel.transport.abortConnection()
            return
        body = error_body(error.code, error.message)
        self.setResponseCode(error.status)
        self.responseHeaders.setRawHeaders(b"Content-Type", [b"application/json"])
        self.responseHeaders.setRawHeaders(b"Content-Length", [b"%d" % len(body)])
        for name, value in error.headers.items():
            self.responseHeaders.setRawHeaders(name, [value])
        self.channel.site.refused(self, error)
        self.write(b"" if self.method == b"HEAD" else body)
        self.finish()


class WebChannel(AdmittedConnection, HTTPChannel):
    """``HTTPChannel`` with streamed upload bodies and header/body time limits."""

    #: Set by ``Site.buildProtocol``.
    site: WebSite
    _header_call: Any = None
    _awaiting_headers = True
    _refused = False
    _abort_call: Any = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self.maxHeaders = self.site.max_headers
        self.totalHeadersSize = self.site.max_header_bytes
        self.MAX_LENGTH = self.site.max_header_bytes
        self.site.counters.connections_opened()

    def dataReceived(self, data: bytes) -> None:
        self.site.counters.bytes_in += len(data)
        if self._awaiting_headers:
            if self._header_call is None:
                self._header_call = self.callLater(self.site.header_timeout, self._headers_too_slow)
        if self._refused:
            return
        super().dataReceived(data)

    def _headers_too_slow(self) -> None:
        self._header_call = None
        log.info("{peer}: headers not complete within {timeout:g}s", peer=peer_text(self.transport.getPeer()),
                 timeout=self.site.header_timeout)
        self._close_with(raw_error_response(WebError(
            ErrorCode.TIMEOUT, f"the request headers took more than {self.site.header_timeout:g}s"
        )))

    def write(self, data: bytes) -> None:
        self.site.counters.bytes_out += len(data)
        super().write(data)

    def writeSequence(self, iovec: list[bytes]) -> None:
        self.site.counters.bytes_out += sum(map(len, iovec))
        super().writeSequence(iovec)

    def lineLengthExceeded(self, line: bytes) -> None:
        self._close_with(raw_error_response(WebError(
            "headers-too-large", f"the request line and each header are at most {self.MAX_LENGTH} bytes"
        )))

    def _close_with(self, response: bytes) -> None:
        if self._refused:
            return
        self._refused = True
        self.site.counters.refused_request()
        self.transport.write(response)
        self._abort_call = close_then_abort(self.transport, self.site.reactor, self.abortTimeout)

    def allHeadersReceived(self) -> None:
        self._awaiting_headers = False
        cancel_call(self._header_call)
        self._header_call = None
        request: WebRequest = self.requests[-1]
        # What Request.requestReceived sets later: the site decides on the
        # body from the method and path before any of it is read.
        request.method, request.uri, request.clientproto = self._command, self._path, self._version
        request.path = self._path.split(b"?", 1)[0]
        self.persistent = self.checkPersistence(request, self._version)
        request.parseCookies()  # the page's session cookie authorizes uploads too
        try:
            begin = self.site.body_handler(request, self.length)
        except WebError as error:
            self.refuse(request, error)
            return
        if begin is None:
            super().allHeadersReceived()
            return
        request._early = []
        request.gotLength(self.length)
        self.transport.pauseProducing()
        expect = request.requestHeaders.getRawHeaders(b"Expect", [b""])[0].lower()

        def accepted(sink: BodySink) -> None:
            if self._refused or request._disconnected:
                sink.lost()
                request.settle(None, WebError(ErrorCode.SHORT, "the request ended before its body"))
                return
            if expect == b"100-continue" and self._version == b"HTTP/1.1":
                self._send100Continue()
            request.accept_body(sink)
            request.settle(sink, None)
            if not request._disk_paused:
                self.transport.resumeProducing()

        def refused(failure: Failure) -> None:
            if failure.check(WebError):
                error = failure.value
            else:
                log.failure("starting an upload failed", failure)
                error = WebError(ErrorCode.INTERNAL, "the server failed; see its log")
            if not request._disconnected:
                self.refuse(request, error)

        defer.ensureDeferred(begin()).addCallbacks(accepted, refused)

    def refuse(self, request: WebRequest, error: WebError) -> None:
        """Answer ``error`` before (the rest of) the body and close: the body is never read."""
        self.persistent = False
        self._refused = True
        sink, request.sink = request.sink, None
        if sink is not None and not request._body_done:
            sink.lost()
        request.settle(None, error)
        self.transport.resumeProducing()  # to see the client close; data is dropped
        request.write_error(error)

    def rawDataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        super().rawDataReceived(data)

    def allContentReceived(self) -> None:
        if self._refused:
            return
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        self._awaiting_headers = True
        if getattr(self.transport, "bufferSize", None) == UPLOAD_READ_SIZE:
            self.transport.bufferSize = abstract.FileDescriptor.bufferSize
        super().requestDone(request)

    def timeoutConnection(self) -> None:
        request = self.requests[-1] if self.requests else None
        if request is not None and not request._body_done and not request.startedWriting:
            log.info("{peer}: no request data for {timeout:g}s", peer=peer_text(self.transport.getPeer()), timeout=self.timeOut)
            self.refuse(request, WebError(ErrorCode.TIMEOUT, f"no request data for {self.timeOut:g}s"))
            self._abort_call = close_then_abort(self.transport, self.site.reactor, self.abortTimeout)
            return
        super().timeoutConnection()

    def _protocolUpgradeForWebsockets(self, protocol: Any) -> None:
        # twisted.web.websocket hands this connection to the WebSocket by
        # replacing this channel's dataReceived and connectionLost: keep
        # counting its bytes, and give the connection's place back when it ends.
        self.setTimeout(None)  # the WebSocket has its own ping timeouts
        super()._protocolUpgradeForWebsockets(protocol)
        counters, websocket_data, websocket_lost = self.site.counters, self.dataReceived, self.connectionLost

        def data(data: bytes) -> None:
            counters.bytes_in += len(data)
            websocket_data(data)

        def lost(reason: Failure) -> None:
            try:
                websocket_lost(reason)
            finally:
                # The class's own connectionLost: this channel's, Twisted's and any mixin's.
                type(self).connectionLost(self, reason)

        self.dataReceived = data  # type: ignore[method-assign]
        self.connectionLost = lost  # type: ignore[method-assign]

    def _ended(self) -> None:
        """The connection is over (also after a WebSocket upgrade)."""
        cancel_call(self._header_call)
        cancel_call(self._abort_call)
        self._header_call = self._abort_call = None
        self.site.counters.connections_closed()

    def connectionLost(self, reason: Failure) -> None:
        self._ended()
        super().connectionLost(reason)
