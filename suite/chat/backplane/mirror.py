"""
What one node knows of the other nodes' users: who is connected where, under
which nickname, in which room.

:class:`RemoteUsers` is rebuilt from Redis (a snapshot, and each node's
``hello``) and kept current by the events that follow; every change that
moves a user in or out of a room is reported through ``joined`` and
``left``, so the node can tell its own users.
"""

from __future__ import annotations

from collections.abc import Callable

from suite.chat.names import skeletons

__all__ = ["RemoteUsers"]

Entry = tuple[str, str]  # (nick as shown, room name or "")


class RemoteUsers:
    """
    Other nodes' users.

    :param key: the key two names compare equal by.
    :param joined: called with ``(nick, room)`` when a user enters a room.
    :param left: called with ``(nick, room, reason)`` when one leaves it.
    """

    def __init__(self, key: Callable[[str], str], joined: Callable[[str, str], None],
                 left: Callable[[str, str, str], None]) -> None:
        self.key = key
        self.joined = joined
        self.left = left
        #: node -> {name key: (nick, room)}.
        self.nodes: dict[str, dict[str, Entry]] = {}
        #: name key -> the node holding it.
        self.owner: dict[str, str] = {}
        #: skeleton -> (name key, nick) of the users above; rebuilt after a change.
        self._looks: dict[str, Entry] | None = None

    def nick(self, nick: str) -> str | None:
        """How ``nick`` is spelt if another node's user holds it, else ``None``."""
        key = self.key(nick)
        node = self.owner.get(key)
        return self.nodes[node][key][0] if node is not None else None

    def where(self, nick: str) -> Entry | None:
        """``(nick as spelt, room)`` if another node's user holds ``nick``, else ``None``."""
        key = self.key(nick)
        node = self.owner.get(key)
        return self.nodes[node][key] if node is not None else None

    def lookalike(self, nick: str) -> str | None:
        """How another node's user whose nickname looks like ``nick`` (and is not it) spells it, or ``None``."""
        looks = self._looks
        if looks is None:
            looks = self._looks = {
                look: (key, name) for users in self.nodes.values() for key, (name, _) in users.items()
                for look in skeletons(name)
            }
        key = self.key(nick)
        for look in skeletons(nick):
            hit = looks.get(look)
            if hit is not None and hit[0] != key:
                return hit[1]
        return None

    def members(self, room: str) -> list[str]:
        """The nicknames of other nodes' users in ``room``."""
        key = self.key(room)
        return [nick for users in self.nodes.values() for nick, r in users.values() if r and self.key(r) == key]

    def rooms(self) -> dict[str, tuple[str, int]]:
        """Rooms with other nodes' users: name key -> (name, how many)."""
        rooms: dict[str, tuple[str, int]] = {}
        for users in self.nodes.values():
            for _, room in users.values():
                if room:
                    key = self.key(room)
                    name, count = rooms.get(key, (room, 0))
                    rooms[key] = (name, count + 1)
        return rooms

    def forget(self, nick: str, reason: str) -> None:
        """Nobody else holds ``nick`` after all (Redis says so): drop it."""
        key = self.key(nick)
        self._looks = None
        node = self.owner.pop(key, None)
        gone = self.nodes.get(node, {}).pop(key, None) if node is not None else None
        if gone is not None and gone[1]:
            self.left(gone[0], gone[1], reason)

    def _own(self, node: str, key: str, entry: Entry) -> None:
        self._looks = None
        previous = self.owner.get(key)
        if previous is not None and previous != node:
            # The nickname moved to another node (its holder there left).
            self.nodes.get(previous, {}).pop(key, None)
        self.nodes.setdefault(node, {})[key] = entry
        self.owner[key] = node

    def move(self, node: str, nick: str, room: str, reason: str | None = None) -> None:
        """``nick`` of ``node`` is now in ``room`` (``""``: none)."""
        key = self.key(nick)
        before = self.nodes.get(node, {}).get(key)
        self._own(node, key, (nick, room))
        old_room = before[1] if before else ""
        if old_room and self.key(old_room) != self.key(room):
            self.left(nick, old_room, reason if reason is not None else f"joined {room}")
        if room and (not old_room or self.key(old_room) != self.key(room)):
            self.joined(nick, room)

    def quit(self, node: str, nick: str, reason: str) -> None:
        """``nick`` of ``node`` left the chat."""
        key = self.key(nick)
        self._looks = None
        gone = self.nodes.get(node, {}).pop(key, None)
        if gone is not None:
            if self.owner.get(key) == node:
                del self.owner[key]
            if gone[1]:
                self.left(gone[0], gone[1], reason)

    def rename(self, node: str, old: str, new: str, room: str) -> str:
        """``old`` of ``node`` is now ``new``; returns the room they are in."""
        old_key = self.key(old)
        self._looks = None
        previous = self.nodes.get(node, {}).pop(old_key, None)
        if self.owner.get(old_key) == node:
            del self.owner[old_key]
        room = previous[1] if previous else room
        self._own(node, self.key(new), (new, room))
        return room

    def replace(self, node: str, users: dict[str, Entry], reason: str) -> None:
        """``node``'s users are now ``users``: report who left and who came."""
        old = self.nodes.pop(node, {})
        self._looks = None
        for key, (nick, room) in old.items():
            if users.get(key) != (nick, room):
                if self.owner.get(key) == node:
                    del self.owner[key]
                if room:
                    self.left(nick, room, reason)
        for key, (nick, room) in users.items():
            self._own(node, key, (nick, room))
            if old.get(key) != (nick, room) and room:
                self.joined(nick, room)
