"""The IRC service on loopback sockets, driven by the PyPI ``irc`` library as a scripted client, with a line-chat user."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import irc.client
import pytest_twisted
from twisted.internet import threads

from tests.chat.test_loopback import join


class Scripted:
    """
    An ``irc`` library client.  Its (blocking, select-based) loop runs in a
    worker thread, one bounded step at a time, while the reactor serves.
    """

    def __init__(self) -> None:
        self.reactor = irc.client.Reactor()
        self.events: list[Any] = []
        self.reactor.add_global_handler("all_events", lambda conn, event: self.events.append(event), -10)
        self.conn = self.reactor.server()

    def _wait(self, test: Callable[[Any], bool], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for event in self.events[seen:]:
                if test(event):
                    return event
            seen = len(self.events)
            self.reactor.process_once(0.05)
        raise AssertionError(f"no such event; got {[(e.type, e.arguments) for e in self.events[-8:]]}")

    def wait(self, type_: str, test: Callable[[Any], bool] = lambda e: True, timeout: float = 10) -> Any:
        """A Deferred firing with the first event of ``type_`` passing ``test``."""
        return threads.deferToThread(self._wait, lambda e: e.type == type_ and test(e), timeout)

    def connect(self, port: int, nick: str) -> Any:
        return threads.deferToThread(self.conn.connect, "127.0.0.1", port, nick, username="scripted", ircname="Scripted Client")

    def after(self, type_: str) -> list[Any]:
        return [e for e in self.events if e.type == type_]


@pytest_twisted.ensureDeferred
async def test_irc_library_client_and_nc_user_talk(irc_net) -> None:
    client = Scripted()
    await client.connect(irc_net.irc, "scripted")
    welcome = await client.wait("welcome")
    assert welcome.target == "scripted"
    isupport = await client.wait("featurelist")
    assert "UTF8ONLY" in isupport.arguments and "CASEMAPPING=rfc8265" in isupport.arguments
    await client.wait("endofmotd")

    nc = await join(irc_net.chat, "ncuser")
    client.conn.join("#lobby")
    await client.wait("endofnames")
    names = client.after("namreply")[-1]
    assert names.arguments[1] == "#lobby" and set(names.arguments[2].split()) == {"ncuser", "scripted"}
    await nc.wait_for(r"^\*\*\* join: scripted joined lobby$")

    nc.transport.write("hello from nc, 你好\n/me waves\n/msg scripted psst\n".encode())
    said = await client.wait("pubmsg")
    assert (said.source.nick, said.target, said.arguments) == ("ncuser", "#lobby", ["hello from nc, 你好"])
    action = await client.wait("action")
    assert action.arguments == ["waves"]
    private = await client.wait("privmsg")
    assert (private.source.nick, private.arguments) == ("ncuser", ["psst"])

    client.conn.privmsg("#lobby", "hello from irc")
    client.conn.action("#lobby", "dances")
    client.conn.privmsg("ncuser", "private back")
    await nc.wait_for(r"^\[lobby\] <scripted> hello from irc$")
    await nc.wait_for(r"^\[lobby\] \* scripted dances$")
    await nc.wait_for(r"^\[private\] <scripted -> ncuser> private back$")

    client.conn.topic("#lobby", "release friday")
    await nc.wait_for(r"^\*\*\* topic: scripted set the topic of lobby: release friday$")
    client.conn.who("#lobby")
    await client.wait("endofwho")
    assert {e.arguments[4] for e in client.after("whoreply")} == {"ncuser", "scripted"}
    client.conn.whois("ncuser")
    await client.wait("endofwhois")
    assert client.after("whoisuser")[-1].arguments[0] == "ncuser"

    client.conn.nick("小明")
    nick = await client.wait("nick")
    assert (nick.source.nick, nick.target) == ("scripted", "小明")
    await nc.wait_for(r"^\*\*\* nick: scripted is now 小明$")
    nc.transport.write(b"/nick Renamed\n")
    renamed = await client.wait("nick", lambda e: e.target == "Renamed")
    assert renamed.source.nick == "ncuser"

    client.conn.privmsg("nobody", "x")
    missing = await client.wait("nosuchnick")
    assert missing.arguments[0] == "nobody"

    client.conn.quit("bye now")
    await client.wait("error")
    await nc.wait_for(r"^\*\*\* leave: 小明 left lobby \(quit: bye now\)$")
    client.conn.close()
    nc.transport.loseConnection()
    await nc.lost


@pytest_twisted.ensureDeferred
async def test_server_ping_is_answered_by_the_library(irc_net) -> None:
    irc_net.irc_factory.ping_interval = 0.2
    client = Scripted()
    client.reactor.add_global_handler("ping", lambda conn, event: conn.pong(event.target))
    await client.connect(irc_net.irc, "pinged")
    await client.wait("ping", timeout=5)
    await client.wait("ping", timeout=5)  # answered the first: asked again, not dropped
    assert not client.after("error")
    client.conn.quit()
    await client.wait("error")
    client.conn.close()
