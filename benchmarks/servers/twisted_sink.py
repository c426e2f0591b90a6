"""
Baseline: the plain Twisted shape of "receive a file": a Protocol that
writes every chunk it receives to a file, fsyncs and answers at the end.
Usage: python twisted_sink.py DIR (listens on 127.0.0.1, a free port).
"""

import itertools
import os
import sys

from twisted.internet import protocol, reactor
from twisted.internet.interfaces import IHalfCloseableProtocol
from zope.interface import implementer


@implementer(IHalfCloseableProtocol)
class Sink(protocol.Protocol):
    counter = itertools.count()

    def connectionMade(self):
        # A new file each time, as a real upload makes.
        name = f"upload-{os.getpid()}-{next(self.counter)}"
        self.file = open(os.path.join(sys.argv[1], name), "xb")

    def dataReceived(self, data):
        self.file.write(data)

    def readConnectionLost(self):
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        self.transport.write(b"OK\n")
        self.transport.loseConnection()

    def writeConnectionLost(self):
        pass


factory = protocol.ServerFactory.forProtocol(Sink)
port = reactor.listenTCP(0, factory, interface="127.0.0.1")
print(f"listening on {port.getHost().port}", flush=True)
reactor.run()
