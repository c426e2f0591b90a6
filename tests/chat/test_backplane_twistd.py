"""End to end: separate ``twistd netsuite --mode chat`` processes on one real redis-server."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from tests.chat.test_backplane_nodes import until
from tests.chat.test_loopback import LineClient, close_all
from tests.helpers import ProcessRun, listening_port, twistd
from tests.redis_server import RedisServer, free_port


@pytest.fixture
def runs():
    """Child processes started by a test; any still running are stopped after it."""
    started: list[ProcessRun] = []
    yield started
    for run in started:
        if not run.ended.called:
            run.terminate()
            pytest_twisted.blockon(run.ended)


async def node(runs: list[ProcessRun], url: str, tmp_path: Path, *extra: str) -> tuple[ProcessRun, int]:
    run = twistd("--mode", "chat", "--listen", "tcp:0:interface=127.0.0.1", "--chat-max-per-ip", "0",
                 "--chat-backplane", url, "--chat-node-timeout", "2", *extra, cwd=tmp_path)
    runs.append(run)
    port = await listening_port(run, "chat")
    await run.wait_for(rb"backplane connected to redis://127\.0\.0\.1:\d+")
    return run, port


async def client(port: int, nick: str) -> LineClient:
    line_client = LineClient()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), line_client)
    await line_client.wait_for(r"^\*\*\* join: guest\S+ joined lobby")
    line_client.transport.write(f"/nick {nick}\n".encode())
    await line_client.wait_for(rf"^\*\*\* nick: guest\S+ is now {nick}$")
    return line_client


@pytest_twisted.ensureDeferred
async def test_two_processes_one_chat_and_a_node_killed(runs, redis_server: RedisServer, tmp_path: Path) -> None:
    first, port1 = await node(runs, redis_server.url, tmp_path)
    second, port2 = await node(runs, redis_server.url, tmp_path)
    alice, bob = await client(port1, "alice"), await client(port2, "bob")
    await alice.wait_for(r"^\*\*\* nick: guest\S+ is now bob$")
    alice.transport.write(b"hello across processes\n")
    await bob.wait_for(r"^\[lobby\] <alice> hello across processes$")
    bob.transport.write(b"/msg alice psst\n")
    assert await alice.wait_for("psst") == "[private] <bob -> alice> psst"
    bob.transport.write(b"/nick alice\n")
    assert await bob.wait_for("^!!! ") == "!!! nick-taken: the nickname alice is taken"
    # SIGKILL: no goodbye; the claims expire within --chat-node-timeout (2 s).
    first.transport.signalProcess("KILL")
    await first.ended
    await bob.wait_for(r"^\*\*\* leave: alice left lobby \(node lost\)$")
    bob.transport.write(b"/nick alice\n")
    await bob.wait_for(r"^\*\*\* nick: bob is now alice$")
    await close_all(bob)


@pytest_twisted.ensureDeferred
async def test_redis_restarted_under_running_processes(runs, redis_server: RedisServer, tmp_path: Path) -> None:
    first, port1 = await node(runs, redis_server.url, tmp_path)
    second, port2 = await node(runs, redis_server.url, tmp_path)
    alice, bob = await client(port1, "alice"), await client(port2, "bob")
    await alice.wait_for(r"^\*\*\* nick: guest\S+ is now bob$")
    await redis_server.kill()
    await alice.wait_for(r"^\*\*\* backplane: lost the connection")
    await bob.wait_for(r"^\*\*\* backplane: lost the connection")
    await redis_server.start()
    await alice.wait_for(r"^\*\*\* backplane: connected to the other chat nodes again$")
    await bob.wait_for(r"^\*\*\* backplane: connected to the other chat nodes again$")
    await until(lambda: b"netsuite:chat:nick:a1ice" in redis_server.command("KEYS", "netsuite:chat:nick:*"),
                what="alice's claim back in Redis")
    bob.transport.write(b"/who\n")
    assert (await bob.wait_for(r"^\*\*\* who:")).startswith("*** who: 2 users in lobby:")
    alice.transport.write(b"after the restart\n")
    await bob.wait_for(r"^\[lobby\] <alice> after the restart$")
    await close_all(alice, bob)


@pytest_twisted.ensureDeferred
async def test_workers_are_nodes_of_one_chat(runs, redis_server: RedisServer, tmp_path: Path) -> None:
    run = twistd("--mode", "chat", "--listen", "tcp:0:interface=127.0.0.1", "--chat-max-per-ip", "0",
                 "--workers", "2", "--chat-backplane", redis_server.url, cwd=tmp_path)
    runs.append(run)
    port = await listening_port(run, "chat")
    await run.wait_for(rb"(?s)backplane connected.*backplane connected")
    clients = [await client(port, f"user{i}") for i in range(6)]
    clients[0].transport.write(b"to every worker\n")
    for other in clients[1:]:
        await other.wait_for(r"^\[lobby\] <user0> to every worker$")
    await close_all(*clients)


@pytest_twisted.ensureDeferred
async def test_unreachable_redis_is_one_error_and_a_failed_exit(tmp_path: Path) -> None:
    run = twistd("--mode", "chat", "--listen", "tcp:0:interface=127.0.0.1",
                 "--chat-backplane", f"redis://127.0.0.1:{free_port()}", cwd=tmp_path)
    code = await run.ended
    output = (run.out + run.err).decode()
    assert code != 0
    assert output.count("cannot reach the chat backplane") == 1
    assert "netsuite: cannot reach the chat backplane at redis://127.0.0.1:" in output


@pytest_twisted.ensureDeferred
async def test_bad_backplane_url_is_a_usage_error(tmp_path: Path) -> None:
    run = twistd("--mode", "chat", "--chat-backplane", "http://127.0.0.1", cwd=tmp_path)
    assert await run.ended != 0
    assert b"must start with redis://, rediss:// or unix://" in run.out + run.err


@pytest_twisted.ensureDeferred
async def test_a_node_stopped_normally_says_goodbye(runs, redis_server: RedisServer, tmp_path: Path) -> None:
    first, port1 = await node(runs, redis_server.url, tmp_path, "--chat-node-timeout", "600")
    second, port2 = await node(runs, redis_server.url, tmp_path, "--chat-node-timeout", "600")
    alice, bob = await client(port1, "alice"), await client(port2, "bob")
    await alice.wait_for(r"^\*\*\* nick: guest\S+ is now bob$")
    first.terminate()
    # twistd re-raises SIGTERM after its orderly shutdown.
    assert await first.ended in (0, -signal.SIGTERM)
    assert b"could not say goodbye" not in first.out + first.err
    assert b"publishing failed" not in first.out + first.err
    # Long before the 600 s timeout: the goodbye freed the name at once.
    await bob.wait_for(r"^\*\*\* leave: alice left lobby \(node stopped\)$")
    bob.transport.write(b"/nick alice\n")
    await bob.wait_for(r"^\*\*\* nick: bob is now alice$")
    await close_all(alice, bob)
