"""
``netsuite udp-chat``: the classic UDP chatter as one full-duplex program.

Every line typed is sent to the peer as one datagram; every datagram that
arrives is printed with its sender's address, both at the same time.  Run
two of them with each other's ports and they talk.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any, TextIO

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.stdio import StandardIO

from suite.chat.wire import sanitize
from suite.cli._net import ClientError, StdinLines, resolve
from suite.cli.address import AddressError, HostPort, host_port_argument, parse_host_port
from suite.endpoints import MAX_DATAGRAM

#: Largest UDP payload: 65,535 - 8 (UDP header) - 20 (IPv4 header).
MAX_PAYLOAD = {4: 65507, 6: 65527}


def _bind_argument(text: str) -> HostPort:
    try:
        return parse_host_port(text, default_host="127.0.0.1")
    except AddressError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bind", required=True, metavar="[HOST:]PORT", type=_bind_argument,
        help="local address to receive on (HOST defaults to 127.0.0.1)",
    )
    parser.add_argument("--peer", required=True, metavar="HOST:PORT", type=host_port_argument, help="where lines go")


class UDPChatter(DatagramProtocol):
    """Sends lines to ``peer`` and prints datagrams from anyone, with their address."""

    def __init__(self, peer: tuple[str, int], output: TextIO, errors: TextIO) -> None:
        self.peer = peer
        self.output = output
        self.errors = errors
        self.max_payload = MAX_PAYLOAD[ipaddress.ip_address(peer[0]).version]

    def send(self, line: bytes) -> None:
        """Send one line as one datagram, or say why it cannot be."""
        if len(line) > self.max_payload:
            self.errors.write(
                f"udp-chat: line of {len(line)} bytes is too long for one datagram "
                f"(at most {self.max_payload}); not sent\n"
            )
            self.errors.flush()
            return
        self.transport.write(line, self.peer)

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        host, port = addr[0], addr[1]
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.output.write(f"[{where}] {sanitize(data.decode('utf-8', 'replace'))}\n")
        self.output.flush()


async def run(reactor: Any, args: argparse.Namespace) -> None:
    """Run ``netsuite udp-chat`` with parsed ``args``."""
    bind: HostPort = args.bind
    peer_host = await resolve(reactor, args.peer)
    bind_host = await resolve(reactor, bind)
    if ipaddress.ip_address(peer_host).version != ipaddress.ip_address(bind_host).version:
        raise ClientError(f"--bind {bind} and --peer {args.peer} must both be IPv4 or both IPv6")
    chatter = UDPChatter((peer_host, args.peer.port), sys.stdout, sys.stderr)
    try:
        port = reactor.listenUDP(bind.port, chatter, interface=bind_host, maxPacketSize=MAX_DATAGRAM)
    except Exception as e:
        raise ClientError(f"cannot listen on {bind}: {getattr(e, 'socketError', e)}") from None
    address = port.getHost()
    sys.stderr.write(
        f"udp-chat: listening on {HostPort(address.host, address.port)}, "
        f"sending to {args.peer}; type lines, end with Ctrl-D\n"
    )
    sys.stderr.flush()
    ended: defer.Deferred[None] = defer.Deferred()
    stdin = StandardIO(StdinLines(chatter.send, lambda: ended.callback(None)), reactor=reactor)
    try:
        await ended
    finally:
        stdin.loseConnection()
        await defer.maybeDeferred(port.stopListening)
