"""Every tutorial code block is a file under docs/examples/, and every example runs."""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from suite.files import FileFactory, Storage
from tests.helpers import ROOT, Collector, ProcessRun, connect_collector, spawn, stop_tracked, track, tracked_echo

EXAMPLES = ROOT / "docs" / "examples"
PAGES = sorted((ROOT / "docs" / "tutorial").glob("*.md"))
BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```python\n(?P<code>.*?)```", re.S)


def example(name: str, *args: str, stdin: bytes | None = b"") -> ProcessRun:
    return spawn(["python", str(EXAMPLES / name), *args], stdin=stdin)


async def port_of(run: ProcessRun) -> int:
    return int((await run.wait_for(rb"listening on (\d+)")).group(1))


# --- the pages and the files agree ---------------------------------------------------------


def test_every_python_block_is_an_example_file() -> None:
    assert PAGES, "no tutorial pages"
    shown = set()
    for page in PAGES:
        text = page.read_text()
        blocks = list(BLOCK.finditer(text))
        assert len(blocks) == text.count("```python"), f"{page.name}: a python block without <!-- file: -->"
        for block in blocks:
            path = ROOT / block["path"]
            assert path.read_text() == block["code"], f"{page.name}: {block['path']} differs from the file"
            shown.add(path)
    assert set(EXAMPLES.glob("*.py")) <= shown, "example files no page shows"


# --- step 1: UDP ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "receiver, sender",
    [
        ("udp_blocking_receiver.py", "udp_blocking_sender.py"),
        ("udp_twisted_receiver.py", "udp_twisted_sender.py"),
        ("udp_twisted_receiver.py", "udp_blocking_sender.py"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_udp(receiver: str, sender: str) -> None:
    listening = example(receiver, "1")
    port = await port_of(listening)
    sent = example(sender, str(port), "hello over UDP")
    assert await sent.ended == 0, sent.err
    assert await listening.ended == 0, listening.err
    assert re.search(rb"from 127\.0\.0\.1:\d+: hello over UDP", listening.out)


# --- step 2: one-shot TCP ----------------------------------------------------------------


@pytest.mark.parametrize(
    "server, client",
    [("tcp_blocking_server.py", "tcp_blocking_client.py"), ("tcp_twisted_server.py", "tcp_twisted_client.py")],
)
@pytest_twisted.ensureDeferred
async def test_tcp_one_shot(server: str, client: str) -> None:
    serving = example(server)
    port = await port_of(serving)
    asking = example(client, str(port), "world")
    assert await asking.ended == 0, asking.err
    assert asking.out == b"hello, world\n"
    assert await serving.ended == 0, serving.err


# --- step 3: many clients ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_blocking_echo_serves_one_at_a_time() -> None:
    serving = example("blocking_echo_server.py", "2")
    port = await port_of(serving)
    for number in (1, 2):
        client = await connect_collector(port)
        client.transport.write(b"ping")
        assert await client.wait_for(4) == b"ping"
        client.transport.loseConnection()
        await client.lost
        await serving.wait_for(f"serving client {number}".encode())
    assert await serving.ended == 0


@pytest_twisted.ensureDeferred
async def test_twisted_echo_serves_everyone_at_once() -> None:
    serving = example("twisted_echo_server.py")
    try:
        port = await port_of(serving)
        first = await connect_collector(port)  # stays connected...
        second = await connect_collector(port)
        second.transport.write(b"not waiting")  # ...and the second is served anyway
        assert await second.wait_for(11) == b"not waiting"
        for client in (first, second):
            client.transport.loseConnection()
            await client.lost
    finally:
        serving.terminate()
        await serving.ended


# --- step 4: chat -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_blocking_chat_client_takes_turns(chat_port: int) -> None:
    run = example("blocking_chat_client.py", str(chat_port), stdin=b"hello\n")
    assert await run.ended == 0, run.err
    assert b"*** welcome: you are guest" in run.out


@pytest_twisted.ensureDeferred
async def test_twisted_chat_client_is_full_duplex(chat_port: int) -> None:
    run = example("twisted_chat_client.py", str(chat_port), stdin=b"hello from the tutorial\n")
    assert await run.ended == 0, run.err
    assert re.search(rb"\[lobby\] <guest\d+> hello from the tutorial\n", run.out)
    assert run.out.endswith(b"*** bye: goodbye\n")


# --- step 5: files --------------------------------------------------------------------------


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "picture.png"
    path.write_bytes(bytes(range(256)) * 1000)
    return path


@pytest_twisted.ensureDeferred
async def test_naive_file_transfer_runs(picture: Path) -> None:
    serving = example("naive_file_server.py")
    port = await port_of(serving)
    sending = example("naive_file_client.py", str(port), str(picture))
    assert await sending.ended == 0
    assert await serving.ended == 0
    # How name and data were split depends on timing: that is the lesson.
    assert re.fullmatch(rb"listening on \d+\nname field: \d+ bytes, data: \d+ bytes\n", serving.out)


@pytest_twisted.ensureDeferred
async def test_framed_file_transfer(picture: Path) -> None:
    serving = example("framed_file_server.py")
    port = await port_of(serving)
    sending = example("framed_file_client.py", str(port), str(picture))
    assert await sending.ended == 0, sending.err
    assert await serving.ended == 0, serving.err
    digest = hashlib.sha256(picture.read_bytes()).hexdigest()
    assert serving.out.endswith(f"picture.png: 256000 bytes, sha256 {digest}\n".encode())


@pytest_twisted.ensureDeferred
async def test_twisted_upload(picture: Path, tmp_path: Path) -> None:
    factory = track(FileFactory(Storage(tmp_path / "store", min_free=0)))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        run = example("twisted_upload.py", str(port.getHost().port), str(picture))
        assert await run.ended == 0, run.err
        digest = hashlib.sha256(picture.read_bytes()).hexdigest()
        assert run.out.endswith(f"256000/256000 bytes\nstored picture.png: sha256 {digest}\n".encode())
        assert (tmp_path / "store" / "picture.png").read_bytes() == picture.read_bytes()
    finally:
        await stop_tracked(factory, port)


# --- step 6: Deferreds and tests -------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_deferred_timeout() -> None:
    factory = tracked_echo()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        run = example("deferred_timeout.py", str(port.getHost().port))
        assert await run.ended == 0, run.err
        assert run.out == b"no data within 0.5 s\n"
    finally:
        await stop_tracked(factory, port)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed = probe.getsockname()[1]
    probe.close()
    run = example("deferred_timeout.py", str(closed))
    assert await run.ended == 0
    assert run.out == f"nobody is listening on {closed}\n".encode()


@pytest_twisted.ensureDeferred
async def test_the_example_tests_pass() -> None:
    run = spawn(["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES / "test_greeter.py")])
    assert await run.ended == 0, run.out.decode()
    assert b"2 passed" in run.out


def test_collector_helper_is_importable() -> None:
    assert Collector  # used by the tutorial's step 3 tests above
