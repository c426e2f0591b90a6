"""Every limit of the IRC front attacked over real loopback sockets; nobody else is disturbed."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from suite.chat import ChatServer
from suite.irc import IRCFactory
from tests.chat.test_loopback import LineClient
from tests.helpers import stop_tracked, track


class IRCLine(LineClient):
    """A raw IRC client: LineClient with CRLF stripped."""

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data.replace(b"\r\n", b"\n"))


@pytest.fixture
def irc_server() -> Iterator:
    started = []

    def start(**kwargs: object) -> int:
        kwargs.setdefault("max_per_ip", None)
        factory = track(IRCFactory(ChatServer(), **kwargs))  # type: ignore[arg-type]
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        started.append((factory, port))
        return port.getHost().port

    yield start
    for factory, port in started:
        pytest_twisted.blockon(defer.ensureDeferred(stop_tracked(factory, port)))


async def user(port: int, nick: str) -> IRCLine:
    client = IRCLine()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
    client.transport.write(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN #lobby\r\n".encode())
    await client.wait_for(r" 366 ")
    return client


async def close(*clients: IRCLine) -> None:
    for client in clients:
        client.transport.loseConnection()
        await client.lost


@pytest_twisted.ensureDeferred
async def test_endless_line_gets_417_memory_bounded_and_connection_stays(irc_server) -> None:
    port = irc_server(max_line=512)
    alice, bob = await user(port, "alice"), await user(port, "bob")
    for _ in range(64):  # 1 MiB without a line end
        alice.transport.write(b"x" * 16384)
    await alice.wait_for(r" 417 alice :Input line was too long")
    alice.transport.write(b"\r\nPRIVMSG #lobby :still here\r\n")
    await bob.wait_for(r"PRIVMSG #lobby :still here$")
    await close(alice, bob)


@pytest_twisted.ensureDeferred
async def test_non_utf8_is_replaced(irc_server) -> None:
    port = irc_server()
    alice, bob = await user(port, "alice"), await user(port, "bob")
    alice.transport.write(b"PRIVMSG #lobby :caf\xe9 \xc3\x28\r\n")
    await bob.wait_for("PRIVMSG #lobby :caf\ufffd \ufffd\\($")
    await close(alice, bob)


@pytest_twisted.ensureDeferred
async def test_excess_flood(irc_server) -> None:
    port = irc_server(flood_rate=5.0, flood_burst=5)
    alice, bob = await user(port, "alice"), await user(port, "bob")
    alice.transport.write(b"PRIVMSG #lobby :flood\r\n" * 100)
    await alice.wait_for(r"^ERROR :Closing Link: 127\.0\.0\.1 \(Excess Flood\)$")
    await alice.lost
    await bob.wait_for(r"^:alice!~alice@127\.0\.0\.1 QUIT :flood$")
    await close(bob)


@pytest_twisted.ensureDeferred
async def test_client_that_never_reads_is_dropped_sendq(irc_server) -> None:
    port = irc_server(max_pending=64 * 1024, flood_rate=None, close_grace=0.5)
    alice = await user(port, "alice")
    # A client with a tiny receive buffer that never reads.
    sleeper = socket.create_connection(("127.0.0.1", port))
    sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sleeper.sendall(b"NICK sleeper\r\nUSER s 0 * :s\r\nJOIN #lobby\r\n")
    await alice.wait_for(r"^:sleeper!~s@127\.0\.0\.1 JOIN #lobby$")
    # More than the kernel's socket buffers can hold (loopback autotuning allows MiBs).
    line = b"PRIVMSG #lobby :" + b"z" * 1900 + b"\r\n"
    for _ in range(250):
        alice.transport.write(line * 20)
    await alice.wait_for(r"^:sleeper!~s@127\.0\.0\.1 QUIT :send queue exceeded$")
    alice.transport.write(b"PING :alive\r\n")
    await alice.wait_for(r"PONG netsuite :alive$")
    sleeper.close()
    await close(alice)


@pytest_twisted.ensureDeferred
async def test_per_ip_cap_refuses_in_irc_form(irc_server) -> None:
    port = irc_server(max_per_ip=1)
    alice = await user(port, "alice")
    extra = IRCLine()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), extra)
    await extra.wait_for(r"^ERROR :Closing Link: \(too many connections from 127\.0\.0\.1 \(limit 1\)\)$")
    await extra.lost
    await close(alice)


@pytest_twisted.ensureDeferred
async def test_ping_timeout_over_a_socket(irc_server) -> None:
    port = irc_server(ping_interval=0.3, ping_timeout=0.3)
    alice = await user(port, "alice")
    await alice.wait_for(r"^PING :netsuite$")
    await alice.wait_for(r"^ERROR :Closing Link: 127\.0\.0\.1 \(Ping timeout: 0\.3 seconds\)$")
    await alice.lost


@pytest_twisted.ensureDeferred
async def test_slow_registration_is_dropped(irc_server) -> None:
    port = irc_server(register_timeout=0.3)
    slow = IRCLine()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), slow)
    slow.transport.write(b"NICK slow\r\n")
    await slow.wait_for(r"^ERROR :Closing Link: 127\.0\.0\.1 \(Registration timeout\)$")
    await slow.lost
