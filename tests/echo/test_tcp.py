"""TCP echo in memory: order, the eager-write path, backpressure, half-close, admission, idle timeout."""

from __future__ import annotations


import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from suite.echo import EchoFactory, EchoProtocol

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
