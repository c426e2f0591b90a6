"""Step 4, the event-driven way: stdin and the socket are both just events."""

import sys

from twisted.internet import defer, error, task
from twisted.internet.endpoints import clientFromString, connectProtocol
from twisted.internet.stdio import StandardIO
from twisted.protocols.basic import LineReceiver


class ChatConnection(LineReceiver):
    delimiter = b"\n"

    def __init__(self) -> None:
        self.closed: defer.Deferred[None] = defer.Deferred()

    def lineReceived(self, line: bytes) -> None:
        print(line.decode(errors="replace"), flush=True)  # printed the moment it arrives

    def connectionLost(self, reason) -> None:
        self.closed.callback(None)


class Keyboard(LineReceiver):
    delimiter = b"\n"

    def __init__(self, chat: ChatConnection) -> None:
        self.chat = chat

    def lineReceived(self, line: bytes) -> None:
        self.chat.sendLine(line)

    def connectionLost(self, reason) -> None:
        self.chat.sendLine(b"/quit")  # end of input: leave politely


async def main(reactor, port: str) -> None:
    endpoint = clientFromString(reactor, f"tcp:host=127.0.0.1:port={port}:timeout=5")
    try:
        chat = await connectProtocol(endpoint, ChatConnection())
    except error.ConnectionRefusedError:
        raise SystemExit(f"nobody is listening on 127.0.0.1:{port}")
    StandardIO(Keyboard(chat), reactor=reactor)
    await chat.closed


if len(sys.argv) != 2 or not sys.argv[1].isdigit():
    sys.exit("usage: python twisted_chat_client.py PORT")
task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
