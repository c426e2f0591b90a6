"""The operations guide, checked: options table, JSON logs, TLS walk-through, systemd activation."""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from suite.tap import Options
from tests.chat.test_loopback import join
from tests.helpers import BIN, ROOT, ProcessRun, listening_port, spawn, twistd

GUIDE = (ROOT / "docs" / "operations.md").read_text()


def test_every_option_is_in_the_guide() -> None:
    names = [p[0] for p in Options.optParameters]
    names += [name[len("opt_"):].replace("_", "-") for name in dir(Options) if name.startswith("opt_")
              and name not in ("opt_help", "opt_version")]
    missing = [name for name in names if f"`--{name}`" not in GUIDE]
    assert not missing, f"options missing from docs/operations.md: {missing}"


@pytest_twisted.ensureDeferred
async def test_json_logs(tmp_path: Path) -> None:
    server = spawn(["twistd", "-n", "--pidfile=", "--logger", "suite.logs.json", "netsuite", "--mode", "echo",
                    "--listen", "tcp:0:interface=127.0.0.1"], cwd=tmp_path, stdin=None)
    try:
        await server.wait_for(rb'"service": "echo"')
        await server.wait_for(rb'listening on[^\x1e]*\n')
    finally:
        server.terminate()
        await server.ended
    events = [json.loads(record) for record in server.out.decode().split("\x1e") if record.strip()]
    (listening,) = [e for e in events if e.get("log_format") == "{service} listening on {address}"]
    assert listening["service"] == "echo"
    assert re.fullmatch(r"tcp 127\.0\.0\.1:\d+", listening["address"])


OPENSSL = re.search(r"\$ (openssl req [^\n]*)\n", GUIDE.replace("\\\n", " "))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest_twisted.ensureDeferred
async def test_tls_walk_through(tmp_path: Path) -> None:
    assert OPENSSL, "the openssl step is missing from the guide"
    command = " ".join(OPENSSL.group(1).split())
    made = spawn(["/bin/sh", "-c", command], cwd=tmp_path)
    assert await made.ended == 0, made.err
    server = twistd("--mode", "echo", "--listen",
                    "ssl:0:interface=127.0.0.1:privateKey=key.pem:certKey=cert.pem", cwd=tmp_path)
    try:
        port = await listening_port(server, "echo")
        client = spawn(["netsuite", "echo", "--tls", "--cafile", str(tmp_path / "cert.pem"),
                        f"localhost:{port}", "over TLS"])
        assert await client.ended == 0, client.err
        assert client.out == b"over TLS\n"
    finally:
        server.terminate()
        await server.ended


@pytest_twisted.ensureDeferred
async def test_systemd_socket_activation(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    run = ProcessRun()
    twistd_path = str(BIN / "twistd")
    # What systemd does: the socket as descriptor 3, LISTEN_PID naming the service's
    # own pid, LISTEN_FDNAMES the socket unit's name.
    script = ('LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=netsuite-chat.socket exec "$0" -n --pidfile= '
              "netsuite --mode chat --chat-listen systemd:domain=INET:name=netsuite-chat.socket")
    reactor.spawnProcess(run, "/bin/sh", ["/bin/sh", "-c", script, twistd_path], path=str(tmp_path),
                         childFDs={0: "w", 1: "r", 2: "r", 3: listener.fileno()})
    listener.close()  # twistd has it now
    run.transport.closeStdin()
    try:
        await run.wait_for(f"chat listening on tcp 127.0.0.1:{port}".encode())
        alice = await join(port, "alice")
        alice.transport.loseConnection()
        await alice.lost
    finally:
        run.terminate()
        await run.ended
