"""Service descriptors: the walk-through of docs/architecture.md, run for real."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python import usage

from suite.endpoints import ListeningService
from suite.service import Option, ServiceContext, ServiceDescriptor, non_negative, size

ROOT = Path(__file__).resolve().parent.parent


def walk_through() -> dict[str, Any]:
    """The daytime service of docs/architecture.md, exactly as printed."""
    text = (ROOT / "docs/architecture.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/architecture.md", "exec"), namespace)
    return namespace


def config_for(descriptor: ServiceDescriptor, **values: Any) -> dict[str, Any]:
    config = {o.name: o.default for o in (descriptor.listen_option, *descriptor.options)}
    config.update(values)
    return config


def test_walk_through_in_memory() -> None:
    daytime = walk_through()["DAYTIME_SERVICE"]
    clock = Clock()
    clock.advance(0)
    factory = daytime.build(config_for(daytime, **{"daytime-max-per-ip": 1}), ServiceContext(clock))
    peer = IPv4Address("TCP", "192.0.2.7", 5000)
    first = factory.buildProtocol(peer)
    first.makeConnection(StringTransport(peerAddress=peer))
    assert first.transport.value() == b"Thursday, January 01, 1970 00:00:00-UTC\r\n"
    assert first.transport.disconnecting
    # Still open: the per-IP cap of 1 refuses a second connection, in echo's refusal format.
    second = factory.buildProtocol(peer)
    second.makeConnection(StringTransport(peerAddress=peer))
    assert second.transport.value() == b"error: too many connections from 192.0.2.7 (limit 1)\r\n"
    assert factory.admission.refused["max-per-ip"] == 1


@pytest_twisted.ensureDeferred
async def test_walk_through_over_loopback() -> None:
    from twisted.internet import reactor

    daytime = walk_through()["DAYTIME_SERVICE"]
    target = daytime.build(config_for(daytime), ServiceContext(reactor))
    service = ListeningService("daytime", "tcp:0:interface=127.0.0.1", target, reactor)
    service.startService()
    try:
        received = defer.Deferred()

        class Reader(Protocol):
            data = b""

            def dataReceived(self, data: bytes) -> None:
                self.data += data

            def connectionLost(self, reason: object) -> None:
                received.callback(self.data)

        port = service.port.getHost().port
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), Reader())
        line = await received
        assert re.fullmatch(rb"\w+day, \w+ \d\d, \d{4} \d\d:\d\d:\d\d-UTC\r\n", line)
    finally:
        await service.stopService()


def test_options_coerce_with_their_name_in_errors() -> None:
    option = Option("quota", 0, "Most bytes.", size)
    assert option.parse("2M") == 2 << 20
    with pytest.raises(usage.UsageError, match="--quota: expected a size"):
        option.parse("lots")
    items = Option("ports", [], "Ports.", non_negative(int), multiple=True)
    assert items.parse_items(" 1, 2,,3 ") == [1, 2, 3]


def test_shared_objects_are_made_once() -> None:
    context = ServiceContext(Clock())
    made = []
    first = context.shared("thing", lambda: made.append(1) or object())
    assert context.shared("thing", object) is first
    assert made == [1]
