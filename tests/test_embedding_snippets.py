"""
The guides run as printed: every Python snippet of docs/embedding.md is
extracted and run, and its limits table is checked against the real
signatures.  Python snippets of docs/operations.md and docs/running.md (none
today) must run on their own.

A snippet that listens on a fixed port or path is run with only that port
(made 0: a free one) or path (made a temporary one) replaced; each
replacement is checked to be in the snippet, so a changed snippet cannot
silently escape its test.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint, connectProtocol
from twisted.internet.protocol import DatagramProtocol

import suite
from tests.chat.test_loopback import LineClient
from tests.helpers import ROOT, connect_collector, spawn

GUIDE = ROOT / "docs" / "embedding.md"
OTHER_GUIDES = [ROOT / "docs" / "operations.md", ROOT / "docs" / "running.md"]


def python_snippets(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```$", path.read_text(), re.S | re.M)


def replaced(snippet: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in snippet, f"the snippet no longer contains {old!r}; update this test with it:\n{snippet}"
        snippet = snippet.replace(old, new)
    return snippet


SNIPPETS = python_snippets(GUIDE)


def snippet(marker: str) -> str:
    """The one snippet containing ``marker``."""
    (found,) = [s for s in SNIPPETS if marker in s]
    return found


def test_every_snippet_has_a_test() -> None:
    markers = ["reactor.run()", "services.startService()", "task.react(", "def test_upload(",
               "def test_idle_chat_users_are_told("]
    assert sorted(SNIPPETS) == sorted(snippet(marker) for marker in markers), (
        "a snippet was added or removed in docs/embedding.md: give it a test here"
    )


# --- the script with reactor.run() ---------------------------------------------------

#: Run before the snippet: once the reactor runs, print what listens, and stop
#: when the test closes standard input.
PRELUDE = '''
from twisted.internet import reactor as _reactor, protocol as _protocol, stdio as _stdio, tcp as _tcp, udp as _udp

class _StopAtEndOfInput(_protocol.Protocol):
    def connectionLost(self, reason):
        _reactor.stop()

def _report():
    found = []
    for s in list(_reactor.getReaders()):
        if isinstance(s, _tcp.Port):
            found.append("tcp=%d" % s.getHost().port)
        elif isinstance(s, _udp.Port):
            found.append("udp=%d" % s.getHost().port)
    print("LISTENING " + " ".join(sorted(found)), flush=True)
    _stdio.StandardIO(_StopAtEndOfInput())

_reactor.callWhenRunning(_report)
'''


class _Probe(DatagramProtocol):
    def __init__(self) -> None:
        self.reply: defer.Deferred[bytes] = defer.Deferred()

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        self.reply.callback(data)


@pytest_twisted.ensureDeferred
async def test_script_running_services(tmp_path: Path) -> None:
    code = replaced(snippet("reactor.run()"), {
        '"tcp:8007:interface=127.0.0.1"': '"tcp:0:interface=127.0.0.1"',
        "UDPServerEndpoint(reactor, 8007,": "UDPServerEndpoint(reactor, 0,",
        '"tcp:8023:interface=127.0.0.1"': '"tcp:0:interface=127.0.0.1"',
    })
    script = tmp_path / "services.py"
    script.write_text(PRELUDE + code)
    run = spawn([sys.executable, str(script)], stdin=None, cwd=tmp_path)
    try:
        listening = (await run.wait_for(rb"LISTENING (.*)\n")).group(1).decode().split()
        tcp = [int(item[4:]) for item in listening if item.startswith("tcp=")]
        (udp,) = [int(item[4:]) for item in listening if item.startswith("udp=")]
        assert len(tcp) == 2, listening
        # One TCP port is the echo, the other the chat: the chat greets.
        greetings = []
        for port in tcp:
            client = await connect_collector(port)
            client.transport.write(b"echo?\n")
            greetings.append(await client.wait_for(6))
            client.transport.loseConnection()
            await client.lost
        assert sorted(g[:6] for g in greetings) == [b"*** we", b"echo?\n"]
        probe = _Probe()
        port = reactor.listenUDP(0, probe, interface="127.0.0.1")
        port.write(b"datagram", ("127.0.0.1", udp))
        assert await probe.reply.addTimeout(10, reactor) == b"datagram"
        await port.stopListening()
    finally:
        run.transport.closeStdin()
        assert await run.ended == 0, run.err.decode()


# --- the service tree ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_service_tree_shares_one_chat(tmp_path: Path) -> None:
    socket_path = tmp_path / "chat.sock"
    code = replaced(snippet("services.startService()"), {
        '"tcp:9023:interface=127.0.0.1"': '"tcp:0:interface=127.0.0.1"',
        '"unix:/tmp/netsuite-chat.sock"': f'"unix:{socket_path}"',
    })
    namespace: dict[str, Any] = {}
    exec(compile(code, str(GUIDE), "exec"), namespace)
    services = namespace["services"]
    try:
        (tcp,) = [s.port.getHost().port for s in services if s.description.startswith("tcp:")]
        alice, bob = LineClient(), LineClient()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", tcp), alice)
        await connectProtocol(UNIXClientEndpoint(reactor, str(socket_path)), bob)
        await bob.wait_for(r"^\*\*\* welcome")
        await alice.wait_for(r"^\*\*\* welcome")
        alice.transport.write(b"over tcp\n")
        assert re.fullmatch(r"\[lobby\] <guest\d+> over tcp", await bob.wait_for("over tcp"))
        for client in (alice, bob):
            client.transport.write(b"/quit\n")  # the server closes: its side is gone when ours is
            await client.lost
    finally:
        await services.stopService()


# --- the client script ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_client_script_uploads_and_downloads(tmp_path: Path) -> None:
    from suite import FileFactory, Storage

    server = reactor.listenTCP(0, FileFactory(Storage(tmp_path / "store", min_free=0)), interface="127.0.0.1")
    try:
        copy = tmp_path / "copy.pdf"
        code = replaced(snippet("task.react("), {
            '"127.0.0.1", 8021)': f'"127.0.0.1", {server.getHost().port})',
            '"/tmp/report.pdf"': f'"{copy}"',
        })
        (tmp_path / "client.py").write_text(code)
        (tmp_path / "report.pdf").write_bytes(b"%PDF-1.7 " + os.urandom(100_000))
        run = spawn([sys.executable, "client.py"], cwd=tmp_path)
        assert await run.ended == 0, run.err.decode()
        assert copy.read_bytes() == (tmp_path / "report.pdf").read_bytes()
        assert run.out.decode().startswith("report.pdf: 100009 bytes, sha256 ")
    finally:
        await server.stopListening()


# --- the pytest examples -------------------------------------------------------------


@pytest.mark.parametrize("marker", ["def test_upload(", "def test_idle_chat_users_are_told("])
def test_testing_examples_pass(marker: str, tmp_path: Path) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(snippet(marker), str(GUIDE), "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert len(tests) == 1
    (test,) = tests
    test(*([tmp_path] if "tmp_path" in inspect.signature(test).parameters else []))


# --- other guides ----------------------------------------------------------------------


@pytest.mark.parametrize("guide", OTHER_GUIDES, ids=lambda p: p.name)
@pytest_twisted.ensureDeferred
async def test_other_guides_snippets_run(guide: Path, tmp_path: Path) -> None:
    for number, code in enumerate(python_snippets(guide)):
        script = tmp_path / f"snippet{number}.py"
        script.write_text(code)
        run = spawn([sys.executable, str(script)], cwd=tmp_path)
        assert await run.ended == 0, f"{guide.name} snippet {number} failed:\n{code}\n{run.err.decode()}"


# --- the limits table ------------------------------------------------------------------


def limits_table() -> dict[str, list[tuple[str, str | None]]]:
    """class -> [(argument, default text or None when the table gives none)] from docs/embedding.md."""
    text = GUIDE.read_text().split("## Setting every limit from code", 1)[1].split("\n## ", 1)[0]
    table: dict[str, list[tuple[str, str | None]]] = {}
    for row in re.findall(r"^\| `(\w+)` \| (.*) \|$", text, re.M):
        name, cell = row
        arguments = []
        for chunk in re.findall(r"`([^`]*)`", cell):
            match = re.fullmatch(r"(\w+)(?:=(.*))?", chunk)
            if match and not chunk[0].isupper():  # skip prose such as `ChatServer(history=...)`
                arguments.append((match.group(1), match.group(2)))
        table[name] = arguments
    return table


def test_limits_table_lists_every_argument_with_its_default() -> None:
    table = limits_table()
    assert set(table) == {"EchoFactory", "UDPEchoProtocol", "ChatServer", "ChatFactory", "Storage", "FileFactory"}
    for name, documented in table.items():
        parameters = inspect.signature(getattr(suite, name)).parameters
        assert [argument for argument, _ in documented] == list(parameters), (
            f"{name}: the table in docs/embedding.md lists {[a for a, _ in documented]}, "
            f"the code takes {list(parameters)}"
        )
        for argument, default in documented:
            real = parameters[argument].default
            if default is None:  # `root`: required
                assert real is inspect.Parameter.empty, f"{name}({argument}=) has a default: document it"
            elif default == "":  # `run=`: a default described in words
                assert real is not inspect.Parameter.empty
            else:
                assert eval(default, {"time": time, "os": os}) == real, (  # noqa: S307 - our own doc
                    f"{name}({argument}=): the table says {default}, the code has {real!r}"
                )


def test_every_public_constructor_with_limits_is_in_the_table() -> None:
    """A new public factory with keyword limits must join the table."""
    documented = set(limits_table())
    for name in suite.__all__:
        thing = getattr(suite, name)
        if not inspect.isclass(thing) or issubclass(thing, BaseException) or name == "ListeningService":
            continue
        try:
            parameters = inspect.signature(thing).parameters.values()
        except (TypeError, ValueError):
            continue
        limits = [p for p in parameters if p.default is not inspect.Parameter.empty and p.name != "reactor"]
        if limits and (name.endswith(("Factory", "Server", "Protocol")) or name == "Storage"):
            assert name in documented, f"{name} takes {[p.name for p in limits]}: add it to the limits table"

