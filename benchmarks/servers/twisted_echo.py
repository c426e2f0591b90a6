"""
Baselines: the echo servers of Twisted's documentation (docs/core/examples/
echoserv.py and echoserv_udp.py), listening on 127.0.0.1, a free port.
Usage: python twisted_echo.py tcp|udp
"""

import sys

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol


class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class EchoUDP(DatagramProtocol):
    def datagramReceived(self, datagram, address):
        self.transport.write(datagram, address)


if sys.argv[1] == "tcp":
    port = reactor.listenTCP(0, Factory.forProtocol(Echo), backlog=1024, interface="127.0.0.1")
else:
    port = reactor.listenUDP(0, EchoUDP(), interface="127.0.0.1")
print(f"listening on {port.getHost().port}", flush=True)
reactor.run()
