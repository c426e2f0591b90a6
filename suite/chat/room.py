"""
A chat room and what the chat needs of its users: :class:`ChatUser` (the
interface every front's connection provides), :class:`ChatRoom` (a room's
members, grouped by front for fan-out, its history and its topic), and
:class:`RemoteUser` (a user of another chat node, as this node knows them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from typing import Protocol as TypingProtocol

__all__ = ["ChatRoom", "ChatUser", "RemoteUser"]


class ChatUser(TypingProtocol):
    """
    What the server needs of a connected user (``ChatProtocol`` is one; so
    are the IRC and WebSocket connections).

    Every line given to :meth:`deliver` and :meth:`enqueue` that the server
    made is a :class:`suite.chat.wire.Line`: bytes in the line chat's form
    whose ``what`` says what happened, for fronts that speak another form.
    A user with a true ``tracks_members`` attribute keeps a list of the
    room's members (an IRC client, the chat page) and hears every join and
    leave even in a room with quiet joins.
    """

    nick: str
    room: ChatRoom | None

    def deliver(self, data: bytes) -> None:
        """Write ``data`` to this user now (or as soon as they read)."""

    def enqueue(self, data: bytes) -> None:
        """Queue ``data`` for this user, without writing it yet."""

    def flush(self) -> None:
        """Write whatever is queued."""


class ChatRoom:
    """
    A room: its members, in joining order, its recent messages, and its
    topic (``""`` for none) with who set it and when (seconds since the epoch).
    """

    __slots__ = ("name", "members", "history", "created", "topic", "topic_by", "topic_at", "_fronts")

    def __init__(self, name: str, history: int, created: float = 0.0) -> None:
        self.name = name
        self.members: dict[ChatUser, None] = {}
        self.history: deque[bytes] = deque(maxlen=history)
        self.created = created
        self.topic = ""
        self.topic_by = ""
        self.topic_at = 0.0
        self._fronts: tuple[tuple[Callable[[Sequence[ChatUser], bytes], None], tuple[ChatUser, ...]], ...] | None = None

    def add(self, user: ChatUser) -> None:
        """``user`` is now a member."""
        self.members[user] = None
        self._fronts = None

    def remove(self, user: ChatUser) -> None:
        """``user`` is no longer a member."""
        del self.members[user]
        self._fronts = None

    def fronts(self) -> tuple[tuple[Callable[[Sequence[ChatUser], bytes], None], tuple[ChatUser, ...]], ...]:
        """
        The members grouped by front (connection class and factory), each
        group with the function that queues a line for all of it (the
        front's ``enqueue_all``, or one ``enqueue`` per member).
        """
        groups = self._fronts
        if groups is None:
            by_front: dict[Any, list[ChatUser]] = {}
            for member in self.members:
                by_front.setdefault((type(member), getattr(member, "factory", None)), []).append(member)
            groups = self._fronts = tuple(
                (getattr(front, "enqueue_all", _enqueue_each), tuple(group)) for (front, _), group in by_front.items()
            )
        return groups

    def __repr__(self) -> str:
        return f"<ChatRoom {self.name} members={len(self.members)}>"


def _enqueue_each(members: Sequence[ChatUser], data: bytes) -> None:
    for member in members:
        member.enqueue(data)


@dataclass(frozen=True)
class RemoteUser:
    """
    A user connected to another chat node (see :mod:`suite.chat.backplane`):
    all this node knows is the nickname and the room (``""`` for none).
    Fronts show them as they show line-chat users (``nick!chat@netsuite``).
    """

    nick: str
    room_name: str
    ident: ClassVar[str] = "chat"
    host: ClassVar[str] = "netsuite"
    #: Not a user of this node: no room object here, nothing to send directly.
    remote: ClassVar[bool] = True
