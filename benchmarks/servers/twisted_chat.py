"""
Baseline: the chat server from Twisted's documentation (docs/core/examples/
chatserver.py), with its print() calls removed so terminal output does not
slow it down.  Usage: python twisted_chat.py PORT (0: any free port).
"""

import sys

from twisted.internet import protocol, reactor
from twisted.protocols import basic


class MyChat(basic.LineReceiver):
    def connectionMade(self):
        self.factory.clients.append(self)

    def connectionLost(self, reason):
        self.factory.clients.remove(self)

    def lineReceived(self, line):
        for c in self.factory.clients:
            c.message(line)

    def message(self, message):
        self.transport.write(message + b"\n")


factory = protocol.ServerFactory()
factory.protocol = MyChat
factory.clients = []

port = reactor.listenTCP(int(sys.argv[1]), factory, backlog=1024, interface="127.0.0.1")
print(f"listening on {port.getHost().port}", flush=True)
reactor.run()
