"""The chat service on real loopback sockets."""

from __future__ import annotations

import re
import socket

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater

from suite.chat import ChatFactory
from tests.helpers import stop_tracked, track


class LineClient(Protocol):
    """A raw chat client: sends bytes as given, collects server lines."""

    def __init__(self) -> None:
        self.buffer = b""
        self.lines: list[str] = []
        self.lost: defer.Deferred[None] = defer.Deferred()
        self._waiting: list[tuple[re.Pattern[str], defer.Deferred[str]]] = []

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        *complete, self.buffer = self.buffer.split(b"\n")
        for raw in complete:
            assert b"\r" not in raw
            line = raw.decode()
            self.lines.append(line)
            ready = [(p, d) for p, d in self._waiting if p.search(line)]
            self._waiting = [(p, d) for p, d in self._waiting if (p, d) not in ready]
            for _, d in ready:
                d.callback(line)

    def wait_for(self, pattern: str) -> defer.Deferred[str]:
        """Fires with the first line (already received or to come) matching ``pattern``."""
        compiled = re.compile(pattern)
        for line in self.lines:
            if compiled.search(line):
                return defer.succeed(line)
        d: defer.Deferred[str] = defer.Deferred()
        self._waiting.append((compiled, d))
        return d.addTimeout(10, reactor)

    def connectionLost(self, reason: object) -> None:
        for _, d in self._waiting:
            d.errback(AssertionError(f"connection lost: {reason}; lines: {self.lines[-3:]} buffer {self.buffer[-200:]!r}"))
        self.lost.callback(None)


@pytest.fixture
def chat_server():
    started = []

    def start(**kwargs: object) -> tuple[ChatFactory, int]:
        kwargs.setdefault("max_per_ip", None)
        factory = track(ChatFactory(**kwargs))  # type: ignore[arg-type]
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        started.append((factory, port))
        return factory, port.getHost().port

    yield start
    for factory, port in started:
        # Stopping the factory closes every client; wait for them to go.
        pytest_twisted.blockon(defer.ensureDeferred(stop_tracked(factory, port)))


async def join(port: int, nick: str) -> LineClient:
    client = LineClient()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
    await client.wait_for(r"^\*\*\* join: guest\d+ joined lobby")
    client.transport.write(f"/nick {nick}\n".encode())
    await client.wait_for(rf"^\*\*\* nick: guest\d+ is now {nick}$")
    return client


async def close_all(*clients: LineClient) -> None:
    for client in clients:
        client.transport.loseConnection()
        await client.lost


@pytest_twisted.ensureDeferred
async def test_lf_and_crlf_clients_talk(chat_server) -> None:
    factory, port = chat_server()
    nc, telnet, third = await join(port, "nc"), await join(port, "telnet"), await join(port, "third")
    nc.transport.write(b"hello from nc\n")
    telnet.transport.write(b"hello from telnet\r\n")
    for client in (nc, telnet, third):
        await client.wait_for(r"^\[lobby\] <nc> hello from nc$")
        await client.wait_for(r"^\[lobby\] <telnet> hello from telnet$")
    telnet.transport.write(b"/msg third private\r\n")
    assert await third.wait_for("private") == "[private] <telnet -> third> private"
    assert not any("private" in line for line in nc.lines)
    await close_all(nc, telnet, third)


@pytest_twisted.ensureDeferred
async def test_real_telnet_client(chat_server) -> None:
    """Twisted's own telnet client: its option requests are refused, its commands never reach the room."""
    from twisted.conch import telnet

    class Terminal(telnet.TelnetProtocol):
        def __init__(self) -> None:
            self.received = b""
            self.arrived: defer.Deferred[None] = defer.Deferred()

        def dataReceived(self, data: bytes) -> None:
            self.received += data
            if b"*** nick: " in self.received and not self.arrived.called:
                self.arrived.callback(None)

    factory, port = chat_server()
    watcher = await join(port, "watcher")
    terminal = Terminal()
    transport = telnet.TelnetTransport(lambda: terminal)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), transport)
    with pytest.raises(telnet.OptionRefused):
        await transport.will(telnet.NAWS).addTimeout(10, reactor)
    with pytest.raises(telnet.OptionRefused):
        await transport.do(telnet.ECHO).addTimeout(10, reactor)
    transport.write(b"/nick tel\r\n")
    await terminal.arrived
    # What Ctrl-C sends in the middle of typing, then the rest of the line.
    transport.transport.write(b"half \xff\xf4\xff\xfd\x06a line\r\n")
    assert await watcher.wait_for("<tel>") == "[lobby] <tel> half a line"
    assert not any("invalid-utf8" in line for line in terminal.received.decode("utf-8", "replace").splitlines())
    transport.loseConnection()
    await close_all(watcher)


@pytest_twisted.ensureDeferred
async def test_abrupt_disconnect_frees_nick(chat_server) -> None:
    factory, port = chat_server()
    alice, bob = await join(port, "alice"), await join(port, "bob")
    bob.transport.abortConnection()
    await bob.lost
    await alice.wait_for(r"^\*\*\* leave: bob left lobby \(connection lost\)$")
    carol = await join(port, "bob")  # the nick is free again
    assert carol.lines[-1].endswith("is now bob")
    await close_all(alice, carol)


class NeverReads(LineClient):
    def connectionMade(self) -> None:
        # A small receive buffer (which also stops autotuning) so the server
        # side fills up after megabytes, not tens of megabytes.
        self.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.transport.pauseProducing()


@pytest_twisted.ensureDeferred
async def test_never_reading_client_is_cut_off(chat_server) -> None:
    factory, port = chat_server(max_pending=256 * 1024, flood_rate=None, max_line=16384)
    talker, watcher = await join(port, "talker"), await join(port, "watcher")
    stuck = NeverReads()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), stuck)
    await talker.wait_for(r"joined lobby$")
    await watcher.wait_for(r"^\*\*\* join: guest3 joined lobby")
    # Enough output to fill the kernel buffers and then the server's cap.
    sent = 0
    left = watcher.wait_for(r"^\*\*\* leave: guest3 left lobby \(send queue exceeded\)$")
    while not left.called and sent < 4000:  # at most 60 MB
        batch = b"".join(b"x" * 15000 + b" %d\n" % (sent + i) for i in range(20))
        sent += 20
        talker.transport.write(batch)
        # The readers take the whole batch before the next one: only the
        # stuck client falls behind.
        for reader in (talker, watcher):
            await reader.wait_for(rf"^\[lobby\] <talker> x+ {sent - 1}$")
            reader.lines.clear()
    assert left.called, f"stuck client still connected after {sent} lines"
    await left
    # Everybody else keeps chatting.
    watcher.transport.write(b"still fine\n")
    await talker.wait_for(r"<watcher> still fine$")
    stuck.transport.abortConnection()
    await close_all(talker, watcher)


@pytest_twisted.ensureDeferred
async def test_telnet_flood_from_a_client_that_never_reads(chat_server) -> None:
    """
    ``IAC DO x`` answered for a client that never reads would queue replies
    without bound, even with no send-queue cap: the server stops reading it.
    """
    factory, port = chat_server(max_pending=None, flood_rate=None)
    stuck = NeverReads()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), stuck)
    [server_side] = factory.open
    flood = b"\xff\xfd\x01" * 100_000  # 300 KB, 100,000 replies if answered
    for _ in range(100):  # at most 30 MB
        stuck.transport.write(flood)
        # Until the client cannot send more: the server has stopped reading it.
        for _ in range(50):
            await deferLater(reactor, 0, lambda: None)
        if len(stuck.transport.dataBuffer) + stuck.transport._tempDataLen > 4 * len(flood):
            break
    else:
        raise AssertionError("the server kept reading a client that never reads")
    queued = len(server_side.transport.dataBuffer) + server_side.transport._tempDataLen
    assert queued < 2 * 1024 * 1024, f"{queued} bytes of replies queued for a client that does not read"
    assert len(server_side._held_raw) <= server_side.MAX_LENGTH + server_side.MAX_HELD + 65536
    # Another client is served meanwhile.
    other = await join(port, "other")
    other.transport.write(b"still here\n")
    await other.wait_for(r"<other> still here$")
    stuck.transport.abortConnection()
    await close_all(other)


@pytest_twisted.ensureDeferred
async def test_megabytes_without_newline(chat_server) -> None:
    factory, port = chat_server(max_line=2048)
    alice, bob = await join(port, "alice"), await join(port, "bob")
    for _ in range(64):
        alice.transport.write(b"z" * 65536)
    alice.transport.write(b"\nafter the flood of bytes\n")
    assert await alice.wait_for("^!!! line-too-long:") == "!!! line-too-long: line longer than 2048 bytes rejected"
    await bob.wait_for(r"^\[lobby\] <alice> after the flood of bytes$")
    assert not any("zzz" in line for line in bob.lines)
    await close_all(alice, bob)


@pytest_twisted.ensureDeferred
async def test_connection_caps_refuse_with_reason(chat_server) -> None:
    factory, port = chat_server(max_connections=2)
    first, second = await join(port, "first"), await join(port, "second")
    refused = LineClient()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), refused)
    await refused.lost
    assert refused.lines == ["!!! too-many-connections: too many connections (limit 2)"]
    await close_all(first, second)


@pytest_twisted.ensureDeferred
async def test_per_ip_cap_counts_loopback(chat_server) -> None:
    factory, port = chat_server(max_per_ip=1)
    first = await join(port, "first")
    refused = LineClient()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), refused)
    await refused.lost
    assert refused.lines == ["!!! too-many-connections: too many connections from 127.0.0.1 (limit 1)"]
    await close_all(first)


@pytest_twisted.ensureDeferred
async def test_quit_closes_connection(chat_server) -> None:
    factory, port = chat_server()
    alice, bob = await join(port, "alice"), await join(port, "bob")
    alice.transport.write(b"/quit see you\n")
    await alice.lost
    assert alice.lines[-1] == "*** bye: goodbye"
    await bob.wait_for(r"^\*\*\* leave: alice left lobby \(quit: see you\)$")
    await close_all(bob)


@pytest_twisted.ensureDeferred
async def test_stop_listening_tells_clients(chat_server) -> None:
    factory = track(ChatFactory(max_per_ip=None))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    alice = await join(port.getHost().port, "alice")
    await stop_tracked(factory, port)
    await alice.lost
    assert alice.lines[-1] == "!!! server-shutdown: the server is shutting down"


@pytest_twisted.ensureDeferred
async def test_blocking_client_without_newline_is_told() -> None:
    """The classic blocking client: sock.send(b"hello"), then recv() forever. It hears why."""
    from tests.helpers import stop_tracked, track

    factory = track(ChatFactory(max_per_ip=None, partial_line_notice=0.2))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        client = LineClient()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), client)
        await client.wait_for(r"^\*\*\* join: guest\d+ joined lobby")
        client.transport.write(b"hello")
        await client.wait_for(r"^\*\*\* partial: your line has no newline yet \(5 bytes waiting\)")
        client.transport.write(b"\n")
        await client.wait_for(r"^\[lobby\] <guest\d+> hello$")
        await close_all(client)
    finally:
        await stop_tracked(factory, port)
