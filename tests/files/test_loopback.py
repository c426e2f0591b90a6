"""The file service on real loopback sockets, through the client library."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from suite.files import FileFactory, Storage
from suite.files.client import RemoteError, TransferError, download, list_files, stat, upload
from suite.files.sender import ZeroCopySender
from tests.files.faults import FailingFS
from tests.helpers import stop_tracked, track


@pytest.fixture
def server(tmp_path: Path):
    """Start a file server on 127.0.0.1:0: returns (factory, client endpoint)."""
    started = []

    def start(**kwargs: Any) -> tuple[FileFactory, TCP4ClientEndpoint]:
        storage_options = {k: kwargs.pop(k) for k in ("max_file_size", "quota", "resume_ttl", "fs") if k in kwargs}
        storage = Storage(tmp_path / "store", min_free=0, **storage_options)
        factory = track(FileFactory(storage, **kwargs))
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        started.append((factory, port))
        return factory, TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)

    yield start
    for factory, port in started:
        pytest_twisted.blockon(defer.ensureDeferred(stop_tracked(factory, port)))


def make_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leave_partial_download(target: Path, data: bytes, stored: Any) -> None:
    """What an interrupted download of ``stored`` to ``target`` leaves: the first bytes, and what they belong to."""
    part = target.with_name(f".{target.name}.netsuite-part")
    part.write_bytes(data)
    part.with_name(part.name + ".json").write_text(f'{{"sha256": "{stored.sha256}", "size": {stored.size}}}')


@pytest_twisted.ensureDeferred
async def test_upload_list_download_round_trip(server, tmp_path: Path) -> None:
    factory, endpoint = server()
    source = make_file(tmp_path / "picture.jpg", 5_000_123)
    seen: list[tuple[int, int]] = []
    stored = await upload(endpoint, source, "my picture.jpg", progress=lambda d, t: seen.append((d, t)))
    assert (stored.name, stored.size, stored.sha256) == ("my picture.jpg", 5_000_123, digest(source))
    assert seen[0] == (0, 5_000_123) and seen[-1] == (5_000_123, 5_000_123)
    (listed,) = await list_files(endpoint)
    assert (listed.name, listed.size, listed.sha256) == ("my picture.jpg", 5_000_123, digest(source))
    assert (await stat(endpoint, "my picture.jpg")).sha256 == digest(source)
    target = tmp_path / "downloaded.jpg"
    got = await download(endpoint, "my picture.jpg", target)
    assert got.sha256 == digest(source)
    assert target.read_bytes() == source.read_bytes()
    assert not list(tmp_path.glob(".*netsuite-part*"))


@pytest_twisted.ensureDeferred
async def test_download_refuses_to_replace_without_force(server, tmp_path: Path) -> None:
    factory, endpoint = server()
    await upload(endpoint, make_file(tmp_path / "a", 10))
    (tmp_path / "mine").write_text("precious")
    with pytest.raises(TransferError, match="exists; use --force"):
        await download(endpoint, "a", tmp_path / "mine")
    assert (tmp_path / "mine").read_text() == "precious"
    await download(endpoint, "a", tmp_path / "mine", force=True)
    assert (tmp_path / "mine").read_bytes() == (tmp_path / "a").read_bytes()


@pytest_twisted.ensureDeferred
async def test_refusals_reach_the_client(server, tmp_path: Path) -> None:
    factory, endpoint = server(max_file_size=100)
    source = make_file(tmp_path / "f", 50)
    await upload(endpoint, source)
    with pytest.raises(RemoteError) as raised:
        await upload(endpoint, source)
    assert raised.value.code == "exists"
    await upload(endpoint, source, overwrite=True)
    with pytest.raises(RemoteError) as raised:
        await upload(endpoint, make_file(tmp_path / "big", 101))
    assert raised.value.code == "too-large"
    with pytest.raises(RemoteError) as raised:
        await download(endpoint, "missing", tmp_path / "out")
    assert raised.value.code == "not-found"


class CutOff(Protocol):
    """Sends a header and part of the data, then vanishes (like a killed client)."""

    def __init__(self, header: bytes, data: bytes) -> None:
        self.header, self.data = header, data
        self.ready: defer.Deferred[None] = defer.Deferred()
        self.buffer = b""

    def connectionMade(self) -> None:
        self.transport.write(self.header)

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        if b"READY" in self.buffer and not self.ready.called:
            self.transport.write(self.data)
            self.ready.callback(None)


@pytest_twisted.ensureDeferred
async def test_killed_upload_resumes(server, tmp_path: Path) -> None:
    factory, endpoint = server()
    source = make_file(tmp_path / "movie", 3_000_000)
    data = source.read_bytes()
    cut = CutOff(f"PUT sha256={digest(source)} resume {len(data)} movie\n".encode(), data[:1_000_000])
    await connectProtocol(endpoint, cut)
    await cut.ready
    closed = factory.closed.get()
    cut.transport.loseConnection()  # as when the process is killed: what was sent, then FIN
    await closed
    assert await list_files(endpoint) == []  # never visible
    progress: list[int] = []
    stored = await upload(endpoint, source, progress=lambda d, t: progress.append(d))
    assert 0 < progress[0] <= 1_000_000  # continued where the server had data
    assert stored.sha256 == digest(source)
    await download(endpoint, "movie", tmp_path / "movie.copy")
    assert (tmp_path / "movie.copy").read_bytes() == data


@pytest_twisted.ensureDeferred
async def test_concurrent_uploads_of_one_name(server, tmp_path: Path) -> None:
    factory, endpoint = server()
    first = CutOff(b"PUT 1000 same\n", b"x" * 500)
    await connectProtocol(endpoint, first)
    await first.ready
    with pytest.raises(RemoteError) as raised:
        await upload(endpoint, make_file(tmp_path / "same", 10))
    assert raised.value.code == "busy"
    first.transport.abortConnection()
    await factory.closed.get()


@pytest_twisted.ensureDeferred
async def test_disk_full_then_recovery(server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = FailingFS()
    factory, endpoint = server(fs=fs)
    fs.fail("write", errno.ENOSPC)
    with pytest.raises(RemoteError) as raised:
        await upload(endpoint, make_file(tmp_path / "big", 3_000_000))
    assert raised.value.code == "disk-full"
    fs.heal()
    assert [p.name for p in factory.storage.root.iterdir() if p.name != Storage.INDEX] == []
    await upload(endpoint, make_file(tmp_path / "small", 100))
    assert [f.name for f in await list_files(endpoint)] == ["small"]


@pytest_twisted.ensureDeferred
async def test_token_auth(server, tmp_path: Path) -> None:
    factory, endpoint = server(token=b"open sesame")
    with pytest.raises(RemoteError) as raised:
        await list_files(endpoint)
    assert raised.value.code == "auth-required"
    with pytest.raises(RemoteError) as raised:
        await list_files(endpoint, token="wrong")
    assert raised.value.code == "auth-failed"
    await upload(endpoint, make_file(tmp_path / "f", 10), token="open sesame")
    assert [f.name for f in await list_files(endpoint, token="open sesame")] == ["f"]


@pytest_twisted.ensureDeferred
async def test_download_resumes_from_partial(server, tmp_path: Path) -> None:
    factory, endpoint = server()
    source = make_file(tmp_path / "data.bin", 2_000_000)
    stored = await upload(endpoint, source)
    target = tmp_path / "out" / "data.bin"
    target.parent.mkdir()
    leave_partial_download(target, source.read_bytes()[:700_000], stored)
    progress: list[int] = []
    await download(endpoint, "data.bin", target, progress=lambda d, t: progress.append(d))
    assert progress[0] == 700_000
    assert target.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.bin"]


class RawClient(Protocol):
    """Sends bytes as given (optionally half-closing), collects the reply."""

    def __init__(self, data: bytes, half_close: bool = False) -> None:
        self.data, self.half_close = data, half_close
        self.received = b""
        self.done: defer.Deferred[bytes] = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.data)
        if self.half_close:
            self.transport.loseWriteConnection()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: object) -> None:
        self.done.callback(self.received)


async def raw(endpoint: TCP4ClientEndpoint, data: bytes, half_close: bool = False) -> list[str]:
    client = RawClient(data, half_close)
    await connectProtocol(endpoint, client)
    return (await client.done).decode().splitlines()[1:]  # after the greeting


@pytest.mark.parametrize("name", ["..", ".secret", "a/b", "../../etc/passwd", "back\\slash", "nul\x00", "x" * 256])
@pytest_twisted.ensureDeferred
async def test_rejected_names_over_the_wire(server, name: str) -> None:
    factory, endpoint = server()
    lines = await raw(endpoint, f"PUT 3 {name}\n".encode() + b"abc")
    assert len(lines) == 1 and lines[0].startswith("ERR bad-name ")
    assert await list_files(endpoint) == []
    assert [p.name for p in factory.storage.root.iterdir()] == []


@pytest_twisted.ensureDeferred
async def test_short_long_and_mismatched_uploads_over_the_wire(server) -> None:
    factory, endpoint = server()
    assert await raw(endpoint, b"PUT 10 short\n12345", half_close=True) == [
        "READY 0", "ERR short the data ended after 5 of 10 bytes",
    ]
    assert await raw(endpoint, b"PUT 5 long\n1234567890\n", half_close=True) == [
        "READY 0", "ERR too-long more than the declared 5 bytes came; nothing was stored",
    ]
    wrong = hashlib.sha256(b"something else").hexdigest()
    lines = await raw(endpoint, f"PUT sha256={wrong} 5 wrong\n".encode() + b"12345", half_close=True)
    assert lines[0] == "READY 0" and lines[1].startswith("ERR checksum-mismatch ")
    assert await list_files(endpoint) == []
    assert [p.name for p in factory.storage.root.iterdir() if p.name != Storage.INDEX] == []


class SendfileSpy:
    """Wraps ``os.sendfile``: counts bytes, and can send little or refuse (EAGAIN)."""

    def __init__(self, most: int | None = None, refuse_every: int = 0) -> None:
        self.real = os.sendfile
        self.most = most
        self.refuse_every = refuse_every
        self.calls = 0
        self.sent = 0
        self.send_buffer = 0

    def __call__(self, out: int, source: int, offset: int, count: int) -> int:
        self.calls += 1
        with socket.fromfd(out, socket.AF_INET, socket.SOCK_STREAM) as sock:  # a duplicate descriptor
            self.send_buffer = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        if self.refuse_every and self.calls % self.refuse_every == 0:
            raise BlockingIOError(errno.EAGAIN, "full")
        sent = self.real(out, source, offset, min(count, self.most or count))
        self.sent += sent
        return sent


@pytest.mark.skipif(not hasattr(os, "sendfile"), reason="no sendfile on this platform")
@pytest.mark.parametrize(
    "spy",
    [SendfileSpy(), SendfileSpy(most=1000, refuse_every=3), SendfileSpy(refuse_every=1)],
    ids=["as-much-as-it-takes", "little-and-often-full", "always-full"],
)
@pytest_twisted.ensureDeferred
async def test_downloads_use_sendfile_and_keep_order(server, tmp_path: Path, monkeypatch, spy) -> None:
    """Bytes sent with sendfile and through the transport interleave in the file's order."""
    factory, endpoint = server()
    source = make_file(tmp_path / "big", 3_000_017)
    await upload(endpoint, source, "big")
    monkeypatch.setattr(os, "sendfile", spy)
    got = await download(endpoint, "big", tmp_path / "copy")
    assert got.sha256 == digest(source)
    assert (tmp_path / "copy").read_bytes() == source.read_bytes()
    # A large send buffer while the file goes out (Linux reports twice what
    # was set, which is capped at net.core.wmem_max).
    wmem_max = int(Path("/proc/sys/net/core/wmem_max").read_text())
    assert spy.send_buffer >= min(ZeroCopySender.SEND_BUFFER, wmem_max)
    if spy.refuse_every == 1:
        assert spy.sent == 0  # everything went through the transport
    else:
        assert spy.sent > 1_000_000 if spy.most is None else spy.sent > 0
    # From an offset too: what a resumed download asks for.
    target = tmp_path / "second"
    leave_partial_download(target, source.read_bytes()[:1_234_567], got)
    progress: list[int] = []
    await download(endpoint, "big", target, progress=lambda d, t: progress.append(d))
    assert progress[0] == 1_234_567
    assert target.read_bytes() == source.read_bytes()


@pytest_twisted.ensureDeferred
async def test_tls_downloads_go_through_the_transport(tmp_path: Path, monkeypatch) -> None:
    """Over TLS every byte must be encrypted: sendfile is never used."""
    from tests.helpers import listen_tls, tls_client_endpoint

    factory = track(FileFactory(Storage(tmp_path / "store", min_free=0)))
    port, cert = await listen_tls(factory, tmp_path)
    try:
        endpoint = tls_client_endpoint(port, cert)
        source = make_file(tmp_path / "secret", 2_000_003)
        await upload(endpoint, source, "secret")
        spy = SendfileSpy()
        monkeypatch.setattr(os, "sendfile", spy)
        got = await download(endpoint, "secret", tmp_path / "copy")
        assert got.sha256 == digest(source)
        assert spy.calls == 0
    finally:
        await stop_tracked(factory, port)
