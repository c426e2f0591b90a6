"""
The chat over WebSocket, for the chat page and any browser.

:func:`chat_websocket_resource` is a ``twisted.web.websocket`` resource to
mount on a web site (``/chat``); :func:`chat_page_resource` is the page
(``/chat.html``).  Each WebSocket connection is one more
:class:`suite.chat.rooms.ChatUser` of the shared :class:`ChatServer`, so
browser users are in the same rooms as line-chat and IRC users.  Every
message either way is one JSON object; docs/protocols/websocket.md lists them.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from twisted.web.websocket import WebSocketResource, WebSocketTransport
from zope.interface import implementer

from suite._reactor import or_global_reactor
from suite.chat.output import ChatOutput
from suite.chat.protocol import set_no_delay
from suite.chat.rooms import ChatRoom, ChatServer
from suite.chat.page import ChatPage, chat_page_resource
from suite.chat.wire import ServerLine
from suite.chat.wsmessages import NEEDS, REQUESTS, dumps, event_frame, event_json, frame
from suite.limits import ConnectionLimit, TokenBucket, cancel_call
from suite.metrics import reason_label

__all__ = [
    "ChatPage", "ChatWebSocket", "ChatWebSocketFactory", "chat_page_resource", "chat_websocket_resource",
    "event_json",
]

#: Notices a browser is sent as they are (to the one user they concern).
_OWN_NOTICES = frozenset(("who", "rooms", "info", "help", "bye"))

#: WebSocket close codes (RFC 6455 section 7.4.1).
CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TOO_BIG = 1000, 1001, 1008, 1009


@implementer(IPushProducer)
class ChatWebSocket(ChatOutput):
    """One browser (or other WebSocket client) in the chat: a ``WebSocketProtocol`` and a ``ChatUser``."""

    log = Logger()
    #: The page shows the member list: it hears joins and leaves even in quiet rooms.
    tracks_members = True
    nick: str = ""
    room: ChatRoom | None = None
    ident = "web"
    host = "netsuite"

    def __init__(self, factory: ChatWebSocketFactory, peer: str | None) -> None:
        self.factory = factory
        self.peer = peer
        self.transport: WebSocketTransport | None = None
        self._channel: Any = None
        self._raw: Any = None  # the TCP transport under the WebSocket: pre-framed messages go here
        self._admitted = False
        self._closing = False
        self._output_blocked = False
        self.init_output()
        self._unread = 0  # bytes received since the last whole message
        self._bucket = TokenBucket(factory.flood_rate, factory.flood_burst, factory.reactor) if factory.flood_rate else None
        self._strikes = 0
        self._idle: Any = None
        self._heard = 0.0
        self._pinged = False
        self._inbox: deque[str] = deque()
        self._turn: Any = None
        self._reading_paused = False
        self._closed_by_us = False

    # -- WebSocketProtocol -----------------------------------------------------

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport
        channel = self._channel = self.factory._channels.pop(id(self), None)
        if channel is not None:
            self._raw = channel.transport
            # Twisted reassembles a message's frames without limit; count the
            # bytes of the message being received and end it past the limit.
            receive = channel.dataReceived

            def bounded(data: bytes) -> None:
                # In slices: a message completing in a slice resets the count,
                # so only a message still unfinished after the limit ends it.
                step = self.factory.max_message
                for start in range(0, len(data), step):
                    if self._closing:
                        return
                    self._unread += min(step, len(data) - start)
                    if self._unread > self.factory.max_frame_bytes:
                        self.close(CLOSE_TOO_BIG, "message-too-long",
                                   f"message longer than {self.factory.max_message} bytes")
                        return
                    receive(data[start:start + step])

            channel.dataReceived = bounded

    def negotiationFinished(self) -> None:
        factory = self.factory
        refusal = factory.connections.acquire(None if self.peer in factory.per_ip_exempt else self.peer)
        if refusal is not None:
            self.log.info("refused {peer}: {reason}", peer=self.peer, reason=refusal)
            self.close(CLOSE_POLICY, "too-many-connections", refusal)
            return
        self._admitted = True
        channel = self._channel
        if channel is not None and channel.transport is not None:
            # The upgraded HTTP channel is still its transport's producer,
            # and a transport has one: hand the slot to this connection.
            channel.transport.unregisterProducer()
            # Small messages to many: Nagle plus delayed ACKs would hold them (see the line chat).
            set_no_delay(channel.transport)
        self.transport.attachProducer(self)  # type: ignore[union-attr]
        self._arm()
        factory.server.connect(self)

    def textMessageReceived(self, message: str) -> None:
        self._unread = 0
        if self._closing:
            return
        self.factory.lines_received += 1
        self._arm()
        # Handled on the next turn, together (one write per recipient), at
        # most messages_per_turn of them; reading waits while more are queued,
        # so one browser cannot hog the reactor and the queue stays bounded.
        self._inbox.append(message)
        if self._turn is None:
            self._turn = self.factory.reactor.callLater(0, self._next_turn)
        self._pace()

    def _pace(self) -> None:
        """
        Read only while fewer than a turn of messages wait and the client
        takes its own output (as the line chat does): a sender is slowed to
        what the server delivers.
        """
        pause = self._output_blocked or len(self._inbox) >= self.factory.messages_per_turn
        if pause != self._reading_paused and self._raw is not None and not self._closing:
            self._reading_paused = pause
            if pause:
                self._raw.pauseProducing()
            else:
                self._raw.resumeProducing()

    def _next_turn(self) -> None:
        self._turn = None
        inbox = self._inbox
        budget = self.factory.messages_per_turn
        with self.factory.server.batch():
            while inbox and budget and not self._closing:
                budget -= 1
                self._handle(inbox.popleft())
        if self._closing:
            inbox.clear()
        elif inbox:
            self._turn = self.factory.reactor.callLater(0, self._next_turn)
        else:
            self._pace()

    def _handle(self, message: str) -> None:
        server = self.factory.server
        if len(message.encode("utf-8")) > self.factory.max_message:
            server.error(self, "message-too-long", f"message longer than {self.factory.max_message} bytes rejected")
            return
        if not self._allowed_by_flood_control():
            return
        try:
            request = json.loads(message)
            kind = request["type"]
        except (ValueError, TypeError, KeyError):
            server.error(self, "bad-request", 'send one JSON object per message, like {"type": "say", "text": "hi"}')
            return
        handler = REQUESTS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            server.error(self, "unknown-type", f"unknown type {str(kind)[:40]!r}; use one of {', '.join(REQUESTS)}")
            return
        try:
            handler(self, server, request)
        except (KeyError, TypeError, AttributeError):
            server.error(self, "bad-request", f"{kind!r} needs {NEEDS[kind]}")

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        self._unread = 0
        self.factory.server.error(self, "bad-request", "send text messages (JSON), not binary ones")

    def pongReceived(self, payload: bytes) -> None:
        self._arm()

    def connectionLost(self, reason: Failure) -> None:
        self._closing = True
        self._channel = None
        self.factory.clients.discard(self)
        cancel_call(self._idle)
        cancel_call(self._turn)
        self._inbox.clear()
        self._drop_queue()
        if self._admitted:
            self._admitted = False
            factory = self.factory
            if not self._closed_by_us:
                factory.disconnects["connection-lost"] += 1
            factory.connections.release(None if self.peer in factory.per_ip_exempt else self.peer)
            factory.server.disconnect(self, "connection lost")

    # -- keeping dead clients out ----------------------------------------------

    def _arm(self) -> None:
        # Called for every message: a time noted, not a timer moved (one
        # timer per quiet period, checked when it fires).
        self._pinged = False
        self._heard = self.factory.reactor.seconds()
        if self._idle is None and not self._closing:
            self._idle = self.factory.reactor.callLater(self.factory.ping_interval, self._quiet)

    def _quiet(self) -> None:
        self._idle = None
        if self._closing:
            return
        factory = self.factory
        if self._pinged:
            self.close(CLOSE_GOING_AWAY, "idle-timeout", f"no answer to ping for {factory.ping_timeout:g}s; disconnected", "ping timeout")
            return
        wait = self._heard + factory.ping_interval - factory.reactor.seconds()
        if wait > 0:  # heard from since the timer was set: wait the rest
            self._idle = factory.reactor.callLater(wait, self._quiet)
            return
        self._pinged = True
        self.transport.ping(b"netsuite")  # type: ignore[union-attr]
        self._idle = factory.reactor.callLater(factory.ping_timeout, self._quiet)

    def _allowed_by_flood_control(self) -> bool:
        if self._bucket is None or self._bucket.consume():
            self._strikes = 0
            return True
        self._strikes += 1
        factory = self.factory
        if self._strikes == 1:
            factory.server.error(self, "flood", f"too many messages (limit {factory.flood_rate:g}/s, burst "
                                 f"{factory.flood_burst}); messages are rejected until you slow down")
        elif self._strikes > factory.flood_burst:
            self.close(CLOSE_POLICY, "flood", "disconnected for flooding", "flood")
        return False

    def close(self, code: int, error: str, text: str, reason: str | None = None) -> None:
        """Leave the chat (the room hears ``reason``), send an error event, and close with ``code``."""
        if self._closing:
            return
        if self._admitted:
            self.factory.disconnects[reason_label(reason or error)] += 1
            self.factory.server.disconnect(self, reason or error)
        self._closing = self._closed_by_us = True
        cancel_call(self._idle)
        cancel_call(self._turn)
        transport = self.transport
        if transport is not None:
            self.flush(force=True)
            transport.sendTextMessage(dumps({"type": "error", "code": error, "text": text}))
            transport.loseConnection(code)

    # -- output (ChatUser) -----------------------------------------------------

    def render(self, data: bytes) -> bytes | None:
        """The chat's ``data`` as this user's WebSocket frame (``None``: nothing to send)."""
        what: ServerLine | None = getattr(data, "what", None)
        if what is None:
            return None
        if what.kind == "notice":
            code = what.code
            text = None
            if code == "welcome":
                text = dumps({"type": "welcome", "nick": self.nick, "text": what.text})
            elif code == "join" and what.nick == self.nick:
                text = self._joined(what.room)  # type: ignore[arg-type]
            elif code in _OWN_NOTICES or (code == "topic" and not what.nick):
                text = event_json(what)
            if text is not None:
                return bytes(frame(text, fin=True))
        return data.rendered("websocket", event_frame)  # type: ignore[attr-defined, no-any-return]

    def shared_form(self, data: bytes) -> tuple[bytes | None, str | None]:
        """A room's line as every WebSocket member but the one it is about is sent it (framed once per line)."""
        what: ServerLine | None = getattr(data, "what", None)
        if what is None or (what.kind == "notice" and (what.code in _OWN_NOTICES or what.code == "welcome")):
            return None, None
        shared = data.rendered("websocket", event_frame)  # type: ignore[attr-defined]
        return shared, (what.nick if what.kind == "notice" else None)

    def write_out(self, data: bytes) -> None:
        self._raw.write(data)

    def send_queue_exceeded(self, limit: int) -> None:
        self.close(CLOSE_POLICY, "send-queue-exceeded", f"send queue exceeded ({limit} bytes unread); disconnected",
                   "send queue exceeded")

    def _joined(self, room_name: str) -> str:
        server = self.factory.server
        room = server.find_room(room_name)
        members = server.room_nicks(room) if room is not None else []  # other chat nodes' users too
        return dumps({"type": "joined", "room": room_name, "nick": self.nick, "users": members,
                       "topic": room.topic if room is not None else ""})

    def pauseProducing(self) -> None:
        self._output_blocked = True
        self._pace()

    def resumeProducing(self) -> None:
        self._output_blocked = False
        self.flush()
        self._pace()

    def stopProducing(self) -> None:
        self._output_blocked = True


class ChatWebSocketFactory:
    """
    Builds a :class:`ChatWebSocket` per accepted WebSocket request, on a
    shared :class:`ChatServer`.  Limits as in the line chat; ``None`` or 0
    disables one.

    :param max_message: longest message accepted, in bytes of UTF-8.
    :param ping_interval: seconds of silence before a WebSocket ping.
    :param ping_timeout: seconds to answer (any message or pong) before disconnection.
    """

    DEFAULT_MAX_MESSAGE = 4096
    #: Messages one connection has handled per turn of the reactor.
    messages_per_turn = 64

    def __init__(
        self,
        server: ChatServer,
        *,
        max_message: int = DEFAULT_MAX_MESSAGE,
        flood_rate: float | None = 10.0,
        flood_burst: int = 50,
        max_pending: int | None = 1 << 20,
        max_connections: int | None = 1000,
        max_per_ip: int | None = 20,
        per_ip_exempt: Iterable[str] = (),
        ping_interval: float = 60.0,
        ping_timeout: float = 30.0,
        reactor: IReactorTime | None = None,
    ) -> None:
        self.server = server
        self.max_message = max_message
        # Frame headers, control frames, masking: a generous bound on the raw bytes of one message.
        self.max_frame_bytes = 2 * max_message + 4096
        self.flood_rate = flood_rate or None
        self.flood_burst = flood_burst
        self.max_pending = max_pending or None
        self.connections = ConnectionLimit(max_connections or None, max_per_ip or None)
        self.per_ip_exempt = frozenset(per_ip_exempt)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.reactor = or_global_reactor(reactor)
        self.clients: set[ChatWebSocket] = set()
        #: For /metrics (the ``chat-websocket`` service): messages read, browsers disconnected by reason.
        self.lines_received = 0
        self.disconnects: Counter[str] = Counter()
        self._channels: dict[int, Any] = {}

    def buildProtocol(self, request: Request) -> ChatWebSocket:
        address = request.getClientAddress()
        ws = ChatWebSocket(self, getattr(address, "host", None))
        self.clients.add(ws)
        self._channels[id(ws)] = request.channel
        return ws

    def close_all(self) -> None:
        """The service is stopping: tell every browser, and close."""
        for ws in list(self.clients):
            ws.close(CLOSE_GOING_AWAY, "server-shutdown", "the server is shutting down", "server shutdown")


def chat_websocket_resource(server: ChatServer, **limits: Any) -> WebSocketResource:
    """The WebSocket chat as a resource to mount at ``/chat``; ``limits`` go to :class:`ChatWebSocketFactory`."""
    resource = WebSocketResource(ChatWebSocketFactory(server, **limits))  # type: ignore[arg-type]
    return resource


