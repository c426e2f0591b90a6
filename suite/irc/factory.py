"""
The IRC front's factory: the shared :class:`suite.chat.rooms.ChatServer`,
the admission policy, every per-connection limit (which
:meth:`IRCFactory.configure` changes while running), and the IRC lines of
the chat's events, rendered once per line for every IRC member.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable

from twisted.internet.interfaces import IReactorTime

from suite._reactor import or_global_reactor
from suite.admission import AdmissionPolicy, AdmittingFactory
from suite.chat.rooms import ChatServer
from suite.chat.wire import ServerLine
from suite.irc import defaults
from suite.irc.protocol import IRCConnection
from suite.irc.render import render_shared
from suite.sockbytes import SocketBytes

__all__ = ["IRCFactory"]


class IRCFactory(AdmittingFactory):
    """
    Builds :class:`IRCConnection` s on a :class:`ChatServer` (shared with the
    line chat and the WebSocket front, or a new one).  Every limit is a
    keyword argument; ``None`` (or 0) disables it.

    :param server_name: the server's name in IRC prefixes and numerics.
    :param network: the ``NETWORK`` the 005 reply advertises.
    :param motd: the message of the day (``None``: 422, no MOTD).
    :param password: what ``PASS`` must give before registering (``None``: no PASS needed).
    :param max_line: longest accepted line in bytes; longer ones get 417.
    :param flood_rate: lines per second per connection (sustained).
    :param flood_burst: lines at once; also how many dropped lines in a row end it (Excess Flood).
    :param max_pending: bytes of output a client may leave unread (SendQ exceeded).
    :param max_connections: concurrent connections in total.
    :param max_per_ip: concurrent connections per client IP address.
    :param per_ip_exempt: IP addresses the per-IP cap does not apply to.
    :param ping_interval: seconds of silence before the server sends PING.
    :param ping_timeout: seconds to answer it (any line will do) before disconnection.
    :param register_timeout: seconds a new connection has to register.
    :param close_grace: seconds a closing connection gets to read its ERROR line.
    """

    protocol = IRCConnection
    noisy = False

    DEFAULT_MAX_LINE = defaults.MAX_LINE
    DEFAULT_FLOOD_RATE = defaults.FLOOD_RATE
    DEFAULT_FLOOD_BURST = defaults.FLOOD_BURST
    DEFAULT_MAX_PENDING = defaults.MAX_PENDING
    DEFAULT_MAX_CONNECTIONS = defaults.MAX_CONNECTIONS
    DEFAULT_MAX_PER_IP = defaults.MAX_PER_IP
    DEFAULT_PING_INTERVAL = defaults.PING_INTERVAL
    DEFAULT_PING_TIMEOUT = defaults.PING_TIMEOUT
    DEFAULT_REGISTER_TIMEOUT = defaults.REGISTER_TIMEOUT
    DEFAULT_MOTD = defaults.MOTD

    def __init__(
        self,
        server: ChatServer | None = None,
        *,
        server_name: str = "netsuite",
        network: str = "netsuite",
        motd: str | None = DEFAULT_MOTD,
        password: str | None = None,
        max_line: int | None = DEFAULT_MAX_LINE,
        flood_rate: float | None = DEFAULT_FLOOD_RATE,
        flood_burst: int = DEFAULT_FLOOD_BURST,
        max_pending: int | None = DEFAULT_MAX_PENDING,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        max_per_ip: int | None = DEFAULT_MAX_PER_IP,
        per_ip_exempt: Iterable[str] = (),
        ping_interval: float = DEFAULT_PING_INTERVAL,
        ping_timeout: float = DEFAULT_PING_TIMEOUT,
        register_timeout: float = DEFAULT_REGISTER_TIMEOUT,
        close_grace: float = 5.0,
        reactor: IReactorTime | None = None,
    ) -> None:
        if not server_name or any(c in server_name for c in " :!@\r\n"):
            raise ValueError(f"invalid server name {server_name!r}")
        self.server = server if server is not None else ChatServer()
        self.server_name = server_name
        self.network = network
        self.motd = motd
        self.password = password
        self.close_grace = close_grace
        self.reactor = or_global_reactor(reactor)
        self.admission = AdmissionPolicy(
            "irc", max_connections=max_connections, max_per_ip=max_per_ip, exempt=per_ip_exempt,
            refusal_line=lambda text: f"ERROR :Closing Link: ({text})\r\n".encode(), clock=self.reactor,
        )
        self.render_key = f"irc {server_name}"
        #: Every admitted connection, registered or not.
        self.clients: set[IRCConnection] = set()
        #: For /metrics: lines read, clients disconnected by reason, bytes (from the kernel).
        self.lines_received = 0
        self.disconnects: Counter[str] = Counter()
        self.sockets = SocketBytes()
        self.configure(
            max_line=max_line, flood_rate=flood_rate, flood_burst=flood_burst, max_pending=max_pending,
            ping_interval=ping_interval, ping_timeout=ping_timeout, register_timeout=register_timeout,
        )

    def configure(
        self,
        *,
        max_line: int | None,
        flood_rate: float | None,
        flood_burst: int,
        max_pending: int | None,
        ping_interval: float,
        ping_timeout: float,
        register_timeout: float,
    ) -> None:
        """Set the per-connection limits, for new connections and those already open (SIGHUP)."""
        if max_line is not None and max_line < 1:
            raise ValueError(f"max_line must be at least 1 or None, not {max_line!r}")
        if flood_burst < 1:
            raise ValueError(f"flood_burst must be at least 1, not {flood_burst!r}")
        self.max_line = max_line or sys.maxsize
        self.flood_rate = flood_rate or None
        self.flood_burst = flood_burst
        self.max_pending = max_pending or None
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.register_timeout = register_timeout
        for client in self.clients:
            client.reset_flood_control()

    def render(self, what: ServerLine) -> bytes | None:
        """An event's IRC lines, the same for every IRC member (cached per line by :meth:`Line.rendered`)."""
        return render_shared(self.server, self.server_name, what)

    def stopFactory(self) -> None:
        """The service is stopping: tell every IRC client, and close."""
        for client in list(self.clients):
            client.close("Server shutting down", "server shutdown")
