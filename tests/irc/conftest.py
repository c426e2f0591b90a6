"""An IRC service and a line chat sharing one ChatServer, on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from suite.chat import ChatFactory, ChatServer
from suite.irc import IRCFactory
from tests.helpers import stop_tracked, track


@dataclass
class Ports:
    irc: int
    chat: int
    server: ChatServer
    irc_factory: IRCFactory


@pytest.fixture
def irc_net() -> Iterator[Ports]:
    server = ChatServer()
    irc_factory = track(IRCFactory(server, max_per_ip=None))
    chat_factory = track(ChatFactory(server, max_per_ip=None))
    irc_port = reactor.listenTCP(0, irc_factory, interface="127.0.0.1")
    chat_port = reactor.listenTCP(0, chat_factory, interface="127.0.0.1")
    yield Ports(irc_port.getHost().port, chat_port.getHost().port, server, irc_factory)
    for factory, port in ((irc_factory, irc_port), (chat_factory, chat_port)):
        pytest_twisted.blockon(defer.ensureDeferred(stop_tracked(factory, port)))
