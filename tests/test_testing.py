"""suite.testing: netsuite services reachable in memory, for embedders' tests."""

from pathlib import Path

import pytest
from twisted.internet.task import Clock
from twisted.protocols.basic import LineReceiver

from suite import ChatFactory, EchoFactory, FileFactory, Storage
from suite.files.client import RemoteError, download, list_files, upload
from suite.testing import MemoryServer, inline


def test_file_service_round_trip_in_memory(tmp_path: Path) -> None:
    server = MemoryServer(FileFactory(Storage(tmp_path / "store", run=inline, min_free=0)))
    source = tmp_path / "report.pdf"
    source.write_bytes(b"%PDF" + bytes(range(256)) * 2000)
    stored = server.settle(upload(server, source, run=inline))
    assert stored.size == source.stat().st_size
    assert [f.name for f in server.settle(list_files(server))] == ["report.pdf"]
    server.settle(download(server, "report.pdf", tmp_path / "copy.pdf", run=inline))
    assert (tmp_path / "copy.pdf").read_bytes() == source.read_bytes()
    with pytest.raises(RemoteError, match="exists"):
        server.settle(upload(server, source, run=inline))


class Line(LineReceiver):
    delimiter = b"\n"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line.decode())


def test_chat_in_memory_with_a_fake_clock() -> None:
    clock = Clock()
    server = MemoryServer(ChatFactory(max_per_ip=None, idle_timeout=60, reactor=clock), clock)
    alice, bob = Line(), Line()
    server.settle(server.connect_protocol(alice))
    server.settle(server.connect_protocol(bob))
    alice.sendLine(b"/nick alice")
    alice.sendLine(b"hi bob")
    server.flush()
    assert bob.lines[-1] == "[lobby] <alice> hi bob"
    server.clock.advance(61)
    server.flush()
    assert alice.lines[-1] == "!!! idle-timeout: no input for 60s; disconnected"


def test_echo_in_memory() -> None:
    clock = Clock()
    server = MemoryServer(EchoFactory(reactor=clock), clock)
    client = Line()
    server.settle(server.connect_protocol(client))
    client.sendLine(b"echo me")
    server.flush()
    assert client.lines == ["echo me"]


def test_settle_reports_a_stuck_result() -> None:
    from twisted.internet import defer

    with pytest.raises(AssertionError, match="still pending"):
        MemoryServer(EchoFactory(reactor=Clock())).settle(defer.Deferred())
