"""Step 1, the event-driven way: the reactor calls datagramReceived for each datagram."""

import sys

from twisted.internet import defer, error, task
from twisted.internet.protocol import DatagramProtocol


class Receiver(DatagramProtocol):
    def __init__(self, count: int) -> None:
        self.left = count
        self.done: defer.Deferred[None] = defer.Deferred()  # fired by us after the last datagram

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        print(f"from {addr[0]}:{addr[1]}: {data.decode(errors='replace')}", flush=True)
        self.left -= 1
        if self.left == 0:
            self.done.callback(None)


def main(reactor, port: str = "0", count: str = "1") -> defer.Deferred[None]:
    receiver = Receiver(int(count))
    try:
        listening = reactor.listenUDP(int(port), receiver, interface="127.0.0.1", maxPacketSize=65535)
    except error.CannotListenError as e:
        raise SystemExit(f"cannot listen on 127.0.0.1:{port}: {e.socketError.strerror}")
    print("listening on", listening.getHost().port, flush=True)
    return receiver.done  # the reactor runs until this fires


if len(sys.argv) > 3 or not all(arg.isdigit() for arg in sys.argv[1:]):
    sys.exit("usage: python udp_twisted_receiver.py [PORT] [COUNT]   (PORT 0: any free port)")
task.react(main, sys.argv[1:])
