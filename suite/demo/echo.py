"""Demo: the echo services serve many clients at once."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import DatagramProtocol, Protocol

from suite import EchoFactory, UDPEchoProtocol
from suite.demo._common import say


class Client(Protocol):
    def __init__(self, name: str) -> None:
        self.name = name
        self.got: defer.Deferred[bytes] = defer.Deferred()
        self.closed: defer.Deferred[None] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        if not self.got.called:
            self.got.callback(data)

    def connectionLost(self, reason: object) -> None:
        self.closed.callback(None)


class Probe(DatagramProtocol):
    def __init__(self) -> None:
        self.reply: defer.Deferred[bytes] = defer.Deferred()

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.reply.callback(data)


async def run(reactor: Any) -> None:
    factory = EchoFactory(max_connections=3)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
    say(f"A TCP echo server on 127.0.0.1:{port.getHost().port}, at most 3 connections.")

    idle = await connectProtocol(endpoint, Client("idle"))
    say("Client 'idle' connects and says nothing. A blocking server would now be stuck in recv() for it.")
    busy = await connectProtocol(endpoint, Client("busy"))
    busy.transport.write(b"served without waiting")
    print("   busy got back:", (await busy.got).decode(), flush=True)

    say("A third client fills the cap; a fourth is refused with one line, the others are unaffected.")
    third = await connectProtocol(endpoint, Client("third"))
    refused = await connectProtocol(endpoint, Client("fourth"))
    print("   fourth got:", (await refused.got).decode().strip(), flush=True)
    await refused.closed
    third.transport.write(b"still fine")
    print("   third got back:", (await third.got).decode(), flush=True)
    for client in (idle, busy, third):
        client.transport.loseConnection()
        await client.closed
    await port.stopListening()

    say("UDP echo: one datagram out, the same bytes back, no connection.")
    udp = reactor.listenUDP(0, UDPEchoProtocol(), interface="127.0.0.1", maxPacketSize=65535)
    probe = Probe()
    probe_port = reactor.listenUDP(0, probe, interface="127.0.0.1", maxPacketSize=65535)
    probe.transport.write(b"x" * 60000, ("127.0.0.1", udp.getHost().port))
    print(f"   a 60000-byte datagram came back with {len(await probe.reply)} bytes", flush=True)
    await probe_port.stopListening()
    await udp.stopListening()
    say("Done. Try it yourself: twistd -n netsuite --mode echo, then netsuite echo 127.0.0.1:8007 hello")
