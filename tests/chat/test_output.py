"""The output half the chat fronts share (suite.chat.output), in memory: one rendering per line and front, queues, limits."""

from __future__ import annotations

from suite.chat import wire
from suite.chat.websocket import ChatWebSocketFactory
from tests.chat.test_protocol import CountingTransport, Harness
from tests.chat.test_websocket import Browser
from tests.irc.test_protocol import Net


def test_a_batch_reaches_every_front_in_its_own_form_once_per_member() -> None:
    net = Net(flood_rate=None)
    talker, listener = net.user("talker"), net.user("listener")
    nc = net.nc("nc")
    wsf = ChatWebSocketFactory(net.server, reactor=net.clock, max_per_ip=None)
    browser = Browser(wsf)
    browser.t.take()
    for front in (talker, listener, nc):
        front.lines()
    talker.send("PRIVMSG #lobby :one", "PRIVMSG #lobby :two")  # one read: one batch
    assert listener.lines() == [":talker!~talker@127.0.0.1 PRIVMSG #lobby :one", ":talker!~talker@127.0.0.1 PRIVMSG #lobby :two"]
    assert talker.lines() == []  # IRC does not echo a client's own lines
    assert nc.lines() == ["[lobby] <talker> one", "[lobby] <talker> two"]
    assert browser.t.take() == [{"type": "message", "room": "lobby", "nick": "talker", "text": t} for t in ("one", "two")]


def test_the_line_a_member_is_about_is_rendered_for_that_member() -> None:
    net = Net()
    irc = net.user("ircuser")
    wsf = ChatWebSocketFactory(net.server, reactor=net.clock, max_per_ip=None)
    browser = Browser(wsf)
    browser.t.take()
    irc.lines()
    old = browser.ws.nick
    browser.send(type="nick", nick="web")
    assert browser.t.take() == [{"type": "nick", "old": old, "new": "web"}]
    assert irc.lines() == [f":{old}!web@netsuite NICK :web"]
    browser.send(type="join", room="elsewhere")
    browser.send(type="join", room="lobby")  # its own join: the member list, not a join event
    assert browser.t.take()[-1] == {"type": "joined", "room": "lobby", "nick": "web", "users": ["ircuser", "web"], "topic": ""}
    assert irc.lines()[-1] == ":web!web@netsuite JOIN #lobby"


def test_unread_output_appended_in_a_batch_counts_when_the_batch_ends() -> None:
    chat = Harness(flood_rate=None, max_pending=200)
    alice = chat.connect(nick="alice")
    slow = chat.connect(nick="slow")
    bob = chat.connect(nick="bob")
    slow.proto.pauseProducing()
    alice.send(b"message number one, long enough to count\n" * 3)  # one batch: under the limit
    assert slow.proto.pending_output < 200
    assert not slow.proto._closing
    alice.send(b"message number two, long enough to count\n" * 3)  # the next batch passes it
    assert slow.proto._closing
    assert "*** leave: slow left lobby (send queue exceeded)" in bob.lines()
    assert wire.error_line("send-queue-exceeded", "send queue exceeded (200 bytes unread); disconnected").decode() in (
        slow.transport.value().decode()
    )


def test_a_reading_member_gets_one_write_per_batch() -> None:
    chat = Harness(flood_rate=None)
    sender = chat.connect(nick="sender")
    from twisted.internet.address import IPv4Address

    proto = chat.factory.buildProtocol(None)
    transport = CountingTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 1))
    proto.makeConnection(transport)
    before = transport.writes
    sender.send(b"a\nb\nc\nd\n")
    assert transport.writes == before + 1
    assert transport.value().decode().endswith("[lobby] <sender> a\n[lobby] <sender> b\n[lobby] <sender> c\n[lobby] <sender> d\n")
