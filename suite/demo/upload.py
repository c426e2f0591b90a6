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
from suite.demo._common import say
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


async def run(reactor: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="netsuite-demo-") as tmp:
        root = Path(tmp)
        storage = Storage(root / "server", min_free=0)
        port = reactor.listenTCP(0, FileFactory(storage), interface="127.0.0.1")
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
        picture = root / "holiday picture.jpg"
        picture.write_bytes(os.urandom(6 << 20))
        digest = hashlib.sha256(picture.read_bytes()).hexdigest()
        say(f"A file server on 127.0.0.1:{port.getHost().port}; a 6 MiB picture to send (sha256 {digest[:16]}...).")

        say("A client starts the upload and dies after 2 MiB.")
        data = picture.read_bytes()
        cut = CutOff(f"PUT sha256={digest} resume {len(data)} {picture.name}\n".encode(), data[: 2 << 20])
        await connectProtocol(endpoint, cut)
        await cut.closed
        listed = await list_files(endpoint)
        print(f"   files the server shows now: {[f.name for f in listed]} (the partial data is hidden)", flush=True)

        say("The upload is run again: the server says how much it has, and only the rest is sent.")
        report = ProgressReport("auto", quiet=False, label=picture.name)  # a bar on a terminal
        first: list[int] = []

        def progress(done: int, total: int) -> None:
            if not first:
                first.append(done)
                print(f"   resuming at byte {done} of {total}", flush=True)
            report(done, total)

        stored = await upload(endpoint, picture, progress=progress)
        report.finish()
        print(f"   stored {stored.name}: {stored.size} bytes, sha256 matches: {stored.sha256 == digest}", flush=True)

        say("It is downloaded back, through a temporary file renamed only once its sha256 matched.")
        copy = root / "copy.jpg"
        got = await download(endpoint, stored.name, copy)
        print(f"   {copy.name}: {got.size} bytes, identical: {copy.read_bytes() == data}", flush=True)
        await port.stopListening()
    say("Done. Try it yourself: twistd -n netsuite --mode upload, then netsuite upload 127.0.0.1:8021 FILE")
