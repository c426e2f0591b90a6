"""The bounded line receiver in memory: limits, batches, turns, pauses, raw mode."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from suite.lines import BoundedLineReceiver


class Recorder(BoundedLineReceiver):
    MAX_LENGTH = 10
    MAX_LINES_PER_TURN = 3

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.events: list[tuple[str, bytes]] = []
        self.raw_left = 0

    def lineReceived(self, line: bytes) -> None:
        self.events.append(("line", line))
        if line.startswith(b"RAW "):
            self.raw_left = int(line[4:])
            self.setRawMode()

    def rawDataReceived(self, data: bytes) -> None:
        take, rest = data[: self.raw_left], data[self.raw_left :]
        self.raw_left -= len(take)
        self.events.append(("raw", take))
        if not self.raw_left:
            self.setLineMode(rest)

    def lineLengthExceeded(self, line: bytes) -> None:
        self.events.append(("too-long", line))


def connected() -> tuple[Recorder, StringTransport, Clock]:
    clock = Clock()
    receiver = Recorder(clock)
    transport = StringTransport()
    receiver.makeConnection(transport)
    return receiver, transport, clock


def test_crlf_and_lf_lines_and_the_longest_line() -> None:
    r, _, _ = connected()
    r.dataReceived(b"a\r\n" + b"x" * 10 + b"\n" + b"y" * 11 + b"\n")
    assert r.events == [("line", b"a"), ("line", b"x" * 10), ("too-long", b"y" * 11)]


def test_an_endless_line_is_reported_once_and_memory_stays_bounded() -> None:
    r, _, _ = connected()
    for _ in range(1000):
        r.dataReceived(b"z" * 100)
    assert r.events == [("too-long", b"z" * 11)]
    assert r.pending_bytes == 0
    r.dataReceived(b"tail\nok\n")
    assert r.events[-1] == ("line", b"ok")


def test_lines_per_turn_then_the_next_turn() -> None:
    r, transport, clock = connected()
    r.dataReceived(b"1\n2\n3\n4\n5\n")
    assert [e[1] for e in r.events] == [b"1", b"2", b"3"]
    assert transport.producerState == "paused"
    clock.advance(0)
    assert [e[1] for e in r.events] == [b"1", b"2", b"3", b"4", b"5"]
    assert transport.producerState == "producing"


def test_raw_mode_begun_and_ended_within_one_read_reads_on() -> None:
    """An upload whose body and the next command arrive in the same read."""
    r, _, _ = connected()
    r.dataReceived(b"RAW 4\nbodyNEXT\nlast\n")
    assert r.events == [("line", b"RAW 4"), ("raw", b"body"), ("line", b"NEXT"), ("line", b"last")]


def test_output_backed_up_stops_handling_lines_until_it_drains() -> None:
    r, transport, _ = connected()
    r.pauseProducing()  # the transport's buffer is full
    r.dataReceived(b"a\nb\n")
    assert r.events == []
    assert transport.producerState == "producing", "a TLS handshake must still be read"
    r.dataReceived(b"c" * 70_000)
    assert transport.producerState == "paused", "but not without bound"
    r.resumeProducing()
    assert [e[1] for e in r.events][:2] == [b"a", b"b"]
    assert transport.producerState == "producing"
