"""
The chat connection: lines in, commands and messages out, with limits.

:class:`ChatProtocol` reads LF- or CRLF-terminated UTF-8 lines and hands
them to the factory's :class:`suite.chat.rooms.ChatServer`.  It enforces the
per-connection limits: line length, flood control, a cap on output the
client has not read, and an optional idle timeout.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import ITCPTransport
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from suite.admission import AdmittedConnection
from suite.chat import wire
from suite.chat.commands import run_command
from suite.chat.output import ChatOutput
from suite.chat.rooms import ChatRoom
from suite.chat.wire import ErrorCode
from suite.limits import TokenBucket, cancel_call, close_then_abort, peer_host, peer_text
from suite.lines import BoundedLineReceiver
from suite.metrics import reason_label

__all__ = ["ChatProtocol", "set_no_delay"]

if TYPE_CHECKING:
    from suite.chat.factory import ChatFactory


class ChatProtocol(AdmittedConnection, ChatOutput, BoundedLineReceiver, TimeoutMixin):
    """
    One chat user's connection.

    Lines are read by :class:`suite.lines.BoundedLineReceiver` (bounded
    length, a batch per read, a line budget per turn, no reading while the
    client's output is backed up).  When the transport's buffer is full (the
    client is not reading), output waits in a queue of at most
    ``factory.max_pending`` bytes; beyond that the client is disconnected
    with ``send-queue-exceeded``.
    """

    factory: ChatFactory
    log = Logger()

    nick: str = ""
    room: ChatRoom | None = None

    # The chat's own per-connection state lives in slots, not in __dict__
    # (less memory per idle connection; see BoundedLineReceiver.__init__).
    __slots__ = (
        "_outbox", "_outbox_size", "_counted", "_closing", "_telnet_pending", "_held_raw", "_flooding",
        "_flood_rejected", "_flood_last", "_bucket", "_abort_call", "_partial_call", "_partial_told", "_lines_ended",
    )

    def __init__(self) -> None:
        super().__init__()
        # Set by others later; set now so every connection's __dict__ has
        # its keys in the same order (shared).
        self.callLater: Any = None
        self.timeOut: float | None = None
        self._TimeoutMixin__timeoutCall: Any = None
        self._admitted_as: Any = None
        self.nick = ""
        self.room = None
        self.init_output()
        self._closing = False
        self._telnet_pending = b""
        self._held_raw = b""
        self._flooding = False
        self._flood_rejected = 0
        self._flood_last = 0.0
        self._bucket: TokenBucket | None = None
        self._abort_call: Any = None
        self._partial_call: Any = None
        self._partial_told = False
        self._lines_ended = 0

    @property  # type: ignore[override]
    def MAX_LENGTH(self) -> int:  # noqa: N802 - the line receiver's name
        """The factory's line limit, so a reload applies to open connections."""
        return self.factory.max_line

    # -- connection life -------------------------------------------------------

    def connectionMade(self) -> None:
        factory = self.factory
        set_no_delay(self.transport)
        super().connectionMade()
        factory.sockets.watch(self.transport)
        self.reset_flood_control()
        self.callLater = factory.reactor.callLater
        self.setTimeout(factory.idle_timeout)
        factory.server.connect(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        self.stopLineTurns()
        cancel_call(self._partial_call)
        if not self._closing:
            self.factory.disconnects["connection-lost"] += 1
        self._closing = True
        self._drop_queue()
        self.factory.server.disconnect(self, "connection lost")
        cancel_call(self._abort_call)
        super().connectionLost(reason)

    def close(self, line: bytes | None, reason: str) -> None:
        """
        Leave the chat now (others hear ``reason``), send ``line`` if given,
        and close; abort after ``factory.close_grace`` seconds if the client
        does not take the last bytes.
        """
        if self._closing:
            return
        self.factory.disconnects[reason_label(reason)] += 1
        self.factory.server.disconnect(self, reason)
        self._closing = True
        self.pauseReading("closing")
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
        """Remove telnet commands, then read lines (see :class:`BoundedLineReceiver`)."""
        if self._closing:
            return
        self.resetTimeout()
        self.factory.bytes_in += len(data)
        if self.reading_paused:
            # Telnet commands are answered as they are read, so while this
            # client's output is backed up (or its turn is spent) the raw
            # bytes wait, as many as the line receiver would hold; past
            # that the socket is not read.  Answering them now would queue
            # replies to a client that does not read, without bound.
            self._held_raw += data
            if len(self._held_raw) > self.MAX_LENGTH + self.MAX_HELD:
                self._pause_transport()
            return
        self._take(data)

    def resumeReading(self, reason: str) -> None:
        """Lift one reason to pause; then read what arrived meanwhile."""
        super().resumeReading(reason)
        if self._held_raw and not self.reading_paused and not self._closing and self.transport is not None:
            data, self._held_raw = self._held_raw, b""
            self._take(data)

    def _take(self, data: bytes) -> None:
        """Answer telnet commands, then hand the text to the line receiver."""
        if self._telnet_pending or b"\xff" in data:
            # Telnet commands (never part of UTF-8 text), answered at once:
            # a telnet client may wait for the answer before the line ends.
            data, replies, pending = wire.strip_telnet(self._telnet_pending + data)
            self._telnet_pending = pending if len(pending) <= wire.TELNET_MAX_PENDING else b""
            if replies:
                self.deliver(replies)
        ended = self._lines_ended
        super().dataReceived(data)
        if self._lines_ended != ended:
            self._partial_told = False  # a new line began: it may be told about too
            cancel_call(self._partial_call)
            self._partial_call = None
        self._watch_partial_line()

    def _watch_partial_line(self) -> None:
        """
        A client that sends text without a line end (a blocking program's
        ``send("hello")``) is told, once per such line, after
        ``factory.partial_line_notice`` seconds: otherwise it waits forever
        for an answer to a line the server has not finished reading.
        """
        if not self.pending_bytes:
            cancel_call(self._partial_call)
            self._partial_call = None
            self._partial_told = False
            return
        delay = self.factory.partial_line_notice
        if delay is not None and not self._partial_told and self._partial_call is None and not self._closing:
            self._partial_call = self.factory.reactor.callLater(delay, self._tell_partial_line)

    def _tell_partial_line(self) -> None:
        self._partial_call = None
        if self._closing or not self.pending_bytes:
            return
        self._partial_told = True
        self.log.info("{peer} sent {count} bytes without a line end", peer=peer_text(self.transport.getPeer()),
                      count=self.pending_bytes)
        self.deliver(wire.notice_line(
            "partial",
            f"your line has no newline yet ({self.pending_bytes} bytes waiting); end each message with Enter (\\n)",
        ))

    def lineBatch(self) -> AbstractContextManager[Any]:
        """Several lines in one read: one write per recipient for all of them."""
        return self.factory.server.batch()

    def lineLengthExceeded(self, line: bytes) -> None:
        self.protocol_error(ErrorCode.LINE_TOO_LONG, f"line longer than {self.MAX_LENGTH} bytes rejected")

    def lineReceived(self, line: bytes) -> None:
        self._lines_ended += 1
        if self._closing or not line.strip():
            return
        self.factory.lines_received += 1
        if not self._allowed_by_flood_control():
            return
        server = self.factory.server
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self.protocol_error(ErrorCode.INVALID_UTF8, "line is not valid UTF-8; it was rejected")
            return
        if text.startswith("/") and not text.startswith("//"):
            run_command(server, self, text)
        else:
            server.say(self, text[1:] if text.startswith("//") else text)

    def protocol_error(self, code: str, text: str) -> None:
        """Tell this client it broke a rule, and log it (once per peer host a minute)."""
        self.factory.protocol_errors.warn(
            peer_host(self.transport.getPeer()) or "local", "chat: {peer} ({nick}): {code}: {text}",
            peer=peer_text(self.transport.getPeer()), nick=self.nick, code=code, text=text,
        )
        self.factory.server.error(self, code, text)

    def reset_flood_control(self) -> None:
        """(Re)build this connection's flood bucket from the factory's settings."""
        factory = self.factory
        if factory.flood_rate is None:
            self._bucket = None
        elif self._bucket is None:
            self._bucket = TokenBucket(factory.flood_rate, factory.flood_burst, factory.reactor)
        else:
            self._bucket.reconfigure(factory.flood_rate, factory.flood_burst)

    def _allowed_by_flood_control(self) -> bool:
        """
        The flood rule of docs/protocols/chat.md: lines over the rate are
        rejected; the first rejection warns; a client that goes on sending
        faster than the rate (more than ``flood_burst`` lines rejected since
        the warning) is disconnected.  The warning is forgotten once the
        client has sent nothing rejected for as long as a full bucket takes
        to refill.
        """
        bucket = self._bucket
        if bucket is None:
            return True
        factory = self.factory
        now = factory.reactor.seconds()
        if bucket.consume():
            if self._flooding and now - self._flood_last >= factory.flood_burst / factory.flood_rate:
                self._flooding = False
                self._flood_rejected = 0
            return True
        self._flood_last = now
        if not self._flooding:
            self._flooding = True
            self._flood_rejected = 0
            self.protocol_error(
                ErrorCode.FLOOD,
                f"too many lines (limit {factory.flood_rate:g}/s, burst {factory.flood_burst}); "
                "lines are rejected until you slow down; keep on and you are disconnected",
            )
            return False
        self._flood_rejected += 1
        if self._flood_rejected > factory.flood_burst:
            self.log.info(
                "disconnecting {nick} ({peer}) for flooding", nick=self.nick, peer=peer_text(self.transport.getPeer())
            )
            self.close(wire.error_line(ErrorCode.FLOOD, "disconnected for flooding"), "flood")
        return False

    # -- output (the queue is ChatOutput's) --------------------------------------

    def send_queue_exceeded(self, limit: int) -> None:
        self.log.info("disconnecting {nick}: send queue exceeded", nick=self.nick)
        self.close(
            wire.error_line(ErrorCode.SEND_QUEUE_EXCEEDED, f"send queue exceeded ({limit} bytes unread); disconnected"),
            "send queue exceeded",
        )

    def outputResumed(self) -> None:
        """The client reads again: send what waited."""
        self.flush()


def set_no_delay(transport: Any) -> None:
    """
    Turn Nagle off: chat lines are small and receivers rarely send, so Nagle
    plus delayed ACKs would hold fan-out writes for tens of milliseconds.
    """
    while transport is not None:
        if ITCPTransport.providedBy(transport):
            transport.setTcpNoDelay(True)
            return
        transport = getattr(transport, "transport", None)  # TLS wraps TCP
