"""
The tutorial's file examples (steps 5 and 6) and the "why my blocking client
hangs" page, run against real servers on 127.0.0.1: the examples' own
servers and netsuite's file service, including refusals and re-runs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol

from suite.files import FileFactory, Storage
from tests.docs_support import example, finished, port_of, refused
from tests.helpers import connect_collector, stop_tracked, track, tracked_echo

PICTURE = bytes(range(256)) * 1000
DIGEST = hashlib.sha256(PICTURE).hexdigest()


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "picture.png"
    path.write_bytes(PICTURE)
    return path


@pytest.fixture
def file_service(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """netsuite's file service on 127.0.0.1: (its port, its storage directory)."""
    store = tmp_path / "store"
    factory = track(FileFactory(Storage(store, min_free=0)))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    yield port.getHost().port, store
    pytest_twisted.blockon(defer.ensureDeferred(stop_tracked(factory, port)))


# --- step 5: files --------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_naive_file_transfer_runs(picture: Path) -> None:
    serving = example("naive_file_server.py")
    port = await port_of(serving)
    await finished(example("naive_file_client.py", str(port), str(picture)))
    # How name and data were split depends on timing: that is the lesson.
    assert re.fullmatch(r"listening on \d+\nname field: \d+ bytes, data: \d+ bytes\n", await finished(serving))


@pytest_twisted.ensureDeferred
async def test_naive_client_stores_nothing_and_says_nothing(picture: Path, file_service: tuple[int, Path]) -> None:
    port, store = file_service
    assert await finished(example("naive_file_client.py", str(port), str(picture))) == ""  # exit 0: the lesson
    assert not [p for p in store.iterdir() if not p.name.startswith(".")]


@pytest.mark.parametrize("server", ["framed_file_server.py", "twisted_file_receiver.py"])
@pytest.mark.parametrize("client", ["framed_file_client.py", "twisted_file_sender.py"])
@pytest_twisted.ensureDeferred
async def test_framed_upload_to_the_examples_servers(server: str, client: str, picture: Path, tmp_path: Path) -> None:
    received = tmp_path / "received"
    received.mkdir()
    serving = example(server, cwd=received)
    try:
        port = await port_of(serving)
        out = await finished(example(client, str(port), str(picture)))
        assert out == f"stored picture.png: 256000 bytes, sha256 {DIGEST}\n"
        assert (received / "picture.png").read_bytes() == PICTURE
        if server == "framed_file_server.py":  # one client, then it ends
            assert (await finished(serving)).endswith(f"picture.png: 256000 bytes, sha256 {DIGEST}\n")
            serving = example(server, str(port), cwd=received)  # re-run on the same port
            await port_of(serving)
        line = "server refused: ERR exists picture.png" if client.startswith("framed") else "not stored: ERR exists picture.png"
        await refused(example(client, str(port), str(picture)), line)  # run twice: refused, one line
    finally:
        serving.terminate()
        await serving.ended


@pytest.mark.parametrize("client", ["framed_file_client.py", "twisted_file_sender.py", "twisted_upload.py"])
@pytest_twisted.ensureDeferred
async def test_upload_to_netsuite_and_again(client: str, picture: Path, file_service: tuple[int, Path]) -> None:
    port, store = file_service
    out = await finished(example(client, str(port), str(picture)))
    if client == "twisted_upload.py":
        assert out.endswith(f"256000/256000 bytes\nstored picture.png: sha256 {DIGEST}\n")
    else:
        assert out == f"stored picture.png: 256000 bytes, sha256 {DIGEST}\n"
    assert (store / "picture.png").read_bytes() == PICTURE
    line = {
        "framed_file_client.py": "server refused: ERR exists picture.png exists; ask to overwrite it",
        "twisted_file_sender.py": "not stored: ERR exists picture.png exists; ask to overwrite it",
        "twisted_upload.py": "server refused: exists: picture.png exists; ask to overwrite it",
    }[client]
    await refused(example(client, str(port), str(picture)), line)


@pytest.mark.parametrize("server", ["framed_file_server.py", "twisted_file_receiver.py"])
@pytest_twisted.ensureDeferred
async def test_examples_servers_refuse_bad_uploads_with_a_reason(server: str, tmp_path: Path) -> None:
    serving = example(server, cwd=tmp_path)
    try:
        port = await port_of(serving)
        for sent, reply in [
            (b"picture.png\n", b"ERR bad-command expected: PUT SIZE NAME\n"),  # no "PUT ": the naive client's shape
            (b"PUT 3 ../escape\n", b"ERR bad-name '../escape'\n"),
            (b"PUT 10 short.bin\nabc", b"READY 0\nERR short 7 bytes missing\n"),
        ]:
            client = await connect_collector(port)
            client.transport.write(sent)
            client.transport.loseWriteConnection()
            await client.lost
            assert bytes(client.received) == reply
            if server == "framed_file_server.py":
                await serving.ended
                serving = example(server, str(port), cwd=tmp_path)
                await port_of(serving)
        assert list(tmp_path.iterdir()) == []  # nothing stored, nothing escaped
    finally:
        serving.terminate()
        await serving.ended


# --- step 6: downloads ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_blocking_download_resumes_and_verifies(file_service: tuple[int, Path], tmp_path: Path) -> None:
    port, store = file_service
    store.mkdir(exist_ok=True)
    (store / "picture.png").write_bytes(PICTURE)
    here = tmp_path / "here"
    here.mkdir()
    (here / "picture.png.part").write_bytes(PICTURE[:100_000])  # what a cut-off run left
    out = await finished(example("blocking_download.py", str(port), "picture.png", cwd=here))
    assert out == f"saved picture.png: 256000 bytes (resumed at 100000), sha256 {DIGEST}\n"
    assert (here / "picture.png").read_bytes() == PICTURE
    assert not (here / "picture.png.part").exists()
    await refused(
        example("blocking_download.py", str(port), "picture.png", cwd=here), "picture.png exists: remove it to download again"
    )
    await refused(
        example("blocking_download.py", str(port), "missing.png", cwd=here),
        "server refused: ERR not-found there is no file called missing.png",
    )
    (here / "picture.png").unlink()
    (here / "picture.png.part").write_bytes(b"x" * 1000)  # a part of some other file
    await refused(
        example("blocking_download.py", str(port), "picture.png", cwd=here),
        "picture.png did not verify (sha256); the partial file is removed, run again",
    )
    assert list(here.iterdir()) == []


@pytest_twisted.ensureDeferred
async def test_twisted_download_resumes_and_verifies(file_service: tuple[int, Path], tmp_path: Path) -> None:
    port, store = file_service
    store.mkdir(exist_ok=True)
    (store / "picture.png").write_bytes(PICTURE)
    target = tmp_path / "copy.png"
    part = tmp_path / ".copy.png.netsuite-part"  # what netsuite's client library leaves when cut off
    part.write_bytes(PICTURE[:100_000])
    part.with_name(part.name + ".json").write_text(f'{{"sha256": "{DIGEST}", "size": 256000}}')
    out = await finished(example("twisted_download.py", str(port), "picture.png", str(target)))
    assert out == f"starting at 100000 of 256000 bytes\nsaved {target}: 256000 bytes, sha256 {DIGEST}\n"
    assert target.read_bytes() == PICTURE
    await refused(example("twisted_download.py", str(port), "picture.png", str(target)), f"{target} exists: remove it to download again")
    await refused(
        example("twisted_download.py", str(port), "missing.png", str(tmp_path / "m.png")),
        "server refused: not-found: there is no file called missing.png",
    )


# --- why my blocking client hangs -------------------------------------------------------------


class Silent(Protocol):
    """A server that reads and never answers."""


class NotAnEcho(Protocol):
    def connectionMade(self) -> None:
        self.transport.write(b"NOPE\n")


@pytest_twisted.ensureDeferred
async def test_line_client_against_an_echo() -> None:
    factory = tracked_echo()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        assert await finished(example("blocking_line_client.py", str(port.getHost().port), "你好 world")) == "你好 world\n"
    finally:
        await stop_tracked(factory, port)


@pytest.mark.parametrize(
    "protocol, line",
    [
        (Silent, "no complete line within 0.5 s: is it a line server? did it get the newline?"),
        (NotAnEcho, "not an echo: sent 'hello', got b'NOPE'"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_line_client_never_hangs_nor_lies(protocol: type[Protocol], line: str) -> None:
    factory = track(Factory.forProtocol(protocol))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        await refused(example("blocking_line_client.py", str(port.getHost().port), "hello", "0.5"), line)
    finally:
        for proto in list(factory.open):
            proto.transport.loseConnection()
        await stop_tracked(factory, port)
