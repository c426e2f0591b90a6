"""Demo: the echo services serve many clients at once."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import DatagramProtocol, Protocol

from suite import EchoFactory, UDPEchoProtocol
from suite.demo._common import note, say
from suite.demo.lang import Text


class Client(Protocol):
    """A TCP client that collects what comes back: a stream, so it may come in pieces."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.received = bytearray()
        self._want: tuple[int, defer.Deferred[bytes]] | None = None
        self.closed: defer.Deferred[None] = defer.Deferred()

    def expect(self, size: int) -> defer.Deferred[bytes]:
        """Fires with the first ``size`` bytes received (or all, if the server closes first)."""
        d: defer.Deferred[bytes] = defer.Deferred()
        self._want = (size, d)
        self._check()
        return d

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self._check()

    def _check(self, closing: bool = False) -> None:
        if self._want and (len(self.received) >= self._want[0] or closing):
            (size, d), self._want = self._want, None
            got, self.received = bytes(self.received[:size]), self.received[size:]
            d.callback(got)

    def connectionLost(self, reason: object) -> None:
        self._check(closing=True)
        self.closed.callback(None)


class Probe(DatagramProtocol):
    def __init__(self) -> None:
        self.reply: defer.Deferred[bytes] = defer.Deferred()

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.reply.callback(data)


async def run(reactor: Any, text: Text) -> None:
    factory = EchoFactory(max_connections=3)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
    say(text("echo.server", address=f"127.0.0.1:{port.getHost().port}"))

    say(text("echo.idle"))
    idle = await connectProtocol(endpoint, Client("idle"))

    say(text("echo.busy"))
    busy = await connectProtocol(endpoint, Client("busy"))
    message = b"served without waiting"
    busy.transport.write(message)
    note(text("echo.got_back", who="busy", data=(await busy.expect(len(message))).decode()))

    say(text("echo.third"))
    third = await connectProtocol(endpoint, Client("third"))
    note(text("echo.connected", who="third"))

    say(text("echo.fourth"))
    refused = await connectProtocol(endpoint, Client("fourth"))
    await refused.closed
    note(text("echo.refused", who="fourth", data=bytes(refused.received).decode().strip()))
    third.transport.write(b"still fine")
    note(text("echo.got_back", who="third", data=(await third.expect(10)).decode()))
    for client in (idle, busy, third):
        client.transport.loseConnection()
        await client.closed
    await port.stopListening()

    say(text("echo.udp"))
    udp = reactor.listenUDP(0, UDPEchoProtocol(), interface="127.0.0.1", maxPacketSize=65535)
    probe = Probe()
    probe_port = reactor.listenUDP(0, probe, interface="127.0.0.1", maxPacketSize=65535)
    probe.transport.write(b"x" * 60000, ("127.0.0.1", udp.getHost().port))
    note(text("echo.datagram", who="probe", size=60000, got=len(await probe.reply)))
    await probe_port.stopListening()
    await udp.stopListening()
    say(text("echo.done"))
