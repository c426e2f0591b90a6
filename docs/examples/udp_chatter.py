"""Step 4, the UDP chatter: one program, one reactor; typing and receiving at the same time."""

import sys

from twisted.internet import defer, error, task
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.stdio import StandardIO
from twisted.protocols.basic import LineReceiver


class Chatter(DatagramProtocol):
    def __init__(self, peer: int) -> None:
        self.peer = peer

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        print(f"{addr[0]}:{addr[1]} says: {data.decode(errors='replace')}", flush=True)

    def say(self, line: bytes) -> None:
        # Not transport.connect(): with epoll, the "port unreachable" of an absent peer
        # would close a connected UDP port (Twisted issue 6287). Unconnected, it is just lost.
        self.transport.write(line, ("127.0.0.1", self.peer))


class Keyboard(LineReceiver):
    delimiter = b"\n"

    def __init__(self, chatter: Chatter) -> None:
        self.chatter = chatter
        self.done: defer.Deferred[None] = defer.Deferred()

    def lineReceived(self, line: bytes) -> None:
        self.chatter.say(line)  # one line, one datagram: UDP keeps the boundaries

    def connectionLost(self, reason) -> None:
        self.done.callback(None)  # end of input (Ctrl-D): stop


def main(reactor, port: str, peer: str) -> defer.Deferred[None]:
    chatter = Chatter(int(peer))
    try:
        listening = reactor.listenUDP(int(port), chatter, interface="127.0.0.1")
    except error.CannotListenError as e:
        raise SystemExit(f"cannot listen on 127.0.0.1:{port}: {e.socketError.strerror}")
    print(f"listening on {listening.getHost().port}, talking to 127.0.0.1:{peer}", flush=True)
    keyboard = Keyboard(chatter)
    StandardIO(keyboard, reactor=reactor)
    return keyboard.done


if len(sys.argv) != 3 or not all(arg.isdigit() for arg in sys.argv[1:]):
    sys.exit("usage: python udp_chatter.py PORT PEER_PORT")
task.react(main, sys.argv[1:])
