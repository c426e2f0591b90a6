"""
One chat node's side of the backplane: what it tells the other nodes, and
what it makes of what they tell it.

A :class:`RedisBackplane` publishes every change its own users make (one
script per change, so per-sender order holds), keeps a mirror of the other
nodes' users (``remote``) built from a snapshot plus the events that follow,
renews its nickname claims with a heartbeat, and notices dead nodes by
their expired keys.  It drives a ``ClusterChatServer``
through its ``remote_*`` methods; it talks to Redis through a link (a
``RedisLink``, or a fake one in tests).
"""

from __future__ import annotations

import itertools
import secrets
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from suite.chat.backplane import events, scripts
from suite.chat.backplane.claims import BACKPLANE_DOWN, NickClaims
from suite.chat.backplane.inbox import BackplaneInbox
from suite.chat.backplane.mirror import RemoteUsers
from suite.limits import ThrottledLog

if TYPE_CHECKING:
    from suite.chat.backplane.server import ClusterChatServer
    from suite.chat.rooms import ChatRoom, ChatUser

__all__ = ["BackplaneLink", "BackplaneUnavailable", "RedisBackplane"]

class BackplaneUnavailable(Exception):
    """Redis cannot be reached (at start, or for a command while it is lost)."""


class BackplaneLink(Protocol):
    """What the backplane needs of its Redis connections (:class:`RedisLink` is one)."""

    up: bool
    channel: str
    on_up: Any
    on_down: Any
    on_message: Any
    batch: Any

    def start(self) -> defer.Deferred[None]: ...
    def stop(self) -> defer.Deferred[Any]: ...
    def call(self, script: str, keys: list[str], args: list[Any]) -> defer.Deferred[Any]: ...


class RedisBackplane(NickClaims, BackplaneInbox):
    """
    Joins one node's chat to every other node on the same Redis.

    :param node_timeout: seconds after which a node that stopped renewing
        its claims counts as dead: its nicknames are free and its users
        leave their rooms within this time.
    :param node_id: this node's id (random if not given).
    :param room_ttl: seconds a room's history and topic stay in Redis after
        the last line or topic, or after the last heartbeat of a node with
        users in it (``None``: for ever).
    """

    log = Logger()
    DEFAULT_NODE_TIMEOUT = 30.0
    DEFAULT_ROOM_TTL = 86400.0
    DEFAULT_MAX_IN_FLIGHT = 50_000

    def __init__(self, link: BackplaneLink, *, node_timeout: float = DEFAULT_NODE_TIMEOUT,
                 clock: Any = None, node_id: str | None = None, room_ttl: float | None = DEFAULT_ROOM_TTL) -> None:
        if node_timeout <= 0:
            raise ValueError(f"node_timeout must be more than 0, not {node_timeout!r}")
        if room_ttl is not None and room_ttl <= 0:
            raise ValueError(f"room_ttl must be more than 0, not {room_ttl!r}")
        #: Milliseconds a room's history and topic outlive their last use (0: for ever).
        self.room_ttl_ms = max(1, int(room_ttl * 1000)) if room_ttl is not None else 0
        from suite._reactor import or_global_reactor

        self.clock = or_global_reactor(clock)
        self.link = link
        link.on_up, link.on_down, link.on_message = self._link_up, self._link_down, self.received
        self.node = node_id or secrets.token_hex(6)
        #: A short tag in this node's guest nicknames, so nodes do not pick the same ones.
        self.tag = self.node[:4]
        self._echo = events.encode(self.node, 0, "bye")[: -len('0,"k":"bye"}')]
        self.node_timeout = node_timeout
        # Claims live for two heartbeats: one late heartbeat is not a death.
        self.ttl_ms = max(1, int(node_timeout * 2000 / 3))
        self.server: ClusterChatServer | None = None
        #: Other nodes' users (set up by :meth:`attach`).
        self.remote: RemoteUsers | None = None
        self.up = False
        #: Set once :meth:`stop` has said goodbye.
        self.stopping = False
        self._seq = itertools.count(1)
        self._beat = LoopingCall(self._tick)
        self._beat.clock = self.clock
        self._buffer: list[dict[str, Any]] | None = None
        self._told_down = False
        self._claiming: dict[Any, list[str]] = {}
        self._reserved: dict[str, Any] = {}
        #: Rooms being loaded: name key -> (event ids seen live meanwhile, (id, line) kept).
        self._loading: dict[str, tuple[set[str], list[tuple[str, bytes]]]] = {}
        self._bad = ThrottledLog(self.log, self.clock)
        self._failed = ThrottledLog(self.log, self.clock)
        self.ignored = 0
        #: Events queued for this turn: 7 script arguments each.
        self._pending: list[Any] = []
        self._pending_users: list[Any] = []
        self._flush_call: Any = None
        self._in_flight = 0
        #: Events waiting for Redis beyond which new ones are refused (and their senders told).
        self.max_in_flight = self.DEFAULT_MAX_IN_FLIGHT

    def attach(self, server: ClusterChatServer) -> None:
        """Serve ``server`` (its constructor calls this)."""
        self.server = server
        self.link.batch = server.batch
        self.remote = RemoteUsers(server.key, server.remote_joined, server.remote_left)

    # -- life ------------------------------------------------------------------

    @defer.inlineCallbacks
    def start(self) -> Any:
        """Connect and synchronise; fails with :class:`BackplaneUnavailable` if Redis cannot be reached."""
        yield self.link.start()
        self.up = True
        yield self.resync()
        self._beat.start(self.node_timeout / 3, now=False)

    @defer.inlineCallbacks
    def stop(self) -> Any:
        """Tell the other nodes this node's users are gone, and disconnect."""
        if self._beat.running:
            self._beat.stop()
        if self.up:
            try:
                yield self.flush()
            except Exception:  # noqa: BLE001 - already reported to the senders
                pass
            # From here on the goodbye speaks for every user of this node.
            self.stopping = True
            users = self._local_users()
            keys = [scripts.node_key(self.node), scripts.NODES, scripts.users_key(self.node)]
            keys += [scripts.nick_key(self._key(u.nick)) for u in users]
            try:
                yield self.link.call(scripts.BYE, keys, [self.node, self.link.channel, "[" + self._event("bye") + "]"])
            except Exception as e:  # noqa: BLE001 - stopping anyway; the TTLs clean up
                self.log.warn("backplane: could not say goodbye: {e}", e=e)
        self.stopping = True
        self.up = False
        yield self.link.stop()

    def _key(self, name: str) -> str:
        assert self.server is not None
        return self.server.key(name)

    def _local_users(self) -> list[ChatUser]:
        assert self.server is not None
        return [u for u in self.server.users.values() if u not in self._claiming]

    def _event(self, kind: str, **fields: Any) -> str:
        return events.encode(self.node, next(self._seq), kind, **fields)

    # -- connection to Redis ---------------------------------------------------

    def _link_down(self) -> None:
        self.up = False
        if not self._told_down and self.server is not None:
            self._told_down = True
            self.server.tell_everyone("backplane", "lost the connection to the other chat nodes; "
                                      "until it is back, only users on this node hear you")

    def _link_up(self) -> None:
        self.up = True
        self.resync().addErrback(self._resync_failed)

    def _resync_failed(self, failure: Failure) -> None:
        self.log.warn("backplane: resynchronising failed: {e}", e=failure.getErrorMessage())

    @defer.inlineCallbacks
    def resync(self) -> Any:
        """Claim this node's nicknames again, announce its users, and rebuild the mirror."""
        assert self.server is not None
        self._buffer = []
        try:
            yield self.heartbeat(announce=True)
            snapshot = yield self.link.call(scripts.SNAPSHOT, [scripts.NODES],
                                            [scripts.node_key(""), scripts.users_key("")])
            seen = set()
            for node, flat in zip(snapshot[::2], snapshot[1::2]):
                if node == self.node:
                    continue
                seen.add(node)
                users = {}
                for field, value in zip(flat[::2], flat[1::2]):
                    nick, _, room = str(value).partition(" ")
                    users[str(field)] = (nick, room)
                self.remote.replace(node, users, "node lost")
            for node in set(self.remote.nodes) - seen:
                self.remote.replace(node, {}, "node lost")
        finally:
            buffered, self._buffer = self._buffer, None
        for event in buffered or ():
            self._apply(event)
        if self._told_down:
            self._told_down = False
            self.server.tell_everyone("backplane", "connected to the other chat nodes again")

    def _tick(self) -> defer.Deferred[Any]:
        # A failed heartbeat must not stop the LoopingCall.
        return defer.maybeDeferred(self.heartbeat).addErrback(
            lambda f: self.log.warn("backplane: heartbeat failed: {e}", e=f.getErrorMessage())
        )

    @defer.inlineCallbacks
    def heartbeat(self, announce: bool = False) -> Any:
        """Renew this node's claims, and drop the nodes that stopped renewing theirs."""
        if not self.up or self.server is None:
            return
        self.flush()
        users = self._local_users()
        keys = [scripts.node_key(self.node), scripts.NODES, scripts.users_key(self.node)]
        args: list[Any] = [self.node, self.ttl_ms, scripts.node_key(""), scripts.users_key("")]
        for user in users:
            key = self._key(user.nick)
            keys.append(scripts.nick_key(key))
            args += [key, f"{user.nick} {user.room.name if user.room else ''}"]
        try:
            existed, lost, live = yield self.link.call(scripts.SYNC, keys, args)
        except BackplaneUnavailable:
            return
        if lost:
            lost_keys = {str(k) for k in lost}
            for user in users:
                if self._key(user.nick) in lost_keys:
                    self.server.lost_nick(user)
        if not existed and not announce:
            # This node was taken for dead (stalled, or cut off from Redis
            # longer than the timeout): start over as after a reconnection.
            self.log.warn("backplane: this node's claims had expired; resynchronising")
            yield self.resync()
            return
        if announce:
            hello = [[u.nick, u.room.name if u.room else ""] for u in self._local_users()]
            self._publish(self._event("hello", users=hello), None)
            yield self.flush()
        yield self._renew_rooms()
        live_nodes = {str(n) for n in live}
        for node in list(self.remote.nodes):
            if node not in live_nodes:
                self.log.info("backplane: node {node} is gone; its users leave", node=node)
                self.remote.replace(node, {}, "node lost")

    def _renew_rooms(self) -> defer.Deferred[Any]:
        """Keep the history and topic of the rooms this node's users are in."""
        assert self.server is not None
        if not self.room_ttl_ms:
            return defer.succeed(None)
        keys = []
        for key, room in self.server.rooms.items():
            if room.members:
                keys += [scripts.history_key(key), scripts.topic_key(key)]
        if not keys:
            return defer.succeed(None)
        return self.link.call(scripts.ROOMS, keys, [self.room_ttl_ms]).addErrback(
            lambda f: self.log.warn("backplane: renewing the rooms failed: {e}", e=f.getErrorMessage()))

    # -- what this node's users do ---------------------------------------------

    def _publish(self, event: str, user: ChatUser | None, *, set_field: tuple[str, str] | None = None,
                 del_field: str = "", store: tuple[str, str] = ("", ""), release: str = "") -> None:
        """Queue ``event`` for this turn's message; ``user`` is told if it cannot be sent."""
        if self.stopping:
            return  # after the goodbye: the other nodes have forgotten this node's users
        if not self.up or len(self._pending) + self._in_flight >= self.max_in_flight:
            if user is not None:
                self._not_sent(None, [user])
            return
        field, value = set_field or ("", "")
        self._pending += (event, field, value, del_field, store[0], store[1], release)
        if user is not None:
            self._pending_users.append(user)
        if self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self.flush)

    def flush(self) -> defer.Deferred[Any]:
        """Send the queued events now, as one script and one message."""
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        pending, users = self._pending, self._pending_users
        if not pending:
            return defer.succeed(None)
        self._pending, self._pending_users = [], []
        count = len(pending) // 7
        self._in_flight += count

        def sent(result: Any) -> Any:
            self._in_flight -= count
            return result

        d = self.link.call(scripts.PUBLISH, [scripts.users_key(self.node)], [self.link.channel, self.node, *pending])
        d.addBoth(sent)
        d.addErrback(self._not_sent, users)
        return d

    def _not_sent(self, failure: Failure | None, users: list[ChatUser]) -> None:
        if failure is not None:
            self._failed.warn("backplane: publishing failed: {e}", e=failure.getErrorMessage())
        server = self.server
        if server is None:
            return
        for user in dict.fromkeys(users):  # each once, in order
            if server.users.get(self._key(user.nick)) is user:
                server.error(user, BACKPLANE_DOWN, "the other chat nodes are out of reach: only users on this node got that")

    def _where(self, user: ChatUser) -> str:
        return f"{user.nick} {user.room.name if user.room else ''}"

    def quit(self, user: ChatUser, room: ChatRoom | None, reason: str) -> None:
        """``user`` left the chat: free the nickname, tell the others."""
        key = self._key(user.nick)
        self._publish(self._event("quit", u=user.nick, r=room.name if room else "", why=reason), None,
                      del_field=key, release=scripts.nick_key(key))

    def joined(self, user: ChatUser, room: ChatRoom) -> None:
        """``user`` moved into ``room`` (from wherever they were)."""
        self._publish(self._event("join", u=user.nick, r=room.name), user,
                      set_field=(self._key(user.nick), self._where(user)))

    def parted(self, user: ChatUser, room: ChatRoom, reason: str) -> None:
        """``user`` left ``room`` for no room."""
        self._publish(self._event("part", u=user.nick, r=room.name, why=reason), user,
                      set_field=(self._key(user.nick), self._where(user)))

    def said(self, user: ChatUser, room: ChatRoom, kind: str, text: str, line: bytes) -> None:
        """``user`` said ``text`` (``kind`` ``msg`` or ``act``) in ``room``, seen here as ``line``."""
        seq = next(self._seq)
        event = events.encode(self.node, seq, kind, u=user.nick, r=room.name, t=text)
        loading = self._loading.get(self._key(room.name))
        if loading is not None:
            loading[0].add(f"{self.node}:{seq}")
            loading[1].append((f"{self.node}:{seq}", line))
        cap = self.server.history if self.server is not None else 0
        store = (scripts.history_key(self._key(room.name)), f"list {cap} {self.room_ttl_ms}") if cap else ("", "")
        self._publish(event, user, store=store)

    def whispered(self, user: ChatUser, target: str, text: str) -> None:
        """``user`` sent ``text`` to ``target``, a user of another node."""
        self._publish(self._event("priv", u=user.nick, to=target, t=text), user)

    def topic_set(self, user: ChatUser, room: ChatRoom) -> None:
        """``user`` set the topic of ``room``."""
        event = self._event("topic", u=user.nick, r=room.name, t=room.topic, at=room.topic_at)
        self._publish(event, user, store=(scripts.topic_key(self._key(room.name)), f"set 0 {self.room_ttl_ms}"))

    def load_room(self, room: ChatRoom) -> None:
        """``room`` has just been created here: fetch its history and topic."""
        if not self.up or self.server is None:
            return
        key = self._key(room.name)
        self._loading[key] = (set(), [])
        self.flush()
        cap = self.server.history
        d = self.link.call(scripts.ROOM, [scripts.history_key(key), scripts.topic_key(key)], [cap])

        def loaded(result: list[Any]) -> None:
            seen, kept = self._loading.pop(key, (set(), []))
            lines, topic = result
            history: list[tuple[str, str, str, str]] = []
            for raw in lines or ():
                event = self._decode(raw)
                if event is not None and event["k"] in ("msg", "act"):
                    history.append((f"{event['n']}:{event['s']}", event["k"], event["u"], event["t"]))
            topic_event = self._decode(topic) if topic else None
            assert self.server is not None
            self.server.room_loaded(key, history, seen, kept, topic_event)

        def failed(failure: Failure) -> None:
            self._loading.pop(key, None)
            self.log.warn("backplane: could not load room {room}: {e}", room=room.name, e=failure.getErrorMessage())

        d.addCallbacks(loaded, failed)
