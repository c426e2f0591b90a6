"""
``netsuite echo``: send lines to an echo server and print what comes back.

Over TCP the lines are pipelined (sent as they come, replies printed as they
arrive) and the client closes once every line has come back.  Over UDP each
line is one datagram and waits for its reply.  Either way what comes back
must be exactly what was sent: anything else (a reply without its newline,
a changed reply, a server that closes early or goes silent for
``--timeout`` seconds) is shown, then reported in one line, exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, BinaryIO

from twisted.internet import defer, error
from twisted.internet.protocol import DatagramProtocol, Protocol
from twisted.internet.stdio import StandardIO
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from suite.cli._net import ClientError, StdinLines, checked, connect, resolve
from suite.cli.address import HostPort, host_port_argument
from suite.endpoints import MAX_DATAGRAM

#: Largest UDP payload over IPv4 (65,535 - 8 UDP - 20 IP header bytes).
MAX_UDP_PAYLOAD = 65507


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "address", metavar="HOST:PORT", type=host_port_argument, help="echo server (HOST: name, IPv4 or [IPv6])"
    )
    parser.add_argument("messages", metavar="MESSAGE", nargs="*", help="lines to send (default: read stdin)")
    parser.add_argument("--udp", action="store_true", help="talk UDP instead of TCP")
    parser.add_argument("--tls", action="store_true", help="connect with TLS (TCP only)")
    parser.add_argument("--cafile", help="PEM certificate(s) to trust for --tls instead of the system store")
    parser.add_argument(
        "--raw", action="store_true",
        help="write exactly the bytes that came back (no newline added to a UDP reply or a last piece)",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, metavar="S",
        help="seconds to wait for the connection and for each reply (default 10; 3 for a UDP reply)",
    )


def _show(data: bytes | bytearray, limit: int = 60) -> str:
    """Bytes as a short Python literal, for one-line messages."""
    text = repr(bytes(data[:limit]))
    return text + ("..." if len(data) > limit else "")


class EchoClient(Protocol, TimeoutMixin):
    """
    Sends lines, writes what comes back to ``output``, checks it is the echo
    of what was sent, and fires :attr:`done` once everything sent came back
    after :meth:`end_input`.

    Complete lines are written as they arrive; a last piece without a
    newline is written (followed by one) when the exchange ends.  With
    ``raw`` the bytes are written exactly as they arrived.  :attr:`done`
    fails with a :class:`ClientError` saying what differs when the reply is
    not the echo, when the server closes early, and when nothing arrives for
    ``timeout`` seconds while a reply is due.
    """

    def __init__(self, output: BinaryIO, *, raw: bool = False, timeout: float | None = None,
                 clock: Any = None, peer: str = "the server") -> None:
        self.output = output
        self.raw = raw
        self.timeout = timeout
        self.peer = peer
        if clock is not None:
            self.callLater = clock.callLater
        self.sent = 0
        self.received = 0
        self.lines_sent = 0
        self.lines_back = 0
        #: Bytes sent whose echo has not come back yet.
        self.expected = bytearray()
        self._piece = bytearray()  # the start of a line, written once it ends
        self.input_ended = False
        self.done: defer.Deferred[None] = defer.Deferred()

    def send(self, line: bytes) -> None:
        """Send one line (a newline is added)."""
        if self.done.called:
            return
        self.sent += len(line) + 1
        self.lines_sent += 1
        self.expected += line + b"\n"
        if self.timeOut is None:  # the clock starts at the first reply due
            self.setTimeout(self.timeout)
        self.transport.writeSequence([line, b"\n"])

    def end_input(self) -> None:
        """No more lines will be sent; close once all replies are in."""
        self.input_ended = True
        self._maybe_close()

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        self.received += len(data)
        self._write(data)
        if not self.expected.startswith(data):
            self._fail(self._differs(data))
            return
        del self.expected[: len(data)]
        self.lines_back += data.count(b"\n")
        if self.expected:
            self.resetTimeout()
        else:
            self.setTimeout(None)
        self._maybe_close()

    def _differs(self, data: bytes) -> str:
        if not self.expected:
            return f"{self.peer} sent {_show(data)}, which is not an echo of anything sent"
        at = next((i for i, (a, b) in enumerate(zip(data, self.expected)) if a != b), len(self.expected))
        start = max(0, at - 20)
        return (f"the reply is not the echo: expected {_show(self.expected[start : start + len(data)])}, "
                f"got {_show(data[start:])}")

    def _write(self, data: bytes) -> None:
        # The piece since the last newline is kept in both modes: messages
        # show it.  It is never longer than a line that was sent.
        self._piece += data
        end = self._piece.rfind(b"\n") + 1
        if self.raw:
            self.output.write(data)
        elif end:
            self.output.write(self._piece[:end])
        del self._piece[:end]
        self.output.flush()

    def _flush_piece(self) -> None:
        """Show a last piece without its newline, on a line of its own."""
        if self._piece and not self.raw:
            self.output.write(self._piece + b"\n")
            self.output.flush()
        self._piece.clear()

    def _missing(self) -> str:
        back = f"{self.lines_back} of {self.lines_sent} line{'' if self.lines_sent == 1 else 's'} had come back"
        if self._piece:
            back += f", then {_show(self._piece)} without its newline"
        return back

    def timeoutConnection(self) -> None:
        self._fail(f"no reply from {self.peer} within {self.timeout:g}s when {self._missing()}")
        self.transport.abortConnection()

    def _maybe_close(self) -> None:
        if self.input_ended and not self.expected:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self.setTimeout(None)
        if self.input_ended and not self.expected:
            if not self.done.called:
                self.done.callback(None)
        elif not reason.check(error.ConnectionDone, error.ConnectionLost):
            self._fail(reason.value)  # a TLS failure, for example
        else:
            self._fail(f"{self.peer} closed the connection when {self._missing()}")

    def _fail(self, e: BaseException | str) -> None:
        self.setTimeout(None)
        self._flush_piece()  # what came back is shown before the message
        if not self.done.called:
            self.done.errback(Failure(ClientError(e) if isinstance(e, str) else e))
        if self.transport is not None and self.connected:
            self.transport.loseConnection()


class UDPEchoClient(DatagramProtocol):
    """Sends one datagram at a time to ``peer`` and waits for its reply."""

    def __init__(self, reactor: Any, peer: tuple[str, int], timeout: float) -> None:
        self._reactor = reactor
        self.peer = peer
        self.timeout = timeout
        self._waiting: defer.Deferred[bytes] | None = None

    def echo(self, data: bytes) -> defer.Deferred[bytes]:
        """Send ``data``; the Deferred fires with the reply or fails on timeout."""
        if len(data) > MAX_UDP_PAYLOAD:
            return defer.fail(ClientError(f"message of {len(data)} bytes is larger than a datagram ({MAX_UDP_PAYLOAD})"))
        d: defer.Deferred[bytes] = defer.Deferred()
        self._waiting = d
        d.addTimeout(self.timeout, self._reactor)
        self.transport.write(data, self.peer)
        return d

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        # Not a connected socket: under epoll, Twisted closes a connected UDP
        # port on an ICMP error.  Filter by source instead.
        if (addr[0], addr[1]) != self.peer:
            return
        d, self._waiting = self._waiting, None
        if d is not None and not d.called:
            d.callback(data)


async def run(reactor: Any, args: argparse.Namespace) -> None:
    """Run ``netsuite echo`` with parsed ``args``."""
    target: HostPort = args.address
    messages = [os.fsencode(m) for m in args.messages]
    out = sys.stdout.buffer
    if args.udp:
        if args.tls:
            raise ClientError("--tls works over TCP only")
        await _run_udp(reactor, target, messages, out, args.timeout or 3.0, args.raw)
    else:
        await _run_tcp(reactor, target, messages, out, args)


async def _run_tcp(reactor: Any, target: HostPort, messages: list[bytes], out: BinaryIO, args: argparse.Namespace) -> None:
    timeout = args.timeout or 10.0
    client = EchoClient(out, raw=args.raw, timeout=timeout, clock=reactor, peer=str(target))
    await checked(connect(reactor, target, client, tls=args.tls, cafile=args.cafile, timeout=timeout), target, timeout)
    if args.messages:
        for message in messages:
            client.send(message)
        client.end_input()
    else:
        stdin = StandardIO(StdinLines(client.send, client.end_input), reactor=reactor)
        # Backpressure: stop reading stdin while the socket cannot keep up.
        client.transport.registerProducer(stdin, True)
        client.done.addBoth(lambda r: (client.transport.unregisterProducer(), r)[1])
    await checked(client.done, target)


async def _run_udp(
    reactor: Any, target: HostPort, messages: list[bytes], out: BinaryIO, timeout: float, raw: bool = False
) -> None:
    host = await resolve(reactor, target)
    client = UDPEchoClient(reactor, (host, target.port), timeout)
    port = reactor.listenUDP(0, client, interface="::" if ":" in host else "0.0.0.0", maxPacketSize=MAX_DATAGRAM)
    try:
        queue: defer.DeferredQueue[bytes | None] = defer.DeferredQueue()
        stdin = None
        if messages:
            for message in messages:
                queue.put(message)
            queue.put(None)
        else:
            stdin = StandardIO(StdinLines(queue.put, lambda: queue.put(None)), reactor=reactor)
        while (message := await queue.get()) is not None:
            if stdin is not None:
                # Read ahead a little, no more: pause stdin while lines wait.
                if len(queue.pending) > 64:
                    stdin.pauseProducing()
                elif not queue.pending:
                    stdin.resumeProducing()
            try:
                reply = await client.echo(message)
            except defer.TimeoutError:
                raise ClientError(f"no reply from {target} within {timeout:g}s") from None
            out.write(reply if raw else reply + b"\n")
            out.flush()
            if reply != message:
                raise ClientError(f"the reply is not the echo: sent {_show(message)}, got {_show(reply)}")
    finally:
        await defer.maybeDeferred(port.stopListening)
