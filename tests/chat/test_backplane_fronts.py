"""
Every front shows the same members across chat nodes: two ClusterChatServers
on one real redis-server in this process, an IRC client (in memory) and a
line-chat user on node A, a line-chat user and a browser (WebSocket, in
memory) on node B.
"""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from suite.chat.websocket import ChatWebSocketFactory
from suite.irc import IRCFactory
from tests.chat.test_backplane_nodes import nodes, until  # noqa: F401 - the fixture
from tests.chat.test_loopback import close_all
from tests.chat.test_websocket import Browser
from tests.irc.test_protocol import Client


def irc_user(factory: IRCFactory, nick: str) -> Client:
    address = IPv4Address("TCP", "127.0.0.1", 40000)
    proto = factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    proto.makeConnection(transport)
    client = Client(proto, transport)
    client.send(f"NICK {nick}", f"USER {nick} 0 * :{nick} real", "JOIN #lobby")
    return client


@pytest_twisted.ensureDeferred
async def test_irc_and_websocket_see_users_of_other_nodes(nodes) -> None:  # noqa: F811
    a, b = await nodes(2)
    irc_factory = IRCFactory(a.server, reactor=reactor, max_per_ip=None, flood_rate=None)
    alice = irc_user(irc_factory, "alice")
    bob = await b.client("bob")  # a line-chat user on node B
    await until(lambda: a.backplane.remote_nick("bob") and b.backplane.remote_nick("alice"), what="mirrors")
    alice.lines()
    seen: list[str] = []

    def answer(*lines: str) -> list[str]:
        alice.send(*lines)
        got = alice.lines()
        seen.extend(got)
        return got

    names = answer("NAMES #lobby")
    assert names[0].endswith(" = #lobby :alice bob") and " 366 " in names[-1]
    who = answer("WHO #lobby")
    assert [line.split()[7] for line in who if " 352 " in line] == ["alice", "bob"]
    assert ":netsuite 352 alice #lobby chat netsuite netsuite bob H :0 bob" in who
    whois = answer("WHOIS bob")
    assert whois == [
        ":netsuite 311 alice bob chat netsuite * :bob",
        ":netsuite 319 alice bob :#lobby",
        ":netsuite 312 alice bob netsuite :netsuite chat, on another chat node",
        ":netsuite 318 alice bob :End of /WHOIS list.",
    ]
    assert answer("ISON bob carol BOB") == [":netsuite 303 alice :bob bob"]
    assert answer("USERHOST bob") == [":netsuite 302 alice :bob=+chat@netsuite"]
    assert answer("LIST") == [":netsuite 321 alice Channel :Users  Name", ":netsuite 322 alice #lobby 2 :",
                              ":netsuite 323 alice :End of /LIST"]
    # A private message to a user of another node, and back.
    alice.send("PRIVMSG bob :psst")
    assert await bob.wait_for("psst") == "[private] <alice -> bob> psst"
    bob.transport.write(b"/msg alice hello there\n")
    await until(lambda: any("hello there" in line for line in seen + alice.lines()), what="the answer")
    # The browser on node B lists alice (IRC, node A) when it joins; its who says both.
    wsf = ChatWebSocketFactory(b.server, reactor=reactor, max_per_ip=None)
    browser = Browser(wsf)
    joined = [event for event in browser.t.take() if event["type"] == "joined"]
    assert sorted(joined[0]["users"]) == ["alice", "bob", browser.ws.nick]
    browser.ws.textMessageReceived('{"type": "who"}')
    await until(lambda: any(e.get("kind") == "who" for e in browser.t.sent), what="who")
    who_event = next(e for e in browser.t.sent if e.get("kind") == "who")
    assert who_event["text"].startswith("3 users in lobby: ") and "alice" in who_event["text"]
    # IRC's NAMES on joining counts the browser too, once the mirror has it.
    await until(lambda: a.backplane.remote_nick(browser.ws.nick), what="the browser in node A's mirror")
    alice.send("PART #lobby", "JOIN #lobby")
    assert any(line.endswith(f"#lobby :alice bob {browser.ws.nick}") for line in alice.lines())
    browser.ws.close(1000, "bye", "goodbye", "quit")
    alice.send("QUIT")
    alice.proto.connectionLost(Failure(ConnectionDone()))  # what the in-memory transport never says
    await close_all(bob)


@pytest_twisted.ensureDeferred
async def test_a_name_confusable_with_one_on_another_node_is_refused(nodes) -> None:  # noqa: F811
    a, b = await nodes(2)
    alice = await a.client("alice")
    carol = await b.client("carol")
    await until(lambda: b.backplane.remote_nick("alice"), what="node B's mirror")
    carol.transport.write("/nick аlice\n".encode())  # Cyrillic а
    assert await carol.wait_for("^!!! ") == "!!! nick-taken: the nickname аlice looks like alice, who is here"
    carol.transport.write("/nick ALICE\n".encode())
    assert await carol.wait_for("ALICE") == "!!! nick-taken: the nickname ALICE is taken"
    irc_factory = IRCFactory(b.server, reactor=reactor, max_per_ip=None)
    irc = irc_user(irc_factory, "Ａlice")  # full-width: the same name
    assert " 433 * Ａlice :the nickname Ａlice is taken" in irc.lines()[0]
    irc.send("NICK ａlice")  # full-width Latin: the same key; then a look-alike
    irc.send("NICK аlicе")
    lines = irc.lines()
    assert all(" 433 " in line for line in lines) and "looks like alice" in lines[-1]
    irc.proto.connectionLost(Failure(ConnectionDone()))
    await close_all(alice, carol)


@pytest_twisted.ensureDeferred
async def test_two_nodes_claiming_confusable_names_at_once_one_wins(nodes, redis_server) -> None:  # noqa: F811
    a, b = await nodes(2)
    x, y = await a.client("x1"), await b.client("y1")
    # In one turn: neither node's mirror knows the other's new name yet, so Redis decides.
    x.transport.write(b"/nick alice\n")
    y.transport.write("/nick аlice\n".encode())
    await until(lambda: any("!!!" in line for line in x.lines + y.lines), what="the loser's answer")
    await until(lambda: any("is now" in line for line in x.lines + y.lines), what="the winner's notice")
    x_won = "*** nick: x1 is now alice" in x.lines
    y_won = "*** nick: y1 is now аlice" in y.lines
    assert x_won != y_won
    loser = y if x_won else x
    assert any(line.startswith("!!! nick-taken: the nickname") for line in loser.lines)
    winner_node = a if x_won else b
    held = redis_server.command("GET", "netsuite:chat:nick:a1ice")  # one claim for both looks
    assert held.endswith(f"{winner_node.backplane.node}\r\n".encode())
    await close_all(x, y)
