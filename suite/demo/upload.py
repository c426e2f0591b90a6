"""Demo: an upload cut off half-way, resumed, verified, downloaded back."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from suite.cli.files import ProgressReport
from suite.demo._common import note, say
from suite.demo.lang import Text
from suite.files import FileFactory, Storage
from suite.files.client import download, list_files, upload


class CutOff(Protocol):
    """Sends part of an upload, then goes away, like a client that crashed."""

    def __init__(self, header: bytes, data: bytes) -> None:
        self.header, self.data = header, data
        self.closed: defer.Deferred[None] = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.header)

    def dataReceived(self, data: bytes) -> None:
        if b"READY" in data:
            self.transport.write(self.data)
            self.transport.loseConnection()

    def connectionLost(self, reason: object) -> None:
        self.closed.callback(None)


async def run(reactor: Any, text: Text) -> None:
    with tempfile.TemporaryDirectory(prefix="netsuite-demo-") as tmp:
        root = Path(tmp)
        storage = Storage(root / "server", min_free=0)
        port = reactor.listenTCP(0, FileFactory(storage), interface="127.0.0.1")
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
        picture = root / "holiday picture.jpg"
        picture.write_bytes(os.urandom(6 << 20))
        digest = hashlib.sha256(picture.read_bytes()).hexdigest()
        say(text("upload.server", address=f"127.0.0.1:{port.getHost().port}", sha=digest[:16]))

        say(text("upload.cut"))
        data = picture.read_bytes()
        cut = CutOff(f"PUT sha256={digest} resume {len(data)} {picture.name}\n".encode(), data[: 2 << 20])
        await connectProtocol(endpoint, cut)
        await cut.closed
        listed = await list_files(endpoint)
        note(text("upload.listed", names=[f.name for f in listed]))

        say(text("upload.resume"))
        report = ProgressReport("auto", quiet=False, label=picture.name)  # a bar on a terminal
        first: list[int] = []

        def progress(done: int, total: int) -> None:
            if not first:
                first.append(done)
                note(text("upload.resuming", done=done, total=total))
            report(done, total)

        stored = await upload(endpoint, picture, progress=progress)
        report.finish()
        note(text("upload.stored", name=stored.name, size=stored.size, matches=text("yes" if stored.sha256 == digest else "no")))

        say(text("upload.download"))
        copy = root / "copy.jpg"
        got = await download(endpoint, stored.name, copy)
        note(text("upload.identical", name=copy.name, size=got.size, same=text("yes" if copy.read_bytes() == data else "no")))
        await port.stopListening()
    say(text("upload.done"))
