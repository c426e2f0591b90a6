"""
:class:`ClusterChatServer`: a ``ChatServer`` whose
rooms, nicknames, private messages, topics and history span every node on
the backplane.

Each override does what the plain server does for this node's users and
then tells the backplane; the ``remote_*`` methods show other nodes'
changes to this node's users, in the same line forms.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from suite.chat import wire
from suite.chat.backplane.node import BACKPLANE_DOWN, RedisBackplane
from suite.chat.names import check_name, name_key
from suite.chat.room import RemoteUser
from suite.chat.rooms import ChatRoom, ChatServer, ChatUser
from suite.chat.wire import ErrorCode

__all__ = ["ClusterChatServer"]


class ClusterChatServer(ChatServer):
    """
    A chat server that is one node of a cluster joined by ``backplane``.

    Takes every keyword argument of :class:`ChatServer`.
    """

    def __init__(self, backplane: RedisBackplane, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backplane = backplane
        backplane.attach(self)

    @staticmethod
    def key(name: str) -> str:
        """The key two names compare equal by."""
        return name_key(name)

    def tell_everyone(self, kind: str, text: str) -> None:
        """One notice to every user of this node."""
        with self.batch():
            for user in tuple(self.users.values()):
                self.notice(user, kind, text)

    # -- this node's users -------------------------------------------------------

    def nick_problem(self, user: ChatUser | None, nick: str) -> tuple[str, str] | None:
        problem = super().nick_problem(user, nick)
        if problem is None and self.backplane.remote_nick(nick) is not None:
            return ErrorCode.NICK_TAKEN, f"the nickname {nick} is taken"
        if problem is None:
            other = self.backplane.remote_lookalike(nick)
            if other is not None:
                # Also refused by Redis when both claim at once: the claim key is the look (scripts.nick_key).
                return ErrorCode.NICK_TAKEN, f"the nickname {wire.sanitize(nick)} looks like {other}, who is here"
        if problem is None and self.backplane.claiming(nick) not in (None, user):
            # Another user of this node is claiming it: Redis would grant it
            # to both (both are this node's), so it is refused here.
            return ErrorCode.NICK_TAKEN, f"the nickname {nick} is taken"
        return problem

    def connect(self, user: ChatUser, nick: str | None = None, *, join: bool = True) -> None:
        if nick is None:
            nick = self._guest_nick(user)
        # Claimed before joining: Redis runs the claim, then the join.
        super().connect(user, nick, join=False)
        self.backplane.connected(user)
        if join:
            self.join(user, self.default_room)

    def _guest_nick(self, user: ChatUser | None) -> str:
        while True:
            self._guests += 1
            nick = f"guest{self._guests}-{self.backplane.tag}"
            if self.nick_problem(user, nick) is None:
                return nick

    def disconnect(self, user: ChatUser, reason: str) -> None:
        mine = self.users.get(name_key(user.nick)) is user
        room = user.room
        super().disconnect(user, reason)
        if mine:
            self.backplane.quit(user, room, reason)

    def rename(self, user: ChatUser, new: str) -> None:
        problem = self.nick_problem(user, new)
        if problem is not None:
            self.error(user, *problem)
            return
        new = check_name(new)
        if user.nick == new:
            self.notice(user, "info", f"you are already {new}")
            return
        # Another node may hold it: only Redis knows; the answer comes to claimed().
        self.backplane.claim(user, user.nick, new)

    def claimed(self, user: ChatUser, new: str, ok: bool) -> None:
        """The backplane's answer to a nickname claim for ``user``."""
        if user.nick == new:
            # A connecting user's guest name (or a lost one's replacement):
            # another node holding it means pick another.
            if not ok:
                self.lost_nick(user)
            return
        if not ok:
            self.error(user, ErrorCode.NICK_TAKEN, f"the nickname {new} is taken")
            return
        if super().nick_problem(user, new) is not None:
            # Taken here meanwhile: keep the old name (the claim expires).
            self.error(user, ErrorCode.NICK_TAKEN, f"the nickname {new} is taken")
            return
        # Redis says it is free: a stale entry for a node not yet found dead goes.
        self.backplane.forget(new)
        super().rename(user, new)

    def lost_nick(self, user: ChatUser) -> None:
        """Another node holds ``user``'s nickname (taken while this node was cut off): give them a guest name."""
        old = user.nick
        new = self._guest_nick(user)
        self.notice(user, "nick", f"another node holds the nickname {old} (taken while this node was cut off); you are {new}")
        super().rename(user, new)
        self.backplane.claim(user, old, new)

    def join(self, user: ChatUser, name: str) -> None:
        before = user.room
        created = self.find_room(name) is None
        super().join(user, name)
        room = user.room
        if room is not None and room is not before:
            if created:
                self.backplane.load_room(room)
            self.backplane.joined(user, room)

    def part(self, user: ChatUser, reason: str = "left") -> None:
        room = user.room
        super().part(user, reason)
        if room is not None and user.room is None:
            self.backplane.parted(user, room, reason)

    def topic(self, user: ChatUser, text: str | None = None) -> None:
        room = user.room
        at = room.topic_at if room is not None else None
        super().topic(user, text)
        if room is not None and text is not None and room.topic_at != at:
            self.backplane.topic_set(user, room)

    def say(self, user: ChatUser, text: str) -> None:
        self._to_cluster(user, "msg", wire.message_line, text)

    def act(self, user: ChatUser, text: str) -> None:
        self._to_cluster(user, "act", wire.action_line, text)

    def _to_cluster(self, user: ChatUser, kind: str, form: Any, text: str) -> None:
        room = user.room
        self._to_room(user, form, text)
        if room is not None:
            line = room.history[-1] if self.history and room.history else form(room.name, user.nick, wire.sanitize(text))
            self.backplane.said(user, room, kind, wire.sanitize(text), line)

    def whisper(self, user: ChatUser, nick: str, text: str) -> None:
        target = self.backplane.remote_nick(nick) if self.find_user(nick) is None else None
        if target is None:
            super().whisper(user, nick, text)
            return
        if not self.backplane.up:
            self.error(user, BACKPLANE_DOWN, f"{target} is on another chat node, out of reach now; not sent")
            return
        text = wire.sanitize(text)
        self.send(user, wire.private_line(user.nick, target, text))
        self.backplane.whispered(user, target, text)

    def room_nicks(self, room: ChatRoom) -> list[str]:
        return super().room_nicks(room) + self.backplane.remote_members(room.name)

    def room_sizes(self) -> dict[str, tuple[str, int]]:
        rooms = super().room_sizes()
        for key, (name, count) in self.backplane.remote_rooms().items():
            here = rooms.get(key, (name, 0))
            rooms[key] = (here[0], here[1] + count)
        return rooms

    def find_anyone(self, nick: str) -> ChatUser | RemoteUser | None:
        user = self.find_user(nick)
        if user is not None:
            return user
        where = self.backplane.remote_user(nick)
        return RemoteUser(*where) if where is not None else None

    # -- other nodes' users ------------------------------------------------------

    def _size(self, room: ChatRoom) -> int:
        return len(room.members) + len(self.backplane.remote_members(room.name))

    def remote_joined(self, nick: str, room_name: str) -> None:
        room = self.find_room(room_name)
        if room is not None:
            line = wire.notice_line("join", f"{nick} joined {room.name}", room=room.name, nick=nick)
            self._announce(room, line, None, self._size(room))  # type: ignore[arg-type]

    def remote_left(self, nick: str, room_name: str, reason: str) -> None:
        room = self.find_room(room_name)
        if room is not None:
            reason = wire.sanitize(reason)[:200]
            line = wire.notice_line("leave", f"{nick} left {room.name} ({reason})",
                                    room=room.name, nick=nick, target="quit", detail=reason)
            self._announce(room, line, None, self._size(room) + 1)  # type: ignore[arg-type]

    def remote_renamed(self, old: str, new: str, room_name: str) -> None:
        room = self.find_room(room_name) if room_name else None
        if room is not None:
            self.broadcast(room, wire.notice_line("nick", f"{old} is now {new}", nick=old, target=new))

    def remote_said(self, room_name: str, kind: str, nick: str, text: str) -> bytes | None:
        room = self.find_room(room_name)
        if room is None:
            return None
        form = wire.message_line if kind == "msg" else wire.action_line
        line = form(room.name, nick, wire.sanitize(text))
        if self.history:
            room.history.append(line)
        self.broadcast(room, line)
        return line

    def remote_private(self, sender: str, target: str, text: str) -> None:
        user = self.find_user(target)
        if user is not None:
            self.send(user, wire.private_line(sender, user.nick, wire.sanitize(text)))

    def remote_topic(self, room_name: str, nick: str, topic: str, at: float) -> None:
        room = self.find_room(room_name)
        if room is None:
            return
        topic = wire.sanitize(topic)[: self.topic_max]
        room.topic, room.topic_by, room.topic_at = topic, nick, at
        said = f"{nick} set the topic of {room.name}: {topic}" if topic else f"{nick} cleared the topic of {room.name}"
        self.broadcast(room, wire.notice_line("topic", said, room=room.name, nick=nick, detail=topic))

    def room_loaded(self, key: str, history: list[tuple[str, str, str, str]], seen: set[str],
                    kept: list[tuple[str, bytes]], topic: dict[str, Any] | None) -> None:
        """The shared history and topic of a room this node just started hosting."""
        room = self.rooms.get(key)
        if room is None:
            return
        if topic is not None and topic["k"] == "topic" and not room.topic_at:
            room.topic, room.topic_by, room.topic_at = wire.sanitize(topic["t"])[: self.topic_max], topic["u"], topic["at"]
            if room.topic:
                for member in tuple(room.members):
                    self.send(member, self._topic_line(room))
        if not self.history:
            return
        ids = set()
        lines: deque[bytes] = deque(maxlen=self.history)
        for event_id, kind, nick, text in history:
            ids.add(event_id)
            form = wire.message_line if kind == "msg" else wire.action_line
            line = form(room.name, nick, wire.sanitize(text))
            lines.append(line)
            if event_id not in seen:
                # Members joined while it loaded: they have not seen it live.
                for member in tuple(room.members):
                    self.send(member, wire.history_line(room.name, line))
        lines.extend(line for event_id, line in kept if event_id not in ids)
        room.history = lines
