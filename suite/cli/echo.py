"""
``netsuite echo``: send lines to an echo server and print what comes back.

Over TCP the lines are pipelined (sent as they come, replies printed as they
arrive) and the client closes once every line has come back.  Over UDP each
line is one datagram and waits for its reply up to ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, BinaryIO

from twisted.internet import defer, error
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.stdio import StandardIO
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from suite.cli._net import MAX_LINE, ClientError, StdinLines, checked, connect, resolve
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
        "--timeout", type=float, default=None, metavar="S",
        help="seconds to wait: for each UDP reply (default 3), for the TCP connection (default 10)",
    )


class EchoClient(LineReceiver):
    """
    Sends lines, writes each echoed line to ``output``, and fires
    :attr:`done` once every sent line came back after :meth:`end_input`.
    """

    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, output: BinaryIO) -> None:
        self.output = output
        self.sent = 0
        self.received = 0
        self.input_ended = False
        self.done: defer.Deferred[None] = defer.Deferred()

    def send(self, line: bytes) -> None:
        """Send one line (a newline is added)."""
        self.sent += 1
        self.transport.writeSequence([line, b"\n"])

    def end_input(self) -> None:
        """No more lines will be sent; close once all replies are in."""
        self.input_ended = True
        self._maybe_close()

    def lineReceived(self, line: bytes) -> None:
        self.received += 1
        self.output.write(line + b"\n")
        self.output.flush()
        self._maybe_close()

    def lineLengthExceeded(self, line: bytes) -> None:
        self.transport.loseConnection()
        self._fail(ClientError(f"reply line longer than {self.MAX_LENGTH} bytes"))

    def _maybe_close(self) -> None:
        if self.input_ended and self.received >= self.sent:
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        if self.received >= self.sent and self.input_ended:
            if not self.done.called:
                self.done.callback(None)
        elif not reason.check(error.ConnectionDone, error.ConnectionLost):
            self._fail(reason.value)  # a TLS failure, for example
        else:
            self._fail(ClientError(f"server closed the connection after {self.received} of {self.sent} replies"))

    def _fail(self, e: BaseException) -> None:
        if not self.done.called:
            self.done.errback(Failure(e))


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
        await _run_udp(reactor, target, messages, out, args.timeout or 3.0)
    else:
        await _run_tcp(reactor, target, messages, out, args)


async def _run_tcp(reactor: Any, target: HostPort, messages: list[bytes], out: BinaryIO, args: argparse.Namespace) -> None:
    client = EchoClient(out)
    timeout = args.timeout or 10.0
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


async def _run_udp(reactor: Any, target: HostPort, messages: list[bytes], out: BinaryIO, timeout: float) -> None:
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
            out.write(reply + b"\n")
            out.flush()
    finally:
        await defer.maybeDeferred(port.stopListening)
