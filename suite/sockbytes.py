"""
Byte counts of TCP connections read from the kernel (Linux ``TCP_INFO``),
so a service counts the bytes it moves at no cost per read or write.

A :class:`SocketBytes` is told of each connection once
(:meth:`SocketBytes.watch`, in ``connectionMade``).  Its ``bytes_in`` and
``bytes_out`` are read when ``/metrics`` is scraped: the sums of the open
connections' counters (one ``getsockopt`` each) and of the connections that
have ended (read once, just before their socket closes).
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from twisted.internet import tcp

__all__ = ["SocketBytes", "tcp_bytes"]

# struct tcp_info (linux/tcp.h): the byte counters and the fields they need.
_STATE = struct.Struct("B")  # tcpi_state, offset 0
_ACKED_RECEIVED = struct.Struct("QQ")  # tcpi_bytes_acked, tcpi_bytes_received, offset 120
_NOTSENT = struct.Struct("I")  # tcpi_notsent_bytes, offset 144
_SENT_RETRANS = struct.Struct("QQ")  # tcpi_bytes_sent, tcpi_bytes_retrans, offset 200 (Linux 4.19+)
_INFO_SIZE = 216
#: TCP states in which the peer's FIN has arrived (it counts as one byte received).
_FIN_RECEIVED = frozenset({6, 8, 9, 11})  # TIME_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING
_TCP_INFO = getattr(socket, "TCP_INFO", None)


def tcp_bytes(sock: socket.socket) -> tuple[int, int] | None:
    """
    ``(received, written)``: the data bytes the kernel has received on
    ``sock`` and those the program has written to it (sent, or queued to
    send), or ``None`` where ``TCP_INFO`` does not say (not Linux 4.19+,
    closed socket).
    """
    if _TCP_INFO is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _INFO_SIZE)
    except OSError:
        return None
    if len(info) < _INFO_SIZE:
        return None
    received = _ACKED_RECEIVED.unpack_from(info, 120)[1]
    if _STATE.unpack_from(info, 0)[0] in _FIN_RECEIVED:
        received -= 1
    sent, retransmitted = _SENT_RETRANS.unpack_from(info, 200)
    return max(received, 0), sent - retransmitted + _NOTSENT.unpack_from(info, 144)[0]


def _tcp_connection(transport: Any) -> tcp.Connection | None:
    """The reactor's TCP connection under ``transport`` (through TLS and protocol wrappers)."""
    for _ in range(4):
        if isinstance(transport, tcp.Connection):
            return transport
        transport = getattr(transport, "transport", None)
    return None


class SocketBytes:
    """
    The bytes a service's TCP connections received and wrote, from the kernel.

    :param received: whether to report ``bytes_in`` too (a service that
        counts what it reads itself reports only ``bytes_out``).

    Attributes are read by ``/metrics`` (``suite.metrics``) from its scrape
    thread: the open connections are copied in one step under the GIL, and
    a socket closed meanwhile answers ``None`` (Python marks it closed
    before its descriptor is released), never another socket's counts.
    """

    def __init__(self, received: bool = True) -> None:
        self.received = received
        #: Open connections' sockets.
        self.live: dict[socket.socket, None] = {}
        self._closed_in = 0
        self._closed_out = 0
        self._reported = (0, 0)

    def watch(self, transport: Any) -> None:
        """Count ``transport``'s bytes until it closes (a transport without a TCP socket is not counted)."""
        connection = _tcp_connection(transport)
        if connection is None:
            return
        sock = connection.getHandle()
        self.live[sock] = None
        original = connection.connectionLost

        def connection_lost(reason: Any) -> None:
            # Called by the reactor (or the transport itself) before the socket closes.
            del connection.connectionLost  # the class's method again; no cycle left behind
            self._ended(sock)
            original(reason)

        connection.connectionLost = connection_lost  # type: ignore[method-assign]

    def _ended(self, sock: socket.socket) -> None:
        if self.live.pop(sock, 1) is None:
            counts = tcp_bytes(sock)
            if counts is not None:
                self._closed_in += counts[0]
                self._closed_out += counts[1]

    def _totals(self) -> tuple[int, int]:
        live = list(self.live)
        total_in, total_out = self._closed_in, self._closed_out
        for sock in live:
            counts = tcp_bytes(sock)
            if counts is not None:
                total_in += counts[0]
                total_out += counts[1]
        # A connection ending during this scrape may be missed or counted
        # twice until the totals catch up: what is reported never goes down.
        last_in, last_out = self._reported
        self._reported = totals = (max(total_in, last_in), max(total_out, last_out))
        return totals

    @property
    def bytes_in(self) -> int | None:
        """Bytes received on every connection so far (``None`` when not reported)."""
        return self._totals()[0] if self.received else None

    @property
    def bytes_out(self) -> int:
        """Bytes written to every connection so far."""
        return self._totals()[1]
