"""
The file service attacked over loopback: pipelined commands nobody reads
(the send-queue cap, the stall timeout), a large listing nobody reads,
stalled downloads, bytes after a body, many slow connections from one
host, non-regular files, wrong tokens.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.logger import globalLogPublisher

from suite.echo import EchoFactory
from suite.files import FileFactory, MemoryStore, Storage, StoredFile
from suite.files.client import RemoteError, list_files, stat, upload
from suite.files.sender import ListingSender
from tests.helpers import Collector, stop_tracked, track


@pytest.fixture
def server(tmp_path: Path):
    """Start a file server on 127.0.0.1:0: returns (factory, port number)."""
    started = []

    def start(**kwargs: Any) -> tuple[FileFactory, int]:
        storage = Storage(tmp_path / "store", min_free=0)
        factory = track(FileFactory(storage, **kwargs))
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        started.append((factory, port))
        return factory, port.getHost().port

    yield start
    for factory, port in started:
        pytest_twisted.blockon(defer.ensureDeferred(stop_tracked(factory, port)))


def endpoint(port: int, source: str = "127.0.0.1") -> TCP4ClientEndpoint:
    return TCP4ClientEndpoint(reactor, "127.0.0.1", port, bindAddress=(source, 0))


async def until(condition: Any, seconds: float = 20.0) -> None:
    """Wait (polling the reactor, no sleeps in between turns) until ``condition()``."""
    deadline = reactor.seconds() + seconds
    while not condition():
        assert reactor.seconds() < deadline, "condition not met in time"
        d: defer.Deferred[None] = defer.Deferred()
        reactor.callLater(0.01, d.callback, None)
        await d


class Deaf(Collector):
    """A client that writes and never reads (its socket's receive buffer fills)."""

    def connectionMade(self) -> None:
        self.transport.pauseProducing()


@pytest_twisted.ensureDeferred
async def test_pipelined_commands_never_read_bounded_and_others_served(server, tmp_path: Path) -> None:
    factory, port = server(idle_timeout=2, close_grace=0.5)
    echo_port = reactor.listenTCP(0, EchoFactory(), interface="127.0.0.1")
    try:
        hostile = Deaf()
        await connectProtocol(endpoint(port), hostile)
        # 200,000 commands in one write: every reply is an error line of
        # about 90 bytes, 18 MB if they were all queued.
        hostile.transport.write(b"NOOP\n" * 200_000)
        hostile_port = hostile.transport.getHost().port
        (proto,) = [p for p in factory.open if p.transport.getPeer().port == hostile_port]
        await until(lambda: proto.output_blocked)
        # Meanwhile other clients of this and other services are served.
        assert await list_files(endpoint(port)) == []
        echo = Collector()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", echo_port.getHost().port), echo)
        echo.transport.write(b"ping")
        assert await echo.wait_for(4) == b"ping"
        echo.transport.loseConnection()
        # What the server holds for it: unread input, queued output (Twisted's buffers).
        transport = proto.transport
        held = len(proto._buffer) + len(transport.dataBuffer) + transport._tempDataLen
        assert held < 1 << 20, f"the server holds {held} bytes for one client"
        # A client that reads nothing is disconnected.
        await proto.closed
        hostile.transport.resumeProducing()
        await hostile.lost
        assert hostile.received.startswith(b"NETSUITE-FILES 1\n")
    finally:
        await echo_port.stopListening()


@pytest_twisted.ensureDeferred
async def test_stalled_download_closes_without_writing_into_the_data(server, tmp_path: Path) -> None:
    factory, port = server(transfer_timeout=1, close_grace=0.5)
    data = os.urandom(48 << 20)
    (tmp_path / "big").write_bytes(data)
    await upload(endpoint(port), tmp_path / "big")
    reader = Deaf()
    await connectProtocol(endpoint(port), reader)
    reader.transport.write(b"GET 0 big\n")
    # It never reads: the transfer times out, the server closes.
    await until(lambda: not factory.open or all(p.state.name == "CLOSING" for p in factory.open))
    reader.transport.resumeProducing()
    await reader.lost
    greeting, header, rest = bytes(reader.received).split(b"\n", 2)
    assert header == f"DATA {len(data)} {hashlib.sha256(data).hexdigest()} 0".encode()
    assert 0 < len(rest) < len(data)
    assert rest == data[: len(rest)], "only the file's bytes, nothing else, inside the data"


class Sender(Collector):
    def __init__(self, data: bytes, half_close: bool) -> None:
        super().__init__()
        self.data, self.half_close = data, half_close

    def connectionMade(self) -> None:
        self.transport.write(self.data)
        if self.half_close:
            self.transport.loseWriteConnection()


@pytest.mark.parametrize("half_close", [True, False])
@pytest.mark.parametrize("after", [b"EXTRA", b"garbage that is no command\n", b"\xff\xfe\n"])
@pytest_twisted.ensureDeferred
async def test_bytes_after_the_body_are_too_long(server, half_close: bool, after: bytes) -> None:
    factory, port = server()
    client = Sender(b"PUT 5 f\nhello" + after, half_close)
    await connectProtocol(endpoint(port), client)
    if not half_close and not after.endswith(b"\n"):
        await client.wait_for(len(b"NETSUITE-FILES 1\nREADY 0\n"))
        client.transport.loseWriteConnection()
    await client.lost
    assert bytes(client.received).decode("utf-8", "replace").splitlines()[1:] == [
        "READY 0", "ERR too-long more than the declared 5 bytes came; nothing was stored",
    ]
    assert await list_files(endpoint(port)) == []
    assert [p.name for p in factory.storage.root.iterdir() if p.name != Storage.INDEX] == []


@pytest_twisted.ensureDeferred
async def test_many_slow_connections_from_one_host_lock_nobody_else_out(server) -> None:
    factory, port = server(max_per_ip=3, max_connections=10, first_command_timeout=1, close_grace=0.5)
    slow = []
    for _ in range(3):
        client = Collector()
        await connectProtocol(endpoint(port), client)
        slow.append(client)
    extra = Collector()
    await connectProtocol(endpoint(port), extra)
    await extra.lost
    assert bytes(extra.received).startswith(b"ERR too-many-connections too many connections from 127.0.0.1")
    # Another host is served at once.
    assert await list_files(endpoint(port, "127.0.0.2")) == []
    # The slow ones never sent a command: closed after the first-command timeout.
    for client in slow:
        await client.lost
        assert b"ERR timeout no command within 1s of connecting (--upload-first-command-timeout)" in client.received


@pytest_twisted.ensureDeferred
async def test_a_fifo_blocks_nothing(server, tmp_path: Path) -> None:
    factory, port = server()
    await list_files(endpoint(port))  # the storage is loaded
    os.mkfifo(factory.storage.root / "pipe")
    with pytest.raises(RemoteError) as raised:
        await stat(endpoint(port), "pipe")
    assert raised.value.code == "not-found"
    assert await list_files(endpoint(port)) == []


@pytest_twisted.ensureDeferred
async def test_wrong_tokens_are_logged_with_the_peer_and_slowed(server) -> None:
    factory, port = server(token=b"right", auth_delay=0.05)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        answered = []
        for _ in range(3):
            client = Collector()
            await connectProtocol(endpoint(port), client)
            client.transport.write(b"AUTH wrong\n")
            start = reactor.seconds()
            await client.lost
            answered.append(reactor.seconds() - start)
            assert bytes(client.received).endswith(b"ERR auth-failed wrong token\n")
    finally:
        globalLogPublisher.removeObserver(events)
    assert factory._auth_failures["127.0.0.1"][0] == 3
    logged = [e for e in events if "auth-failed" in str(e.get("why", ""))]
    assert logged and logged[0]["peer"].startswith("127.0.0.1:")


def server_side(factory: FileFactory, client: Any) -> Any:
    """The server's protocol for ``client``'s connection."""
    port = client.transport.getHost().port
    (proto,) = [p for p in factory.open if p.transport.getPeer().port == port]
    return proto


@pytest_twisted.ensureDeferred
async def test_pipelining_without_reading_past_the_send_queue_cap_disconnects(server) -> None:
    factory, port = server(max_send_queue=64 * 1024, close_grace=30)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        deaf = []
        for _ in range(2):
            hostile = Deaf()
            await connectProtocol(endpoint(port), hostile)
            hostile.transport.write(b"NOOP\n" * 200_000)  # 1 MB of commands, 18 MB of replies
            deaf.append((hostile, server_side(factory, hostile)))
        for hostile, proto in deaf:
            await until(lambda: proto.state.name == "CLOSING")
            # It reads at last: its replies, then the reason, then the end.
            hostile.transport.resumeProducing()
            await hostile.lost
            last = bytes(hostile.received).rstrip(b"\n").rsplit(b"\n", 1)[-1].decode()
            assert last.startswith("ERR send-queue-exceeded ")
            assert last.endswith("wait for a client that reads no replies (limit 65536, --upload-max-send-queue)")
    finally:
        globalLogPublisher.removeObserver(events.append)
    logged = [e for e in events if "send-queue-exceeded" in str(e.get("why", ""))]
    assert len(logged) == 1, "logged once per peer host"
    assert logged[0]["peer"].startswith("127.0.0.1:")
    assert logged[0]["why"].endswith("wait for a client that reads no replies (limit 65536, --upload-max-send-queue)")
    assert await list_files(endpoint(port)) == []  # the server serves on


@pytest_twisted.ensureDeferred
async def test_a_client_that_stops_reading_is_cut_after_the_stall_timeout(server) -> None:
    factory, port = server(max_send_queue=None, stall_timeout=1, idle_timeout=300, close_grace=30)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    hostile = Deaf()
    await connectProtocol(endpoint(port), hostile)
    hostile.transport.write(b"NOOP\n" * 200_000)
    proto = server_side(factory, hostile)
    await until(lambda: proto.output_blocked)
    blocked = reactor.seconds()
    await until(lambda: proto.state.name == "CLOSING")
    globalLogPublisher.removeObserver(events.append)
    assert reactor.seconds() - blocked < 10, "the stall timeout, not the idle timeout"
    (logged,) = [e for e in events if "timeout" in str(e.get("why", ""))]
    assert logged["why"] == "timeout: the client read no replies for 1s (--upload-stall-timeout)"
    hostile.transport.resumeProducing()
    await hostile.lost
    assert bytes(hostile.received).endswith(b"ERR timeout the client read no replies for 1s (--upload-stall-timeout)\n")


class ManyFiles(MemoryStore):
    """A store listing ``count`` files without holding their data."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.entries = [StoredFile(f"file-{i:07d}", i, "a" * 64, 1_700_000_000.0) for i in range(count)]

    async def list(self) -> list[StoredFile]:
        return self.entries


@pytest_twisted.ensureDeferred
async def test_a_large_listing_nobody_reads_costs_one_chunk(server) -> None:
    count = 200_000  # about 22 MB of listing lines
    factory = track(FileFactory(ManyFiles(count), stall_timeout=1, close_grace=30))
    listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
    port = listening.getHost().port
    try:
        hostile = Deaf()
        await connectProtocol(endpoint(port), hostile)
        hostile.transport.write(b"LIST\n")
        proto = server_side(factory, hostile)
        transport = proto.transport

        def held() -> int:
            return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

        # The kernel's buffers are full: what the server holds is one chunk.
        await until(lambda: proto.sending == "listing" and held() > 0)
        held_now = held()
        assert held_now <= 2 * ListingSender.CHUNK_SIZE, f"the server holds {held_now} bytes of listing"
        # Meanwhile another client lists everything.
        listed = await list_files(endpoint(port))
        assert len(listed) == count and listed[-1].name == f"file-{count - 1:07d}"
        # The one that does not read is cut after the stall timeout, with no line inside the listing.
        await until(lambda: proto.state.name == "CLOSING")
        hostile.transport.resumeProducing()
        await hostile.lost
        lines = bytes(hostile.received).decode().splitlines()
        assert lines[1] == f"FILES {count}"
        assert 1 < len(lines) - 2 < count
        assert not any(line.startswith("ERR") for line in lines)
    finally:
        await stop_tracked(factory, listening)
