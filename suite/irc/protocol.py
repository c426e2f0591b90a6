"""
The IRC front of the chat: one IRC client's connection.

:class:`IRCConnection` is Twisted's server-side
``twisted.words.protocols.irc.IRC`` (its message parsing, its
``irc_COMMAND`` dispatch, its numerics), joined to the chat's shared
:class:`suite.chat.rooms.ChatServer` as one more :class:`ChatUser`: room
``lobby`` is channel ``#lobby``, and what is said on any front reaches every
other.  Registration and the commands are in :mod:`suite.irc.commands`;
this module is the connection: reading lines within limits, writing the
chat's events in IRC's form, keeping dead clients out with PING.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from twisted.words.protocols import irc
from zope.interface import implementer

from suite.admission import AdmittedConnection
from suite.chat.output import ChatOutput
from suite.chat.protocol import set_no_delay
from suite.chat.rooms import ChatRoom
from suite.chat.wire import Line, ServerLine
from suite.irc.commands import IRCCommands
from suite.lines import BoundedLineReceiver
from suite.limits import TokenBucket, cancel_call, close_then_abort, peer_host
from suite.metrics import reason_label

if TYPE_CHECKING:
    from suite.irc.factory import IRCFactory

__all__ = ["IRCConnection"]


@implementer(IPushProducer)
class IRCConnection(AdmittedConnection, IRCCommands, ChatOutput, BoundedLineReceiver, irc.IRC, TimeoutMixin):
    """
    One IRC client.  Lines are read by :class:`suite.lines.BoundedLineReceiver`
    (bounded length, a batch per read, at most :attr:`MAX_LINES_PER_TURN`
    lines per turn of the reactor, no reading while the client's own output
    is backed up), then parsed and dispatched by Twisted's ``IRC``.  Like the
    line chat's connection it is the streaming producer of its own transport:
    output the client does not read waits in a queue of at most
    ``factory.max_pending`` bytes, beyond which the client is disconnected
    (``ERROR :Closing Link: HOST (SendQ exceeded)``).
    """

    #: Small turns: a flood of lines fanned out to a big room is taken in
    #: slices, so every member's output goes out between them.
    MAX_LINES_PER_TURN = 64

    factory: IRCFactory
    log = Logger()

    #: An IRC client keeps a member list: it hears joins and leaves even in quiet rooms.
    tracks_members = True
    nick: str = ""
    room: ChatRoom | None = None

    def __init__(self) -> None:
        self.init_output()
        self._closing = False
        self._pinged = False
        self._bucket: TokenBucket | None = None
        self._flood_strikes = 0
        self._abort_call: Any = None
        self.registered = False
        self.ident = "~user"
        self.host = "unknown"
        self.realname = ""
        self.away: str | None = None
        self.signon = 0.0
        self.last_spoke = 0.0
        self._init_registration()

    @property  # type: ignore[override]
    def MAX_LENGTH(self) -> int:  # noqa: N802 - the line receiver's name
        """The factory's line limit, so a reload applies to open connections."""
        return self.factory.max_line

    # -- connection life -------------------------------------------------------

    def connectionMade(self) -> None:
        factory = self.factory
        self.hostname = factory.server_name
        irc.IRC.connectionMade(self)
        self.host = peer_host(self.transport.getPeer()) or "unknown"
        factory.clients.add(self)
        set_no_delay(self.transport)
        BoundedLineReceiver.connectionMade(self)  # our transport's producer: hears when output backs up
        factory.sockets.watch(self.transport)
        self.reset_flood_control()
        self.callLater = factory.reactor.callLater
        self.setTimeout(factory.register_timeout)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        self.stopLineTurns()
        if not self._closing:
            self.factory.disconnects["connection-lost"] += 1
        self._closing = True
        self._drop_queue()
        self.factory.clients.discard(self)
        if self.registered:
            self.factory.server.disconnect(self, "connection lost")
        cancel_call(self._abort_call)
        super().connectionLost(reason)  # AdmittedConnection: the connection's place is given back

    def close(self, why: str, reason: str | None = None) -> None:
        """
        Leave the chat (the room hears ``reason``, or ``why``), send
        ``ERROR :Closing Link: HOST (why)`` and close; abort after
        ``factory.close_grace`` seconds if the client does not read it.
        """
        if self._closing:
            return
        self.factory.disconnects[reason_label(reason or why)] += 1
        if self.registered:
            self.factory.server.disconnect(self, reason or why)
        self._closing = True
        self.pauseReading("closing")
        self.setTimeout(None)
        self.flush(force=True)
        self.transport.write(f"ERROR :Closing Link: {self.host} ({why})\r\n".encode())
        self.transport.unregisterProducer()
        self._abort_call = close_then_abort(self.transport, self.factory.reactor, self.factory.close_grace)

    def timeoutConnection(self) -> None:
        factory = self.factory
        if not self.registered:
            self.close("Registration timeout")
        elif not self._pinged:
            # Quiet for a while: ask; silence for ping_timeout more ends it.
            self._pinged = True
            self.deliver(f"PING :{self.hostname}\r\n".encode())
            self.setTimeout(factory.ping_timeout)
        else:
            self.close(f"Ping timeout: {factory.ping_timeout:g} seconds", "ping timeout")

    # -- input -----------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Any input shows the client is alive; then lines (see :class:`BoundedLineReceiver`)."""
        if self._closing:
            return
        if self._pinged:
            self._pinged = False
            self.setTimeout(self.factory.ping_interval)
        else:
            self.resetTimeout()
        BoundedLineReceiver.dataReceived(self, data)

    def lineReceived(self, line: bytes) -> None:
        if self._closing or not line.strip():
            return
        self.factory.lines_received += 1
        if not self._allowed_by_flood_control():
            return
        # Not UTF-8 (a Latin-1 client, noise): replaced, never refused.
        self._line(line.decode("utf-8", "replace"))

    def lineLengthExceeded(self, line: bytes) -> None:
        self._too_long()

    def lineBatch(self) -> AbstractContextManager[Any]:
        """The lines of one read: one write per recipient for all of them."""
        return self.factory.server.batch()

    def _line(self, line: str) -> None:
        try:
            prefix, command, params = irc.parsemsg(line.lstrip(" "))
        except (ValueError, IndexError, irc.IRCBadMessage):
            return  # a lone prefix, spaces only: nothing to answer
        self.handleCommand(command.upper(), prefix, params)

    def _too_long(self) -> None:
        self.numeric("417", ":Input line was too long")

    def reset_flood_control(self) -> None:
        """Start flood control afresh with the factory's current rate and burst."""
        factory = self.factory
        self._flood_strikes = 0
        self._bucket = TokenBucket(factory.flood_rate, factory.flood_burst, factory.reactor) if factory.flood_rate else None

    def _allowed_by_flood_control(self) -> bool:
        bucket = self._bucket
        if bucket is None or bucket.consume():
            self._flood_strikes = 0
            return True
        self._flood_strikes += 1
        factory = self.factory
        if self._flood_strikes == 1:
            self.server_notice(
                f"*** flood: too many lines (limit {factory.flood_rate:g}/s, burst {factory.flood_burst}); "
                "lines are dropped until you slow down"
            )
        elif self._flood_strikes > factory.flood_burst:
            self.log.info("disconnecting {nick} ({host}) for flooding", nick=self.nick or "*", host=self.host)
            self.close("Excess Flood", "flood")
        return False

    # -- output ----------------------------------------------------------------

    def sendLine(self, line: str | bytes) -> None:
        """Twisted's helpers (``names``, ``who``, ``whois``...) write through here."""
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.deliver(line + b"\r\n")

    def numeric(self, code: str, *params: str) -> None:
        """``:SERVER CODE NICK PARAMS...`` (``*`` for a client not yet registered)."""
        self.deliver(f":{self.hostname} {code} {self.nick or '*'} {' '.join(params)}\r\n".encode())

    def server_notice(self, text: str) -> None:
        """A NOTICE from the server to this client."""
        self.deliver(f":{self.hostname} NOTICE {self.nick or '*'} :{text}\r\n".encode())

    def render(self, data: bytes) -> bytes | None:
        """The chat's ``data`` in IRC's form for this client (``None``: nothing to send)."""
        what: ServerLine | None = getattr(data, "what", None)
        if what is None:
            return data  # already IRC
        kind = what.kind
        if kind in ("message", "action"):
            if what.nick == self.nick:
                return None  # IRC does not echo a client's own messages
        elif kind == "private":
            if what.nick == self.nick and what.target != self.nick:
                return None
        elif kind == "notice":
            code = what.code
            if code == "join" and what.nick == self.nick:
                return self.joined_lines(what.room)  # type: ignore[arg-type]
            if code in ("welcome", "info", "bye") or (code == "topic" and not what.nick):
                return None  # IRC says these its own way (001, 332...)
        elif kind == "error":
            return f":{self.hostname} NOTICE {self.nick or '*'} :!!! {what.code}: {what.text}\r\n".encode()
        assert isinstance(data, Line)
        shared = data.rendered(self.factory.render_key, self.factory.render)
        if shared is None:
            return f":{self.hostname} NOTICE {self.nick or '*'} :*** {what.code}: {what.text}\r\n".encode()
        return shared

    def shared_form(self, data: bytes) -> tuple[bytes | None, str | None]:
        """A room's line as every IRC member but the one it is about is sent it (rendered once per line)."""
        what: ServerLine | None = getattr(data, "what", None)
        if what is None or what.kind == "error" or (what.kind == "notice" and what.code in ("welcome", "info", "bye")):
            return None, None
        shared = data.rendered(self.factory.render_key, self.factory.render)  # type: ignore[attr-defined]
        return (shared, what.nick) if shared is not None else (None, None)

    def send_queue_exceeded(self, limit: int) -> None:
        self.log.info("disconnecting {nick} ({host}): send queue exceeded", nick=self.nick or "*", host=self.host)
        self.close("SendQ exceeded", "send queue exceeded")

    # IPushProducer, for our own transport: output waits, and so does reading.
    # (BoundedLineReceiver's pauseProducing and resumeProducing: _output_blocked.)
    def outputResumed(self) -> None:
        self.flush()
