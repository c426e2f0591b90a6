"""Step 7: a Deferred with a timeout, and errors as exceptions in an async function."""

import sys

from twisted.internet import defer, error, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol


class Waiter(Protocol):
    def __init__(self) -> None:
        self.first: defer.Deferred[bytes] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        if not self.first.called:
            self.first.callback(data)


async def main(reactor, port: str) -> None:
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", int(port), timeout=5)
    try:
        waiter = await connectProtocol(endpoint, Waiter())
    except error.ConnectionRefusedError:
        raise SystemExit(f"nobody is listening on 127.0.0.1:{port}")
    try:
        # An echo server says nothing until spoken to: give up after 0.5 s.
        data = await waiter.first.addTimeout(0.5, reactor)
        print("got", data)
    except defer.TimeoutError:
        print("no data within 0.5 s")
    finally:
        waiter.transport.loseConnection()


if len(sys.argv) != 2 or not sys.argv[1].isdigit():
    sys.exit("usage: python deferred_timeout.py PORT")
task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
