"""
Chat state: who is connected under which nickname, which rooms exist, what
each room said lately, and delivering lines to the right users.

A :class:`ChatServer` belongs to one factory (or is shared on purpose by
several), never to the module, so two chat services can run in one process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from suite.chat import wire
from suite.chat.names import NAME_RULE, InvalidName, check_name, name_key, skeletons
from suite.chat.room import ChatRoom, ChatUser, RemoteUser
from suite.chat.wire import ErrorCode

__all__ = ["ChatRoom", "ChatServer", "ChatUser"]


class ChatServer:
    """
    The shared state of one chat service.

    :param history: messages each room keeps and replays to newcomers
        (0 disables history).
    :param default_room: where users are put when they connect.
    :param quiet_joins: rooms with more members than this announce joins
        and leaves only to the user concerned and to members that track the
        member list (``None``: every room announces them to everyone).
    :param topic_max: longest topic, in characters.
    :param clock: the time, for topics and room creation.
    """

    DEFAULT_HISTORY = 20
    DEFAULT_TOPIC_MAX = 300

    def __init__(
        self,
        history: int = DEFAULT_HISTORY,
        default_room: str = "lobby",
        *,
        quiet_joins: int | None = None,
        topic_max: int = DEFAULT_TOPIC_MAX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if history < 0:
            raise ValueError(f"history must be 0 or more, not {history!r}")
        try:
            default_room = check_name(default_room)
        except InvalidName as e:
            raise ValueError(f"invalid default room name {default_room!r}: {e}") from None
        self.history = history
        self.default_room = default_room
        self.quiet_joins = quiet_joins
        self.topic_max = topic_max
        self.clock = clock
        #: When the server started (IRC's 003 and 329 say it).
        self.created = clock()
        #: Connected users by name key (:func:`suite.chat.names.name_key`).
        self.users: dict[str, ChatUser] = {}
        #: Rooms with at least one member (or the default room) by name key.
        self.rooms: dict[str, ChatRoom] = {}
        self._looks: dict[str, ChatUser] = {}
        self._guests = 0
        self._batch: set[ChatUser] | None = None
        #: Lines delivered to users, one per recipient (for /metrics; counted once per send or broadcast).
        self.lines_delivered = 0

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
        self.lines_delivered += 1
        if self._batch is None:
            user.deliver(data)
        else:
            user.enqueue(data)
            self._batch.add(user)

    def broadcast(self, room: ChatRoom, data: bytes) -> None:
        """
        Deliver one encoded line to every member of ``room``; in a batch,
        one call per front queues it for all that front's members (see
        :meth:`suite.chat.output.ChatOutput.enqueue_all`).
        """
        self.lines_delivered += len(room.members)
        batch = self._batch
        if batch is None:
            # A copy: a member whose send queue overflows leaves during the loop.
            for member in tuple(room.members):
                member.deliver(data)
            return
        batch.update(room.members)
        # Cached tuples: a member leaving during the loop changes none of them.
        for enqueue_all, members in room.fronts():
            enqueue_all(members, data)

    def error(self, user: ChatUser, code: str, text: str) -> None:
        """Send an error line to ``user`` alone."""
        self.send(user, wire.error_line(code, text))

    def notice(self, user: ChatUser, kind: str, text: str, room: str | None = None) -> None:
        """Send a notice line to ``user`` alone."""
        self.send(user, wire.notice_line(kind, text, room=room))

    def _announce(self, room: ChatRoom, line: bytes, user: ChatUser, size: int) -> None:
        """A join or leave: to everyone, or in a room of ``size`` members that is quiet, to ``user`` and the trackers."""
        quiet = self.quiet_joins
        if quiet is None or size <= quiet:
            self.broadcast(room, line)
            return
        if user in room.members:
            self.send(user, line)
        for member in tuple(room.members):
            if member is not user and getattr(member, "tracks_members", False):
                self.send(member, line)

    # -- names -----------------------------------------------------------------

    def find_user(self, nick: str) -> ChatUser | None:
        """The connected user called ``nick`` (any case or width), or ``None``."""
        return self.users.get(name_key(nick))

    def find_room(self, name: str) -> ChatRoom | None:
        """The room called ``name`` (``#`` optional, any case or width), or ``None``."""
        return self.rooms.get(name_key(wire.normalize_room(name)))

    def nick_problem(self, user: ChatUser | None, nick: str) -> tuple[str, str] | None:
        """Why ``user`` cannot take ``nick``: ``(error code, text)``, or ``None`` if it can."""
        try:
            check_name(nick)
        except InvalidName as e:
            return ErrorCode.NICK_INVALID, f"{wire.sanitize(nick)[:40]!r} is not a valid nickname: {e}; {NAME_RULE}"
        key = name_key(nick)
        holder = self.users.get(key)
        if holder is not None and holder is not user:
            return ErrorCode.NICK_TAKEN, f"the nickname {nick} is taken"
        for look in skeletons(nick):
            holder = self._looks.get(look)
            if holder is not None and holder is not user and name_key(holder.nick) != key:
                return ErrorCode.NICK_TAKEN, f"the nickname {wire.sanitize(nick)} looks like {holder.nick}, who is here"
        return None

    def _take(self, user: ChatUser, nick: str) -> None:
        user.nick = nick
        self.users[name_key(nick)] = user
        for look in skeletons(nick):
            self._looks.setdefault(look, user)

    def _drop(self, user: ChatUser) -> None:
        key = name_key(user.nick)
        if self.users.get(key) is user:
            del self.users[key]
        for look in skeletons(user.nick):
            if self._looks.get(look) is user:
                del self._looks[look]

    # -- presence --------------------------------------------------------------

    def connect(self, user: ChatUser, nick: str | None = None, *, join: bool = True) -> None:
        """
        Welcome a new user, as ``nick`` (which :meth:`nick_problem` has
        allowed) or a guest nickname, and put them in the default room
        unless ``join`` is false.
        """
        if nick is None:
            while True:
                self._guests += 1
                nick = f"guest{self._guests}"
                if self.nick_problem(user, nick) is None:
                    break
        else:
            nick = check_name(nick)
        self._take(user, nick)
        user.room = None
        self.notice(user, "welcome", f"you are {nick}; /nick NAME to change it, /help for commands")
        if join:
            self.join(user, self.default_room)

    def disconnect(self, user: ChatUser, reason: str) -> None:
        """Forget a user who is gone; their room hears why."""
        # Leave first: other fronts still find the user (IRC shows nick!user@host).
        self._leave(user, reason, "quit")
        self._drop(user)

    def _leave(self, user: ChatUser, reason: str, how: str) -> None:
        room = user.room
        if room is None:
            return
        line = wire.notice_line(
            "leave", f"{user.nick} left {room.name} ({reason})",
            room=room.name, nick=user.nick, target=how, detail=reason,
        )
        size = len(room.members)
        user.room = None
        room.remove(user)
        # The leaver is not told: the line chat says nothing, IRC echoes its own PART.
        self._announce(room, line, user, size)
        if not room.members and name_key(room.name) != name_key(self.default_room):
            del self.rooms[name_key(room.name)]

    def part(self, user: ChatUser, reason: str = "left") -> None:
        """Leave the current room for none (IRC's ``PART``)."""
        self._leave(user, reason, "part")

    def rename(self, user: ChatUser, new: str) -> None:
        """``/nick NEW``."""
        problem = self.nick_problem(user, new)
        if problem is not None:
            self.error(user, *problem)
            return
        new = check_name(new)
        old = user.nick
        if old == new:
            self.notice(user, "info", f"you are already {new}")
            return
        self._drop(user)
        self._take(user, new)
        line = wire.notice_line("nick", f"{old} is now {new}", nick=old, target=new)
        if user.room is not None:
            self.broadcast(user.room, line)
        else:
            self.send(user, line)

    def room_problem(self, name: str) -> tuple[str, str] | None:
        """Why ``name`` cannot be joined: ``(error code, text)``, or ``None`` if it can."""
        name = wire.normalize_room(name)
        try:
            check_name(name)
        except InvalidName as e:
            return ErrorCode.ROOM_INVALID, f"{wire.sanitize(name)[:40]!r} is not a valid room name: {e}; {NAME_RULE}"
        if name_key(name) not in self.rooms:
            looks = skeletons(name)
            for room in self.rooms.values():
                if looks & skeletons(room.name):
                    return ErrorCode.ROOM_INVALID, f"the room name {wire.sanitize(name)} looks like {room.name}, which exists"
        return None

    def join(self, user: ChatUser, name: str) -> None:
        """``/join ROOM``: leave the current room, enter ``name``, replay its history."""
        problem = self.room_problem(name)
        if problem is not None:
            self.error(user, *problem)
            return
        name = check_name(wire.normalize_room(name))
        room = self.rooms.get(name_key(name))
        if room is not None and user.room is room:
            self.notice(user, "info", f"you are already in {room.name}")
            return
        self._leave(user, f"joined {room.name if room else name}", "part")
        if room is None:
            room = self.rooms[name_key(name)] = ChatRoom(name, self.history, self.clock())
        room.add(user)
        user.room = room
        self._announce(room, wire.notice_line("join", f"{user.nick} joined {room.name}", room=room.name, nick=user.nick), user, len(room.members))
        if room.topic:
            self.send(user, self._topic_line(room))
        for line in room.history:
            self.send(user, wire.history_line(room.name, line))

    # -- topics ----------------------------------------------------------------

    def _topic_line(self, room: ChatRoom) -> bytes:
        text = f"topic of {room.name}: {room.topic} (set by {room.topic_by})" if room.topic else f"{room.name} has no topic"
        return wire.notice_line("topic", text, room=room.name, detail=room.topic)

    def topic(self, user: ChatUser, text: str | None = None) -> None:
        """``/topic [TEXT]``: show the topic of the user's room, or set it (``""`` clears it)."""
        room = user.room
        if room is None:
            self.error(user, ErrorCode.NOT_IN_ROOM, "you are not in a room")
            return
        if text is None:
            self.send(user, self._topic_line(room))
            return
        topic = wire.sanitize(text).strip()
        if len(topic) > self.topic_max:
            self.error(user, ErrorCode.TOPIC_TOO_LONG, f"a topic has at most {self.topic_max} characters, not {len(topic)}")
            return
        room.topic, room.topic_by, room.topic_at = topic, user.nick, self.clock()
        said = f"{user.nick} set the topic of {room.name}: {topic}" if topic else f"{user.nick} cleared the topic of {room.name}"
        self.broadcast(room, wire.notice_line("topic", said, room=room.name, nick=user.nick, detail=topic))

    # -- talking ---------------------------------------------------------------

    def say(self, user: ChatUser, text: str) -> None:
        """A plain line: a message to the user's room."""
        self._to_room(user, wire.message_line, text)

    def act(self, user: ChatUser, text: str) -> None:
        """``/me TEXT``."""
        self._to_room(user, wire.action_line, text)

    def _to_room(self, user: ChatUser, form: Callable[[str, str, str], bytes], text: str) -> None:
        room = user.room
        if room is None:
            self.error(user, ErrorCode.NOT_IN_ROOM, "you are not in a room; join one first")
            return
        line = form(room.name, user.nick, wire.sanitize(text))
        if self.history:
            room.history.append(line)
        self.broadcast(room, line)

    def whisper(self, user: ChatUser, nick: str, text: str) -> None:
        """``/msg NICK TEXT``: to ``nick`` and back to the sender, nobody else."""
        target = self.find_user(nick)
        if target is None:
            self.error(user, ErrorCode.NO_SUCH_NICK, f"nobody is called {wire.sanitize(nick)[:40]}")
            return
        line = wire.private_line(user.nick, target.nick, wire.sanitize(text))
        self.send(target, line)
        if target is not user:
            self.send(user, line)

    def who(self, user: ChatUser) -> None:
        """``/who``: the members of the user's room."""
        room = user.room
        if room is None:
            self.error(user, ErrorCode.NOT_IN_ROOM, "you are not in a room")
            return
        nicks = self.room_nicks(room)
        count = len(nicks)
        self.notice(user, "who", f"{count} user{'s' if count != 1 else ''} in {room.name}: {', '.join(nicks)}", room=room.name)

    def list_rooms(self, user: ChatUser) -> None:
        """``/rooms``: every room and how many are in it."""
        rooms = sorted(self.room_sizes().items())
        self.notice(user, "rooms", ", ".join(f"{name} ({count})" for _, (name, count) in rooms))

    # -- who is where: every front asks here (a cluster adds other nodes' users) --

    def room_nicks(self, room: ChatRoom) -> list[str]:
        """The nicknames of everyone in ``room``."""
        return [member.nick for member in room.members]

    def room_sizes(self) -> dict[str, tuple[str, int]]:
        """Every room with someone in it (and the default room): name key -> (name, how many are in it)."""
        return {key: (room.name, len(room.members)) for key, room in self.rooms.items()}

    def find_anyone(self, nick: str) -> ChatUser | RemoteUser | None:
        """The user called ``nick`` (any case or width) wherever they are connected, or ``None``."""
        return self.find_user(nick)
