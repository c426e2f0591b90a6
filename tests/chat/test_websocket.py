"""The WebSocket chat: JSON events in memory, then a real WebSocket client on loopback with a line-chat user."""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.websocket import WebSocketClientEndpoint

from suite.chat import ChatFactory, ChatServer
from suite.chat.websocket import ChatWebSocket, ChatWebSocketFactory, chat_page_resource, chat_websocket_resource
from tests.chat.test_loopback import join
from tests.helpers import stop_tracked, track
from tests.irc.test_clients import until


class FakeTransport:
    """A WebSocketTransport in memory."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: int | None = None
        self.pings = 0
        self.producer: object = None

    def sendTextMessage(self, text: str) -> None:
        self.sent.append(json.loads(text))

    def sendBytesMessage(self, data: bytes) -> None:  # pragma: no cover - never used
        raise AssertionError("bytes sent")

    def loseConnection(self, code: int = 1000) -> None:
        self.closed = code

    def ping(self, payload: bytes = b"") -> None:
        self.pings += 1

    def attachProducer(self, producer: object) -> None:
        self.producer = producer

    def detachProducer(self) -> None:
        self.producer = None

    def take(self) -> list[dict[str, Any]]:
        sent = self.sent[:]
        self.sent.clear()
        return sent


class RawSink:
    """The TCP transport under the WebSocket: decodes the server's frames into ``into``."""

    def __init__(self, into: list[dict[str, Any]]) -> None:
        from wsproto.frame_protocol import FrameProtocol

        self.decoder = FrameProtocol(client=True, extensions=[])
        self.into = into
        self.reading = True

    def pauseProducing(self) -> None:
        self.reading = False

    def resumeProducing(self) -> None:
        self.reading = True

    def write(self, data: bytes) -> None:
        self.decoder.receive_bytes(data)
        for frame in self.decoder.received_frames():
            self.into.append(json.loads(frame.payload))


class Browser:
    def __init__(self, factory: ChatWebSocketFactory) -> None:
        self.ws = ChatWebSocket(factory, "192.0.2.9")
        factory.clients.add(self.ws)
        self.t = FakeTransport()
        self.ws.negotiationStarted(self.t)  # type: ignore[arg-type]
        self.ws._raw = RawSink(self.t.sent)
        self.ws.negotiationFinished()

    def send(self, **request: Any) -> None:
        self.receive(json.dumps(request))

    def receive(self, message: str) -> None:
        self.ws.textMessageReceived(message)
        self.ws.factory.reactor.advance(0)  # messages are handled on the next turn


@pytest.fixture
def wsf() -> ChatWebSocketFactory:
    return ChatWebSocketFactory(ChatServer(), reactor=Clock(), max_per_ip=None)


def test_welcome_and_joined_with_users_and_topic(wsf: ChatWebSocketFactory) -> None:
    a = Browser(wsf)
    assert a.t.take() == [
        {"type": "welcome", "nick": "guest1", "text": "you are guest1; /nick NAME to change it, /help for commands"},
        {"type": "joined", "room": "lobby", "nick": "guest1", "users": ["guest1"], "topic": ""},
    ]
    b = Browser(wsf)
    assert a.t.take() == [{"type": "join", "room": "lobby", "nick": "guest2"}]
    assert b.t.take()[-1]["users"] == ["guest1", "guest2"]


def test_every_request_type(wsf: ChatWebSocketFactory) -> None:
    a, b = Browser(wsf), Browser(wsf)
    a.send(type="nick", nick="小明")
    b.send(type="nick", nick="Дима")
    a.t.take(), b.t.take()
    a.send(type="say", text="你好")
    a.send(type="me", text="waves")
    a.send(type="msg", to="дима", text="psst")
    a.send(type="topic", text="release")
    assert b.t.take() == [
        {"type": "message", "room": "lobby", "nick": "小明", "text": "你好"},
        {"type": "action", "room": "lobby", "nick": "小明", "text": "waves"},
        {"type": "private", "from": "小明", "to": "Дима", "text": "psst"},
        {"type": "topic", "room": "lobby", "nick": "小明", "text": "release"},
    ]
    a.t.take()
    a.send(type="who")
    a.send(type="rooms")
    a.send(type="topic")
    assert [e["type"] for e in a.t.take()] == ["notice", "notice", "topic"]
    b.send(type="join", room="dev")
    assert a.t.take() == [{"type": "leave", "room": "lobby", "nick": "Дима", "reason": "joined dev"}]
    assert b.t.take()[0] == {"type": "joined", "room": "dev", "nick": "Дима", "users": ["Дима"], "topic": ""}
    b.send(type="quit", reason="bye")
    assert b.t.closed == 1000


@pytest.mark.parametrize(
    "message, code",
    [
        ("not json", "bad-request"),
        ("[1, 2]", "bad-request"),
        ('{"type": "frobnicate"}', "unknown-type"),
        ('{"type": "say"}', "bad-request"),
        ('{"type": "say", "text": 5}', "bad-request"),
        ('{"type": "nick", "nick": "a.b"}', "nick-invalid"),
        ('{"type": "join", "room": "a b"}', "room-invalid"),
        ('{"type": "msg", "to": "nobody", "text": "x"}', "no-such-nick"),
        ('{"type": "say", "text": "' + "x" * 5000 + '"}', "message-too-long"),
    ],
)
def test_errors(wsf: ChatWebSocketFactory, message: str, code: str) -> None:
    a = Browser(wsf)
    a.t.take()
    a.receive(message)
    (event,) = a.t.take()
    assert event["type"] == "error" and event["code"] == code and event["text"]
    assert a.t.closed is None


def test_binary_messages_are_refused(wsf: ChatWebSocketFactory) -> None:
    a = Browser(wsf)
    a.t.take()
    a.ws.bytesMessageReceived(b"\x00\x01")
    assert a.t.take()[0]["code"] == "bad-request"


def test_flood_then_disconnect() -> None:
    wsf = ChatWebSocketFactory(ChatServer(), reactor=Clock(), flood_rate=1.0, flood_burst=2, max_per_ip=None)
    a, b = Browser(wsf), Browser(wsf)
    a.t.take(), b.t.take()
    for _ in range(6):
        a.send(type="say", text="x")
    events = a.t.take()
    assert [e["code"] for e in events if e["type"] == "error"] == ["flood", "flood"]
    assert a.t.closed == 1008
    assert b.t.take()[-1] == {"type": "leave", "room": "lobby", "nick": "guest1", "reason": "flood"}


def test_send_queue_exceeded() -> None:
    wsf = ChatWebSocketFactory(ChatServer(), reactor=Clock(), max_pending=500, max_per_ip=None, flood_rate=None)
    a, b = Browser(wsf), Browser(wsf)
    b.ws.pauseProducing()
    assert not b.ws._raw.reading  # a client that does not take its output is not read either
    for _ in range(20):
        a.send(type="say", text="y" * 40)
    assert b.t.closed == 1008 and b.t.sent[-1]["code"] == "send-queue-exceeded"


def test_ping_then_idle_timeout() -> None:
    clock = Clock()
    wsf = ChatWebSocketFactory(ChatServer(), reactor=clock, ping_interval=10, ping_timeout=5, max_per_ip=None)
    a = Browser(wsf)
    clock.advance(10)
    assert a.t.pings == 1 and a.t.closed is None
    a.ws.pongReceived(b"netsuite")
    clock.advance(10)
    assert a.t.pings == 2
    clock.advance(5)
    assert a.t.closed == 1001 and a.t.sent[-1]["code"] == "idle-timeout"


def test_messages_put_the_ping_off() -> None:
    clock = Clock()
    wsf = ChatWebSocketFactory(ChatServer(), reactor=clock, ping_interval=10, ping_timeout=5, max_per_ip=None)
    a = Browser(wsf)
    clock.advance(6)
    a.send(type="say", text="still here")
    clock.advance(6)
    assert a.t.pings == 0  # heard from 6 s ago: not quiet for 10 s yet
    clock.advance(4)
    assert a.t.pings == 1 and a.t.closed is None
    a.send(type="say", text="answered")
    clock.advance(5)
    assert a.t.closed is None  # a message answers the ping as a pong does
    clock.advance(5)
    assert a.t.pings == 2
    clock.advance(5)
    assert a.t.closed == 1001


def test_connection_cap() -> None:
    wsf = ChatWebSocketFactory(ChatServer(), reactor=Clock(), max_connections=1)
    Browser(wsf)
    b = Browser(wsf)
    assert b.t.closed == 1008 and b.t.sent == [{"type": "error", "code": "too-many-connections", "text": "too many connections (limit 1)"}]


def test_page_has_no_external_urls() -> None:
    page = chat_page_resource().page  # type: ignore[attr-defined]
    assert b"<title>netsuite chat</title>" in page
    assert b"http://" not in page and b"https://" not in page and b"//cdn" not in page


# --- loopback -----------------------------------------------------------------------


class WSClient:
    """A WebSocketProtocol collecting JSON events."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lost: defer.Deferred[None] = defer.Deferred()
        self._waiting: list[tuple[Any, defer.Deferred[dict[str, Any]]]] = []

    def negotiationStarted(self, transport: Any) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def pongReceived(self, payload: bytes) -> None:
        pass

    def textMessageReceived(self, message: str) -> None:
        event = json.loads(message)
        self.events.append(event)
        ready = [(t, d) for t, d in self._waiting if t(event)]
        self._waiting = [(t, d) for t, d in self._waiting if not t(event)]
        for _, d in ready:
            d.callback(event)

    def bytesMessageReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        self.lost.callback(None)

    def wait(self, **match: Any) -> defer.Deferred[dict[str, Any]]:
        def test(event: dict[str, Any]) -> bool:
            return all(event.get(k) == v for k, v in match.items())

        for event in self.events:
            if test(event):
                return defer.succeed(event)
        d: defer.Deferred[dict[str, Any]] = defer.Deferred()
        self._waiting.append((test, d))
        return d.addTimeout(10, reactor)

    def send(self, **request: Any) -> None:
        self.transport.sendTextMessage(json.dumps(request))


@pytest_twisted.ensureDeferred
async def test_websocket_and_nc_user_talk_on_loopback() -> None:
    server = ChatServer()
    root = Resource()
    root.putChild(b"chat", chat_websocket_resource(server, max_per_ip=None))
    web = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    chat = track(ChatFactory(server, max_per_ip=None))
    chat_port = reactor.listenTCP(0, chat, interface="127.0.0.1")
    try:
        nc = await join(chat_port.getHost().port, "ncuser")
        endpoint = WebSocketClientEndpoint.new(reactor, f"http://127.0.0.1:{web.getHost().port}/chat")
        client = await endpoint.connect(type("F", (), {"buildProtocol": lambda self, url: WSClient()})())
        await client.wait(type="joined", room="lobby")
        client.send(type="nick", nick="小明")
        await nc.wait_for(r"^\*\*\* nick: guest\d+ is now 小明$")
        client.send(type="say", text="hello nc")
        await nc.wait_for(r"^\[lobby\] <小明> hello nc$")
        nc.transport.write("hello browser, 你好\n".encode())
        await client.wait(type="message", nick="ncuser", text="hello browser, 你好")
        client.transport.loseConnection()
        await client.lost
        await nc.wait_for(r"^\*\*\* leave: 小明 left lobby \(connection lost\)$")
        nc.transport.loseConnection()
        await nc.lost
    finally:
        await web.stopListening()
        await stop_tracked(chat, chat_port)


@pytest_twisted.ensureDeferred
async def test_oversized_message_is_cut_off_on_loopback() -> None:
    server = ChatServer()
    root = Resource()
    root.putChild(b"chat", chat_websocket_resource(server, max_per_ip=None, max_message=1000))
    web = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    try:
        endpoint = WebSocketClientEndpoint.new(reactor, f"http://127.0.0.1:{web.getHost().port}/chat")
        factory = type("F", (), {"buildProtocol": lambda self, url: WSClient()})()
        other = await endpoint.connect(factory)
        client = await endpoint.connect(factory)
        await client.wait(type="joined")
        client.send(type="say", text="y" * 1500)  # complete but too long: refused, connection kept
        await client.wait(type="error", code="message-too-long")
        client.send(type="say", text="x" * 100_000)  # cut off while it arrives
        await client.lost
        assert server.find_user(other.events[0]["nick"]) is not None  # the other browser is fine
        other.transport.loseConnection()
        await other.lost
        await until(lambda: not server.users, "the server to see both browsers go")
    finally:
        await web.stopListening()



def test_metrics_counters_messages_and_disconnects_by_reason() -> None:
    """Messages read and why browsers left, for the ``chat-websocket`` service of /metrics."""
    wsf = ChatWebSocketFactory(ChatServer(), reactor=Clock(), flood_rate=1.0, flood_burst=2, max_per_ip=None)
    a, b = Browser(wsf), Browser(wsf)
    for _ in range(6):
        a.send(type="say", text="x")
    assert wsf.lines_received == 5  # the fifth ends the connection: the sixth is not read
    assert wsf.disconnects == {"flood": 1}
    b.ws.connectionLost(Failure(ConnectionDone()))
    a.ws.connectionLost(Failure(ConnectionDone()))  # closed by the server already: counted once
    assert wsf.disconnects == {"flood": 1, "connection-lost": 1}
