"""Echo over real loopback sockets: TCP (large, TLS, IPv6, half-close, backpressure, caps, timeouts) and UDP."""

from __future__ import annotations

import hashlib
import socket

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.protocol import DatagramProtocol
from zope.interface import implementer

from suite.echo import EchoFactory, EchoProtocol, UDPEchoProtocol
from suite.endpoints import UDPServerEndpoint
from tests.helpers import Collector, connect_collector, stop_tracked, track, tracked_echo

PEER = IPv4Address("TCP", "192.0.2.7", 40000)

# --- TCP echo on loopback -------------------------------------------------------


@pytest.fixture
def echo_port():
    """A real TCP echo server on 127.0.0.1, port 0; yields (factory, port number)."""
    ports = []

    def start(protocol: type[EchoProtocol] = EchoProtocol, **kwargs: object) -> tuple[EchoFactory, int]:
        factory = EchoFactory(**kwargs)  # type: ignore[arg-type]
        factory.protocol = protocol
        track(factory)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        ports.append((factory, port))
        return factory, port.getHost().port

    yield start
    for factory, port in ports:
        pytest_twisted.blockon(defer.ensureDeferred(stop_tracked(factory, port)))


@pytest_twisted.ensureDeferred
async def test_loopback_echo_large_and_ordered(echo_port) -> None:
    factory, port = echo_port()
    client = await connect_collector(port)
    payload = bytes(range(256)) * 8192  # 2 MiB
    client.transport.write(payload)
    assert await client.wait_for(len(payload)) == payload
    client.transport.loseConnection()
    await client.lost


@pytest_twisted.ensureDeferred
async def test_loopback_tcp_is_written_eagerly(echo_port) -> None:
    factory, port = echo_port()
    client = await connect_collector(port)
    client.transport.write(b"eager")
    assert await client.wait_for(5) == b"eager"
    (server,) = factory.open
    assert server._send is not None
    client.transport.loseConnection()
    await client.lost


@pytest_twisted.ensureDeferred
async def test_loopback_tls_goes_through_the_transport(tmp_path) -> None:
    """Over TLS the bytes must be encrypted: no eager socket writes."""
    from tests.helpers import listen_tls, tls_client_endpoint

    factory = tracked_echo()
    port, cert = await listen_tls(factory, tmp_path)
    try:
        client = Collector()
        await connectProtocol(tls_client_endpoint(port, cert), client)
        payload = bytes(range(256)) * 4096  # 1 MiB
        client.transport.write(payload)
        assert await client.wait_for(len(payload)) == payload
        (server,) = factory.open
        assert server._send is None
        client.transport.loseConnection()
        await client.lost
    finally:
        await stop_tracked(factory, port)


@pytest_twisted.ensureDeferred
async def test_loopback_ipv6(echo_port) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    factory = tracked_echo()
    port = reactor.listenTCP(0, factory, interface="::1")
    try:
        from twisted.internet.endpoints import TCP6ClientEndpoint

        client = Collector()
        await connectProtocol(TCP6ClientEndpoint(reactor, "::1", port.getHost().port), client)
        client.transport.write(b"over ipv6")
        assert await client.wait_for(9) == b"over ipv6"
        client.transport.loseConnection()
        await client.lost
    finally:
        await stop_tracked(factory, port)


@implementer(IHalfCloseableProtocol)
class HalfClosingClient(Collector):
    def readConnectionLost(self) -> None:
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass


@pytest_twisted.ensureDeferred
async def test_loopback_half_close_returns_everything(echo_port) -> None:
    factory, port = echo_port()
    client = HalfClosingClient()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
    payload = b"0123456789abcdef" * 65536  # 1 MiB, still in flight at EOF
    client.transport.write(payload)
    client.transport.loseWriteConnection()
    reason = await client.lost
    assert bytes(client.received) == payload
    assert isinstance(reason, ConnectionDone)


@implementer(IPushProducer)
class NeverReadingPusher(Collector):
    """Writes ``total`` bytes as fast as its transport accepts, reading nothing until told."""

    CHUNK = 65536

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.sent = 0
        self.paused = False
        self.sent_hash = hashlib.sha256()

    def connectionMade(self) -> None:
        self.transport.pauseProducing()  # never read...
        self.transport.registerProducer(self, True)
        self.resumeProducing()

    def resumeProducing(self) -> None:
        self.paused = False
        while not self.paused and self.sent < self.total:
            chunk = self.sent.to_bytes(8, "big") * (self.CHUNK // 8)
            self.sent_hash.update(chunk)
            self.sent += len(chunk)
            self.transport.write(chunk)
        if self.sent >= self.total:
            self.transport.unregisterProducer()

    def pauseProducing(self) -> None:
        self.paused = True

    def stopProducing(self) -> None:
        self.paused = True


class MeasuredEcho(EchoProtocol):
    """Records the most output it ever held for a slow reader, and when it paused."""

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        t = self.transport
        buffered = len(t.dataBuffer) - t.offset + t._tempDataLen
        self.factory.max_buffered = max(self.factory.max_buffered, buffered)
        # Paused reading (as it should), or buffering far too much: look now.
        paused = not self._reading or t.producerPaused
        if (paused or buffered > 1 << 20) and not self.factory.paused.called:
            self.factory.paused.callback(buffered)


@pytest_twisted.ensureDeferred
async def test_loopback_backpressure_bounds_server_memory(echo_port) -> None:
    factory, port = echo_port(MeasuredEcho)
    factory.max_buffered = 0
    factory.paused = defer.Deferred()
    total = 32 * 1024 * 1024
    client = NeverReadingPusher(total)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
    # The client reads nothing: the server must stop reading, not buffer.
    await factory.paused
    client.transport.resumeProducing()  # now read everything back
    received = await client.wait_for(total)
    assert hashlib.sha256(received).digest() == client.sent_hash.digest()
    assert factory.max_buffered < 256 * 1024, factory.max_buffered
    client.transport.loseConnection()
    await client.lost


@pytest_twisted.ensureDeferred
async def test_loopback_connection_cap(echo_port) -> None:
    factory, port = echo_port(max_connections=2)
    first, second = await connect_collector(port), await connect_collector(port)
    for c in (first, second):
        c.transport.write(b"ping")
        await c.wait_for(4)
    third = await connect_collector(port)
    reason = await third.lost
    assert bytes(third.received) == b"error: too many connections (limit 2)\r\n"
    assert isinstance(reason, ConnectionDone)
    assert factory.admission.refused == {"max-connections": 1}
    first.transport.write(b"+more")
    assert await first.wait_for(9) == b"ping+more"
    first.transport.loseConnection()
    await first.lost
    await factory.closed.get()  # the server freed its slot
    fourth = await connect_collector(port)
    fourth.transport.write(b"admitted")
    assert await fourth.wait_for(8) == b"admitted"
    for c in (second, fourth):
        c.transport.loseConnection()
        await c.lost


@pytest_twisted.ensureDeferred
async def test_loopback_idle_timeout(echo_port) -> None:
    factory, port = echo_port(idle_timeout=0.2)
    client = await connect_collector(port)
    reason = await client.lost
    assert isinstance(reason, (ConnectionDone, ConnectionLost))


@pytest_twisted.ensureDeferred
async def test_loopback_idle_timeout_aborts_with_pending_output(echo_port) -> None:
    """A client that sends and never reads is cut off, although output is pending."""
    factory, port = echo_port(MeasuredEcho, idle_timeout=0.5)
    factory.max_buffered = 0
    factory.paused = defer.Deferred()
    client = NeverReadingPusher(1 << 40)  # would never finish by itself
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
    await factory.paused
    reason = await client.lost
    assert isinstance(reason, (ConnectionDone, ConnectionLost))
    assert factory.admission.open == 0


# --- UDP echo on loopback -------------------------------------------------------


class UDPProbe(DatagramProtocol):
    def __init__(self) -> None:
        self.replies: defer.DeferredQueue[tuple[bytes, tuple]] = defer.DeferredQueue()

    def datagramReceived(self, data: bytes, addr: tuple) -> None:
        self.replies.put((data, addr))


async def udp_roundtrip(interface: str, sizes: list[int]) -> None:
    server = UDPEchoProtocol()
    port = await UDPServerEndpoint(reactor, 0, interface).listen(server)
    probe = UDPProbe()
    probe_port = reactor.listenUDP(0, probe, interface=interface, maxPacketSize=65535)
    try:
        address = (interface, port.getHost().port)
        for size in sizes:
            payload = (bytes(range(256)) * 256)[:size]
            probe.transport.write(payload, address)
            data, source = await probe.replies.get().addTimeout(5, reactor)
            assert data == payload, size
            assert source[:2] == address
        assert server.stats.echoed == len(sizes)
    finally:
        await probe_port.stopListening()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_loopback_udp_all_sizes() -> None:
    await udp_roundtrip("127.0.0.1", [0, 1, 512, 8192, 8193, 65507])


@pytest_twisted.ensureDeferred
async def test_loopback_udp_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    await udp_roundtrip("::1", [1, 8193, 65527])
