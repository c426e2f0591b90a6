"""Step 5, the event-driven way by hand: send a file with a producer, then read the verdict."""

import hashlib
import os
import sys

from twisted.internet import defer, error, task
from twisted.internet.endpoints import clientFromString, connectProtocol
from twisted.protocols.basic import FileSender, LineReceiver


class Sender(LineReceiver):
    delimiter = b"\n"

    def __init__(self, path: str) -> None:
        self.file = open(path, "rb")
        self.header = f"PUT {os.path.getsize(path)} {os.path.basename(path)}".encode()
        self.digest = hashlib.sha256()
        self.verdict: defer.Deferred[str] = defer.Deferred()  # "STORED ..." or "ERR ..."

    def connectionMade(self) -> None:
        self.sendLine(self.header)

    def lineReceived(self, line: bytes) -> None:
        reply = line.decode(errors="replace").rstrip("\r")
        if reply.startswith("READY "):  # the go-ahead: stream the file
            # FileSender is a producer: the transport calls it for more only while its buffer has room.
            sending = FileSender().beginFileTransfer(self.file, self.transport, self.hash)
            sending.addCallback(lambda _: self.transport.loseWriteConnection())  # half-close: that was all
        elif reply.startswith(("STORED ", "ERR ")) and not self.verdict.called:
            self.verdict.callback(reply)
            self.transport.loseConnection()
        # anything else (the netsuite greeting) needs no answer

    def hash(self, chunk: bytes) -> bytes:
        self.digest.update(chunk)  # every chunk passes here on its way out
        return chunk

    def connectionLost(self, reason) -> None:
        self.file.close()
        if not self.verdict.called:
            self.verdict.callback("ERR closed the connection without a reply")


async def main(reactor, port: str, path: str) -> None:
    endpoint = clientFromString(reactor, f"tcp:host=127.0.0.1:port={port}:timeout=5")
    try:
        sender = await connectProtocol(endpoint, Sender(path))
    except error.ConnectionRefusedError:
        raise SystemExit(f"nobody is listening on 127.0.0.1:{port}")
    try:
        reply = await sender.verdict.addTimeout(10, reactor)  # a silent server cannot hang us
    except defer.TimeoutError:
        sender.transport.abortConnection()
        raise SystemExit("no reply within 10 s")
    if not reply.startswith("STORED "):
        raise SystemExit(f"not stored: {reply}")
    _, size, sha256, name = reply.split(" ", 3)
    if sha256 != sender.digest.hexdigest():
        raise SystemExit(f"not stored intact: the server got sha256 {sha256}, we sent {sender.digest.hexdigest()}")
    print(f"stored {name}: {size} bytes, sha256 {sha256}")


if len(sys.argv) != 3 or not sys.argv[1].isdigit():
    sys.exit("usage: python twisted_file_sender.py PORT FILE")
if not os.path.isfile(sys.argv[2]):
    sys.exit(f"no such file: {sys.argv[2]}")
task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
