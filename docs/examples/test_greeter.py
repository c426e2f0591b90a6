"""Step 7: testing a protocol without a network (StringTransport), then with one (loopback)."""

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport


class Greeter(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(b"hello, " + data)
        self.transport.loseConnection()


def test_in_memory() -> None:
    greeter, transport = Greeter(), StringTransport()
    greeter.makeConnection(transport)
    greeter.dataReceived(b"world")
    assert transport.value() == b"hello, world"
    assert transport.disconnecting


class Collect(Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.done: defer.Deferred[bytes] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason) -> None:
        self.done.callback(self.data)


@pytest_twisted.ensureDeferred
async def test_on_loopback() -> None:
    port = reactor.listenTCP(0, Factory.forProtocol(Greeter), interface="127.0.0.1")
    try:
        client = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), Collect())
        client.transport.write(b"loopback")
        assert await client.done == b"hello, loopback"  # wait on a Deferred, never sleep
    finally:
        await port.stopListening()
