"""Step 1, the event-driven way: the reactor calls datagramReceived for each datagram."""

import sys

from twisted.internet import defer, task
from twisted.internet.protocol import DatagramProtocol


class Receiver(DatagramProtocol):
    def __init__(self, count: int) -> None:
        self.left = count
        self.done: defer.Deferred[None] = defer.Deferred()

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        print(f"from {addr[0]}:{addr[1]}: {data.decode()}", flush=True)
        self.left -= 1
        if self.left == 0:
            self.done.callback(None)


def main(reactor, count: str = "1") -> defer.Deferred[None]:
    receiver = Receiver(int(count))
    port = reactor.listenUDP(0, receiver, interface="127.0.0.1", maxPacketSize=65535)
    print("listening on", port.getHost().port, flush=True)
    return receiver.done  # the reactor runs until this fires


task.react(main, sys.argv[1:])
