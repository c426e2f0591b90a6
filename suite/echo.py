"""
Echo services: TCP (RFC 862) and UDP.

:class:`EchoFactory` builds :class:`EchoProtocol` connections that return
every byte in order (written eagerly to the socket), apply backpressure,
honour half-close, and enforce a connection cap and an idle timeout.
:class:`UDPEchoProtocol` answers each datagram with the same bytes, behind a
loop/reflection guard and rate limits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IHalfCloseableProtocol, IPullProducer, IReactorTime
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from suite._reactor import or_global_reactor
from suite.endpoints import plain_socket
from suite.limits import ConnectionLimit, RateLimiterTable, ThrottledLog, peer_host

__all__ = [
    "EchoFactory",
    "EchoProtocol",
    "UDPEchoProtocol",
    "UDPEchoStats",
]


def _socket_send(transport: object) -> Callable[[bytes], int] | None:
    """The ``send`` of the socket under ``transport`` when echoes may be written to it directly."""
    sock = plain_socket(transport)
    return sock.send if sock is not None else None


@implementer(IHalfCloseableProtocol, IPullProducer)
class EchoProtocol(Protocol, TimeoutMixin):
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
        self._admitted = False
        self._send: Callable[[bytes], int] | None = None
        #: bytes handed to the transport and not yet written to the socket
        self._held = 0
        self._reading = True

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        refusal = self.factory.connections.acquire(peer_host(peer))
        if refusal is not None:
            self.factory.refused += 1
            self.log.info("refused {peer}: {reason}", peer=peer, reason=refusal)
            self.transport.write(f"error: {refusal}\r\n".encode())
            self.transport.loseConnection()
            return
        self._admitted = True
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
        if not self._admitted:
            return
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
        self.log.info("closing idle connection from {peer}", peer=self.transport.getPeer())
        self.transport.abortConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        if self._admitted:
            self._admitted = False
            self.factory.connections.release(peer_host(self.transport.getPeer()))


class EchoFactory(Factory):
    """
    Builds :class:`EchoProtocol` connections and holds their shared limits.

    :param max_connections: concurrent connections admitted; the rest get a
        one-line ``error: too many connections (limit N)`` and are closed.
        ``None`` means no cap.
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
    ) -> None:
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be at least 1 byte, not {max_buffer}")
        self.connections = ConnectionLimit(max_connections)
        self.idle_timeout = idle_timeout or None
        self.max_buffer = max_buffer
        self.reactor = or_global_reactor(reactor)
        #: Connections turned away by the cap since start.
        self.refused = 0


@dataclass
class UDPEchoStats:
    """Counters of a :class:`UDPEchoProtocol`: what it answered and what it dropped."""

    received: int = 0
    echoed: int = 0
    refused: int = 0  #: from a privileged or denied source port
    rate_limited: int = 0  #: over the per-source or global rate
    dropped: int = 0  #: the reply could not be sent (socket buffer full)


class UDPEchoProtocol(DatagramProtocol):
    """
    Answers every datagram with the same bytes, to its sender.

    Guards, as inetd does: datagrams from source ports below 1024 (other
    services such as DNS, NTP, chargen) or in ``deny_ports`` (which always
    includes this socket's own port) are never answered, so two echo servers
    or a spoofed source cannot make a loop.  Each source host may send
    ``rate`` datagrams/s (``burst`` at once) and all sources together
    ``global_rate``/s; excess is dropped and counted, never queued.  Pass
    ``None`` for a rate to disable it.

    Listen with :class:`suite.endpoints.UDPServerEndpoint` (or
    ``listenUDP(..., maxPacketSize=65535)``) so large datagrams are not
    truncated.
    """

    log = Logger()
    noisy = False

    DEFAULT_RATE = 1000.0
    DEFAULT_BURST = 2000
    DEFAULT_GLOBAL_RATE = 100_000.0
    #: Source hosts remembered by the per-source limiter.
    DEFAULT_MAX_SOURCES = 4096

    def __init__(
        self,
        rate: float | None = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        global_rate: float | None = DEFAULT_GLOBAL_RATE,
        deny_ports: Iterable[int] = (),
        max_sources: int = DEFAULT_MAX_SOURCES,
        reactor: IReactorTime | None = None,
    ) -> None:
        clock = or_global_reactor(reactor)
        self.deny_ports = set(deny_ports)
        self.per_source = RateLimiterTable(rate, burst, clock, max_keys=max_sources)
        # The global cap is the same kind of bucket, under one key, holding
        # one second's worth.
        self.global_limit = RateLimiterTable(global_rate, max(1.0, global_rate or 1.0), clock, max_keys=1)
        self._limited = rate is not None or global_rate is not None
        self._echoed = self._refused = self._rate_limited = self._dropped = 0
        self._sendto: Any = None
        self._refusal_log = ThrottledLog(self.log, clock)
        self._rate_log = ThrottledLog(self.log, clock)

    def startProtocol(self) -> None:
        self.deny_ports.add(self.transport.getHost().port)
        # Replies go straight to the socket: the address came from the
        # kernel, so Twisted's per-datagram address validation in
        # Port.write (a quarter of the time, measured) is not needed.
        handle = getattr(self.transport, "getHandle", None)
        self._sendto = handle().sendto if handle is not None else None
        self.per_source.start()
        self.global_limit.start()

    def stopProtocol(self) -> None:
        self.per_source.stop()
        self.global_limit.stop()

    @property
    def stats(self) -> UDPEchoStats:
        """The counters so far."""
        return UDPEchoStats(
            received=self._echoed + self._refused + self._rate_limited + self._dropped,
            echoed=self._echoed, refused=self._refused, rate_limited=self._rate_limited,
            dropped=self._dropped,
        )

    # The hot path of the service: kept to plain attribute and dict work.
    def datagramReceived(self, data: bytes, addr: Any) -> None:
        host, port = addr[0], addr[1]
        if port < 1024 or port in self.deny_ports:
            self._refused += 1
            self._refusal_log.warn(
                "not answering datagram from {host} port {port}: source port is privileged or denied",
                host=host,
                port=port,
            )
            return
        if self._limited:
            if not self.per_source.allow(host) or not self.global_limit.allow(None):
                self._rate_limited += 1
                self._rate_log.warn("dropping datagrams from {host} over the rate limit", host=host)
                return
        if self._sendto is None:
            self.transport.write(data, addr)
        else:
            try:
                self._sendto(data, addr)
            except InterruptedError:
                self._sendto(data, addr)
            except OSError:
                # Send buffer full (EAGAIN), peer unreachable: UDP drops it.
                self._dropped += 1
                return
        self._echoed += 1

