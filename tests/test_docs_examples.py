"""
Every tutorial code block is a file under docs/examples/, and every example
runs as the page says: against a real server on 127.0.0.1, refused with one
line and a non-zero status, and re-run on the same port without a traceback.
Steps 1-4 and 7 here; files, downloads and the pitfalls page in
test_docs_examples_files.py.
"""

from __future__ import annotations

import re
import socket

import pytest
import pytest_twisted
from twisted.internet import reactor

from tests.docs_support import EXAMPLES, example, finished, free_port, port_of, refused
from tests.helpers import ROOT, ProcessRun, connect_collector, spawn, stop_tracked, tracked_echo

PAGES = sorted((ROOT / "docs" / "tutorial").glob("*.md"))
BLOCK = re.compile(r"<!-- file: (?P<path>\S+) -->\n```python\n(?P<code>.*?)```", re.S)


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


def test_every_page_says_how_to_run_its_examples() -> None:
    for page in PAGES:
        text = page.read_text()
        for block in BLOCK.finditer(text):
            name = block["path"].rsplit("/", 1)[1]
            runner = "pytest" if name.startswith("test_") else "python"
            command = re.compile(rf"^\$ {runner} (\.\./)?docs/examples/{re.escape(name)}\b", re.M)
            assert command.search(text), f"{page.name}: no console line runs {name}"


RUNNABLE = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("test_"))


@pytest.mark.parametrize("name", RUNNABLE)
@pytest_twisted.ensureDeferred
async def test_bad_arguments_get_one_usage_line(name: str) -> None:
    run = example(name, "not-a-port", "and", "far", "too", "many")
    await run.ended
    assert run.err.decode().startswith(f"usage: python {name} "), run.err.decode()
    await refused(run, run.err.decode().rstrip("\n"))


BLOCKING_SERVERS = [
    "udp_blocking_receiver.py", "tcp_blocking_server.py", "blocking_echo_server.py", "naive_file_server.py",
    "framed_file_server.py",
]


async def served(name: str, port: int, run: ProcessRun) -> None:
    """Wait until a Twisted example's reactor runs (it listens before: react calls main first)."""
    if name == "udp_twisted_receiver.py":
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.sendto(b"ping", ("127.0.0.1", port))
        sender.close()
        await run.wait_for(rb"from 127\.0\.0\.1:\d+: ping\n")
        return
    client = await connect_collector(port)
    client.transport.write(b"ping\n")  # echoed, or refused by the file receiver: either way, answered
    await client.wait_for(1)
    client.transport.loseConnection()
    await client.lost


@pytest.mark.parametrize(
    "server, args",
    [(name, ()) for name in BLOCKING_SERVERS]
    + [
        ("udp_twisted_receiver.py", ("0", "2")),
        ("echo_protocol.py", ()),
        ("twisted_echo_server.py", ()),
        ("twisted_file_receiver.py", ()),
    ],
)
@pytest_twisted.ensureDeferred
async def test_ctrl_c_stops_a_server_without_a_traceback(server: str, args: tuple[str, ...], tmp_path) -> None:
    serving = example(server, *args, cwd=tmp_path)
    port = await port_of(serving)
    if server not in BLOCKING_SERVERS:
        await served(server, port, serving)
    serving.transport.signalProcess("INT")
    # task.react stops the reactor and exits 0; the blocking ones die by the default SIGINT action.
    assert (await serving.ended, bytes(serving.err)) in ((0, b""), (-2, b""))


# --- step 1: UDP ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "receiver, sender",
    [
        ("udp_blocking_receiver.py", "udp_blocking_sender.py"),
        ("udp_twisted_receiver.py", "udp_twisted_sender.py"),
        ("udp_twisted_receiver.py", "udp_blocking_sender.py"),
        ("udp_blocking_receiver.py", "udp_twisted_sender.py"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_udp(receiver: str, sender: str) -> None:
    listening = example(receiver, "0", "1")
    port = await port_of(listening)
    await finished(example(sender, str(port), "hello over UDP"))
    assert re.fullmatch(rf"listening on {port}\nfrom 127\.0\.0\.1:\d+: hello over UDP\n", await finished(listening))


@pytest.mark.parametrize("receiver", ["udp_blocking_receiver.py", "udp_twisted_receiver.py"])
@pytest_twisted.ensureDeferred
async def test_udp_receiver_on_a_taken_port_says_so(receiver: str) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        await refused(example(receiver, str(port)), f"cannot listen on 127.0.0.1:{port}: Address already in use")
    finally:
        taken.close()
    for _ in range(2):  # and once it is free, run it twice on that port
        listening = example(receiver, str(port))
        await port_of(listening)
        await finished(example("udp_blocking_sender.py", str(port), "again"))
        await finished(listening)


# --- step 2: one-shot TCP ----------------------------------------------------------------

ONE_SHOT = [("tcp_blocking_server.py", "tcp_blocking_client.py"), ("tcp_twisted_server.py", "tcp_twisted_client.py")]


@pytest.mark.parametrize("server, client", ONE_SHOT)
@pytest_twisted.ensureDeferred
async def test_tcp_one_shot_and_rerun_on_the_same_port(server: str, client: str) -> None:
    port = free_port()
    for word in ("world", "again"):  # the second run binds while the first one's connection is in TIME_WAIT
        serving = example(server, str(port))
        assert await port_of(serving) == port
        assert await finished(example(client, str(port), word)) == f"hello, {word}\n"
        assert await finished(serving) == f"listening on {port}\n"


@pytest.mark.parametrize("server", [server for server, _ in ONE_SHOT])
@pytest_twisted.ensureDeferred
async def test_tcp_server_on_a_taken_port_says_so(server: str) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        await refused(example(server, str(port)), f"cannot listen on 127.0.0.1:{port}: Address already in use")
    finally:
        taken.close()


@pytest.mark.parametrize(
    "client, args",
    [
        ("tcp_blocking_client.py", ["hi"]),
        ("tcp_twisted_client.py", ["hi"]),
        ("blocking_chat_client.py", []),
        ("twisted_chat_client.py", []),
        ("deferred_timeout.py", []),
        ("blocking_line_client.py", ["hi"]),
        ("framed_file_client.py", ["README.md"]),
        ("twisted_file_sender.py", ["README.md"]),
        ("twisted_upload.py", ["README.md"]),
        ("blocking_download.py", ["nothing-here.bin"]),
        ("twisted_download.py", ["nothing-here.bin", "/nonexistent/nothing-here.bin"]),
    ],
)
@pytest_twisted.ensureDeferred
async def test_clients_say_when_nobody_listens(client: str, args: list[str]) -> None:
    port = free_port()
    run = example(client, str(port), *args)
    if client == "framed_file_client.py":
        await refused(run, f"cannot upload README.md: Connection refused")
    elif client == "blocking_download.py":
        await refused(run, "cannot download nothing-here.bin: Connection refused")
    else:
        await refused(run, f"nobody is listening on 127.0.0.1:{port}")


# --- step 3: many clients ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_blocking_echo_serves_one_at_a_time() -> None:
    serving = example("blocking_echo_server.py", "0", "2")
    port = await port_of(serving)
    first = await connect_collector(port)
    second = await connect_collector(port)  # connected (the kernel's backlog), but not served
    first.transport.write(b"ping")
    assert await first.wait_for(4) == b"ping"
    second.transport.write(b"pong")
    assert b"serving client 2" not in serving.out and second.received == b""
    first.transport.loseConnection()
    await first.lost
    assert await second.wait_for(4) == b"pong"  # served only once the first left
    second.transport.loseConnection()
    await second.lost
    assert re.search(rb"serving client 2 \(127\.0\.0\.1:\d+\)\n$", (await finished(serving)).encode())


@pytest.mark.parametrize("server", ["echo_protocol.py", "twisted_echo_server.py"])
@pytest_twisted.ensureDeferred
async def test_twisted_echo_serves_everyone_at_once(server: str) -> None:
    serving = example(server)
    try:
        port = await port_of(serving)
        first = await connect_collector(port)  # stays connected...
        second = await connect_collector(port)
        second.transport.write(b"not waiting")  # ...and the second is served anyway
        assert await second.wait_for(11) == b"not waiting"
        first.transport.write(b"last words")
        first.transport.loseWriteConnection()  # half-close: the echo still comes back, then the end
        assert await first.lost and first.received == b"last words"
        second.transport.loseConnection()
        await second.lost
        await refused(example(server, str(port)), f"cannot listen on 127.0.0.1:{port}: Address already in use")
    finally:
        serving.terminate()
        await serving.ended


# --- step 4: chat -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_blocking_chat_client_takes_turns(chat_port: int) -> None:
    assert "*** welcome: you are guest" in await finished(example("blocking_chat_client.py", str(chat_port), stdin=b"hello\n"))


@pytest_twisted.ensureDeferred
async def test_twisted_chat_client_is_full_duplex(chat_port: int) -> None:
    out = await finished(example("twisted_chat_client.py", str(chat_port), stdin=b"hello from the tutorial\n"))
    assert re.search(r"\[lobby\] <guest\d+> hello from the tutorial\n", out)
    assert out.endswith("*** bye: goodbye\n")


@pytest_twisted.ensureDeferred
async def test_udp_chatters_talk_both_ways_at_once() -> None:
    a_port, b_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    a = example("udp_chatter.py", str(a_port), str(b_port), stdin=None)
    b = example("udp_chatter.py", str(b_port), str(a_port), stdin=None)
    await a.wait_for(f"listening on {a_port}, talking to 127.0.0.1:{b_port}".encode())
    await b.wait_for(f"listening on {b_port}, talking to 127.0.0.1:{a_port}".encode())
    a.transport.write("你好 b\n".encode())
    b.transport.write(b"hi a\n")  # b types while a's line is on its way: neither waits for the other
    await b.wait_for(f"127.0.0.1:{a_port} says: 你好 b\n".encode())
    await a.wait_for(f"127.0.0.1:{b_port} says: hi a\n".encode())
    a.transport.closeStdin()
    await finished(a)
    b.transport.write(b"anyone?\n")  # nobody listens (unless the new a is already up): b carries on
    again = example("udp_chatter.py", str(a_port), str(b_port), stdin=None)
    await again.wait_for(b"listening on")
    b.transport.write(b"welcome back\n")
    await again.wait_for(f"127.0.0.1:{b_port} says: welcome back\n".encode())
    for chatter in (again, b):
        chatter.transport.closeStdin()
        await finished(chatter)


@pytest_twisted.ensureDeferred
async def test_udp_chatter_on_a_taken_port_says_so() -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        await refused(example("udp_chatter.py", str(port), "9"), f"cannot listen on 127.0.0.1:{port}: Address already in use")
    finally:
        taken.close()


# --- step 7: Deferreds and tests -------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_deferred_timeout() -> None:
    factory = tracked_echo()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        assert await finished(example("deferred_timeout.py", str(port.getHost().port))) == "no data within 0.5 s\n"
    finally:
        await stop_tracked(factory, port)


@pytest_twisted.ensureDeferred
async def test_the_example_tests_pass() -> None:
    run = spawn(["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES / "test_greeter.py")])
    assert await run.ended == 0, run.out.decode()
    assert b"2 passed" in run.out
