"""Two and three chat nodes on one real redis-server, in this process, on loopback sockets."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from suite.chat import ChatFactory
from suite.chat.backplane import BackplaneUnavailable, cluster_server
from tests.chat.test_loopback import LineClient, close_all
from tests.helpers import stop_tracked, track
from tests.redis_server import RedisServer, free_port


async def until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` every 10 ms until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await task.deferLater(reactor, 0.01, lambda: None)


class Node:
    """One chat node: a ClusterChatServer, its backplane and a listening ChatFactory."""

    def __init__(self, url: str, **options: Any) -> None:
        options.setdefault("node_timeout", 30.0)
        self.server = cluster_server(url, reactor, **options)
        self.backplane = self.server.backplane
        self.factory = track(ChatFactory(self.server, max_per_ip=None, flood_rate=None))
        self.port: Any = None

    async def start(self) -> Node:
        await self.backplane.start()
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        return self

    async def stop(self) -> None:
        if self.port is not None:
            port, self.port = self.port, None
            self.factory.doStop()  # closes every client, as twistd would
            await stop_tracked(self.factory, port)
        await self.backplane.stop()

    async def client(self, nick: str) -> LineClient:
        client = LineClient()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.port.getHost().port), client)
        await client.wait_for(r"^\*\*\* join: guest\S+ joined lobby")
        client.transport.write(f"/nick {nick}\n".encode())
        await client.wait_for(rf"^\*\*\* nick: guest\S+ is now {nick}$")
        return client


@pytest.fixture
def nodes(redis_server: RedisServer):
    started: list[Node] = []

    async def start(count: int = 2, **options: Any) -> list[Node]:
        new = [await Node(redis_server.url, **options).start() for _ in range(count)]
        started.extend(new)
        return new

    yield start
    for node in started:
        pytest_twisted.blockon(defer.ensureDeferred(node.stop()))


@pytest_twisted.ensureDeferred
async def test_rooms_messages_and_notices_span_nodes(nodes) -> None:
    a, b = await nodes(2)
    alice = await a.client("alice")
    bob = await b.client("bob")
    await alice.wait_for(r"^\*\*\* join: guest\S+ joined lobby$")
    await alice.wait_for(r"^\*\*\* nick: guest\S+ is now bob$")
    alice.transport.write(b"hello from a\n")
    await bob.wait_for(r"^\[lobby\] <alice> hello from a$")
    bob.transport.write(b"/me waves\n")
    await alice.wait_for(r"^\[lobby\] \* bob waves$")
    bob.transport.write(b"/who\n")
    assert await bob.wait_for(r"^\*\*\* who:") in (
        "*** who: 2 users in lobby: bob, alice", "*** who: 2 users in lobby: alice, bob")
    bob.transport.write(b"/join dev\n")
    await alice.wait_for(r"^\*\*\* leave: bob left lobby \(joined dev\)$")
    alice.transport.write(b"/rooms\n")
    assert await alice.wait_for(r"^\*\*\* rooms:") == "*** rooms: dev (1), lobby (1)"
    bob.transport.write(b"/topic shipping friday\n")
    await bob.wait_for("set the topic")
    alice.transport.write(b"/join dev\n")
    await alice.wait_for(r"^\*\*\* topic: topic of dev: shipping friday \(set by bob\)$")
    await bob.wait_for(r"^\*\*\* join: alice joined dev$")
    # Each notice once.
    assert sum(1 for line in bob.lines if line == "*** join: alice joined dev") == 1
    assert sum(1 for line in alice.lines if line == "[lobby] * bob waves") == 1
    await close_all(alice, bob)


@pytest_twisted.ensureDeferred
async def test_private_messages_and_nick_collisions_across_nodes(nodes) -> None:
    a, b, c = await nodes(3)
    alice, bob, carol = await a.client("alice"), await b.client("bob"), await c.client("carol")
    await until(lambda: a.backplane.remote_nick("carol") and c.backplane.remote_nick("alice"), what="mirrors")
    alice.transport.write(b"/msg bob psst\n")
    assert await bob.wait_for("psst") == "[private] <alice -> bob> psst"
    assert await alice.wait_for("psst") == "[private] <alice -> bob> psst"
    carol.transport.write(b"/nick ALICE\n")
    assert await carol.wait_for("^!!! ") == "!!! nick-taken: the nickname ALICE is taken"
    alice.transport.write(b"/nick alice2\n")
    await carol.wait_for(r"^\*\*\* nick: alice is now alice2$")
    carol.transport.write(b"/nick alice\n")
    await bob.wait_for(r"^\*\*\* nick: carol is now alice$")
    bob.transport.write(b"/msg alice to the new alice\n")
    assert await carol.wait_for("new alice") == "[private] <bob -> alice> to the new alice"
    assert not any("new alice" in line for line in alice.lines)
    bob.transport.write(b"/msg nobody hi\n")
    assert await bob.wait_for("^!!! ") == "!!! no-such-nick: nobody is called nobody"
    await close_all(alice, bob, carol)


@pytest_twisted.ensureDeferred
async def test_simultaneous_claims_give_the_nick_to_one_node(nodes, redis_server) -> None:
    a, b = await nodes(2)
    x, y = await a.client("x1"), await b.client("y1")
    x.transport.write(b"/nick same\n")
    y.transport.write(b"/nick same\n")
    await until(lambda: any("same" in l for l in x.lines) and any("same" in l for l in y.lines), what="answers")
    await until(lambda: "*** nick: x1 is now same" in x.lines + y.lines or "*** nick: y1 is now same" in x.lines + y.lines,
                what="the winner's notice")
    x_won = "*** nick: x1 is now same" in x.lines
    y_won = "*** nick: y1 is now same" in y.lines
    assert x_won != y_won
    loser = y if x_won else x
    assert "!!! nick-taken: the nickname same is taken" in loser.lines
    # Redis: the new name held by the winner's node, the winner's old name
    # freed, the loser's old name still held by its own node.
    winner_node, loser_node = (a, b) if x_won else (b, a)
    old_winner, old_loser = ("x1", "y1") if x_won else ("y1", "x1")
    held = redis_server.command("MGET", *(f"netsuite:chat:nick:{n}" for n in ("same", old_winner, old_loser)))
    assert held.split(b"\r\n")[1:-1] == [b"$12", winner_node.backplane.node.encode(), b"$-1",
                                         b"$12", loser_node.backplane.node.encode()]
    await close_all(x, y)


@pytest_twisted.ensureDeferred
async def test_simultaneous_claims_on_one_node_give_the_nick_to_one_user(nodes, redis_server) -> None:
    (a,) = await nodes(1)
    x, y = await a.client("x1"), await a.client("y1")
    x.transport.write(b"/nick same\n")
    y.transport.write(b"/nick same\n")
    await until(lambda: "*** nick: x1 is now same" in x.lines or "*** nick: y1 is now same" in y.lines,
                what="the winner's notice")
    x_won = "*** nick: x1 is now same" in x.lines
    loser, kept = (y, "y1") if x_won else (x, "x1")
    assert await loser.wait_for("^!!! ") == "!!! nick-taken: the nickname same is taken"
    assert (x.lines + y.lines).count(f"*** nick: {kept} is now same") == 0
    # The loser's own claim is untouched (Redis would have let this node take both).
    assert redis_server.command("GET", f"netsuite:chat:nick:{kept}").endswith(f"{a.backplane.node}\r\n".encode())


@pytest_twisted.ensureDeferred
async def test_renames_in_one_read_leave_only_the_last_claimed(nodes, redis_server) -> None:
    (a,) = await nodes(1)
    x = await a.client("x1")
    x.transport.write(b"/nick first\n/nick second\n")
    await x.wait_for(r"^\*\*\* nick: first is now second$")
    assert x.lines[-2:] == ["*** nick: x1 is now first", "*** nick: first is now second"]
    keys = redis_server.command("KEYS", "netsuite:chat:nick:*")
    assert b"nick:second" in keys and b"nick:first" not in keys and b"nick:x1" not in keys


@pytest_twisted.ensureDeferred
async def test_history_is_shared(nodes) -> None:
    a, b = await nodes(2)
    alice = await a.client("alice")
    alice.transport.write(b"/join archive\n")
    await alice.wait_for(r"joined archive")
    for i in range(3):
        alice.transport.write(f"line {i}\n".encode())
    await alice.wait_for(r"<alice> line 2$")
    bob = await b.client("bob")
    bob.transport.write(b"/join archive\n")
    await bob.wait_for(r"^\[history archive\] <alice> line 2$")
    history = [l for l in bob.lines if l.startswith("[history archive]")]
    assert history == [f"[history archive] <alice> line {i}" for i in range(3)]
    await close_all(alice, bob)


@pytest_twisted.ensureDeferred
async def test_lines_from_one_sender_arrive_in_order(nodes) -> None:
    a, b = await nodes(2)
    alice, bob = await a.client("alice"), await b.client("bob")
    await until(lambda: a.backplane.remote_nick("bob"), what="mirror")
    alice.transport.write(b"".join(f"n{i}\n".encode() for i in range(200)))
    await bob.wait_for(r"<alice> n199$")
    got = [l.rsplit(" ", 1)[1] for l in bob.lines if l.startswith("[lobby] <alice> n")]
    assert got == [f"n{i}" for i in range(200)]
    await close_all(alice, bob)


@pytest_twisted.ensureDeferred
async def test_unreachable_redis_at_start_fails_clearly() -> None:
    server = cluster_server(f"redis://127.0.0.1:{free_port()}", reactor, connect_timeout=0.5)
    with pytest.raises(BackplaneUnavailable, match=r"no answer from redis://127\.0\.0\.1:\d+ within 0\.5s"):
        await server.backplane.start()
    await server.backplane.stop()


@pytest_twisted.ensureDeferred
async def test_malformed_messages_are_ignored_and_logged(nodes, redis_server, caplog_events) -> None:
    a, b = await nodes(2)
    alice = await a.client("alice")
    for bad in ("not-json", '{"v":2}', '{"v":1,"n":"x","s":1,"k":"msg","u":"mallory","r":"lobby"}'):
        redis_server.command("PUBLISH", "netsuite:chat:0:events", f"'{bad}'")
    await until(lambda: a.backplane.ignored == 3 and b.backplane.ignored == 3, what="ignored")
    logged = [e for e in caplog_events if "does not follow the backplane format" in e.get("log_format", "")]
    assert len(logged) == 2  # one per node: throttled
    alice.transport.write(b"still fine\n")
    await alice.wait_for("still fine")
    await close_all(alice)


@pytest_twisted.ensureDeferred
async def test_a_silent_node_frees_its_nicks_and_its_users_leave_in_time(nodes) -> None:
    a, b = await nodes(2, node_timeout=3.0)
    alice, bob = await a.client("alice"), await b.client("bob")
    await until(lambda: b.backplane.remote_nick("alice"), what="mirror")
    # Node a stops renewing and vanishes from Redis without a goodbye.
    a.backplane._beat.stop()
    a.backplane.up = False
    await a.backplane.link.stop()
    started = time.monotonic()
    await bob.wait_for(r"^\*\*\* leave: alice left lobby \(node lost\)$")
    # Within the node timeout (3 s) the flag promises, with slack for a busy shared machine.
    assert time.monotonic() - started < 3.0 + 3.0
    bob.transport.write(b"/nick alice\n")
    await bob.wait_for(r"^\*\*\* nick: bob is now alice$")
    await close_all(alice, bob)


@pytest_twisted.ensureDeferred
async def test_redis_killed_and_restarted_mid_chat(nodes, redis_server) -> None:
    a, b = await nodes(2, node_timeout=3)
    alice, bob = await a.client("alice"), await b.client("bob")
    await until(lambda: a.backplane.remote_nick("bob") and b.backplane.remote_nick("alice"), what="mirrors")
    await redis_server.kill()
    for client in (alice, bob):
        await client.wait_for(r"^\*\*\* backplane: lost the connection")
    alice.transport.write(b"during the outage\n")
    assert await alice.wait_for("^!!! ") == (
        "!!! backplane-down: the other chat nodes are out of reach: only users on this node got that")
    alice.transport.write(b"/nick alicia\n")
    await alice.wait_for("^!!! backplane-down: nicknames cannot change")
    await redis_server.start()
    for client in (alice, bob):
        await client.wait_for(r"^\*\*\* backplane: connected to the other chat nodes again$")
    # One notice each way, the registry rebuilt in the empty Redis.
    assert sum("lost the connection" in line for line in alice.lines) == 1
    await until(lambda: a.backplane.remote_nick("bob") and b.backplane.remote_nick("alice"), what="mirrors rebuilt")
    assert redis_server.command("GET", "netsuite:chat:nick:a1ice").endswith(f"{a.backplane.node}\r\n".encode())  # the look of alice
    alice.transport.write(b"after the outage\n")
    await bob.wait_for(r"^\[lobby\] <alice> after the outage$")
    assert not any("during the outage" in line for line in bob.lines)
    bob.transport.write(b"/nick alice\n")
    assert await bob.wait_for("^!!! ") == "!!! nick-taken: the nickname alice is taken"
    bob.transport.write(b"/who\n")
    assert (await bob.wait_for(r"^\*\*\* who:")).startswith("*** who: 2 users in lobby:")
    await close_all(alice, bob)


@pytest_twisted.ensureDeferred
async def test_nodes_over_a_unix_socket_and_tcp_share_one_chat(redis_server) -> None:
    a = await Node(f"unix://{redis_server.socket}").start()
    b = await Node(redis_server.url).start()
    try:
        alice, bob = await a.client("alice"), await b.client("bob")
        alice.transport.write(b"over a unix socket\n")
        await bob.wait_for(r"^\[lobby\] <alice> over a unix socket$")
        await close_all(alice, bob)
    finally:
        await a.stop()
        await b.stop()


@pytest_twisted.ensureDeferred
async def test_a_password_from_a_file(tmp_path) -> None:
    from suite.chat.backplane import parse_backplane_url

    redis = RedisServer(tmp_path, password="correct-horse-battery")
    await redis.start()
    try:
        (tmp_path / "pw").write_text("correct-horse-battery\n")
        url = parse_backplane_url(f"redis://127.0.0.1:{redis.port}", str(tmp_path / "pw"))
        node = Node(url)  # type: ignore[arg-type]
        await node.start()
        alice = await node.client("alice")
        await close_all(alice)
        await node.stop()
        wrong = cluster_server(f"redis://:wrong@127.0.0.1:{redis.port}", reactor, connect_timeout=1.0)
        with pytest.raises(BackplaneUnavailable, match="refused the connection: .*WRONGPASS"):
            await wrong.backplane.start()
        await wrong.backplane.stop()
    finally:
        await redis.stop()


@pytest_twisted.ensureDeferred
async def test_rediss_checks_the_certificate(tmp_path) -> None:
    from tests.helpers import make_certificate

    key, cert = make_certificate(tmp_path)
    redis = RedisServer(tmp_path, tls=(key, cert))
    await redis.start()
    try:
        node = await Node(f"rediss://localhost:{redis.tls_port}?ca={cert}").start()
        alice = await node.client("alice")
        await close_all(alice)
        await node.stop()
        # The system's roots do not know this self-signed certificate.
        untrusted = cluster_server(f"rediss://localhost:{redis.tls_port}", reactor, connect_timeout=1.0)
        with pytest.raises(BackplaneUnavailable):
            await untrusted.backplane.start()
        await untrusted.backplane.stop()
    finally:
        await redis.stop()


@pytest_twisted.ensureDeferred
async def test_both_redis_connections_send_without_delay(nodes) -> None:
    (a,) = await nodes(1)
    link = a.backplane.link
    # Nagle off: a small command is not held back while the previous one is unacknowledged.
    assert link._cmd.transport.getTcpNoDelay() and link._sub.transport.getTcpNoDelay()


@pytest_twisted.ensureDeferred
async def test_rooms_nobody_is_in_leave_no_keys_behind(nodes, redis_server) -> None:
    # Heartbeat every 0.5 s, room keys live 2 s past their last use.
    a, b = await nodes(2, node_timeout=1.5, room_ttl=2.0)
    alice, bob = await a.client("alice"), await b.client("bob")
    for n in range(30):  # many rooms, used once and left
        alice.transport.write(f"/join tmp{n}\n/topic t{n}\nline {n}\n".encode())
    alice.transport.write(b"/join lobby\nkept\n")
    await bob.wait_for(r"^\[lobby\] <alice> kept$")

    def room_keys() -> set[bytes]:
        reply = redis_server.command("KEYS", "netsuite:chat:*:tmp*") + redis_server.command("KEYS", "netsuite:chat:*:lobby")
        return {line for line in reply.split(b"\r\n") if line.startswith(b"netsuite:")}

    assert b"netsuite:chat:topic:tmp29" in room_keys() and b"netsuite:chat:history:lobby" in room_keys()
    ttl = int(redis_server.command("PTTL", "netsuite:chat:history:tmp0").split(b":")[1])
    assert 0 < ttl <= 2000
    await until(lambda: room_keys() == {b"netsuite:chat:history:lobby"}, timeout=10, what="the empty rooms' keys to expire")
    # The room in use outlives the TTL: its nodes renew it.
    await close_all(alice, bob)
