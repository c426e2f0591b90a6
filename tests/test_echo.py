"""TCP and UDP echo: protocol logic in memory, then the wiring on loopback."""

from __future__ import annotations

import hashlib
import socket

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import FakeDatagramTransport, StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from suite.echo import EchoFactory, EchoProtocol, UDPEchoProtocol
from suite.endpoints import UDPServerEndpoint
from tests.helpers import Collector, connect_collector, stop_tracked, track, tracked_echo

PEER = IPv4Address("TCP", "192.0.2.7", 40000)

# --- TCP echo in memory -------------------------------------------------------


def connect_in_memory(factory: EchoFactory, peer: IPv4Address = PEER) -> tuple[EchoProtocol, StringTransport]:
    proto = factory.buildProtocol(peer)
    transport = StringTransport(peerAddress=peer)
    proto.makeConnection(transport)
    return proto, transport


def test_echoes_bytes_in_order() -> None:
    proto, transport = connect_in_memory(EchoFactory(reactor=Clock()))
    for chunk in [b"hello", b"\x00\xff\r\n", b"", b"x" * 100_000]:
        proto.dataReceived(chunk)
    assert transport.value() == b"hello\x00\xff\r\n" + b"x" * 100_000


def test_transport_is_its_own_streaming_producer() -> None:
    proto, transport = connect_in_memory(EchoFactory(reactor=Clock()))
    assert transport.producer is transport
    assert transport.streaming


class FakeSocket:
    """Stands in for a socket's ``send``: takes up to ``room`` bytes per call."""

    def __init__(self, room: int = 1 << 30) -> None:
        self.room = room
        self.sent = bytearray()
        self.error: OSError | None = None

    def send(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        taken = bytes(data[: self.room])
        self.sent += taken
        return len(taken)


def connect_eager(
    factory: EchoFactory, monkeypatch: pytest.MonkeyPatch, room: int = 1 << 30
) -> tuple[EchoProtocol, StringTransport, FakeSocket]:
    """An echo connection in memory, in eager mode, over a fake socket."""
    sock = FakeSocket(room)
    monkeypatch.setattr("suite.echo.tcp._socket_send", lambda transport: sock.send)
    proto, transport = connect_in_memory(factory)
    return proto, transport, sock


def test_eager_mode_writes_to_the_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    proto, transport, sock = connect_eager(EchoFactory(reactor=Clock()), monkeypatch)
    # As a pull producer it hears when the transport has drained.
    assert transport.producer is proto and not transport.streaming
    proto.dataReceived(b"hello")
    proto.dataReceived(b"world")
    assert sock.sent == b"helloworld"
    assert transport.value() == b""


def test_eager_mode_keeps_order_after_a_partial_send(monkeypatch: pytest.MonkeyPatch) -> None:
    proto, transport, sock = connect_eager(EchoFactory(reactor=Clock()), monkeypatch, room=3)
    proto.dataReceived(b"abcdef")
    assert (sock.sent, transport.value()) == (b"abc", b"def")
    # The transport holds output: everything goes behind it, even if the
    # socket has room again.
    sock.room = 1 << 30
    proto.dataReceived(b"ghi")
    assert (sock.sent, transport.value()) == (b"abc", b"defghi")
    proto.resumeProducing()  # the transport wrote all it held
    proto.dataReceived(b"jkl")
    assert (sock.sent, transport.value()) == (b"abcjkl", b"defghi")


def test_eager_mode_send_error_goes_through_the_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    proto, transport, sock = connect_eager(EchoFactory(reactor=Clock()), monkeypatch)
    sock.error = BlockingIOError()
    proto.dataReceived(b"later")
    sock.error = ConnectionResetError()
    proto.dataReceived(b"broken")
    # The transport writes it, or reports the broken connection.
    assert transport.value() == b"laterbroken"


def test_eager_mode_stops_reading_above_max_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = EchoFactory(max_buffer=1000, reactor=Clock())
    proto, transport, sock = connect_eager(factory, monkeypatch, room=0)
    proto.dataReceived(b"x" * 1000)
    assert transport.producerState == "producing"
    proto.dataReceived(b"y")
    assert transport.producerState == "paused"
    proto.resumeProducing()  # drained: read again
    assert transport.producerState == "producing"
    proto.dataReceived(b"z")
    assert transport.producerState == "producing"


def test_max_buffer_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_buffer"):
        EchoFactory(max_buffer=0, reactor=Clock())


def test_only_plain_sockets_are_written_eagerly() -> None:
    from suite.echo.tcp import _socket_send

    assert _socket_send(StringTransport()) is None


def test_half_close_flushes_then_closes() -> None:
    proto, transport = connect_in_memory(EchoFactory(reactor=Clock()))
    assert IHalfCloseableProtocol.providedBy(proto)
    proto.dataReceived(b"last words")
    proto.readConnectionLost()
    assert transport.value() == b"last words"
    assert transport.producer is None, "a registered producer would keep the connection open"
    assert transport.disconnecting and not transport.disconnected


def test_connection_cap_refuses_with_one_line() -> None:
    factory = EchoFactory(max_connections=2, reactor=Clock())
    (p1, t1), (p2, _) = connect_in_memory(factory), connect_in_memory(factory)
    p3, t3 = connect_in_memory(factory)
    assert t3.value() == b"error: too many connections (limit 2)\r\n"
    assert t3.disconnecting
    p3.dataReceived(b"ignored")
    assert t3.value() == b"error: too many connections (limit 2)\r\n"
    p3.connectionLost(Failure(ConnectionDone()))
    assert factory.refused == 1
    # The admitted ones keep working, and a slot frees when one leaves.
    p1.dataReceived(b"still here")
    assert t1.value() == b"still here"
    p2.connectionLost(Failure(ConnectionDone()))
    p4, t4 = connect_in_memory(factory)
    assert not t4.disconnecting


def test_no_cap() -> None:
    factory = EchoFactory(max_connections=None, reactor=Clock())
    transports = [connect_in_memory(factory)[1] for _ in range(3000)]
    assert not any(t.disconnecting for t in transports)


def test_idle_timeout_aborts() -> None:
    clock = Clock()
    proto, transport = connect_in_memory(EchoFactory(idle_timeout=30, reactor=clock))
    clock.advance(29)
    proto.dataReceived(b"keepalive")  # input resets the timer
    clock.advance(29)
    assert not transport.disconnecting
    clock.advance(1.5)
    # Aborted, not politely closed: unflushed output must not hold it open.
    assert transport.disconnected


def test_idle_timeout_disabled() -> None:
    clock = Clock()
    proto, transport = connect_in_memory(EchoFactory(idle_timeout=None, reactor=clock))
    clock.advance(10**6)
    assert not transport.disconnecting
    assert not clock.getDelayedCalls()


def test_timer_cancelled_on_disconnect() -> None:
    clock = Clock()
    proto, transport = connect_in_memory(EchoFactory(idle_timeout=30, reactor=clock))
    proto.connectionLost(Failure(ConnectionDone()))
    assert not clock.getDelayedCalls()


# --- UDP echo in memory ---------------------------------------------------------


class FakeUDPTransport(FakeDatagramTransport):
    def __init__(self, port: int = 8007) -> None:
        super().__init__()
        self._port = port

    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", "127.0.0.1", self._port)


def udp_echo(clock: Clock | None = None, **kwargs: object) -> tuple[UDPEchoProtocol, FakeUDPTransport]:
    proto = UDPEchoProtocol(reactor=clock or Clock(), **kwargs)  # type: ignore[arg-type]
    transport = FakeUDPTransport()
    proto.makeConnection(transport)
    return proto, transport


@pytest.mark.parametrize("size", [0, 1, 8192, 8193, 65507])
def test_udp_echo_is_byte_identical(size: int) -> None:
    proto, transport = udp_echo()
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    proto.datagramReceived(payload, ("192.0.2.1", 5000))
    assert transport.written == [(payload, ("192.0.2.1", 5000))]


@pytest.mark.parametrize("port", [0, 7, 19, 53, 123, 1023])
def test_udp_never_answers_privileged_ports(port: int, caplog_events: list) -> None:
    proto, transport = udp_echo()
    proto.datagramReceived(b"loop?", ("192.0.2.1", port))
    assert transport.written == []
    assert proto.stats.refused == 1
    assert any("privileged or denied" in e.get("log_format", "") for e in caplog_events)


def test_udp_denies_own_port_and_configured_ports() -> None:
    proto, transport = udp_echo(deny_ports=[9999])
    proto.datagramReceived(b"me?", ("127.0.0.1", 8007))  # our own port: another echo server
    proto.datagramReceived(b"denied", ("192.0.2.1", 9999))
    proto.datagramReceived(b"fine", ("192.0.2.1", 1024))
    assert transport.written == [(b"fine", ("192.0.2.1", 1024))]
    assert proto.stats.refused == 2


def test_udp_refusal_log_is_rate_limited(caplog_events: list) -> None:
    clock = Clock()
    proto, transport = udp_echo(clock)
    for _ in range(1000):
        proto.datagramReceived(b"x", ("192.0.2.1", 53))
    refusals = [e for e in caplog_events if "privileged" in e.get("log_format", "")]
    assert len(refusals) == 1
    clock.advance(11)
    proto.datagramReceived(b"x", ("192.0.2.1", 53))
    refusals = [e for e in caplog_events if "privileged" in e.get("log_format", "")]
    assert [e["suppressed"] for e in refusals] == [0, 999]


def test_udp_per_source_rate_limit() -> None:
    clock = Clock()
    proto, transport = udp_echo(clock, rate=10, burst=5, global_rate=None)
    for _ in range(20):
        proto.datagramReceived(b"a", ("192.0.2.1", 5000))
    proto.datagramReceived(b"b", ("192.0.2.2", 5000))  # another source is unaffected
    assert len(transport.written) == 6
    assert proto.stats.rate_limited == 15
    clock.advance(0.5)  # 5 tokens back
    for _ in range(10):
        proto.datagramReceived(b"a", ("192.0.2.1", 5000))
    assert len(transport.written) == 11
    assert proto.stats == type(proto.stats)(received=31, echoed=11, refused=0, rate_limited=20)


def test_udp_global_cap() -> None:
    proto, transport = udp_echo(rate=None, global_rate=100)
    for i in range(300):
        proto.datagramReceived(b"x", (f"192.0.2.{i % 250}", 5000))
    assert len(transport.written) == 100  # the global burst
    assert proto.stats.rate_limited == 200


def test_udp_limits_can_be_disabled() -> None:
    proto, transport = udp_echo(rate=None, global_rate=None)
    for _ in range(50_000):
        proto.datagramReceived(b"x", ("192.0.2.1", 5000))
    assert len(transport.written) == 50_000


def test_udp_source_table_is_bounded() -> None:
    proto, transport = udp_echo(max_sources=64)
    for i in range(5000):
        proto.datagramReceived(b"x", (f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 5000))
    assert len(proto.per_source) == 64


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


def test_ipv6_address_reaches_guard() -> None:
    proto, transport = udp_echo()
    proto.datagramReceived(b"v6", ("::1", 40000))
    assert transport.written == [(b"v6", ("::1", 40000))]
    assert IPv6Address  # the guard reads only host and port, whatever the family


class SocketLike:
    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[tuple[bytes, tuple]] = []
        self.fail = fail

    def sendto(self, data: bytes, addr: tuple) -> int:
        if self.fail is not None:
            raise self.fail
        self.sent.append((data, addr))
        return len(data)


class HandleTransport(FakeUDPTransport):
    def __init__(self, handle: SocketLike) -> None:
        super().__init__()
        self.handle = handle

    def getHandle(self) -> SocketLike:
        return self.handle


def test_udp_replies_go_straight_to_the_socket() -> None:
    handle = SocketLike()
    proto = UDPEchoProtocol(reactor=Clock())
    proto.makeConnection(HandleTransport(handle))
    proto.datagramReceived(b"fast", ("192.0.2.1", 5000))
    assert handle.sent == [(b"fast", ("192.0.2.1", 5000))]


def test_udp_full_send_buffer_drops_and_counts() -> None:
    proto = UDPEchoProtocol(reactor=Clock())
    proto.makeConnection(HandleTransport(SocketLike(BlockingIOError(11, "Resource temporarily unavailable"))))
    proto.datagramReceived(b"x", ("192.0.2.1", 5000))
    assert proto.stats.dropped == 1 and proto.stats.echoed == 0 and proto.stats.received == 1
