"""
Chat state: who is connected under which nickname, which rooms exist, what
each room said lately, and delivering lines to the right users.

A :class:`ChatServer` belongs to one factory (or is shared on purpose by
several), never to the module, so two chat services can run in one process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol as TypingProtocol

from suite.chat import wire
from suite.chat.wire import ErrorCode

__all__ = ["ChatRoom", "ChatServer", "ChatUser"]


class ChatUser(TypingProtocol):
    """What the server needs of a connected user (``ChatProtocol`` is one)."""

    nick: str
    room: ChatRoom | None

    def deliver(self, data: bytes) -> None:
        """Write ``data`` to this user now (or as soon as they read)."""

    def enqueue(self, data: bytes) -> None:
        """Queue ``data`` for this user, without writing it yet."""

    def flush(self) -> None:
        """Write whatever is queued."""


class ChatRoom:
    """A room: its members, in joining order, and its recent messages."""

    __slots__ = ("name", "members", "history")

    def __init__(self, name: str, history: int) -> None:
        self.name = name
        self.members: dict[ChatUser, None] = {}
        self.history: deque[bytes] = deque(maxlen=history)

    def __repr__(self) -> str:
        return f"<ChatRoom {self.name} members={len(self.members)}>"


class ChatServer:
    """
    The shared state of one chat service.

    :param history: messages each room keeps and replays to newcomers
        (0 disables history).
    :param default_room: where users are put when they connect.
    """

    DEFAULT_HISTORY = 20

    def __init__(self, history: int = DEFAULT_HISTORY, default_room: str = "lobby") -> None:
        if history < 0:
            raise ValueError(f"history must be 0 or more, not {history!r}")
        if not wire.valid_name(default_room):
            raise ValueError(f"invalid default room name {default_room!r}")
        self.history = history
        self.default_room = default_room
        #: Connected users by lower-cased nickname.
        self.users: dict[str, ChatUser] = {}
        #: Rooms with at least one member (or the default room) by lower-cased name.
        self.rooms: dict[str, ChatRoom] = {}
        self._guests = 0
        self._batch: set[ChatUser] | None = None

    # -- delivery --------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold writes until the block ends, then write once per user touched."""
        if self._batch is not None:
            yield
            return
        self._batch = touched = set()
        try:
            yield
        finally:
            self._batch = None
            for user in touched:
                user.flush()

    def send(self, user: ChatUser, data: bytes) -> None:
        """Deliver one encoded line to one user."""
        if self._batch is None:
            user.deliver(data)
        else:
            user.enqueue(data)
            self._batch.add(user)

    def broadcast(self, room: ChatRoom, data: bytes) -> None:
        """Deliver one encoded line to every member of ``room``."""
        # A copy: a member whose send queue overflows leaves during the loop.
        members = tuple(room.members)
        batch = self._batch
        if batch is None:
            for member in members:
                member.deliver(data)
        else:
            for member in members:
                member.enqueue(data)
            batch.update(members)

    def error(self, user: ChatUser, code: str, text: str) -> None:
        """Send an error line to ``user`` alone."""
        self.send(user, wire.error_line(code, text))

    def notice(self, user: ChatUser, kind: str, text: str) -> None:
        """Send a notice line to ``user`` alone."""
        self.send(user, wire.notice_line(kind, text))

    # -- presence --------------------------------------------------------------

    def connect(self, user: ChatUser) -> None:
        """Welcome a new user under a guest nickname and put them in the default room."""
        while True:
            self._guests += 1
            nick = f"guest{self._guests}"
            if nick not in self.users:
                break
        user.nick = nick
        user.room = None
        self.users[nick] = user
        self.notice(user, "welcome", f"you are {nick}; /nick NAME to change it, /help for commands")
        self.join(user, self.default_room)

    def disconnect(self, user: ChatUser, reason: str) -> None:
        """Forget a user who is gone; their room hears why."""
        if self.users.get(user.nick.lower()) is user:
            del self.users[user.nick.lower()]
        self._leave(user, reason)

    def _leave(self, user: ChatUser, reason: str) -> None:
        room = user.room
        if room is None:
            return
        user.room = None
        del room.members[user]
        self.broadcast(room, wire.notice_line("leave", f"{user.nick} left {room.name} ({reason})"))
        if not room.members and room.name.lower() != self.default_room.lower():
            del self.rooms[room.name.lower()]

    def rename(self, user: ChatUser, new: str) -> None:
        """``/nick NEW``."""
        if not wire.valid_name(new):
            self.error(
                user, ErrorCode.NICK_INVALID,
                f"{wire.sanitize(new)!r} is not a valid nickname: use 1-{wire.NAME_MAX} letters, digits, _ or -",
            )
            return
        holder = self.users.get(new.lower())
        if holder is not None and holder is not user:
            self.error(user, ErrorCode.NICK_TAKEN, f"the nickname {new} is taken")
            return
        old = user.nick
        if old == new:
            self.notice(user, "info", f"you are already {new}")
            return
        del self.users[old.lower()]
        self.users[new.lower()] = user
        user.nick = new
        if user.room is not None:
            self.broadcast(user.room, wire.notice_line("nick", f"{old} is now {new}"))

    def join(self, user: ChatUser, name: str) -> None:
        """``/join ROOM``: leave the current room, enter ``name``, replay its history."""
        name = wire.normalize_room(name)
        if not wire.valid_name(name):
            self.error(
                user, ErrorCode.ROOM_INVALID,
                f"{wire.sanitize(name)!r} is not a valid room name: use 1-{wire.NAME_MAX} letters, digits, _ or -",
            )
            return
        room = self.rooms.get(name.lower())
        if room is not None and user.room is room:
            self.notice(user, "info", f"you are already in {room.name}")
            return
        self._leave(user, f"joined {room.name if room else name}")
        if room is None:
            room = self.rooms[name.lower()] = ChatRoom(name, self.history)
        room.members[user] = None
        user.room = room
        self.broadcast(room, wire.notice_line("join", f"{user.nick} joined {room.name}"))
        for line in room.history:
            self.send(user, wire.history_line(room.name, line))

    # -- talking ---------------------------------------------------------------

    def say(self, user: ChatUser, text: str) -> None:
        """A plain line: a message to the user's room."""
        self._to_room(user, wire.message_line, text)

    def act(self, user: ChatUser, text: str) -> None:
        """``/me TEXT``."""
        self._to_room(user, wire.action_line, text)

    def _to_room(self, user: ChatUser, form: object, text: str) -> None:
        room = user.room
        if room is None:  # pragma: no cover - every connected user is in a room
            return
        line = form(room.name, user.nick, wire.sanitize(text))  # type: ignore[operator]
        if self.history:
            room.history.append(line)
        self.broadcast(room, line)

    def whisper(self, user: ChatUser, nick: str, text: str) -> None:
        """``/msg NICK TEXT``: to ``nick`` and back to the sender, nobody else."""
        target = self.users.get(nick.lower())
        if target is None:
            self.error(user, ErrorCode.NO_SUCH_NICK, f"nobody is called {wire.sanitize(nick)}")
            return
        line = wire.private_line(user.nick, target.nick, wire.sanitize(text))
        self.send(target, line)
        if target is not user:
            self.send(user, line)

    def who(self, user: ChatUser) -> None:
        """``/who``: the members of the user's room."""
        room = user.room
        if room is None:  # pragma: no cover
            return
        nicks = ", ".join(member.nick for member in room.members)
        count = len(room.members)
        self.notice(user, "who", f"{count} user{'s' if count != 1 else ''} in {room.name}: {nicks}")

    def list_rooms(self, user: ChatUser) -> None:
        """``/rooms``: every room and how many are in it."""
        rooms = sorted(self.rooms.values(), key=lambda r: r.name.lower())
        self.notice(user, "rooms", ", ".join(f"{r.name} ({len(r.members)})" for r in rooms))
