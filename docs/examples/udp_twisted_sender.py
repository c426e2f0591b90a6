"""Step 1, the event-driven way: send one datagram from a DatagramProtocol."""

import sys

from twisted.internet import defer, task
from twisted.internet.protocol import DatagramProtocol


def main(reactor, port: str, message: str) -> defer.Deferred[None]:
    protocol = DatagramProtocol()
    reactor.listenUDP(0, protocol, interface="127.0.0.1")
    protocol.transport.write(message.encode(), ("127.0.0.1", int(port)))  # sent at once
    return defer.succeed(None)  # nothing to wait for: UDP has no reply


if len(sys.argv) != 3 or not sys.argv[1].isdigit():
    sys.exit("usage: python udp_twisted_sender.py PORT MESSAGE")
task.react(main, sys.argv[1:])
