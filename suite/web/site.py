"""
The web service's site: its routes, its limits, its token and origin
rules, and the counters ``/metrics`` reads.

Routes (docs/protocols/http.md): ``/`` the page, ``/login`` and ``/logout``
its session cookie, ``/files/`` stored files, ``/uploads/`` tus resumable
uploads, ``/metrics``, ``/healthz``, and
``/chat`` + ``/chat.html`` when the chat's WebSocket front is mounted.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web import server
from twisted.web.resource import Resource

from suite._reactor import or_global_reactor
from suite.admission import AdmissionPolicy, AdmittingFactory
from suite.limits import PeerLog
from suite.files.wire import ErrorCode
from suite.web.channel import BodySink, WebChannel, WebRequest, peer_text
from suite.web.errors import WebError, raw_error_response
from suite.web.files import FilesResource
from suite.web.headers import route
from suite.web.login import LOGIN_COOKIE, LoginResource, LogoutResource, Protected, session_value

__all__ = ["WebCounters", "WebSite", "peer_text"]

log = Logger()

#: Request headers a cross-origin page may send (with --web-cors-origin).
CORS_ALLOW_HEADERS = (
    b"Authorization, Content-Type, Repr-Digest, If-Match, If-None-Match, If-Range, Range, "
    b"Tus-Resumable, Upload-Length, Upload-Offset, Upload-Metadata, Upload-Checksum, Upload-Defer-Length"
)
CORS_EXPOSE_HEADERS = (
    b"ETag, Location, Content-Range, Content-Disposition, Tus-Resumable, Tus-Version, Tus-Extension, "
    b"Tus-Max-Size, Tus-Checksum-Algorithm, Upload-Offset, Upload-Length, Upload-Metadata"
)


@dataclass
class WebCounters:
    """What the web service counts, for ``/metrics``."""

    bytes_in: int = 0
    bytes_out: int = 0
    open: int = 0
    accepted: int = 0
    requests_refused: int = 0
    files_stored: int = 0
    bytes_stored: int = 0
    bytes_served: int = 0
    files_failed: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def connections_opened(self) -> None:
        self.open += 1
        self.accepted += 1

    def connections_closed(self) -> None:
        self.open -= 1

    def refused_request(self) -> None:
        self.requests_refused += 1

    def http_error(self, error: WebError) -> None:
        self.errors[error.code] += 1

    def stored(self, size: int) -> None:
        self.files_stored += 1
        self.bytes_stored += size

    def store_failed(self, code: str) -> None:
        self.files_failed[code] += 1

    def served(self, count: int) -> None:
        self.bytes_served += count

    def sent_directly(self, count: int) -> None:
        """Bytes that went to the socket with sendfile, past the transport."""
        self.bytes_out += count


class Answer(Resource):
    """Answers every request with one :class:`WebError` (JSON), or an empty ``status``."""

    isLeaf = True

    def __init__(self, error: WebError | None = None, status: int = 204) -> None:
        super().__init__()
        self.error = error
        self.status = status

    def render(self, request: Any) -> Any:
        if self.error is None:
            request.setResponseCode(self.status)
            return b""
        request.write_error(self.error)
        return server.NOT_DONE_YET


class WebRoot(Resource):
    """``/``: the page at the root, everything else by its first segment."""

    def __init__(self, page: Resource | None) -> None:
        super().__init__()
        self.page = page

    def getChild(self, path: bytes, request: Any) -> Resource:
        if path == b"" and self.page is not None:
            return self.page
        return Answer(WebError(ErrorCode.NOT_FOUND, "there is nothing here; see /files/ and /uploads/"))


class WebSite(AdmittingFactory, server.Site):
    """
    The ``twisted.web`` site of the web service.

    :param storage: the file storage (shared with the upload service).
    :param token: the bearer token every route but ``/healthz`` (and the
        page's own HTML and script, which hold no data) needs, or ``None``;
        the page's session cookie (:mod:`suite.web.login`) stands for it.
    :param cors_origin: the one other origin allowed to read and write.
    :param max_connections: concurrent connections (the shared admission
        policy; a refused client reads a ``503``); ``None``: no cap.
    :param max_per_ip: concurrent connections per client IP; ``None``: no cap.
    :param per_ip_exempt: addresses the per-IP cap does not apply to.
    :param auth_delay: seconds a wrong token's ``401`` waits, doubled per
        failure from the same host (at most :attr:`AUTH_DELAY_MAX`).
    """

    protocol = WebChannel  # type: ignore[assignment]
    requestFactory = WebRequest
    noisy = False

    DEFAULT_IDLE_TIMEOUT = 60.0
    DEFAULT_HEADER_TIMEOUT = 20.0
    DEFAULT_SEND_TIMEOUT = 60.0
    DEFAULT_MAX_HEADERS = 64
    DEFAULT_MAX_HEADER_BYTES = 16384
    DEFAULT_MAX_SMALL_BODY = 64 * 1024
    DEFAULT_DISK_BUFFER = 8 << 20
    DEFAULT_MAX_TRANSFERS = 16
    DEFAULT_MAX_CONNECTIONS = 256
    DEFAULT_MAX_PER_IP = 32
    #: A wrong token's answer waits ``auth_delay``, doubled per failure from that host, at most this.
    AUTH_DELAY_MAX = 8.0
    #: Seconds a host's failures are remembered; hosts remembered at most.
    AUTH_MEMORY = 600.0
    AUTH_HOSTS = 4096

    def __init__(
        self,
        storage: Any,
        *,
        token: bytes | None = None,
        cors_origin: str | None = None,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        send_timeout: float | None = DEFAULT_SEND_TIMEOUT,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_small_body: int = DEFAULT_MAX_SMALL_BODY,
        disk_buffer: int = DEFAULT_DISK_BUFFER,
        max_transfers: int | None = DEFAULT_MAX_TRANSFERS,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        max_per_ip: int | None = DEFAULT_MAX_PER_IP,
        per_ip_exempt: Iterable[str] = (),
        auth_delay: float = 0.25,
        reactor: IReactorTime | None = None,
    ) -> None:
        reactor = or_global_reactor(reactor)
        self.admission = AdmissionPolicy(
            "web", max_connections=max_connections, max_per_ip=max_per_ip, exempt=per_ip_exempt,
            refusal_line=lambda text: raw_error_response(WebError(
                ErrorCode.TOO_MANY_CONNECTIONS, text, headers={b"Retry-After": b"5"})),
            clock=reactor,
        )
        from suite.web.page import PageResource, ScriptResource
        from suite.web.tus import TusResource

        self.storage = storage
        self.token = token
        self.cors_origin = cors_origin.encode() if cors_origin else None
        self.header_timeout = header_timeout
        self.send_timeout = send_timeout or None
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes
        self.max_small_body = max_small_body
        self.disk_buffer = disk_buffer
        self.max_transfers = max_transfers or None
        self.transfers = 0
        self._auth_failures: dict[str, tuple[int, float]] = {}
        self.auth_delay = auth_delay
        self._sweeper: Any = None
        self.counters = WebCounters()
        self._refusals = PeerLog(log, reactor)
        self.files = FilesResource(self)
        self.tus = TusResource(self)
        root = WebRoot(PageResource())
        root.putChild(b"app.js", ScriptResource())
        root.putChild(b"files", self.files)
        root.putChild(b"uploads", self.tus)
        root.putChild(b"login", LoginResource(self))
        root.putChild(b"logout", LogoutResource(self))
        self.root = root
        super().__init__(root, timeout=idle_timeout or None, reactor=reactor)
        self.displayTracebacks = False

    def mount(self, name: bytes, resource: Resource) -> None:
        """Serve ``resource`` at ``/NAME`` (``/metrics``, ``/healthz``, ``/chat``...)."""
        self.root.putChild(name, resource)

    def protect(self, resource: Resource) -> Resource:
        """``resource`` behind this site's token (bearer or the page's cookie), the token as it is at each request."""
        return Protected(self, resource)

    def refused(self, request: Any, error: WebError) -> None:
        """Count an error answer and log it, at most once a minute per client host, with the peer as host:port."""
        self.counters.http_error(error)
        address = request.getClientAddress()
        self._refusals.warn(
            getattr(address, "host", None) or "local", "web: {peer}: {method} {path}: {status} {code}: {message}",
            peer=peer_text(address), method=request.method.decode("ascii", "replace"),
            path=request.path.decode("ascii", "replace")[:200], status=error.status, code=error.code,
            message=error.message,
        )

    def startFactory(self) -> None:
        super().startFactory()
        ready = getattr(self.storage, "ready", None)
        if ready is not None:  # the directory backend loads its index off the reactor thread
            defer.ensureDeferred(ready()).addErrback(log.failure, "loading the storage index")
        sweep = getattr(self.storage, "sweep", None)
        resume_ttl = getattr(self.storage, "resume_ttl", None)
        if sweep is not None and resume_ttl:
            # Expired tus partials go, also when no line-protocol service runs.
            self._sweeper = LoopingCall(sweep)
            self._sweeper.clock = self.reactor
            self._sweeper.start(min(600.0, max(1.0, resume_ttl / 4)), now=False)

    def stopFactory(self) -> None:
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()
        super().stopFactory()

    def mount_chat(self, websocket: Resource, page: Resource) -> None:
        """The chat's WebSocket front at ``/chat`` and its page at ``/chat.html`` (no token: the chat has its own rules)."""
        self.mount(b"chat", websocket)
        self.mount(b"chat.html", page)

    def log(self, request: Any) -> None:
        """No access log line per request: the service logs what matters."""

    # -- the body decision (see suite.web.channel) ------------------------------------

    def body_handler(
        self, request: WebRequest, length: int | None
    ) -> Callable[[], Awaitable[BodySink]] | None:
        """
        Decide on a request body before it is read: a function that starts
        an upload to stream it into, or ``None`` for an ordinary (small) body.

        :raises WebError: the request is refused before its body.
        """
        segments = route(request.path)
        if request.method == b"PUT" and segments[0] == b"files":
            request.postpath = segments[1:]
            return self.files.begin_put(request, length)
        if request.method == b"PATCH" and segments[0] == b"uploads":
            request.postpath = segments[1:]
            return self.tus.begin_patch(request, length)
        if length is not None and length > self.max_small_body:
            raise WebError(ErrorCode.TOO_LARGE, f"request bodies here are at most {self.max_small_body} bytes")
        return None

    # -- rules every route applies -------------------------------------------------------

    def authorize(self, request: WebRequest, write: bool = False, cookie: bool = True) -> None:
        """
        Check the bearer token (or, when ``cookie``, the page's session
        cookie: :mod:`suite.web.login`) and, for writes, the origin.

        :raises WebError: ``auth-required``/``auth-failed`` (401 with
            ``WWW-Authenticate``), ``forbidden-origin`` (403).
        """
        if write:
            self.check_origin(request)
        if self.token is None:
            return
        header = request.getHeader(b"Authorization")
        if header is None and cookie:
            session = request.getCookie(LOGIN_COOKIE)
            if session:
                self._check(request, session, session_value(self.token), "session cookie")
                return
        scheme, _, presented = (header or b"").partition(b" ")
        if scheme.lower() != b"bearer" or not presented.strip():
            raise WebError(ErrorCode.AUTH_REQUIRED, "send Authorization: Bearer TOKEN",
                           headers={b"WWW-Authenticate": b'Bearer realm="netsuite"'})
        self._check(request, presented.strip(), self.token, "token")

    def _check(self, request: WebRequest, presented: bytes, expected: bytes, what: str) -> None:
        if not hmac.compare_digest(presented, expected):
            peer = peer_text(request.getClientAddress())
            delay = self._auth_failed(peer.rsplit(":", 1)[0])
            log.warn("web: wrong {what} from {peer}; answering in {delay:g}s", what=what, peer=peer, delay=delay)
            raise WebError(ErrorCode.AUTH_FAILED, f"wrong {what}", delay=delay,
                           headers={b"WWW-Authenticate": b'Bearer realm="netsuite", error="invalid_token"'})

    def _auth_failed(self, host: str) -> float:
        """Count a wrong token from ``host``; how long its answer waits (doubling, capped)."""
        now = self.reactor.seconds()
        count, last = self._auth_failures.pop(host, (0, now))
        count = 1 if now - last > self.AUTH_MEMORY else count + 1
        if len(self._auth_failures) >= self.AUTH_HOSTS:  # bounded: forget the oldest host
            del self._auth_failures[next(iter(self._auth_failures))]
        self._auth_failures[host] = (count, now)
        return min(self.auth_delay * 2 ** (count - 1), self.AUTH_DELAY_MAX)

    def check_origin(self, request: WebRequest) -> None:
        """Writes from a page of another origin are refused, unless it is the ``cors_origin``."""
        origin = request.getHeader(b"Origin")
        if origin is None or origin == self.own_origin(request) or (self.cors_origin and origin == self.cors_origin):
            return
        raise WebError("forbidden-origin", f"writes from {origin.decode('latin-1')} are not allowed")

    @staticmethod
    def own_origin(request: WebRequest) -> bytes:
        scheme = b"https" if request.isSecure() else b"http"
        return scheme + b"://" + (request.getHeader(b"Host") or b"")

    def start_transfer(self) -> None:
        """Count a download; :raises WebError: too-many-transfers (503)."""
        if self.max_transfers is not None and self.transfers >= self.max_transfers:
            raise WebError(ErrorCode.TOO_MANY_TRANSFERS, f"the server is busy (limit {self.max_transfers} transfers)",
                           headers={b"Retry-After": b"5"})
        self.transfers += 1

    def end_transfer(self) -> None:
        self.transfers -= 1

    def getResourceFor(self, request: WebRequest) -> Resource:
        if self._cors(request):
            return Answer(status=204)  # a preflight, answered
        return super().getResourceFor(request)

    def _cors(self, request: WebRequest) -> bool:
        """Add CORS headers for the allowed origin; whether this is its preflight."""
        origin = request.getHeader(b"Origin")
        if self.cors_origin is None or origin != self.cors_origin:
            return False
        headers = request.responseHeaders
        headers.setRawHeaders(b"Access-Control-Allow-Origin", [self.cors_origin])
        headers.setRawHeaders(b"Vary", [b"Origin"])
        headers.setRawHeaders(b"Access-Control-Expose-Headers", [CORS_EXPOSE_HEADERS])
        if request.method == b"OPTIONS" and request.getHeader(b"Access-Control-Request-Method"):
            headers.setRawHeaders(b"Access-Control-Allow-Methods", [b"GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS"])
            headers.setRawHeaders(b"Access-Control-Allow-Headers", [CORS_ALLOW_HEADERS])
            headers.setRawHeaders(b"Access-Control-Max-Age", [b"600"])
            return True
        return False
