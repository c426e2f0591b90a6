"""
The servers of a classic socket course, as the netsuite clients meet them:
tiny Twisted servers on loopback that behave like the blocking programs
learners write (a reply without a newline, a server that never greets, one
that closes early, a UDP "echo" that changes the bytes).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure


class Shape(protocol.Protocol):
    """Base: records what arrived; the factory's queues say when things happen."""

    def connectionMade(self) -> None:
        self.factory.open.add(self)
        self.received = bytearray()
        self.factory.connected.put(self)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self.factory.data.put(data)
        self.reply(data)

    def reply(self, data: bytes) -> None:
        """What the shape does with what it read."""

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:  # noqa: B008
        self.factory.open.discard(self)


class NoNewline(Shape):
    """``conn.send(data.strip())``: the echo comes back without its newline."""

    def reply(self, data: bytes) -> None:
        self.transport.write(data.rstrip(b"\r\n"))


class NoNewlineThenClose(Shape):
    """``conn.send(data.strip()); conn.close()``: one reply without newline, then gone."""

    def reply(self, data: bytes) -> None:
        self.transport.write(data.rstrip(b"\r\n"))
        self.transport.loseConnection()


class CloseAtOnce(Shape):
    """``conn, addr = s.accept(); conn.close()``: gone before a word."""

    def connectionMade(self) -> None:
        super().connectionMade()
        self.transport.loseConnection()


class Silent(Shape):
    """``conn, addr = s.accept()`` and then nothing: never greets, never replies."""


class Upper(Shape):
    """``conn.send(data.upper())``: a reply, but not the echo."""

    def reply(self, data: bytes) -> None:
        self.transport.write(data.upper())


class Banner(Shape):
    """``conn.send(b"Welcome")`` on accept, without newline, then reads forever."""

    def connectionMade(self) -> None:
        super().connectionMade()
        self.transport.write(b"Welcome")


class UDPUpper(protocol.DatagramProtocol):
    """``sock.sendto(data.upper(), addr)``: a UDP reply that is not the echo."""

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.transport.write(data.upper(), addr)


class ShapeFactory(protocol.Factory):
    def __init__(self, shape: type[Shape]) -> None:
        self.protocol = shape
        self.open: set[Shape] = set()
        self.connected: defer.DeferredQueue[Shape] = defer.DeferredQueue()
        self.data: defer.DeferredQueue[bytes] = defer.DeferredQueue()
