"""
Baseline: the chat server from Twisted's documentation (docs/core/examples/
chatserver.py), with its print() calls removed so terminal output does not
slow it down.  Usage: python twisted_chat.py PORT [--nodelay]

PORT 0 picks a free port.  ``--nodelay`` adds the one change that matters
most on loopback, TCP_NODELAY, to tell it apart from the rest of netsuite's
design.
"""

import sys

from twisted.internet import protocol, reactor
from twisted.protocols import basic


class MyChat(basic.LineReceiver):
    def connectionMade(self):
        if NODELAY:
            self.transport.setTcpNoDelay(True)
        self.factory.clients.append(self)

    def connectionLost(self, reason):
        self.factory.clients.remove(self)

    def lineReceived(self, line):
        for c in self.factory.clients:
            c.message(line)

    def message(self, message):
        self.transport.write(message + b"\n")


NODELAY = "--nodelay" in sys.argv[2:]
factory = protocol.ServerFactory()
factory.protocol = MyChat
factory.clients = []

port = reactor.listenTCP(int(sys.argv[1]), factory, backlog=1024, interface="127.0.0.1")
print(f"listening on {port.getHost().port}", flush=True)
reactor.run()
