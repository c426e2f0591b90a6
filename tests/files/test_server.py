"""The file service in memory: every command, rule, limit and error."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from suite.files import FileFactory, Storage
from tests.files.faults import FailingFS


def sync(f: Any, *args: Any) -> defer.Deferred[Any]:
    """Run disk work at once, in the test's thread."""
    return defer.maybeDeferred(f, *args)


class Harness:
    def __init__(self, root: Path, token: bytes | None = None, run: Any = sync, **kwargs: Any) -> None:
        self.clock = Clock()
        storage_options = {
            k: kwargs.pop(k) for k in ("max_file_size", "quota", "min_free", "resume_ttl", "fs", "umask") if k in kwargs
        }
        storage_options.setdefault("min_free", 0)
        self.root = root
        self.storage = Storage(root, clock=self.clock, run=run, **storage_options)
        defer.ensureDeferred(self.storage.ready())  # loads at once: disk work runs inline
        self.factory = FileFactory(self.storage, token=token, reactor=self.clock, **kwargs)

    def connect(self) -> Client:
        proto = self.factory.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", 40000))
        proto.makeConnection(transport)
        client = Client(proto, transport)
        client.greeting = client.lines()
        return client

    def visible(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith("."))

    def hidden(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.name.startswith(".") and p.name != Storage.INDEX)


class Client:
    def __init__(self, proto: Any, transport: StringTransport) -> None:
        self.proto = proto
        self.transport = transport
        self._read = 0
        self.greeting: list[str] = []

    def send(self, data: bytes) -> None:
        self.proto.dataReceived(data)

    def output(self) -> bytes:
        """Bytes written since the last read, pulling a download's producer dry."""
        while self.transport.producer is not None and not self.transport.streaming:
            self.transport.producer.resumeProducing()
        data = self.transport.value()[self._read :]
        self._read += len(data)
        return data

    def lines(self) -> list[str]:
        return self.output().decode("utf-8").splitlines()

    def eof(self) -> None:
        self.proto.readConnectionLost()

    def drop(self) -> None:
        self.proto.connectionLost(Failure(ConnectionLost()))

    @property
    def closing(self) -> bool:
        return bool(self.transport.disconnecting)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def files(tmp_path: Path) -> Harness:
    return Harness(tmp_path / "store")


PICTURE = bytes(range(256)) * 4000  # ~1 MB, more than one disk block


def put(client: Client, name: str, data: bytes, options: str = "") -> list[str]:
    client.send(f"PUT {options}{' ' if options else ''}{len(data)} {name}\n".encode() + data + b"DONE\n")
    return client.lines()


# --- greeting, upload, list, download ---------------------------------------------


def test_greeting(files: Harness) -> None:
    assert files.connect().greeting == ["NETSUITE-FILES 1"]


def test_upload_round_trip(files: Harness) -> None:
    client = files.connect()
    assert put(client, "holiday photo é.jpg", PICTURE) == [
        "READY 0",
        f"STORED {len(PICTURE)} {sha(PICTURE)} holiday photo é.jpg",
    ]
    stored = files.root / "holiday photo é.jpg"
    assert stored.read_bytes() == PICTURE
    assert stored.stat().st_mode & 0o777 == 0o600
    assert files.hidden() == []  # no temporary file left
    client.send(b"LIST\nSTAT holiday photo \xc3\xa9.jpg\n")
    lines = client.lines()
    assert lines[0] == "FILES 1"
    size, digest, when, name = lines[1].split(" ", 3)
    assert (int(size), digest, name) == (len(PICTURE), sha(PICTURE), "holiday photo é.jpg")
    assert when.endswith("Z") and "T" in when
    assert lines[2] == "FILE " + lines[1]
    client.send("GET 0 holiday photo é.jpg\n".encode())
    out = client.output()
    header, body = out.split(b"\n", 1)
    assert header == f"DATA {len(PICTURE)} {sha(PICTURE)} 0".encode()
    assert body == PICTURE


def test_download_from_offset(files: Harness) -> None:
    client = files.connect()
    put(client, "f", PICTURE)
    client.send(b"GET 1000 f\nSTAT f\n")
    out = client.output()
    header, rest = out.split(b"\n", 1)
    assert header == f"DATA {len(PICTURE)} {sha(PICTURE)} 1000".encode()
    assert rest[: len(PICTURE) - 1000] == PICTURE[1000:]
    assert rest[len(PICTURE) - 1000 :].startswith(b"FILE ")  # the next command waited its turn


def test_upload_ended_by_eof(files: Harness) -> None:
    """The nc recipe: header, data, end of input."""
    client = files.connect()
    client.send(b"PUT 5 from nc\nhello")
    client.eof()
    assert client.lines() == ["READY 0", f"STORED 5 {sha(b'hello')} from nc"]
    assert client.closing
    assert (files.root / "from nc").read_bytes() == b"hello"


def test_upload_ended_by_next_command(files: Harness) -> None:
    client = files.connect()
    client.send(b"PUT 3 a\nabcLIST\n")
    assert client.lines() == ["READY 0", f"STORED 3 {sha(b'abc')} a", "FILES 1", f"3 {sha(b'abc')} " + client_when(files, "a") + " a"]


def client_when(files: Harness, name: str) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((files.root / name).stat().st_mtime))


def test_empty_file(files: Harness) -> None:
    client = files.connect()
    assert put(client, "empty", b"") == ["READY 0", f"STORED 0 {sha(b'')} empty"]
    assert (files.root / "empty").read_bytes() == b""


def test_crlf_commands(files: Harness) -> None:
    client = files.connect()
    client.send(b"PUT 2 crlf\r\nhiDONE\r\nLIST\r\n")
    assert client.lines()[:3] == ["READY 0", f"STORED 2 {sha(b'hi')} crlf", "FILES 1"]


# --- names --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "../../etc/passwd", "a\\b", "x" * 256])
def test_rejected_names(files: Harness, name: str) -> None:
    client = files.connect()
    client.send(f"PUT 3 {name}\nabc".encode())
    (line,) = client.lines()
    assert line.startswith("ERR bad-name ")
    assert client.closing  # its data may follow, so the connection ends
    assert files.visible() == [] and files.hidden() == []


def test_control_character_name(files: Harness) -> None:
    client = files.connect()
    client.send(b"PUT 3 bad\x1bname\nabc")
    assert client.lines()[0].startswith("ERR bad-name ")


def test_get_never_follows_symlinks(files: Harness, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    os.symlink(secret, files.root / "link")
    client = files.connect()
    client.send(b"GET 0 link\nLIST\n")
    assert client.lines() == ["ERR not-found there is no file called link", "FILES 0"]


# --- existing names, overwrite, busy ---------------------------------------------


def test_exists_then_overwrite(files: Harness) -> None:
    put(files.connect(), "doc", b"first")
    client = files.connect()
    client.send(b"PUT 6 doc\nsecond")
    assert client.lines() == ["ERR exists doc exists; ask to overwrite it"]
    assert client.closing
    assert put(files.connect(), "doc", b"second", "overwrite")[-1] == f"STORED 6 {sha(b'second')} doc"
    assert (files.root / "doc").read_bytes() == b"second"


def test_concurrent_same_name_is_busy(files: Harness) -> None:
    first, second = files.connect(), files.connect()
    first.send(b"PUT 10 same\n01234")
    second.send(b"PUT 10 same\nabcdefghij")
    assert second.lines() == ["ERR busy same is being uploaded by another client"]
    first.send(b"56789DONE\n")
    assert first.lines()[-1] == f"STORED 10 {sha(b'0123456789')} same"
    assert (files.root / "same").read_bytes() == b"0123456789"


def test_reader_keeps_its_version_during_overwrite(files: Harness) -> None:
    put(files.connect(), "v", b"old" * 100_000)
    reader = files.connect()
    reader.send(b"GET 0 v\n")  # opened, not yet pulled
    put(files.connect(), "v", b"new" * 100_000, "overwrite")
    header, body = reader.output().split(b"\n", 1)
    assert header.split()[2] == sha(b"old" * 100_000).encode()
    assert body == b"old" * 100_000


# --- short, long, wrong -----------------------------------------------------------


def test_short_upload_is_never_visible(files: Harness) -> None:
    client = files.connect()
    client.send(b"PUT 10 short\n12345")
    client.eof()
    assert client.lines() == ["READY 0", "ERR short the data ended after 5 of 10 bytes"]
    assert files.visible() == [] and files.hidden() == []


def test_over_long_upload_is_never_visible(files: Harness) -> None:
    client = files.connect()
    client.send(b"PUT 5 long\n12345 and then some more bytes\n")
    assert client.lines() == ["READY 0", "ERR too-long more than the declared 5 bytes came; nothing was stored"]
    assert client.closing
    assert files.visible() == [] and files.hidden() == []


def test_declared_checksum_mismatch(files: Harness) -> None:
    client = files.connect()
    assert put(client, "bad", b"actual data", f"sha256={sha(b'other data')}") == [
        "READY 0",
        f"ERR checksum-mismatch received data has sha256 {sha(b'actual data')}, "
        f"not the declared {sha(b'other data')}; nothing was stored",
    ]
    assert files.visible() == [] and files.hidden() == []


def test_declared_checksum_match(files: Harness) -> None:
    assert put(files.connect(), "good", b"data", f"sha256={sha(b'data')}")[-1].startswith("STORED 4 ")
    assert files.hidden() == []


# --- resume -----------------------------------------------------------------------


def test_killed_upload_resumes_and_verifies(files: Harness) -> None:
    data = PICTURE
    digest = sha(data)
    client = files.connect()
    client.send(f"PUT sha256={digest} resume {len(data)} big\n".encode() + data[:300_000])
    client.drop()
    assert files.visible() == []
    assert len(files.hidden()) == 2  # the partial data and its description
    again = files.connect()
    again.send(f"PUT sha256={digest} resume {len(data)} big\n".encode())
    assert again.lines() == ["READY 300000"]
    again.send(data[300_000:] + b"DONE\n")
    assert again.lines() == [f"STORED {len(data)} {digest} big"]
    assert (files.root / "big").read_bytes() == data
    assert files.hidden() == []


def test_resume_of_a_different_file_starts_over(files: Harness) -> None:
    client = files.connect()
    client.send(f"PUT sha256={sha(b'A' * 100)} resume 100 f\n".encode() + b"A" * 50)
    client.drop()
    again = files.connect()
    again.send(f"PUT sha256={sha(b'B' * 100)} resume 100 f\n".encode())
    assert again.lines() == ["READY 0"]


def test_upload_without_checksum_leaves_nothing_when_cut(files: Harness) -> None:
    client = files.connect()
    client.send(b"PUT 100 f\n" + b"x" * 50)
    client.drop()
    assert files.visible() == [] and files.hidden() == []


def test_partials_expire(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", resume_ttl=60)
    client = files.connect()
    client.send(f"PUT sha256={sha(b'x' * 10)} resume 10 f\n".encode() + b"x" * 5)
    client.drop()
    assert len(files.hidden()) == 2
    files.clock.advance(30)
    files.storage.sweep()
    assert len(files.hidden()) == 2
    files.clock.advance(31)
    files.storage.sweep()
    assert files.hidden() == []


def test_startup_sweeps_stale_temporary_files(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (root / ".tmp-leftover").write_bytes(b"half an upload")
    (root / ".part-orphan").write_bytes(b"no description")
    Harness(root)
    assert sorted(p.name for p in root.iterdir()) == []


# --- limits -----------------------------------------------------------------------


def test_max_file_size_checked_before_any_byte(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", max_file_size=100)
    client = files.connect()
    client.send(b"PUT 101 big\n")
    assert client.lines() == ["ERR too-large 101 bytes is over the limit of 100"]
    assert put(files.connect(), "ok", b"x" * 100)[-1].startswith("STORED 100 ")


def test_quota(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", quota=100)
    put(files.connect(), "a", b"x" * 60)
    client = files.connect()
    client.send(b"PUT 41 b\n")
    assert client.lines() == ["ERR quota-exceeded storing 41 more bytes would exceed the quota of 100"]
    assert put(files.connect(), "a", b"y" * 90, "overwrite")[-1].startswith("STORED 90 ")  # replacing frees


def test_free_space_checked_up_front(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", min_free=1 << 62)
    client = files.connect()
    client.send(b"PUT 10 f\n")
    (line,) = client.lines()
    assert line.startswith("ERR no-space 10 bytes do not fit: ")


def test_disk_full_during_write(tmp_path: Path) -> None:
    fs = FailingFS()
    files = Harness(tmp_path / "store", fs=fs)
    fs.fail("write", errno.ENOSPC, after=1)  # the partial's description fits, its data not
    client = files.connect()
    assert put(client, "huge", PICTURE, f"sha256={sha(PICTURE)}") == [
        "READY 0", "ERR disk-full the disk is full; nothing was stored",
    ]
    assert files.visible() == [] and files.hidden() == []  # not even kept for resuming
    fs.heal()
    assert put(files.connect(), "small", b"fits")[-1].startswith("STORED 4 ")


def test_stalled_upload_times_out_and_keeps_partial(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", transfer_timeout=30)
    client = files.connect()
    client.send(f"PUT sha256={sha(b'z' * 10)} resume 10 slow\n".encode() + b"zz")
    files.clock.advance(29)
    client.send(b"zz")
    files.clock.advance(29)
    assert not client.closing
    files.clock.advance(2)
    assert client.lines()[-1] == "ERR timeout no data came for 30s (--transfer-timeout)"
    assert client.closing
    client.drop()
    assert files.visible() == [] and len(files.hidden()) == 2


def test_idle_connection_times_out(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", idle_timeout=300)
    client = files.connect()
    client.send(b"LIST\n")
    client.lines()
    files.clock.advance(299)
    assert not client.closing
    files.clock.advance(2)
    assert client.lines() == ["ERR timeout no command for 300s (--upload-idle-timeout)"]
    assert client.closing
    files.clock.advance(files.factory.close_grace)
    assert client.transport.disconnected  # aborted if it never reads


def test_max_transfers(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", max_transfers=1)
    busy = files.connect()
    busy.send(b"PUT 10 a\n12345")
    client = files.connect()
    client.send(b"GET 0 x\n")
    assert client.lines() == ["ERR too-many-transfers the server is busy (limit 1 transfers)"]
    busy.send(b"67890DONE\n")
    client.send(b"GET 0 a\n")
    assert client.output().startswith(b"DATA 10 ")


def test_max_connections(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", max_connections=1)
    files.connect()
    refused = files.connect()
    assert refused.greeting == ["ERR too-many-connections too many connections (limit 1)"]
    assert refused.closing


def test_long_command_line(files: Harness) -> None:
    client = files.connect()
    client.send(b"STAT " + b"x" * 5000)
    assert client.lines() == ["ERR line-too-long command lines are at most 4096 bytes"]
    assert client.closing


def test_errors_keep_the_connection_except_for_put(files: Harness) -> None:
    client = files.connect()
    client.send(b"FROB\nGET 0 missing\nGET 9 \n\xff\xfe\nDONE\nLIST\n")
    lines = client.lines()
    assert [line.split(" ")[1] for line in lines[:5]] == [
        "bad-command", "not-found", "bad-name", "bad-command", "bad-command",
    ]
    assert lines[5] == "FILES 0"
    assert not client.closing


def test_bad_offset(files: Harness) -> None:
    client = files.connect()
    put(client, "f", b"12345")
    client.send(b"GET 6 f\n")
    assert client.lines() == ["ERR bad-offset offset 6 is past the end (5 bytes)"]


def test_commands_before_end_of_input_still_run(files: Harness) -> None:
    """printf 'PUT ...data...LIST\nGET 0 f\n' | nc -N: everything runs, then the server closes."""
    client = files.connect()
    client.send(b"PUT 3 f\nabcLIST\nGET 0 f\n")
    client.eof()
    out = client.output().decode()
    assert out.startswith(f"READY 0\nSTORED 3 {sha(b'abc')} f\nFILES 1\n")
    assert out.endswith(f"DATA 3 {sha(b'abc')} 0\nabc")
    assert client.closing


def test_end_of_input_closes_when_idle(files: Harness) -> None:
    client = files.connect()
    client.send(b"LIST\n")
    client.eof()
    assert client.lines() == ["FILES 0"]
    assert client.closing


def test_quit(files: Harness) -> None:
    client = files.connect()
    client.send(b"QUIT\n")
    assert client.lines() == ["BYE"]
    assert client.closing


# --- backpressure -------------------------------------------------------------------


class SlowDisk:
    """A runner whose disk work finishes only when the test says so."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Any, tuple[Any, ...], defer.Deferred[Any]]] = []

    def __call__(self, f: Any, *args: Any) -> defer.Deferred[Any]:
        if f.__name__ != "_write_blocks":
            return defer.maybeDeferred(f, *args)
        d: defer.Deferred[Any] = defer.Deferred()
        self.waiting.append((f, args, d))
        return d

    def finish_all(self) -> None:
        while self.waiting:
            f, args, d = self.waiting.pop(0)
            d.callback(f(*args))


def test_reading_pauses_while_the_disk_is_behind(tmp_path: Path) -> None:
    disk = SlowDisk()
    files = Harness(tmp_path / "store", run=disk, disk_buffer=2 << 20)
    client = files.connect()
    size = 8 << 20
    client.send(f"PUT {size} big\n".encode())
    client.lines()
    chunk = b"q" * (1 << 20)
    client.send(chunk * 2)
    assert client.transport.producerState == "producing"
    client.send(chunk)  # 3 MiB now wait for the disk: over the 2 MiB buffer
    assert client.transport.producerState == "paused"
    disk.finish_all()
    assert client.transport.producerState == "producing"
    client.send(chunk * 5 + b"DONE\n")
    disk.finish_all()
    assert client.lines() == [f"STORED {size} {sha(b'q' * size)} big"]


# --- authentication -------------------------------------------------------------------


def test_token_required_before_anything(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", token=b"s3cret")
    client = files.connect()
    assert client.greeting == ["NETSUITE-FILES 1 auth-required"]
    client.send(b"LIST\n")
    assert client.lines() == ["ERR auth-required send AUTH TOKEN first"]
    assert client.closing


def test_wrong_token_closes(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", token=b"s3cret")
    client = files.connect()
    client.send(b"AUTH guess\nLIST\n")
    assert client.lines() == []  # the answer waits: guessing costs time
    files.clock.advance(1)
    assert client.lines() == ["ERR auth-failed wrong token"]
    assert client.closing


def test_right_token_opens_everything(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", token=b"s3cret")
    client = files.connect()
    client.send(b"AUTH s3cret\n")
    assert client.lines() == ["AUTHORIZED"]
    assert put(client, "f", b"ok")[-1].startswith("STORED 2 ")


# --- the index ----------------------------------------------------------------------


def test_index_survives_restart_and_notices_changes(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store")
    put(files.connect(), "kept", b"content")
    (files.root / "dropped in").write_bytes(b"by hand")
    again = Harness(tmp_path / "store")
    client = again.connect()
    client.send(b"LIST\n")
    lines = client.lines()
    assert lines[0] == "FILES 2"
    assert lines[1].split(" ")[1] == sha(b"by hand")
    assert lines[2].split(" ")[1] == sha(b"content")
    (files.root / "kept").write_bytes(b"changed by hand")
    client.send(b"STAT kept\n")
    assert client.lines()[0].split(" ")[2] == sha(b"changed by hand")


# --- states, turns and backpressure ----------------------------------------------------


def test_pipelined_lines_take_turns(files: Harness) -> None:
    client = files.connect()
    client.send(b"NOOP\n" * 100)
    # One turn's budget now; the rest in later turns (callLater(0)).
    assert len(client.lines()) == files.factory.protocol.MAX_LINES_PER_TURN
    assert client.transport.producerState == "paused"
    assert sorted(call.getTime() for call in files.clock.getDelayedCalls()) == [0, 300]  # next turn, idle timeout
    files.clock.advance(0)  # Clock runs the following turns' calls too
    assert len(client.lines()) == 100 - files.factory.protocol.MAX_LINES_PER_TURN
    assert client.transport.producerState == "producing"


def test_reading_stops_while_output_is_backed_up(files: Harness) -> None:
    client = files.connect()
    client.proto.pauseProducing()  # what the transport says when its buffer is full
    client.send(b"NOOP\n")
    assert client.lines() == []
    client.proto.resumeProducing()
    assert client.lines()[0].startswith("ERR bad-command unknown command 'NOOP'")


def test_first_command_timeout(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", first_command_timeout=10)
    client = files.connect()
    files.clock.advance(10)
    assert client.lines() == ["ERR timeout no command within 10s of connecting (--upload-first-command-timeout)"]
    assert client.closing


def test_auth_delay_doubles_per_host(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", token=b"s3cret", auth_delay=1.0)
    for delay in (1, 2, 4, 8):
        client = files.connect()
        client.send(b"AUTH guess\n")
        files.clock.advance(delay - 0.01)
        assert client.lines() == []
        files.clock.advance(0.01)
        assert client.lines() == ["ERR auth-failed wrong token"]
        client.drop()


def test_a_failed_download_writes_no_error_into_its_data(files: Harness) -> None:
    put(files.connect(), "f", PICTURE)
    client = files.connect()
    client.send(b"GET 0 f\n")
    header = client.transport.value()
    assert header.endswith(b"\n") and header.split(b"\n")[-2].startswith(b"DATA ")
    client.proto.timeoutConnection()  # a stall, mid-download
    assert client.transport.value() == header, "nothing written after the DATA line"
    assert client.proto.state.name == "CLOSING"


def test_impossible_moves_are_refused(files: Harness) -> None:
    from suite.files.server import State

    client = files.connect()
    with pytest.raises(AssertionError):
        client.proto.move(State.SENDING)


def test_end_of_input_closes_after_every_pipelined_command(files: Harness) -> None:
    client = files.connect()
    client.send(b"NOOP\n" * 100 + b"LIS")
    client.eof()
    assert not client.closing  # 68 commands still wait for their turns
    files.clock.advance(0)
    assert len(client.lines()) == 100
    assert client.closing


def test_end_of_input_after_a_partial_line_closes(files: Harness) -> None:
    client = files.connect()
    client.send(b"LIST")
    client.eof()
    assert client.lines() == [] and client.closing


def test_counters_for_metrics(tmp_path: Path) -> None:
    files = Harness(tmp_path / "store", max_file_size=100)
    put(files.connect(), "f", b"x" * 10)
    client = files.connect()
    client.send(b"GET 3 f\n")
    client.output()
    files.connect().send(b"PUT 101 big\n")
    put(files.connect(), "g", b"x" * 10, f"sha256={'0' * 64}")
    factory = files.factory
    assert (factory.files_stored, factory.bytes_stored, factory.bytes_served) == (1, 10, 7)
    assert dict(factory.files_failed) == {"too-large": 1, "checksum-mismatch": 1}
