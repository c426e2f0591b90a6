"""
The file service in memory, with a client that does not read its replies:
the send-queue cap, the stall timeout, a ``LIST`` of many entries
streamed a chunk at a time, and the lingering close.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ITCPTransport
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from zope.interface import implementer

from suite.files import FileFactory, MemoryStore, StoredFile
from suite.files.sender import ListingSender
from tests.files.test_server import Harness

QUEUE = "ERR send-queue-exceeded"


def test_commands_piling_up_unread_pass_the_send_queue_cap(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", max_send_queue=10_000)
    client = files.connect()
    client.proto.pauseProducing()  # what the transport says when the client does not read
    client.send(b"STAT nothing\n" * 500)  # 6,500 bytes held: within the cap
    assert client.proto.send_queue == 6_500
    assert not client.closing
    client.send(b"STAT nothing\n" * 300)
    (line,) = client.lines()
    assert line == (
        f"{QUEUE} 10400 bytes of replies and commands wait for a client that reads no replies "
        "(limit 10000, --upload-max-send-queue)"
    )
    assert client.closing


def test_replies_written_while_the_client_does_not_read_count(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", max_send_queue=300)
    client = files.connect()
    client.send(b"STAT nothing\n")
    assert client.lines()[0].startswith("ERR not-found")
    client.proto.pauseProducing()
    client.proto.resumeReading("output")  # as if its last reply went out just as it stopped reading
    for _ in range(6):
        client.send(b"STAT nothing\n")
    assert 0 < client.proto.send_queue <= 300
    client.send(b"STAT nothing\n" * 2)
    assert client.lines()[-1].startswith(QUEUE)
    assert client.closing


def test_a_client_that_reads_again_starts_from_nothing(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", max_send_queue=10_000)
    client = files.connect()
    client.proto.pauseProducing()
    client.send(b"STAT nothing\n" * 700)
    client.proto.resumeProducing()  # it read: the 700 commands run
    assert client.proto.send_queue == 0
    files.clock.advance(0)  # the following turns
    assert len(client.lines()) == 700
    assert not client.closing


def test_the_send_queue_cap_can_be_turned_off(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", max_send_queue=None)
    client = files.connect()
    client.proto.pauseProducing()
    client.send(b"STAT nothing\n" * 6_000)  # 78,000 bytes
    assert client.lines() == [] and not client.closing
    assert client.transport.producerState == "paused"  # held input is still bounded: reading stops


def test_replies_unread_for_the_stall_timeout_disconnect(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", stall_timeout=60, idle_timeout=300)
    client = files.connect()
    client.send(b"STAT nothing\n")
    client.lines()
    client.proto.pauseProducing()
    files.clock.advance(59)
    assert not client.closing
    files.clock.advance(1)
    assert client.lines() == ["ERR timeout the client read no replies for 60s (--upload-stall-timeout)"]
    assert client.closing


def test_reading_again_brings_back_the_idle_timeout(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", stall_timeout=60, idle_timeout=300)
    client = files.connect()
    client.send(b"STAT nothing\n")
    client.proto.pauseProducing()
    files.clock.advance(50)
    client.proto.resumeProducing()
    files.clock.advance(299)
    assert not client.closing
    files.clock.advance(1)
    assert client.lines()[-1] == "ERR timeout no command for 300s (--upload-idle-timeout)"


def test_without_a_stall_timeout_the_idle_timeout_says_so(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", stall_timeout=None, idle_timeout=300)
    client = files.connect()
    client.send(b"STAT nothing\n")
    client.lines()
    client.proto.pauseProducing()
    files.clock.advance(300)
    assert client.lines() == ["ERR timeout the client read no replies for 300s (--upload-idle-timeout)"]


def test_the_refusal_is_logged_with_the_peer(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", max_send_queue=100)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        for _ in range(3):
            client = files.connect()
            client.proto.pauseProducing()
            client.send(b"STAT nothing\n" * 10)
            assert client.closing
    finally:
        globalLogPublisher.removeObserver(events.append)
    logged = [e for e in events if "send-queue-exceeded" in str(e.get("why", ""))]
    assert len(logged) == 1, "once per peer host, not once per connection"
    assert logged[0]["peer"] == "192.0.2.1:40000"


# --- LIST, streamed ------------------------------------------------------------------------


class ManyFiles(MemoryStore):
    """A store listing ``count`` files without holding their data."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.entries = [StoredFile(f"file-{i:07d}", i, "a" * 64, 1_700_000_000.0) for i in range(count)]

    async def list(self) -> list[StoredFile]:
        return self.entries


class Writes:
    """Records the size of every write to a transport."""

    def __init__(self, transport: Any) -> None:
        self.sizes: list[int] = []
        original = transport.write

        def write(data: bytes) -> None:
            self.sizes.append(len(data))
            original(data)

        transport.write = write


def test_a_large_listing_is_written_a_chunk_at_a_time(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store")
    files.factory = FileFactory(ManyFiles(20_000), reactor=files.clock)
    client = files.connect()
    writes = Writes(client.transport)
    client.send(b"LIST\n")
    # Until the transport asks for lines, only the header waits.
    assert writes.sizes == [len(b"FILES 20000\n")]
    assert client.transport.producer is not None and not client.transport.streaming
    client.transport.producer.resumeProducing()
    assert len(writes.sizes) == 2 and writes.sizes[1] <= ListingSender.CHUNK_SIZE + 200
    lines = client.lines()  # reads, and the transport asks for the rest chunk by chunk
    assert lines[0] == "FILES 20000"
    assert len(lines) == 20_001
    assert lines[1].endswith(" file-0000000") and lines[-1].endswith(" file-0019999")
    assert max(writes.sizes) <= ListingSender.CHUNK_SIZE + 200
    # Then commands again.
    client.send(b"STAT x\n")
    assert client.lines()[0].startswith("ERR not-found")


def test_a_listing_nobody_reads_is_cut_without_a_line_inside_it(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store")
    files.factory = FileFactory(ManyFiles(20_000), reactor=files.clock, stall_timeout=60)
    client = files.connect()
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        client.send(b"LIST\n")
        files.clock.advance(60)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert client.closing
    written = client.transport.value().decode()
    assert "ERR" not in written, "nothing but listing lines inside a listing"
    (logged,) = [e for e in events if "timeout" in str(e.get("why", ""))]
    assert "the client read no replies for 60s (--upload-stall-timeout)" in logged["why"]


def test_an_empty_listing(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store")
    client = files.connect()
    client.send(b"LIST\nLIST\n")
    assert client.lines() == ["FILES 0", "FILES 0"]


# --- closing: a lingering half-close -------------------------------------------------------


@implementer(ITCPTransport)
class HalfClosingTransport(StringTransport):
    """A StringTransport that half-closes, as TCP does."""

    write_closed = False
    aborted = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()


def lingering_client(files: Harness) -> Any:
    proto = files.factory.buildProtocol(None)
    transport = HalfClosingTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", 40000))
    proto.makeConnection(transport)
    return proto, transport


def test_a_close_sends_everything_then_half_closes_and_drops_what_comes(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", max_send_queue=100, close_grace=5)
    proto, transport = lingering_client(files)
    proto.pauseProducing()
    proto.dataReceived(b"STAT nothing\n" * 10)
    assert transport.write_closed and not transport.disconnecting, "its end is sent; the connection stays to read"
    assert transport.value().endswith(b"--upload-max-send-queue)\n")
    assert transport.producer is None and transport.producerState == "producing"  # reading, to drop
    held, written = len(proto._buffer), transport.value()
    proto.dataReceived(b"STAT more\n" * 10_000)
    assert len(proto._buffer) == held and transport.value() == written  # dropped: no reply, nothing more held
    proto.readConnectionLost()  # the client closes too
    assert transport.disconnecting and not transport.aborted


def test_a_client_that_never_closes_is_aborted_after_the_grace(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", close_grace=5)
    proto, transport = lingering_client(files)
    proto.dataReceived(b"QUIT\n")
    assert transport.value().endswith(b"BYE\n") and transport.write_closed
    files.clock.advance(5)
    assert transport.aborted
