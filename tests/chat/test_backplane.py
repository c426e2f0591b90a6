"""The backplane's logic in memory: a fake Redis link, other nodes' events injected, a fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from suite.chat import ChatFactory
from suite.chat.backplane import BackplaneUnavailable, ClusterChatServer, RedisBackplane, parse_backplane_url, scripts
from suite.chat.backplane.events import BadEvent, decode, encode


class FakeLink:
    """Records every script call; answers from ``replies`` (script -> reply) or with 1."""

    channel = "netsuite:chat:0:events"

    def __init__(self) -> None:
        self.up = False
        self.calls: list[tuple[str, list[str], list[Any]]] = []
        self.replies: dict[str, Any] = {scripts.SYNC: [1, [], []], scripts.SNAPSHOT: [], scripts.ROOM: [[], None]}
        self.on_up = self.on_down = self.on_message = self.batch = None

    def start(self) -> defer.Deferred[None]:
        self.up = True
        return defer.succeed(None)

    def stop(self) -> defer.Deferred[None]:
        self.up = False
        return defer.succeed(None)

    def call(self, script: str, keys: list[str], args: list[Any]) -> defer.Deferred[Any]:
        if not self.up:
            return defer.fail(BackplaneUnavailable("down"))
        self.calls.append((script, keys, args))
        reply = self.replies.get(script, 1)
        if isinstance(reply, defer.Deferred):
            return reply
        if isinstance(reply, list) and script == scripts.CLAIM:
            reply = reply.pop(0) if len(reply) > 1 else reply[0]
        return defer.fail(reply) if isinstance(reply, Exception) else defer.succeed(reply)

    def published(self) -> list[dict[str, Any]]:
        """Every event published so far (7 script arguments each, after channel and node)."""
        return [decode(event) for script, _, args in self.calls if script == scripts.PUBLISH for event in args[2::7]]

    def stores(self) -> list[tuple[str, str, str]]:
        """(event kind, store key, store mode) of every event published so far."""
        return [(decode(args[i])["k"], args[i + 4], args[i + 5]) for script, _, args in self.calls
                if script == scripts.PUBLISH for i in range(2, len(args), 7)]


class Cluster:
    """One node in memory, and helpers to speak for the other nodes."""

    def __init__(self, **kwargs: Any) -> None:
        self.clock = Clock()
        self.link = FakeLink()
        self.backplane = RedisBackplane(self.link, node_timeout=30, clock=self.clock, node_id="here00000000")
        self.server = ClusterChatServer(self.backplane, **kwargs)
        self.factory = ChatFactory(self.server, reactor=self.clock, max_per_ip=None)
        self.backplane.start()
        self._seq = 0

    def user(self, nick: str) -> Any:
        proto = self.factory.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", 4000 + self._seq))
        self._seq += 1
        proto.makeConnection(transport)
        proto.dataReceived(f"/nick {nick}\n".encode())
        transport.clear()
        return proto

    def remote(self, kind: str, node: str = "there0000000", **fields: Any) -> None:
        self._seq += 1
        self.backplane.received("[" + encode(node, self._seq, kind, **fields) + "]")

    def turn(self) -> None:
        """End the reactor turn: queued events are sent."""
        self.clock.advance(0)


def lines(proto: Any) -> list[str]:
    data = proto.transport.value().decode()
    proto.transport.clear()
    return data.splitlines()


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


def test_local_lines_and_changes_are_published_in_order(cluster: Cluster) -> None:
    alice = cluster.user("alice")
    alice.dataReceived(b"hello\n/me waves\n/join dev\n")
    cluster.turn()
    kinds = [(e["k"], e.get("u"), e.get("r"), e.get("t")) for e in cluster.link.published()]
    assert kinds[-3:] == [("msg", "alice", "lobby", "hello"), ("act", "alice", "lobby", "waves"), ("join", "alice", "dev", None)]
    claims = [args for script, _, args in cluster.link.calls if script == scripts.CLAIM]
    assert claims[-1][3] == "alice" and "is now" not in claims[-1][6] and '"k":"nick"' in claims[-1][6]
    # The history entry is stored with the line, capped at --history.
    assert ("msg", scripts.history_key("lobby"), "list 20 86400000") in cluster.link.stores()
    # One reactor turn, one script: the lines of one read go together.
    alice.dataReceived(b"a\nb\nc\n")
    cluster.turn()
    assert [len(args[2:]) // 7 for script, _, args in cluster.link.calls if script == scripts.PUBLISH][-1] == 3


def test_other_nodes_users_are_shown_once_in_the_same_forms(cluster: Cluster) -> None:
    alice = cluster.user("alice")
    cluster.remote("join", u="bob", r="lobby")
    cluster.remote("msg", u="bob", r="lobby", t="hi\x1b[31m")
    cluster.remote("act", u="bob", r="lobby", t="waves")
    cluster.remote("nick", o="bob", u="robert", r="lobby")
    cluster.remote("join", u="robert", r="dev")
    assert lines(alice) == [
        "*** join: bob joined lobby",
        "[lobby] <bob> hi\ufffd[31m",
        "[lobby] * bob waves",
        "*** nick: bob is now robert",
        "*** leave: robert left lobby (joined dev)",
    ]
    alice.dataReceived(b"/rooms\n/who\n")
    assert lines(alice) == ["*** rooms: dev (1), lobby (1)", "*** who: 1 user in lobby: alice"]
    # Our own events coming back are ignored.
    cluster.backplane.received("[" + encode(cluster.backplane.node, 99, "msg", u="alice", r="lobby", t="echo") + "]")
    assert lines(alice) == []


def test_private_messages_to_another_node(cluster: Cluster) -> None:
    alice = cluster.user("alice")
    cluster.remote("join", u="bob", r="lobby")
    lines(alice)
    alice.dataReceived(b"/msg BOB psst\n")
    cluster.turn()
    assert lines(alice) == ["[private] <alice -> bob> psst"]
    assert cluster.link.published()[-1]["k"] == "priv" and cluster.link.published()[-1]["to"] == "bob"
    cluster.remote("priv", u="bob", to="alice", t="back")
    cluster.remote("priv", u="bob", to="nobody", t="lost")
    assert lines(alice) == ["[private] <bob -> alice> back"]


def test_a_nick_held_on_another_node_is_refused_before_asking_redis(cluster: Cluster) -> None:
    alice = cluster.user("alice")
    cluster.remote("join", u="bob", r="dev")
    calls = len(cluster.link.calls)
    alice.dataReceived(b"/nick Bob\n")
    assert lines(alice) == ["!!! nick-taken: the nickname Bob is taken"]
    assert len(cluster.link.calls) == calls


def test_a_guest_name_held_elsewhere_is_replaced(cluster: Cluster) -> None:
    cluster.link.replies[scripts.CLAIM] = [0, 1]
    proto = cluster.factory.buildProtocol(None)
    proto.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", 1)))
    assert proto.nick == "guest2-here"
    assert "another node holds the nickname guest1-here" in proto.transport.value().decode()


def test_a_claim_redis_refuses_is_an_error(cluster: Cluster) -> None:
    alice = cluster.user("alice")
    cluster.link.replies[scripts.CLAIM] = 0
    alice.dataReceived(b"/nick carol\n")
    assert lines(alice) == ["!!! nick-taken: the nickname carol is taken"]
    assert alice.nick == "alice"


def test_dead_nodes_users_leave_when_the_heartbeat_finds_them_gone(cluster: Cluster) -> None:
    alice = cluster.user("alice")
    cluster.remote("join", u="bob", r="lobby")
    cluster.remote("join", u="carol", r="lobby", node="else00000000")
    lines(alice)
    cluster.link.replies[scripts.SYNC] = [1, [], ["here00000000", "else00000000"]]
    cluster.clock.advance(10)
    assert lines(alice) == ["*** leave: bob left lobby (node lost)"]
    assert cluster.backplane.remote_nick("bob") is None and cluster.backplane.remote_nick("carol") == "carol"


def test_a_nick_taken_while_cut_off_becomes_a_guest_name(cluster: Cluster) -> None:
    alice = cluster.user("alice")
    cluster.link.replies[scripts.SYNC] = [1, ["alice"], ["here00000000"]]
    cluster.clock.advance(10)
    out = lines(alice)
    assert out[0].startswith("*** nick: another node holds the nickname alice (taken while this node was cut off); you are guest")
    assert alice.nick.startswith("guest") and alice.nick.endswith("-here")


def test_losing_redis_tells_users_once_and_lines_sent_meanwhile_are_refused(cluster: Cluster) -> None:
    alice, bob = cluster.user("alice"), cluster.user("bob")
    lines(alice)
    cluster.link.up = False
    cluster.backplane._link_down()
    cluster.backplane._link_down()
    assert lines(alice) == ["*** backplane: lost the connection to the other chat nodes; until it is back, only users on this node hear you"]
    lines(bob)
    alice.dataReceived(b"anyone?\n")
    assert lines(bob) == ["[lobby] <alice> anyone?"]
    assert lines(alice) == ["[lobby] <alice> anyone?", "!!! backplane-down: the other chat nodes are out of reach: only users on this node got that"]
    alice.dataReceived(b"/nick al\n")
    assert lines(alice) == ["!!! backplane-down: nicknames cannot change while the other chat nodes are out of reach"]
    cluster.link.up = True
    cluster.backplane._link_up()
    assert lines(alice) == ["*** backplane: connected to the other chat nodes again"]
    hello = cluster.link.published()[-1]
    assert hello["k"] == "hello" and sorted(hello["users"]) == [["alice", "lobby"], ["bob", "lobby"]]


def test_a_publish_that_fails_in_flight_is_reported_to_its_sender(cluster: Cluster) -> None:
    alice = cluster.user("alice")
    cluster.link.replies[scripts.PUBLISH] = BackplaneUnavailable("connection lost")
    alice.dataReceived(b"hi\nho\n")
    cluster.turn()
    assert sum(line.startswith("!!! backplane-down:") for line in lines(alice)) == 1



def test_resync_rebuilds_the_mirror_from_the_snapshot(cluster: Cluster) -> None:
    alice = cluster.user("alice")
    cluster.remote("join", u="ghost", r="lobby")
    lines(alice)
    cluster.link.replies[scripts.SNAPSHOT] = ["there0000000", ["bob", "bob lobby"], "here00000000", ["alice", "alice lobby"]]
    cluster.backplane._link_up()
    assert lines(alice) == ["*** leave: ghost left lobby (node lost)", "*** join: bob joined lobby"]


def test_history_and_topic_of_a_room_come_from_redis_when_it_opens_here(cluster: Cluster) -> None:
    alice = cluster.user("alice")
    stored = [encode("there0000000", 1, "msg", u="bob", r="dev", t="old one"),
              encode("there0000000", 2, "act", u="bob", r="dev", t="older")]
    cluster.link.replies[scripts.ROOM] = [stored, encode("there0000000", 3, "topic", u="bob", r="dev", t="plans", at=5.0)]
    alice.dataReceived(b"/join dev\n")
    assert lines(alice) == [
        "*** join: alice joined dev",
        "*** topic: topic of dev: plans (set by bob)",
        "[history dev] <bob> old one",
        "[history dev] * bob older",
    ]
    assert list(cluster.server.find_room("dev").history) == [b"[dev] <bob> old one\n", b"[dev] * bob older\n"]


def test_malformed_events_are_ignored_and_logged_throttled(cluster: Cluster, caplog_events: list) -> None:
    alice = cluster.user("alice")
    mixed = "[" + encode("x", 1, "msg", u="a", r="lobby", t="x") + "," + encode("y", 1, "msg", u="b", r="lobby", t="y") + "]"
    for raw in ("nope", "[1]", mixed, '{"v":1}', encode("x", 1, "msg", u="bad nick", r="lobby", t="x"),
                encode("x", 1, "msg", u="a", r="lobby", t=5), "x" * 70000,
                encode("x", 1, "hello", users=[["a"]])):
        cluster.backplane.received(raw)
    assert cluster.backplane.ignored == 8
    assert lines(alice) == []
    logged = [e for e in caplog_events if "does not follow the backplane format" in e.get("log_format", "")]
    assert len(logged) == 1


@pytest.mark.parametrize("raw, why", [
    ('{"v":1,"n":"x","s":1,"k":"boom"}', "unknown kind"),
    ('{"v":1,"n":"x","s":"1","k":"bye"}', "sequence"),
    ('{"v":1,"n":"x","s":1,"k":"topic","u":"a","r":"b","t":"c"}', "'at'"),
])
def test_decode_says_what_is_wrong(raw: str, why: str) -> None:
    with pytest.raises(BadEvent, match=why):
        decode(raw)


@pytest.mark.parametrize("text, shown", [
    ("redis://127.0.0.1", "redis://127.0.0.1:6379"),
    ("redis://:secret@localhost:7000/2", "redis://localhost:7000/2"),
    ("rediss://cache.example:6380", "rediss://cache.example:6380"),
    ("redis://[::1]:6379", "redis://[::1]:6379"),
    ("unix:///run/redis/redis.sock?db=1", "unix:///run/redis/redis.sock?db=1"),
])
def test_backplane_urls(text: str, shown: str) -> None:
    url = parse_backplane_url(text)
    assert url.display() == shown and "secret" not in repr(url)


@pytest.mark.parametrize("text, error", [
    ("http://x", "must start with"),
    ("redis://", "names no host"),
    ("redis://h:99999", "not a redis"),
    ("redis://h/x", "database must be a number"),
    ("unix://host/path", "unix:///absolute"),
    ("redis://h?ca=/etc/hosts", "for rediss://"),
    ("rediss://h?ca=/nonexistent/ca.pem", "cannot read the backplane CA file"),
])
def test_bad_backplane_urls(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_backplane_url(text)


def test_password_file(tmp_path) -> None:
    path = tmp_path / "pw"
    path.write_text("s3cret\n")
    assert parse_backplane_url("redis://h", str(path)).password == "s3cret"
    with pytest.raises(ValueError, match="not both"):
        parse_backplane_url("redis://:x@h", str(path))
    path.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        parse_backplane_url("redis://h", str(path))
    with pytest.raises(ValueError, match="cannot read"):
        parse_backplane_url("redis://h", str(tmp_path / "missing"))


def test_lines_beyond_the_in_flight_cap_are_refused_and_their_senders_told(cluster: Cluster) -> None:
    alice = cluster.user("alice")
    cluster.backplane.max_in_flight = 2
    cluster.link.replies[scripts.PUBLISH] = defer.Deferred()  # Redis stuck: no answer
    alice.dataReceived(b"one\ntwo\n")
    cluster.turn()
    alice.dataReceived(b"three\n")
    got = lines(alice)
    # The refused line still reached this node's users; its sender is told once.
    assert sorted(got) == sorted([
        "[lobby] <alice> one", "[lobby] <alice> two", "[lobby] <alice> three",
        "!!! backplane-down: the other chat nodes are out of reach: only users on this node got that",
    ])


def test_room_keys_expire_unless_a_node_with_users_in_the_room_renews_them(cluster: Cluster) -> None:
    alice = cluster.user("alice")
    alice.dataReceived(b"/join dev\n/topic plans\n/join lobby\n")
    cluster.turn()
    # Every write sets the time to live (--chat-room-ttl, a day by default).
    assert ("topic", scripts.topic_key("dev"), "set 0 86400000") in cluster.link.stores()
    # The heartbeat renews the rooms this node's users are in, and only those.
    cluster.clock.advance(10)
    renewed = [keys for script, keys, args in cluster.link.calls if script == scripts.ROOMS]
    assert renewed[-1] == [scripts.history_key("lobby"), scripts.topic_key("lobby")]
    with pytest.raises(ValueError, match="room_ttl must be more than 0"):
        RedisBackplane(FakeLink(), room_ttl=0)
