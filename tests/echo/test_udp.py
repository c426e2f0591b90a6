"""UDP echo in memory: byte-identical replies, the loop/reflection guard, rate limits, drops."""

from __future__ import annotations


import pytest
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.task import Clock
from twisted.internet.testing import FakeDatagramTransport

from suite.echo import UDPEchoProtocol

PEER = IPv4Address("TCP", "192.0.2.7", 40000)
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
