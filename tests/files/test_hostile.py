"""
The file service attacked over loopback: pipelined commands nobody reads,
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
from suite.files import FileFactory, Storage
from suite.files.client import RemoteError, list_files, stat, upload
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
