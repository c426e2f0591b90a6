"""
Concurrent nickname claims in memory: two nodes on one fake Redis that keeps
the nickname keys and answers scripts only when the test says so, so claims
from both nodes are in flight at the same moment.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from suite.chat import ChatFactory
from suite.chat.backplane import ClusterChatServer, RedisBackplane, scripts


class FakeRedis:
    """
    The nickname keys and the channel of one Redis.  Scripts wait in
    ``queue`` until :meth:`run` answers them, in the order they came (as
    Redis would, one at a time); ``CLAIM`` and ``PUBLISH`` do what the Lua
    scripts do to the nickname keys and the channel.
    """

    def __init__(self) -> None:
        self.nicks: dict[str, str] = {}  # nick key -> node
        self.links: list[FakeLink] = []
        self.queue: list[tuple[FakeLink, str, list[str], list[Any], defer.Deferred[Any]]] = []

    def run(self) -> None:
        """Answer every queued script (and those they lead to)."""
        while self.queue:
            link, script, keys, args, d = self.queue.pop(0)
            d.callback(self._execute(script, keys, args))

    def _execute(self, script: str, keys: list[str], args: list[Any]) -> Any:
        if script == scripts.CLAIM:
            node, new, old = args[0], keys[0], keys[1]
            if self.nicks.get(new, node) != node:
                return 0
            self.nicks[new] = node
            if old != new and self.nicks.get(old) == node:
                del self.nicks[old]
            if args[6]:
                self._deliver(args[6])
            return 1
        if script == scripts.PUBLISH:
            node = args[1]
            for i in range(2, len(args), 7):
                release = args[i + 6]
                if release and self.nicks.get(release) == node:
                    del self.nicks[release]
            self._deliver("[" + ",".join(args[2::7]) + "]")
            return len(self.links)
        return {scripts.SYNC: [1, [], []], scripts.SNAPSHOT: [], scripts.ROOM: [[], None]}.get(script, 1)

    def _deliver(self, message: str) -> None:
        for link in self.links:
            link.on_message(message)


class FakeLink:
    channel = "netsuite:chat:0:events"

    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        redis.links.append(self)
        self.up = False
        self.on_up = self.on_down = self.on_message = self.batch = None

    def start(self) -> defer.Deferred[None]:
        self.up = True
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        self.up = False
        return defer.succeed(None)

    def call(self, script: str, keys: list[str], args: list[Any]) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.redis.queue.append((self, script, keys, args, d))
        return d


class Node:
    def __init__(self, redis: FakeRedis, name: str) -> None:
        self.clock = Clock()
        self.backplane = RedisBackplane(FakeLink(redis), clock=self.clock, node_id=name * 12)
        self.server = ClusterChatServer(self.backplane)
        self.factory = ChatFactory(self.server, reactor=self.clock, max_per_ip=None)
        self.backplane.start()
        redis.run()
        self.redis = redis

    def user(self, nick: str) -> Any:
        proto = self.factory.buildProtocol(None)
        proto.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", 4000)))
        self.redis.run()
        proto.dataReceived(f"/nick {nick}\n".encode())
        self.clock.advance(0)
        self.redis.run()
        assert proto.nick == nick
        proto.transport.clear()
        return proto


def settle(*nodes: Node) -> None:
    """Every node sends what it queued, Redis answers all: the nodes are in step."""
    for node in nodes:
        node.clock.advance(0)
    nodes[0].redis.run()


def said(proto: Any) -> list[str]:
    data = proto.transport.value().decode()
    proto.transport.clear()
    return data.splitlines()


def nick_key(nick: str) -> str:
    return scripts.nick_key(nick)


def test_two_nodes_renaming_to_one_nick_at_once_one_wins() -> None:
    redis = FakeRedis()
    a, b = Node(redis, "a"), Node(redis, "b")
    x, y = a.user("x1"), b.user("y1")
    settle(a, b)
    said(x), said(y)
    x.dataReceived(b"/nick same\n")
    y.dataReceived(b"/nick SAME\n")
    # Both claims are in flight; nobody has been renamed yet.
    assert x.nick == "x1" and y.nick == "y1" and len(redis.queue) == 2
    redis.run()
    assert x.nick == "same" and said(x) == ["*** nick: x1 is now same"]
    assert y.nick == "y1" and said(y) == ["*** nick: x1 is now same", "!!! nick-taken: the nickname SAME is taken"]
    # The winner's old name was freed only with the new one held; the loser keeps its own.
    assert redis.nicks == {nick_key("same"): "a" * 12, nick_key("y1"): "b" * 12}
    assert b.backplane.remote_nick("same") == "same" and b.backplane.remote_nick("x1") is None


def test_two_users_of_one_node_renaming_to_one_nick_at_once_one_wins() -> None:
    # Redis would grant both claims (both are this node's): the node refuses the second itself.
    redis = FakeRedis()
    a = Node(redis, "a")
    x, y = a.user("x1"), a.user("y1")
    settle(a)
    said(x), said(y)
    x.dataReceived(b"/nick same\n")
    y.dataReceived(b"/nick Same\n")
    assert said(y) == ["!!! nick-taken: the nickname Same is taken"]
    assert len(redis.queue) == 1
    redis.run()
    assert x.nick == "same" and y.nick == "y1"
    assert redis.nicks == {nick_key("same"): "a" * 12, nick_key("y1"): "a" * 12}
    # Once the claim is answered the name is simply taken here.
    y.dataReceived(b"/nick same\n")
    assert said(y)[-1] == "!!! nick-taken: the nickname same is taken"


def test_renames_sent_before_the_first_is_answered_go_in_order() -> None:
    redis = FakeRedis()
    a = Node(redis, "a")
    x = a.user("x1")
    x.dataReceived(b"/nick first\n/nick second\n")
    assert len(redis.queue) == 1  # the second waits for the first
    redis.run()
    assert x.nick == "second"
    assert said(x) == ["*** nick: x1 is now first", "*** nick: first is now second"]
    # No claim left behind for the name in between.
    assert redis.nicks == {nick_key("second"): "a" * 12}


def test_a_queued_rename_to_a_name_taken_meanwhile_is_refused() -> None:
    redis = FakeRedis()
    a, b = Node(redis, "a"), Node(redis, "b")
    x, y = a.user("x1"), b.user("y1")
    settle(a, b)
    said(x), said(y)
    x.dataReceived(b"/nick first\n/nick prize\n")
    y.dataReceived(b"/nick prize\n")
    redis.run()
    assert y.nick == "prize" and x.nick == "first"
    assert "!!! nick-taken: the nickname prize is taken" in said(x)
    assert redis.nicks == {nick_key("first"): "a" * 12, nick_key("prize"): "b" * 12}


def test_a_user_leaving_with_a_rename_in_flight_frees_both_names() -> None:
    redis = FakeRedis()
    a = Node(redis, "a")
    x = a.user("x1")
    x.dataReceived(b"/nick gone\n/nick later\n")
    x.connectionLost(None)
    a.clock.advance(0)
    redis.run()
    a.clock.advance(0)
    redis.run()
    assert redis.nicks == {}
    assert a.backplane.claiming("gone") is None and a.backplane.claiming("later") is None


def test_two_users_of_one_node_claiming_look_alike_names_at_once_one_wins() -> None:
    # alice and Cyrillic аlice share one Redis claim key, which would be granted to this node twice.
    redis = FakeRedis()
    a = Node(redis, "a")
    x, y = a.user("x1"), a.user("y1")
    settle(a)
    said(x), said(y)
    x.dataReceived("/nick alice\n".encode())
    y.dataReceived("/nick \u0430lice\n".encode())
    assert said(y) == ["!!! nick-taken: the nickname \u0430lice is taken"]
    redis.run()
    assert x.nick == "alice" and y.nick == "y1"
    assert redis.nicks[nick_key("y1")] == "a" * 12
