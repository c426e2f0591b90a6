"""
``netsuite chat``: a full-duplex console client for the chat service.

Lines from standard input are sent as they are typed, and server lines are
printed the moment they arrive: no taking turns.  At end of input (Ctrl-D,
or the end of a pipe) the client sends ``/quit`` and exits once the server
has closed the connection, so every line sent was processed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from twisted.internet import defer, error
from twisted.internet.stdio import StandardIO
from twisted.protocols.basic import LineOnlyReceiver
from twisted.python.failure import Failure

from suite.chat.wire import parse_server_line, sanitize
from suite.cli._net import MAX_LINE, ClientError, StdinLines, checked, connect
from suite.cli.address import HostPort, host_port_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", metavar="HOST:PORT", type=host_port_argument, help="chat server")
    parser.add_argument("--nick", help="nickname to take on arrival")
    parser.add_argument("--room", help="room to join on arrival (default: the server's lobby)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--cafile", help="PEM certificate(s) to trust for --tls instead of the system store")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S", help="connection timeout (default 10)")


class ChatClient(LineOnlyReceiver):
    """
    Prints every server line to ``output`` and sends what it is given.

    :attr:`nick` follows the server's welcome and nick notices;
    :attr:`done` fires when the connection ends (after :meth:`leave`), or
    fails if the server closed it first.
    """

    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, output: TextIO) -> None:
        self.output = output
        self.nick: str | None = None
        self.leaving = False
        self.done: defer.Deferred[None] = defer.Deferred()

    def send(self, line: bytes) -> None:
        """Send one line as typed (a message, or a /command)."""
        if not self.leaving:
            self.transport.write(line + b"\n")

    def leave(self) -> None:
        """End of input: ask the server to let us go."""
        if not self.leaving:
            self.send(b"/quit")
            self.leaving = True

    def lineReceived(self, raw: bytes) -> None:
        # Sanitised here too: a client should not trust a server with its terminal.
        line = sanitize(raw.decode("utf-8", "replace"))
        parsed = parse_server_line(line)
        if parsed is not None and parsed.kind == "notice":
            if parsed.code == "welcome" and parsed.text.startswith("you are "):
                self.nick = parsed.text[len("you are ") :].split(";", 1)[0]
            elif parsed.code == "nick" and self.nick and parsed.text.startswith(f"{self.nick} is now "):
                self.nick = parsed.text.rsplit(" ", 1)[1]
        self.output.write(line + "\n")
        self.output.flush()

    def lineLengthExceeded(self, line: bytes) -> None:
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = Failure(error.ConnectionDone())) -> None:  # noqa: B008
        if self.done.called:
            return
        if not reason.check(error.ConnectionDone, error.ConnectionLost):
            # A TLS failure, for example: never a clean leave, even after
            # /quit (stdin may end before the handshake has failed).
            self.done.errback(reason)
        elif self.leaving:
            self.done.callback(None)
        else:
            self.done.errback(ClientError("connection closed by the server"))


async def run(reactor: Any, args: argparse.Namespace) -> None:
    """Run ``netsuite chat`` with parsed ``args``."""
    target: HostPort = args.address
    client = ChatClient(sys.stdout)
    await checked(connect(reactor, target, client, tls=args.tls, cafile=args.cafile, timeout=args.timeout),
                  target, args.timeout)
    if args.nick:
        client.send(b"/nick " + args.nick.encode())
    if args.room:
        client.send(b"/join " + args.room.encode())
    stdin = StandardIO(StdinLines(client.send, client.leave), reactor=reactor)
    client.transport.registerProducer(stdin, True)
    try:
        await checked(client.done, target)
    finally:
        stdin.loseConnection()
