"""
UDP echo: :class:`UDPEchoProtocol` answers each datagram with the same
bytes, behind a loop/reflection guard and rate limits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from suite._reactor import or_global_reactor
from suite.limits import RateLimiterTable, ThrottledLog

__all__ = ["UDPEchoProtocol", "UDPEchoStats"]


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
        self._own_port: int | None = None
        self._echoed = self._refused = self._rate_limited = self._dropped = 0
        self._sendto: Any = None
        self._refusal_log = ThrottledLog(self.log, clock)
        self._rate_log = ThrottledLog(self.log, clock)

    def configure(
        self, *, rate: float | None, burst: int, global_rate: float | None, deny_ports: Iterable[int]
    ) -> None:
        """Change the rates and the denied ports while running (reload)."""
        self.per_source.reconfigure(rate, burst)
        self.global_limit.reconfigure(global_rate, max(1.0, global_rate or 1.0))
        self._limited = rate is not None or global_rate is not None
        self.deny_ports = set(deny_ports) | ({self._own_port} if self._own_port is not None else set())

    def startProtocol(self) -> None:
        self._own_port = self.transport.getHost().port
        self.deny_ports.add(self._own_port)
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
