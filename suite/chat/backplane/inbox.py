"""
What the other nodes tell one chat node: the receiving half of
:class:`suite.chat.backplane.node.RedisBackplane` (a mixin of it), which
decodes the channel's messages and applies them to the node's
``ClusterChatServer`` and its mirror of the other nodes' users.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from suite.chat.backplane import events

if TYPE_CHECKING:
    from suite.chat.backplane.mirror import RemoteUsers
    from suite.chat.backplane.server import ClusterChatServer
    from suite.limits import ThrottledLog

__all__ = ["BackplaneInbox"]


class BackplaneInbox:
    """The ``received`` side of a backplane node; the node provides the attributes below."""

    server: ClusterChatServer | None
    remote: RemoteUsers | None
    node: str
    ignored: int
    _bad: ThrottledLog
    _echo: str
    _buffer: list[dict[str, Any]] | None
    _loading: dict[str, tuple[set[str], list[Any]]]

    def _key(self, name: str) -> str:  # pragma: no cover - the node's
        raise NotImplementedError

    def remote_nick(self, nick: str) -> str | None:
        """How ``nick`` is spelt if a user of another node holds it, else ``None``."""
        return self.remote.nick(nick) if self.remote is not None else None

    def remote_lookalike(self, nick: str) -> str | None:
        """How a user of another node whose nickname looks like ``nick`` (and is not it) spells it, else ``None``."""
        return self.remote.lookalike(nick) if self.remote is not None else None

    def remote_user(self, nick: str) -> tuple[str, str] | None:
        """``(nick as spelt, room or "")`` if a user of another node holds ``nick``, else ``None``."""
        return self.remote.where(nick) if self.remote is not None else None

    def remote_members(self, room: str) -> list[str]:
        """The nicknames of other nodes' users in ``room``."""
        return self.remote.members(room) if self.remote is not None else []

    def remote_rooms(self) -> dict[str, tuple[str, int]]:
        """Rooms with users on other nodes: name key -> (name, how many)."""
        return self.remote.rooms() if self.remote is not None else {}

    def forget(self, nick: str) -> None:
        """Redis says nobody else holds ``nick``: drop what the mirror still says about it."""
        if self.remote is not None:
            self.remote.forget(nick, "node lost")

    def _decode(self, raw: Any) -> dict[str, Any] | None:
        try:
            return events.decode(raw)
        except events.BadEvent as e:
            self.ignored += 1
            self._bad.warn("backplane: ignored a message that does not follow the backplane format: {why}", why=str(e))
            return None

    def received(self, raw: Any) -> None:
        """One message from the channel."""
        if isinstance(raw, str) and raw.startswith(self._echo, 1):
            return  # this node's own events, back from Redis: shown already
        try:
            batch = events.decode_message(raw)
        except events.BadEvent as e:
            self.ignored += 1
            self._bad.warn("backplane: ignored a message that does not follow the backplane format: {why}", why=str(e))
            return
        if not batch or batch[0]["n"] == self.node:
            return
        if self._buffer is not None:
            self._buffer.extend(batch)
        else:
            for event in batch:
                self._apply(event)

    def _apply(self, event: dict[str, Any]) -> None:
        server, remote = self.server, self.remote
        if server is None or remote is None:
            return
        node, kind = event["n"], event["k"]
        if kind in ("msg", "act"):
            event_id = f"{node}:{event['s']}"
            loading = self._loading.get(self._key(event["r"]))
            if loading is not None:
                loading[0].add(event_id)
            line = server.remote_said(event["r"], kind, event["u"], event["t"])
            if loading is not None and line is not None:
                loading[1].append((event_id, line))
        elif kind == "priv":
            server.remote_private(event["u"], event["to"], event["t"])
        elif kind == "join":
            remote.move(node, event["u"], event["r"])
        elif kind == "part":
            remote.move(node, event["u"], "", event["why"])
        elif kind == "quit":
            remote.quit(node, event["u"], event["why"])
        elif kind == "nick":
            room = remote.rename(node, event["o"], event["u"], event["r"])
            server.remote_renamed(event["o"], event["u"], room)
        elif kind == "topic":
            server.remote_topic(event["r"], event["u"], event["t"], event["at"])
        elif kind == "hello":
            remote.replace(node, {self._key(n): (n, r) for n, r in event["users"]}, "node lost")
        elif kind == "bye":
            remote.replace(node, {}, "node stopped")
