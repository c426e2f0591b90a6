"""Step 5, the event-driven way by hand: receive "PUT SIZE NAME" uploads, many clients at once."""

import hashlib
import os
import sys

from twisted.internet import defer, error, task
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer


@implementer(IHalfCloseableProtocol)  # the sender half-closes when done: we can still answer
class Receiver(LineReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 4096  # a header longer than this is not a header
    out = None  # the file being written, while an upload runs

    def lineReceived(self, line: bytes) -> None:
        header = line.decode(errors="replace").rstrip("\r").split(" ", 2)
        if len(header) != 3 or header[0] != "PUT" or not header[1].isdigit():
            return self.refuse("bad-command expected: PUT SIZE NAME")
        _, size, self.name = header
        if self.name != os.path.basename(self.name) or self.name.startswith("."):
            return self.refuse(f"bad-name {self.name!r}")
        try:
            self.out = open(self.name, "xb")  # small local writes; netsuite writes in a thread
        except FileExistsError:
            return self.refuse(f"exists {self.name}")
        self.size, self.left, self.digest = int(size), int(size), hashlib.sha256()
        self.sendLine(b"READY 0")
        self.setRawMode()  # from now on the bytes are file data, not lines
        if self.left == 0:
            self.finish()

    def rawDataReceived(self, data: bytes) -> None:
        if self.out is None:
            return  # refused or finished: the connection is closing
        if len(data) > self.left:
            return self.refuse("too-long more bytes than SIZE")
        self.out.write(data)
        self.digest.update(data)
        self.left -= len(data)
        if self.left == 0:
            self.finish()

    def finish(self) -> None:
        self.out.close()
        self.out = None
        self.sendLine(f"STORED {self.size} {self.digest.hexdigest()} {self.name}".encode())
        print(f"stored {self.name}: {self.size} bytes", flush=True)
        self.transport.loseConnection()

    def refuse(self, reply: str) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
            os.remove(self.name)  # half a file is no file
        self.sendLine(f"ERR {reply}".encode())
        print(f"refused: {reply}", flush=True)
        self.transport.loseConnection()

    def readConnectionLost(self) -> None:
        if self.out is not None:
            self.refuse(f"short {self.left} bytes missing")
        self.transport.loseConnection()

    def connectionLost(self, reason) -> None:
        if self.out is not None:  # cut off mid-file
            self.out.close()
            os.remove(self.name)


async def main(reactor, port: str = "0") -> None:
    endpoint = serverFromString(reactor, f"tcp:{port}:interface=127.0.0.1")
    try:
        listening = await endpoint.listen(Factory.forProtocol(Receiver))
    except error.CannotListenError as e:
        raise SystemExit(f"cannot listen on 127.0.0.1:{port}: {e.socketError.strerror}")
    print("listening on", listening.getHost().port, flush=True)
    await defer.Deferred()  # serve until stopped (Ctrl-C)


if len(sys.argv) > 2 or not all(arg.isdigit() for arg in sys.argv[1:]):
    sys.exit("usage: python twisted_file_receiver.py [PORT]   (PORT 0: any free port; stores in .)")
task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
