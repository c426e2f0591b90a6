"""Endpoint descriptions (udp: and stream) and ListeningService."""

import ipaddress
import socket

import pytest
import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.internet.testing import MemoryReactor

from suite.endpoints import (
    DEFAULT_BACKLOG,
    MAX_DATAGRAM,
    CannotListen,
    EndpointError,
    ListeningService,
    UDPDescription,
    UDPServerEndpoint,
    describe_address,
    is_datagram,
    parse_udp_description,
    stream_server_endpoint,
)

# --- udp: descriptions --------------------------------------------------------


@pytest.mark.parametrize(
    "text, port, interface",
    [
        ("udp:8007", 8007, ""),
        ("udp:0", 0, ""),
        ("udp:8007:interface=127.0.0.1", 8007, "127.0.0.1"),
        ("UDP:8007:interface=127.0.0.1", 8007, "127.0.0.1"),
        ("udp:8007:interface=::1", 8007, "::1"),
        (r"udp:8007:interface=\:\:1", 8007, "::1"),
        ("udp:8007:interface=[::1]", 8007, "::1"),
        ("udp:9:interface=fe80::1:2", 9, "fe80::1:2"),
        ("udp:8007:interface=0:0:0:0:0:0:0:1", 8007, "::1"),
        ("udp:65535:interface=", 65535, ""),
    ],
)
def test_parse_udp(text: str, port: int, interface: str) -> None:
    assert parse_udp_description(text) == UDPDescription(port, interface)


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("udp", "missing port"),
        ("udp:", "missing port"),
        ("udp:abc", "port must be a number"),
        ("udp:-1", "port must be a number"),
        ("udp:65536", "port must be 0-65535"),
        ("udp:８００７", "port must be a number"),
        ("udp:8007:interface=localhost", "interface must be an IPv4 or IPv6 address"),
        ("udp:8007:interface=1.2.3", "interface must be"),
        ("udp:8007:backlog=5", "unknown option"),
        ("udp:8007:interface=1.2.3.4:interface=::1", "given twice"),
        ("udp:8007:port=9", "positionally"),
        ("tcp:8007", "not a udp description"),
    ],
)
def test_parse_udp_errors(text: str, complaint: str) -> None:
    with pytest.raises(EndpointError, match=complaint):
        parse_udp_description(text)


ip_addresses = st.one_of(
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str), st.just("")
)


@given(port=st.integers(0, 65535), interface=ip_addresses)
def test_udp_description_round_trips(port: int, interface: str) -> None:
    description = UDPDescription(port, interface)
    assert parse_udp_description(str(description)) == description
    # The unescaped form parses the same.
    plain = f"udp:{port}:interface={interface}" if interface else f"udp:{port}"
    assert parse_udp_description(plain) == description


@given(st.text(max_size=60))
def test_udp_parser_only_raises_endpoint_error(text: str) -> None:
    try:
        parsed = parse_udp_description("udp:" + text)
    except EndpointError:
        return
    assert 0 <= parsed.port <= 65535
    if parsed.interface:
        ipaddress.ip_address(parsed.interface)


def test_is_datagram() -> None:
    assert is_datagram("udp:1")
    assert is_datagram(" UDP:1")
    assert not is_datagram("tcp:1")
    assert not is_datagram("unix:/udp")


# --- stream descriptions ------------------------------------------------------


def test_stream_endpoint_gets_a_large_backlog() -> None:
    memory = MemoryReactor()
    endpoint = stream_server_endpoint(memory, "tcp:0:interface=127.0.0.1")
    endpoint.listen(Factory.forProtocol(Protocol))
    (port, factory, backlog, interface) = memory.tcpServers[0]
    assert (port, backlog, interface) == (0, DEFAULT_BACKLOG, "127.0.0.1")


def test_stream_endpoint_keeps_an_explicit_backlog() -> None:
    memory = MemoryReactor()
    stream_server_endpoint(memory, "tcp:0:backlog=7").listen(Factory.forProtocol(Protocol))
    assert memory.tcpServers[0][2] == 7


@pytest.mark.parametrize(
    "text", ["tcp:x", "nosuch:1", "tcp:1:bogus=2", "udp:1", "ssl:1:privateKey=/nonexistent.pem", ""]
)
def test_stream_endpoint_errors(text: str) -> None:
    with pytest.raises(EndpointError):
        stream_server_endpoint(MemoryReactor(), text)


@given(st.text(max_size=60))
def test_stream_parser_only_raises_endpoint_error(text: str) -> None:
    # Whatever the text, the only failure is a clear EndpointError.
    try:
        stream_server_endpoint(MemoryReactor(), text)
    except EndpointError as e:
        assert str(e)


def test_describe_address() -> None:
    assert describe_address(IPv4Address("TCP", "127.0.0.1", 8007)) == "tcp 127.0.0.1:8007"
    assert describe_address(IPv6Address("UDP", "::1", 8007)) == "udp6 [::1]:8007"
    assert describe_address(UNIXAddress(b"/run/echo.sock")) == "unix /run/echo.sock"


# --- ListeningService -------------------------------------------------------


def test_service_rejects_mismatched_target() -> None:
    with pytest.raises(EndpointError, match="stream service"):
        ListeningService("echo", "udp:0", Factory.forProtocol(Protocol), MemoryReactor())
    with pytest.raises(EndpointError, match="UDP service"):
        ListeningService("udp-echo", "tcp:0", DatagramProtocol(), MemoryReactor())


class RecordingUDPReactor:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def listenUDP(self, port: int, protocol: DatagramProtocol, interface: str = "", maxPacketSize: int = 8192) -> str:
        self.calls.append((port, interface, maxPacketSize))
        return "the port"


def test_udp_endpoint_never_truncates() -> None:
    recorder = RecordingUDPReactor()
    d = UDPServerEndpoint.from_description(recorder, "udp:0:interface=::1").listen(DatagramProtocol())
    assert recorder.calls == [(0, "::1", MAX_DATAGRAM)]
    assert d.result == "the port"


def test_service_port_in_use() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        service = ListeningService("echo", f"tcp:{port}:interface=127.0.0.1", Factory.forProtocol(Protocol), reactor)
        with pytest.raises(CannotListen, match=f"echo: cannot listen on tcp:{port}:interface=127.0.0.1: Address already in use"):
            service.privilegedStartService()
        assert service.port is None
    finally:
        busy.close()


@pytest_twisted.ensureDeferred
async def test_service_logs_real_port_and_stops(caplog_events: list) -> None:
    service = ListeningService("echo", "tcp:0:interface=127.0.0.1", Factory.forProtocol(Protocol), reactor)
    service.startService()
    port = service.port.getHost().port
    assert port != 0
    assert any(e.get("address") == f"tcp 127.0.0.1:{port}" for e in caplog_events)
    await service.stopService()
    assert service.port is None
    # The port is free again.
    again = reactor.listenTCP(port, Factory.forProtocol(Protocol), interface="127.0.0.1")
    await again.stopListening()


@pytest_twisted.ensureDeferred
async def test_udp_service_on_ipv6(caplog_events: list) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    service = ListeningService("udp-echo", "udp:0:interface=::1", DatagramProtocol(), reactor)
    service.startService()
    try:
        address = service.port.getHost()
        assert address.host == "::1" and address.port
        assert any(e.get("address") == f"udp6 [::1]:{address.port}" for e in caplog_events)
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_unix_socket_service(tmp_path, caplog_events: list) -> None:
    from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol

    from tests.helpers import Collector, stop_tracked, tracked_echo

    path = tmp_path / "echo.sock"
    factory = tracked_echo(max_connections=1)
    service = ListeningService("echo", f"unix:{path}", factory, reactor)
    service.startService()
    try:
        assert any(e.get("address") == f"unix {path}" for e in caplog_events)
        client = Collector()
        await connectProtocol(UNIXClientEndpoint(reactor, str(path)), client)
        client.transport.write(b"over a unix socket")
        assert await client.wait_for(18) == b"over a unix socket"
        client.transport.loseConnection()
        await client.lost
    finally:
        await stop_tracked(factory, service.port)
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_reuse_port_endpoint_shares_a_port() -> None:
    from suite.endpoints import ReusePortEndpoint

    first = await ReusePortEndpoint(reactor, "tcp", 0, "127.0.0.1").listen(Factory.forProtocol(Protocol))
    port = first.getHost().port
    second = await ReusePortEndpoint.from_description(reactor, f"tcp:{port}:interface=127.0.0.1").listen(
        Factory.forProtocol(Protocol)
    )
    udp = await ReusePortEndpoint(reactor, "udp", port, "127.0.0.1").listen(DatagramProtocol())
    udp2 = await ReusePortEndpoint(reactor, "udp", port, "127.0.0.1").listen(DatagramProtocol())
    try:
        assert second.getHost().port == port == udp.getHost().port == udp2.getHost().port
    finally:
        for listening in (first, second, udp, udp2):
            await listening.stopListening()


@pytest_twisted.ensureDeferred
async def test_tls_listener_reloads_its_certificate(tmp_path, caplog_events) -> None:
    """reload_tls: new connections get the new certificate; a broken file keeps the old one."""
    import shutil

    from twisted.internet import defer, reactor, ssl
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS

    from suite.echo import EchoFactory
    from twisted.internet.error import ConnectionDone

    from tests.helpers import Collector, make_certificate

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    key_a, cert_a = make_certificate(first)
    key_b, cert_b = make_certificate(second)
    live_key, live_cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    shutil.copy(key_a, live_key)
    shutil.copy(cert_a, live_cert)
    service = ListeningService(
        "echo", f"ssl:0:interface=127.0.0.1:privateKey={live_key}:certKey={live_cert}",
        EchoFactory(idle_timeout=None), reactor
    )
    service.startService()
    assert any(e.get("service") == "echo" and e.get("address", "").startswith("tls 127.0.0.1:") for e in caplog_events)

    async def talk_trusting(cert) -> tuple[bytes, BaseException]:
        """Send ping; what came back, and how the connection ended."""
        client = Collector()
        endpoint = wrapClientTLS(
            ssl.optionsForClientTLS("localhost", trustRoot=ssl.Certificate.loadPEM(cert.read_bytes())),
            TCP4ClientEndpoint(reactor, "127.0.0.1", service.port.getHost().port),
        )
        await connectProtocol(endpoint, client)
        client.transport.write(b"ping")
        await defer.DeferredList([client.wait_for(4), client.lost], fireOnOneCallback=True)
        client.transport.loseConnection()
        return bytes(client.received), await client.lost

    async def echo_trusting(cert) -> bytes:
        received, reason = await talk_trusting(cert)
        assert isinstance(reason, ConnectionDone), reason
        return received

    try:
        assert await echo_trusting(cert_a) == b"ping"
        shutil.copy(key_b, live_key)
        shutil.copy(cert_b, live_cert)
        service.reload_tls()
        assert await echo_trusting(cert_b) == b"ping"
        _, reason = await talk_trusting(cert_a)  # the old certificate is gone for new connections
        assert "certificate verify failed" in str(reason)
        live_cert.write_text("not a certificate")
        with pytest.raises(EndpointError):
            service.reload_tls()
        assert await echo_trusting(cert_b) == b"ping"  # kept
    finally:
        await service.stopService()
