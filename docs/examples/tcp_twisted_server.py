"""Step 2, the event-driven way: a Protocol per connection, a Factory for the server."""

from twisted.internet import defer, task
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory, Protocol


class Greeter(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(b"hello, " + data)
        self.transport.loseConnection()  # after what was written has been sent

    def connectionLost(self, reason) -> None:
        self.factory.served.callback(None)


async def main(reactor) -> None:
    factory = Factory.forProtocol(Greeter)
    factory.served = defer.Deferred()
    port = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    print("listening on", port.getHost().port, flush=True)
    await factory.served  # serve one client, then stop (a real server would not)
    await port.stopListening()


task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
