"""Step 2, the event-driven way: an endpoint connects a Protocol; data arrives by callback."""

import sys

from twisted.internet import defer, error, task
from twisted.internet.endpoints import clientFromString, connectProtocol
from twisted.internet.protocol import Protocol


class Asker(Protocol):
    def __init__(self, question: bytes) -> None:
        self.question = question
        self.answer = b""
        self.done: defer.Deferred[bytes] = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.question)

    def dataReceived(self, data: bytes) -> None:
        self.answer += data  # may come in several pieces: keep them all

    def connectionLost(self, reason) -> None:
        self.done.callback(self.answer)  # the server closing means "that was all"


async def main(reactor, port: str, question: str) -> None:
    endpoint = clientFromString(reactor, f"tcp:host=127.0.0.1:port={port}:timeout=5")
    try:
        asker = await connectProtocol(endpoint, Asker(question.encode()))
    except error.ConnectionRefusedError:
        raise SystemExit(f"nobody is listening on 127.0.0.1:{port}")
    print((await asker.done).decode(errors="replace"))


if len(sys.argv) != 3 or not sys.argv[1].isdigit():
    sys.exit("usage: python tcp_twisted_client.py PORT MESSAGE")
task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
