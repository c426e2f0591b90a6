"""Step 3, the event-driven way by hand: an echo Protocol, every client at once."""

import sys

from twisted.internet import defer, error, task
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer


@implementer(IHalfCloseableProtocol)  # a client may stop sending and still read its echo
class Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)  # buffered by Twisted, never blocks

    def readConnectionLost(self) -> None:
        self.transport.loseConnection()  # the client sent its last byte: close once all is echoed


async def main(reactor, port: str = "0") -> None:
    endpoint = serverFromString(reactor, f"tcp:{port}:interface=127.0.0.1")
    try:
        listening = await endpoint.listen(Factory.forProtocol(Echo))
    except error.CannotListenError as e:
        raise SystemExit(f"cannot listen on 127.0.0.1:{port}: {e.socketError.strerror}")
    print("listening on", listening.getHost().port, flush=True)
    await defer.Deferred()  # never fires: serve until stopped (Ctrl-C)


if len(sys.argv) > 2 or not all(arg.isdigit() for arg in sys.argv[1:]):
    sys.exit("usage: python echo_protocol.py [PORT]   (PORT 0: any free port)")
task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
