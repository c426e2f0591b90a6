"""Fixtures of the client tests: the classic blocking servers' shapes on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol

from tests.cli.shapes import Shape, ShapeFactory, UDPUpper


@pytest.fixture
def shape_server() -> Iterator[Callable[[type[Shape]], tuple[int, ShapeFactory]]]:
    """``start(Shape)`` listens on 127.0.0.1: (port, factory); all closed after the test."""
    ports: list[tuple[Any, ShapeFactory]] = []

    def start(shape: type[Shape]) -> tuple[int, ShapeFactory]:
        factory = ShapeFactory(shape)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        ports.append((port, factory))
        return port.getHost().port, factory

    yield start
    for port, factory in ports:
        pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))
        for proto in list(factory.open):
            proto.transport.abortConnection()
    # Let the aborted connections finish closing before the leftovers check.
    for _, factory in ports:
        for _ in range(1000):  # bounded: an abort completes within a few turns
            if not factory.open:
                break
            pytest_twisted.blockon(_turn())


def _turn() -> defer.Deferred[None]:
    d: defer.Deferred[None] = defer.Deferred()
    reactor.callLater(0, d.callback, None)
    return d


@pytest.fixture
def udp_upper() -> Iterator[int]:
    port = reactor.listenUDP(0, UDPUpper(), interface="127.0.0.1")
    yield port.getHost().port
    pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


class _UDPSilent(DatagramProtocol):
    """``sock.recvfrom()`` and never a reply."""

    def __init__(self) -> None:
        self.arrived: defer.DeferredQueue[bytes] = defer.DeferredQueue()

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.arrived.put(data)


@pytest.fixture
def udp_silent() -> Iterator[tuple[int, defer.DeferredQueue[bytes]]]:
    """A UDP server that reads and never answers: (port, queue of datagrams that arrived)."""
    silent = _UDPSilent()
    port = reactor.listenUDP(0, silent, interface="127.0.0.1")
    yield port.getHost().port, silent.arrived
    pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))
