"""
TCP echo (RFC 862): :class:`EchoFactory` builds :class:`EchoProtocol`
connections that return every byte in order (written eagerly to the
socket), apply backpressure, honour half-close, and enforce the admission
policy and an idle timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.internet.interfaces import IHalfCloseableProtocol, IPullProducer, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from suite._reactor import or_global_reactor
from suite.admission import AdmissionPolicy, AdmittedConnection, AdmittingFactory
from suite.endpoints import plain_socket
from suite.limits import peer_text
from suite.sockbytes import SocketBytes

__all__ = ["EchoFactory", "EchoProtocol"]


def _socket_send(transport: object) -> Callable[[bytes], int] | None:
    """The ``send`` of the socket under ``transport`` when echoes may be written to it directly."""
    sock = plain_socket(transport)
    return sock.send if sock is not None else None


@implementer(IHalfCloseableProtocol, IPullProducer)
class EchoProtocol(AdmittedConnection, Protocol, TimeoutMixin):
    """
    One echo connection: everything received is written back unchanged.

    On a plain TCP (or UNIX) connection, echoes are written eagerly: while
    none of this connection's output is waiting in the transport, received
    bytes go straight to the socket, and only what the kernel does not take
    is handed to ``transport.write``, after which everything goes through the
    transport until it has drained (so order is kept).  Twisted's transports
    otherwise buffer every write until the next turn of the reactor
    (twisted/twisted#5303), which costs two ``epoll_ctl`` calls and a wake-up
    per read; asyncio and libuv write eagerly the same way.

    Backpressure: output held by the transport is counted, and above the
    factory's ``max_buffer`` the connection stops reading until the
    transport has written it all.  For other transports (TLS, wrappers) the
    transport is registered as its own streaming producer, which pauses
    reading when its buffer fills.
    """

    factory: EchoFactory
    log = Logger()

    def __init__(self) -> None:
        self._send: Callable[[bytes], int] | None = None
        #: bytes handed to the transport and not yet written to the socket
        self._held = 0
        self._reading = True

    def connectionMade(self) -> None:
        self.factory.live.add(self)
        self.factory.sockets.watch(self.transport)
        self._send = _socket_send(self.transport)
        if self._send is not None:
            # As a pull producer, this protocol is told (resumeProducing)
            # each time the transport has written everything it held.
            self.transport.registerProducer(self, False)
        else:
            # The transport pauses itself (stops reading) when its write
            # buffer fills because the peer is not reading.
            self.transport.registerProducer(self.transport, True)
        self.callLater = self.factory.reactor.callLater
        self.setTimeout(self.factory.idle_timeout)

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        send = self._send
        if send is None:
            self.transport.write(data)
            return
        if not self._held:
            try:
                sent = send(data)
            except OSError:
                # Full (EAGAIN), or broken: the transport reports a broken
                # connection when it tries to write.
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        self._held += len(data)
        self.transport.write(data)
        if self._held > self.factory.max_buffer and self._reading:
            self._reading = False
            self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        """The transport has written everything it held: read again if paused."""
        self._held = 0
        if not self._reading:
            self._reading = True
            self.transport.resumeProducing()

    def stopProducing(self) -> None:
        """The connection is going away; :meth:`connectionLost` cleans up."""

    def readConnectionLost(self) -> None:
        """The peer shut down its sending side: flush what is pending, then close."""
        # A still-registered producer would keep the connection open forever.
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """Our sending side is shut: nothing more can be echoed, so close."""
        self.transport.unregisterProducer()  # or the close would wait for it
        self.transport.loseConnection()

    def timeoutConnection(self) -> None:
        """Idle too long: abort, since a polite close waits for a flush that may never come."""
        self.log.info("closing idle connection from {peer}", peer=peer_text(self.transport.getPeer()))
        self.transport.abortConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        self.factory.live.discard(self)
        super().connectionLost(reason)


class EchoFactory(AdmittingFactory):
    """
    Builds :class:`EchoProtocol` connections and holds their shared limits.

    :param max_connections: concurrent connections admitted; the rest get a
        one-line ``error: too many connections (limit N)`` and are closed.
        ``None`` means no cap.
    :param max_per_ip: concurrent connections per client IP; ``None``: no cap.
    :param per_ip_exempt: IP addresses the per-IP cap does not apply to.
    :param idle_timeout: seconds without input before a connection is
        aborted; ``None`` disables.
    :param max_buffer: bytes of unsent output a connection may hold before
        the server stops reading from it (until the client reads).  One read
        (up to 64 KiB) may come on top.
    :param reactor: the clock for timeouts (defaults to the global reactor).
    """

    protocol = EchoProtocol
    noisy = False

    #: Defaults used by the twistd plugin, documented in docs/protocols/echo.md.
    DEFAULT_MAX_CONNECTIONS = 1000
    DEFAULT_IDLE_TIMEOUT = 300.0
    DEFAULT_MAX_BUFFER = 64 * 1024

    def __init__(
        self,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        reactor: IReactorTime | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        max_per_ip: int | None = None,
        per_ip_exempt: Iterable[str] = (),
    ) -> None:
        self.reactor = or_global_reactor(reactor)
        self.admission = AdmissionPolicy(
            "echo", max_connections=max_connections, max_per_ip=max_per_ip, exempt=per_ip_exempt,
            clock=self.reactor,
        )
        #: The connections open now.
        self.live: set[EchoProtocol] = set()
        #: Bytes in and out for /metrics, from the kernel: nothing is counted per read.
        self.sockets = SocketBytes()
        self.idle_timeout: float | None = None
        self.max_buffer = self.DEFAULT_MAX_BUFFER
        self.configure(idle_timeout=idle_timeout, max_buffer=max_buffer)

    def configure(self, *, idle_timeout: float | None, max_buffer: int) -> None:
        """Set the per-connection limits, for new connections and those already open."""
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be at least 1 byte, not {max_buffer}")
        self.max_buffer = max_buffer
        if (idle_timeout or None) != self.idle_timeout:
            self.idle_timeout = idle_timeout or None
            for protocol in self.live:
                protocol.setTimeout(self.idle_timeout)

    @property
    def refused(self) -> int:
        """Connections turned away by the caps since start."""
        return sum(self.admission.refused.values())
