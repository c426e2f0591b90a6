"""
The chat connection: lines in, commands and messages out, with limits.

:class:`ChatProtocol` reads LF- or CRLF-terminated UTF-8 lines and hands
them to the factory's :class:`suite.chat.rooms.ChatServer`.  It enforces the
per-connection limits: line length, flood control, a cap on output the
client has not read, and an optional idle timeout.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from twisted.internet.interfaces import IPushProducer, IReactorTime, ITCPTransport
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from suite._reactor import or_global_reactor
from suite.chat import wire
from suite.chat.commands import run_command
from suite.chat.rooms import ChatRoom, ChatServer
from suite.chat.wire import ErrorCode
from suite.limits import ConnectionLimit, TokenBucket, cancel_call, close_then_abort, peer_host

__all__ = ["ChatFactory", "ChatProtocol"]


@implementer(IPushProducer)
class ChatProtocol(LineOnlyReceiver, TimeoutMixin):
    """
    One chat user's connection.

    It is also the streaming producer of its own transport: when the
    transport's buffer is full (the client is not reading), output waits in
    a queue of at most ``factory.max_pending`` bytes; beyond that the client
    is disconnected with ``send-queue-exceeded``.
    """

    factory: ChatFactory
    log = Logger()
    delimiter = b"\n"

    nick: str = ""
    room: ChatRoom | None = None

    def __init__(self) -> None:
        self._outbox: list[bytes] = []
        self._outbox_size = 0
        self._paused = False
        self._closing = False
        self._admitted = False
        self._discarding = False
        self._telnet_pending = b""
        self._flood_strikes = 0
        self._bucket: TokenBucket | None = None
        self._abort_call: Any = None

    # -- connection life -------------------------------------------------------

    def connectionMade(self) -> None:
        factory = self.factory
        self.MAX_LENGTH = factory.max_line
        host = peer_host(self.transport.getPeer())
        refusal = factory.admit(host)
        if refusal is not None:
            self._closing = True
            self.log.info("refused {host}: {reason}", host=host, reason=refusal)
            self.transport.write(wire.error_line(ErrorCode.TOO_MANY_CONNECTIONS, refusal))
            self.transport.loseConnection()
            return
        self._admitted = True
        _set_no_delay(self.transport)
        self.transport.registerProducer(self, True)
        if factory.flood_rate is not None:
            self._bucket = TokenBucket(factory.flood_rate, factory.flood_burst, factory.reactor)
        self.callLater = factory.reactor.callLater
        self.setTimeout(factory.idle_timeout)
        factory.server.connect(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        self._closing = True
        self._outbox.clear()
        if self._admitted:
            self._admitted = False
            self.factory.release(peer_host(self.transport.getPeer()))
            self.factory.server.disconnect(self, "connection lost")
        cancel_call(self._abort_call)

    def close(self, line: bytes | None, reason: str) -> None:
        """
        Leave the chat now (others hear ``reason``), send ``line`` if given,
        and close; abort after ``factory.close_grace`` seconds if the client
        does not take the last bytes.
        """
        if self._closing:
            return
        self.factory.server.disconnect(self, reason)
        self._closing = True
        self.setTimeout(None)
        self.flush(force=True)
        if line is not None:
            self.transport.write(line)
        self.transport.unregisterProducer()
        self._abort_call = close_then_abort(self.transport, self.factory.reactor, self.factory.close_grace)

    def quit(self, reason: str) -> None:
        """``/quit [REASON]``."""
        reason = wire.sanitize(reason)[:200]
        self.close(wire.notice_line("bye", "goodbye"), f"quit: {reason}" if reason else "quit")

    def timeoutConnection(self) -> None:
        self.close(
            wire.error_line(ErrorCode.IDLE_TIMEOUT, f"no input for {self.factory.idle_timeout:g}s; disconnected"),
            "idle timeout",
        )

    # -- input -----------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Split ``data`` into lines; the lines of one read are answered in one write per recipient."""
        if self._closing:
            return
        self.resetTimeout()
        if self._telnet_pending or b"\xff" in data:
            # Telnet commands (never part of UTF-8 text), answered at once:
            # a telnet client may wait for the answer before the line ends.
            data, replies, pending = wire.strip_telnet(self._telnet_pending + data)
            self._telnet_pending = pending if len(pending) <= wire.TELNET_MAX_PENDING else b""
            if replies:
                self.deliver(replies)
        lines = data.split(b"\n")
        rest = lines.pop()
        if lines:
            if self._discarding:
                # The end of an over-long line, already reported: drop it.
                del lines[0]
                self._discarding = False
            else:
                lines[0] = self._buffer + lines[0]
            self._buffer = rest
        elif not self._discarding:
            self._buffer += rest
        if len(lines) > 1:
            # Several lines in one read: one write per recipient for all of them.
            with self.factory.server.batch():
                self._lines_received(lines)
        else:
            self._lines_received(lines)

    def _lines_received(self, lines: list[bytes]) -> None:
        for line in lines:
            if self._closing:
                return
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.MAX_LENGTH:
                self.lineLengthExceeded(line)
            else:
                self.lineReceived(line)
        if len(self._buffer) > self.MAX_LENGTH + 1:  # +1: room for a CR
            # No newline yet and already too long: reject it now, and drop
            # the rest of it as it arrives, so memory stays bounded.
            self._buffer = b""
            self._discarding = True
            self.lineLengthExceeded(b"")

    def lineLengthExceeded(self, line: bytes) -> None:
        self.factory.server.error(
            self, ErrorCode.LINE_TOO_LONG, f"line longer than {self.MAX_LENGTH} bytes rejected"
        )

    def lineReceived(self, line: bytes) -> None:
        if not line.strip():
            return
        if not self._allowed_by_flood_control():
            return
        server = self.factory.server
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            server.error(self, ErrorCode.INVALID_UTF8, "line is not valid UTF-8; it was rejected")
            return
        if text.startswith("/") and not text.startswith("//"):
            run_command(server, self, text)
        else:
            server.say(self, text[1:] if text.startswith("//") else text)

    def _allowed_by_flood_control(self) -> bool:
        bucket = self._bucket
        if bucket is None or bucket.consume():
            self._flood_strikes = 0
            return True
        self._flood_strikes += 1
        factory = self.factory
        if self._flood_strikes == 1:
            factory.server.error(
                self, ErrorCode.FLOOD,
                f"too many lines (limit {factory.flood_rate:g}/s, burst {factory.flood_burst}); "
                "lines are rejected until you slow down",
            )
        elif self._flood_strikes > factory.flood_burst:
            self.log.info("disconnecting {nick} for flooding", nick=self.nick)
            self.close(wire.error_line(ErrorCode.FLOOD, "disconnected for flooding"), "flood")
        return False

    # -- output ----------------------------------------------------------------

    def enqueue(self, data: bytes) -> None:
        """Queue ``data``; disconnect the client if its unread output grows too large."""
        if self._closing:
            return
        self._outbox.append(data)
        self._outbox_size += len(data)
        # Only output held back for a client that is not reading counts; a
        # reading client's queue is written at the end of the current batch.
        limit = self.factory.max_pending
        if self._paused and limit is not None and self._outbox_size > limit:
            self.log.info("disconnecting {nick}: send queue exceeded", nick=self.nick)
            self._outbox.clear()
            self._outbox_size = 0
            self.close(
                wire.error_line(ErrorCode.SEND_QUEUE_EXCEEDED, f"send queue exceeded ({limit} bytes unread); disconnected"),
                "send queue exceeded",
            )

    def deliver(self, data: bytes) -> None:
        """Write ``data`` now, or queue it while the client is not reading."""
        if self._paused or self._outbox:
            self.enqueue(data)
            self.flush()
        elif not self._closing:
            self.transport.write(data)

    def flush(self, force: bool = False) -> None:
        """Write the queue, in one write, unless the client is not reading."""
        outbox = self._outbox
        if not outbox or (self._paused and not force) or (self._closing and not force):
            return
        data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
        outbox.clear()
        self._outbox_size = 0
        self.transport.write(data)

    # IPushProducer, for our own transport.
    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self.flush()

    def stopProducing(self) -> None:
        self._paused = True


def _set_no_delay(transport: Any) -> None:
    """
    Turn Nagle off: chat lines are small and receivers rarely send, so Nagle
    plus delayed ACKs would hold fan-out writes for tens of milliseconds.
    """
    while transport is not None:
        if ITCPTransport.providedBy(transport):
            transport.setTcpNoDelay(True)
            return
        transport = getattr(transport, "transport", None)  # TLS wraps TCP


class ChatFactory(Factory):
    """
    Builds :class:`ChatProtocol` connections sharing one :class:`ChatServer`.

    Every limit is a keyword argument; ``None`` disables it.

    :param server: the chat state (a new one with ``history`` if not given).
    :param max_line: longest accepted line in bytes, excluding the line end.
    :param flood_rate: lines per second per connection (sustained).
    :param flood_burst: lines a connection may send at once; also how many
        rejected lines in a row end the connection.
    :param max_pending: bytes of output a client may leave unread.
    :param max_connections: concurrent connections in total.
    :param max_per_ip: concurrent connections per client IP address.
    :param per_ip_exempt: IP addresses the per-IP cap does not apply to.
    :param idle_timeout: seconds without input before disconnecting.
    :param close_grace: seconds a closing connection gets to take its last
        line before it is aborted.
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
    ) -> None:
        if max_line is not None and max_line < 1:
            raise ValueError(f"max_line must be at least 1 or None, not {max_line!r}")
        if flood_burst < 1:
            raise ValueError(f"flood_burst must be at least 1, not {flood_burst!r}")
        reactor = or_global_reactor(reactor)
        self.server = server if server is not None else ChatServer(history=history)
        # No line limit means lines as long as memory allows: the operator's call.
        self.max_line = max_line or sys.maxsize
        self.flood_rate = flood_rate or None
        self.flood_burst = flood_burst
        self.max_pending = max_pending or None
        self.connections = ConnectionLimit(max_connections or None, max_per_ip or None)
        self.per_ip_exempt = frozenset(per_ip_exempt)
        self.idle_timeout = idle_timeout or None
        self.close_grace = close_grace
        self.reactor = reactor

    def admit(self, host: str | None) -> str | None:
        """Count a new connection; the reason it is refused, or ``None``."""
        return self.connections.acquire(None if host in self.per_ip_exempt else host)

    def release(self, host: str | None) -> None:
        """Forget a connection counted by :meth:`admit`."""
        self.connections.release(None if host in self.per_ip_exempt else host)

    def stopFactory(self) -> None:
        """The service is stopping: tell everyone, and close."""
        line = wire.error_line(ErrorCode.SERVER_SHUTDOWN, "the server is shutting down")
        for user in list(self.server.users.values()):
            if isinstance(user, ChatProtocol) and user.factory is self:
                user.close(line, "server shutdown")
