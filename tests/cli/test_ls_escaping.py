"""``netsuite ls`` against a server that lists names no netsuite server would store."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import protocol, reactor

from tests.helpers import spawn

SHA = "a" * 64


class Lister(protocol.Protocol):
    """Greets, answers LIST with hostile names, says BYE."""

    def connectionMade(self) -> None:
        self.transport.write(b"NETSUITE-FILES 1\n")

    def dataReceived(self, data: bytes) -> None:
        if data.startswith(b"LIST"):
            names = ["gpj.exe\u202e", "red\x1b[31m", "plain name.txt"]
            self.transport.write(f"FILES {len(names)}\n".encode())
            for name in names:
                self.transport.write(f"3 {SHA} 2026-11-22T03:11:00Z {name}\n".encode())
        if b"QUIT" in data:
            self.transport.write(b"BYE\n")
            self.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_ls_prints_names_escaped() -> None:
    port = reactor.listenTCP(0, protocol.Factory.forProtocol(Lister), interface="127.0.0.1")
    try:
        ls = spawn(["netsuite", "ls", f"127.0.0.1:{port.getHost().port}"])
        assert await ls.ended == 0
    finally:
        await port.stopListening()
    names = [line.split("  ")[-1] for line in ls.out.decode().splitlines()]
    assert names == ["gpj.exe\\u202e", "red\\x1b[31m", "plain name.txt"]
    assert "\u202e" not in ls.out.decode() and b"\x1b" not in ls.out
