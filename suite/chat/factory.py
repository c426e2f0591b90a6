"""
The chat's factory: one :class:`suite.chat.rooms.ChatServer` shared by its
connections, the admission policy, and every per-connection limit (which
:meth:`ChatFactory.configure` changes while running).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable

from twisted.internet.interfaces import IReactorTime

from suite._reactor import or_global_reactor
from suite.admission import AdmissionPolicy, AdmittingFactory
from suite.chat import wire
from suite.chat.protocol import ChatProtocol
from suite.chat.rooms import ChatServer
from suite.chat.wire import ErrorCode
from suite.limits import PeerLog
from suite.sockbytes import SocketBytes

__all__ = ["ChatFactory"]


class ChatFactory(AdmittingFactory):
    """
    Builds :class:`ChatProtocol` connections sharing one :class:`ChatServer`.

    Every limit is a keyword argument; ``None`` disables it.  :meth:`configure`
    changes them while running (open connections included).

    :param server: the chat state (a new one with ``history`` if not given).
    :param max_line: longest accepted line in bytes, excluding the line end.
    :param flood_rate: lines per second per connection (sustained).
    :param flood_burst: lines a connection may send at once; also how many
        more lines rejected after the flood warning end the connection.
    :param max_pending: bytes of output a client may leave unread.
    :param max_connections: concurrent connections in total.
    :param max_per_ip: concurrent connections per client IP address.
    :param per_ip_exempt: IP addresses the per-IP cap does not apply to.
    :param idle_timeout: seconds without input before disconnecting.
    :param close_grace: seconds a closing connection gets to take its last
        line before it is aborted.
    :param partial_line_notice: seconds text may wait without a line end
        before the client is told (``*** partial: ...``); ``None``: never.
    """

    protocol = ChatProtocol
    noisy = False

    DEFAULT_MAX_LINE = 2048
    DEFAULT_FLOOD_RATE = 10.0
    DEFAULT_FLOOD_BURST = 50
    DEFAULT_MAX_PENDING = 1 << 20
    DEFAULT_MAX_CONNECTIONS = 1000
    DEFAULT_MAX_PER_IP = 20
    DEFAULT_CLOSE_GRACE = 5.0
    DEFAULT_PARTIAL_LINE_NOTICE = 5.0

    def __init__(
        self,
        server: ChatServer | None = None,
        *,
        history: int = ChatServer.DEFAULT_HISTORY,
        max_line: int | None = DEFAULT_MAX_LINE,
        flood_rate: float | None = DEFAULT_FLOOD_RATE,
        flood_burst: int = DEFAULT_FLOOD_BURST,
        max_pending: int | None = DEFAULT_MAX_PENDING,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        max_per_ip: int | None = DEFAULT_MAX_PER_IP,
        per_ip_exempt: Iterable[str] = (),
        idle_timeout: float | None = None,
        close_grace: float = DEFAULT_CLOSE_GRACE,
        reactor: IReactorTime | None = None,
        partial_line_notice: float | None = DEFAULT_PARTIAL_LINE_NOTICE,
    ) -> None:
        self.reactor = or_global_reactor(reactor)
        self.server = server if server is not None else ChatServer(history=history)
        self.admission = AdmissionPolicy(
            "chat", max_connections=max_connections, max_per_ip=max_per_ip, exempt=per_ip_exempt,
            refusal_line=lambda text: wire.error_line(ErrorCode.TOO_MANY_CONNECTIONS, text),
            clock=self.reactor,
        )
        self.close_grace = close_grace
        #: Rule breaking (over-long lines, bad UTF-8, floods), logged once per peer host a minute.
        self.protocol_errors = PeerLog(ChatProtocol.log, self.reactor)
        #: Counters for /metrics: bytes and lines from clients, clients disconnected by reason
        #: (suite.metrics.reason_label), bytes written (from the kernel, not counted per write).
        self.bytes_in = 0
        self.sockets = SocketBytes(received=False)
        self.lines_received = 0
        self.disconnects: Counter[str] = Counter()
        self.idle_timeout: float | None = None
        self.configure(
            max_line=max_line, flood_rate=flood_rate, flood_burst=flood_burst,
            max_pending=max_pending, idle_timeout=idle_timeout, partial_line_notice=partial_line_notice,
        )

    def configure(
        self,
        *,
        max_line: int | None,
        flood_rate: float | None,
        flood_burst: int,
        max_pending: int | None,
        idle_timeout: float | None,
        partial_line_notice: float | None = DEFAULT_PARTIAL_LINE_NOTICE,
    ) -> None:
        """Set the per-connection limits, for new connections and those already open."""
        if max_line is not None and max_line < 1:
            raise ValueError(f"max_line must be at least 1 or None, not {max_line!r}")
        if flood_burst < 1:
            raise ValueError(f"flood_burst must be at least 1, not {flood_burst!r}")
        # No line limit means lines as long as memory allows: the operator's call.
        self.max_line = max_line or sys.maxsize
        self.flood_rate = flood_rate or None
        self.flood_burst = flood_burst
        self.max_pending = max_pending or None
        self.partial_line_notice = partial_line_notice or None
        old_timeout, self.idle_timeout = self.idle_timeout, idle_timeout or None
        for user in self.connections():
            user.reset_flood_control()
            if self.idle_timeout != old_timeout:
                user.setTimeout(self.idle_timeout)

    def connections(self) -> list[ChatProtocol]:
        """This factory's open connections."""
        return [user for user in self.server.users.values() if isinstance(user, ChatProtocol) and user.factory is self]

    def stopFactory(self) -> None:
        """The service is stopping: tell everyone, and close."""
        line = wire.error_line(ErrorCode.SERVER_SHUTDOWN, "the server is shutting down")
        for user in self.connections():
            user.close(line, "server shutdown")
