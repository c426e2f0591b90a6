"""End to end: ``twistd -n netsuite`` as a child process, with real clients."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from tests.helpers import ProcessRun, connect_collector, listening_port, spawn, twistd


@pytest.fixture
def runs():
    """Child processes started by a test; any still running are stopped after it."""
    started: list[ProcessRun] = []
    yield started
    for run in started:
        if not run.ended.called:
            run.terminate()
            pytest_twisted.blockon(run.ended)


@pytest_twisted.ensureDeferred
async def test_echo_mode_serves_logs_and_stops_on_sigterm(runs, tmp_path: Path) -> None:
    server = twistd("--mode", "echo", "--listen", "tcp:0:interface=127.0.0.1", cwd=tmp_path)
    runs.append(server)
    port = await listening_port(server, "echo")
    assert port != 0
    client = spawn(["netsuite", "echo", f"127.0.0.1:{port}", "through twistd"])
    assert await client.ended == 0
    assert client.out == b"through twistd\n"
    # A connected client is closed when the server is told to stop.
    idle = await connect_collector(port)
    idle.transport.write(b"x")
    await idle.wait_for(1)
    server.terminate()
    await idle.lost
    # twistd re-raises SIGTERM after its orderly shutdown, as daemons should.
    assert await server.ended in (0, -signal.SIGTERM)
    assert b"echo stopped listening" in server.out
    assert b"Server Shut Down." in server.out
    assert not list(tmp_path.iterdir()), "no pid file or log left behind"


@pytest_twisted.ensureDeferred
async def test_all_mode_runs_every_service(runs, tmp_path: Path) -> None:
    server = twistd(
        "--mode", "all",
        "--echo-listen", "tcp:0:interface=127.0.0.1",
        "--udp-echo-listen", "udp:0:interface=127.0.0.1",
        "--chat-listen", "tcp:0:interface=127.0.0.1",
        "--upload-listen", "tcp:0:interface=127.0.0.1",
        "--storage", str(tmp_path / "files"),
        cwd=tmp_path,
    )
    runs.append(server)
    tcp_port = await listening_port(server, "echo")
    udp_port = await listening_port(server, "udp-echo")
    udp = spawn(["netsuite", "echo", "--udp", f"127.0.0.1:{udp_port}", "datagram"])
    tcp = spawn(["netsuite", "echo", f"127.0.0.1:{tcp_port}", "stream"])
    assert (await udp.ended, await tcp.ended) == (0, 0)
    assert (udp.out, tcp.out) == (b"datagram\n", b"stream\n")


@pytest_twisted.ensureDeferred
async def test_udp_on_ipv6(runs, tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    server = twistd("--mode", "udp-echo", "--listen", "udp:0:interface=::1", cwd=tmp_path)
    runs.append(server)
    port = await listening_port(server, "udp-echo")
    assert b"udp-echo listening on udp6 [::1]:" in server.out
    client = spawn(["netsuite", "echo", "--udp", f"[::1]:{port}", "v6"])
    assert await client.ended == 0
    assert client.out == b"v6\n"


@pytest_twisted.ensureDeferred
async def test_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    from twisted.internet.protocol import Factory, Protocol

    busy = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
    try:
        port = busy.getHost().port
        server = twistd("--mode", "echo", "--listen", f"tcp:{port}:interface=127.0.0.1", cwd=tmp_path)
        assert await server.ended != 0
    finally:
        await busy.stopListening()
    output = (server.out + server.err).decode()
    errors = [line for line in output.splitlines() if "cannot listen" in line]
    assert len(errors) == 1, output
    assert errors[0].endswith(f"netsuite: echo: cannot listen on tcp:{port}:interface=127.0.0.1: Address already in use")
    assert "Traceback" not in output


@pytest_twisted.ensureDeferred
async def test_unknown_mode_is_usage_error(tmp_path: Path) -> None:
    server = twistd("--mode", "nope", cwd=tmp_path)
    assert await server.ended != 0
    assert b"unknown mode 'nope'; choose one of: echo, udp-echo, chat, irc, upload, web, all" in server.out + server.err


@pytest_twisted.ensureDeferred
async def test_workers_share_the_port(runs, tmp_path: Path) -> None:
    server = twistd("--mode", "echo", "--workers", "2", "--listen", "tcp:0:interface=127.0.0.1", cwd=tmp_path)
    runs.append(server)
    port = await listening_port(server, "echo")
    await server.wait_for(rf"\[worker-1\] .* echo listening on tcp 127\.0\.0\.1:{port}".encode())
    clients = [spawn(["netsuite", "echo", f"127.0.0.1:{port}", f"client {n}"]) for n in range(6)]
    for n, client in enumerate(clients):
        assert await client.ended == 0
        assert client.out == f"client {n}\n".encode()
    server.terminate()
    assert await server.ended in (0, -signal.SIGTERM)
    assert b"Server Shut Down." in server.out


@pytest_twisted.ensureDeferred
async def test_udp_workers(runs, tmp_path: Path) -> None:
    server = twistd("--mode", "udp-echo", "--workers", "2", "--listen", "udp:0:interface=127.0.0.1", cwd=tmp_path)
    runs.append(server)
    port = await listening_port(server, "udp-echo")
    await server.wait_for(rf"\[worker-1\] .* udp-echo listening on udp 127\.0\.0\.1:{port}".encode())
    client = spawn(["netsuite", "echo", "--udp", f"127.0.0.1:{port}", "one", "two"])
    assert await client.ended == 0
    assert client.out == b"one\ntwo\n"
