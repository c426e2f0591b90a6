"""Step 2, the event-driven way: a Protocol per connection, a Factory for the server."""

import sys

from twisted.internet import defer, error, task
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory, Protocol


class Greeter(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(b"hello, " + data)
        self.transport.loseConnection()  # after what was written has been sent

    def connectionLost(self, reason) -> None:
        self.factory.served.callback(None)


async def main(reactor, port: str = "0") -> None:
    factory = Factory.forProtocol(Greeter)
    factory.served = defer.Deferred()
    endpoint = serverFromString(reactor, f"tcp:{port}:interface=127.0.0.1")  # Twisted sets SO_REUSEADDR
    try:
        listening = await endpoint.listen(factory)
    except error.CannotListenError as e:
        raise SystemExit(f"cannot listen on 127.0.0.1:{port}: {e.socketError.strerror}")
    print("listening on", listening.getHost().port, flush=True)
    await factory.served  # serve one client, then stop (a real server would not)
    await listening.stopListening()


if len(sys.argv) > 2 or not all(arg.isdigit() for arg in sys.argv[1:]):
    sys.exit("usage: python tcp_twisted_server.py [PORT]   (PORT 0: any free port)")
task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
