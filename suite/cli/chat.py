"""
``netsuite chat``: a full-duplex console client for the chat service.

Lines from standard input are sent as they are typed, and server lines are
printed the moment they arrive: no taking turns.  At end of input (Ctrl-D,
or the end of a pipe) the client sends ``/quit`` and exits once the server
has closed the connection, so every line sent was processed.  A server
that never welcomes (not a chat server, or one that forgets the newline),
closes first or goes silent while an answer is due ends it with one line
on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from twisted.internet import defer, error
from twisted.internet.stdio import StandardIO
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from suite.chat.wire import ServerLine, parse_server_line, sanitize
from suite.cli._net import MAX_LINE, ClientError, StdinLines, checked, connect
from suite.cli.address import HostPort, host_port_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", metavar="HOST:PORT", type=host_port_argument, help="chat server")
    parser.add_argument("--nick", help="nickname to take on arrival (you are told if it is refused)")
    parser.add_argument("--room", help="room to join on arrival (default: the server's lobby)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--cafile", help="PEM certificate(s) to trust for --tls instead of the system store")
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S",
        help="seconds to wait for the connection, the welcome, the answer to --nick and the goodbye (default 10)",
    )


class ChatClient(LineReceiver, TimeoutMixin):
    """
    Prints every server line to ``output`` and sends what it is given.

    :attr:`nick` follows the server's welcome and nick notices; when the
    nick asked for with :meth:`request_nick` is refused, one line on
    ``errors`` says so and which nick the user has.  :attr:`done` fires when
    the connection ends after :meth:`leave`; it fails with a
    :class:`ClientError` when the server closed first, never sent its
    welcome, or went silent for ``timeout`` seconds while an answer was due.
    """

    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, output: TextIO, errors: TextIO | None = None, *, timeout: float | None = None,
                 clock: Any = None, peer: str = "the server") -> None:
        self.output = output
        self.errors = errors if errors is not None else sys.stderr
        self.timeout = timeout
        self.peer = peer
        if clock is not None:
            self.callLater = clock.callLater
        self.nick: str | None = None
        self.requested_nick: str | None = None
        self.welcomed = False
        self.leaving = False
        self._last: ServerLine | None = None
        self.done: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        self.setTimeout(self.timeout)  # the welcome is due

    def send(self, line: bytes) -> None:
        """Send one line as typed (a message, or a /command)."""
        if not self.leaving:
            self.transport.write(line + b"\n")

    def request_nick(self, nick: str) -> None:
        """Ask for ``nick``; its answer is due within the timeout."""
        self.requested_nick = nick
        self.send(b"/nick " + nick.encode())
        self.setTimeout(self.timeout)

    def leave(self) -> None:
        """End of input: ask the server to let us go."""
        if not self.leaving:
            self.send(b"/quit")
            self.leaving = True
            self.setTimeout(self.timeout)  # the goodbye is due

    def lineReceived(self, raw: bytes) -> None:
        self.resetTimeout()
        # Sanitised here too: a client should not trust a server with its terminal.
        line = sanitize(raw.removesuffix(b"\r").decode("utf-8", "replace"))
        parsed = self._last = parse_server_line(line)
        self.output.write(line + "\n")
        self.output.flush()
        if parsed is not None and parsed.kind == "notice":
            if parsed.code == "welcome" and parsed.text.startswith("you are "):
                self.nick = parsed.text[len("you are ") :].split(";", 1)[0]
                self.welcomed = True
            elif parsed.code == "nick" and self.nick and parsed.text.startswith(f"{self.nick} is now "):
                self.nick = parsed.text.rsplit(" ", 1)[1]
                if self.requested_nick is not None and self.nick.lower() == self.requested_nick.lower():
                    self.requested_nick = None
        elif parsed is not None and parsed.kind == "error" and parsed.code.startswith("nick-"):
            if self.requested_nick is not None:
                self.errors.write(f"netsuite chat: nick {self.requested_nick!r} refused ({parsed.code}: "
                                  f"{parsed.text}); you are {self.nick}\n")
                self.errors.flush()
                self.requested_nick = None
        if self.welcomed and self.requested_nick is None and not self.leaving:
            self.setTimeout(None)  # nothing is due: a quiet room is not a timeout

    def lineLengthExceeded(self, line: bytes) -> None:
        self._fail(f"{self.peer} sent a line longer than {self.MAX_LENGTH} bytes")
        self.transport.loseConnection()

    def timeoutConnection(self) -> None:
        if not self.welcomed:
            self._fail(f"no welcome from {self.peer} within {self.timeout:g}s{self._piece()}")
        else:
            self._fail(f"no answer from {self.peer} within {self.timeout:g}s")
        self.transport.abortConnection()

    def _piece(self) -> str:
        """Bytes that came without a newline, shown once and described for a message."""
        rest = self.clearLineBuffer()
        if not rest:
            return ""
        self.output.write(sanitize(rest.decode("utf-8", "replace")) + "\n")
        self.output.flush()
        return f"; it sent {rest[:60]!r} without a newline: is it a netsuite chat server?"

    def connectionLost(self, reason: Failure = Failure(error.ConnectionDone())) -> None:  # noqa: B008
        self.setTimeout(None)
        piece = self._piece()
        if not reason.check(error.ConnectionDone, error.ConnectionLost):
            # A TLS failure, for example: never a clean leave, even after
            # /quit (stdin may end before the handshake has failed).
            self._fail(reason)
        elif not self.welcomed:
            last = self._last
            if last is not None and last.kind == "error":
                self._fail(f"refused by {self.peer}: {last.code}: {last.text}")
            else:
                self._fail(f"{self.peer} closed the connection without a chat welcome{piece}")
        elif self.leaving:
            if not self.done.called:
                self.done.callback(None)
        else:
            self._fail("connection closed by the server")

    def _fail(self, e: str | Failure) -> None:
        self.setTimeout(None)
        if not self.done.called:
            self.done.errback(ClientError(e) if isinstance(e, str) else e)


async def run(reactor: Any, args: argparse.Namespace) -> None:
    """Run ``netsuite chat`` with parsed ``args``."""
    target: HostPort = args.address
    client = ChatClient(sys.stdout, sys.stderr, timeout=args.timeout, clock=reactor, peer=str(target))
    await checked(connect(reactor, target, client, tls=args.tls, cafile=args.cafile, timeout=args.timeout),
                  target, args.timeout)
    if args.nick:
        client.request_nick(args.nick)
    if args.room:
        client.send(b"/join " + args.room.encode())
    stdin = StandardIO(StdinLines(client.send, client.leave), reactor=reactor)
    client.transport.registerProducer(stdin, True)
    try:
        await checked(client.done, target)
    finally:
        stdin.loseConnection()
