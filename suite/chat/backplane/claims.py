"""
Nickname claims: the part of :class:`suite.chat.backplane.node.RedisBackplane`
(a mixin of it) that asks Redis for a nickname and hands the answer to the
node's ``ClusterChatServer``.

What makes concurrent renames safe:

- Across nodes, Redis decides: the ``CLAIM`` script takes a nickname only
  if it is free or already this node's, and in the same atomic step frees
  the user's old one.  So of two users on two nodes asking for one name at
  the same moment exactly one gets it, and the old name is released only
  once the new one is held (a failed claim leaves the old one alone).
- On one node, a name being claimed is reserved, with every name that looks
  like it (:meth:`NickClaims.claiming`): a second local user asking for it
  meanwhile is refused at once, before Redis is asked (Redis alone would
  say yes to both: both are this node's).
- One user's renames go to Redis one at a time, in order: a second ``/nick``
  sent before the first is answered waits for it, and then renames from
  whatever name the user holds by then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.python.failure import Failure

from suite.chat.backplane import scripts

if TYPE_CHECKING:
    from suite.chat.backplane.server import ClusterChatServer
    from suite.chat.rooms import ChatUser

__all__ = ["NickClaims"]

#: Error code of a line, private message or nickname change that could not
#: reach the other nodes.
BACKPLANE_DOWN = "backplane-down"


class NickClaims:
    """The claiming side of a backplane node; the node provides the attributes below."""

    server: ClusterChatServer | None
    up: bool
    link: Any
    node: str
    ttl_ms: int
    #: Users with a claim on its way to Redis -> the names they asked for after it.
    _claiming: dict[Any, list[str]]
    #: Claim keys (:func:`scripts.nick_key`: a name's look) being claimed -> the local user claiming each.
    _reserved: dict[str, Any]

    def _key(self, name: str) -> str:  # pragma: no cover - the node's
        raise NotImplementedError

    def _event(self, kind: str, **fields: Any) -> str:  # pragma: no cover - the node's
        raise NotImplementedError

    def flush(self) -> Any:  # pragma: no cover - the node's
        raise NotImplementedError

    def _publish(self, event: str, user: Any, **kwargs: Any) -> None:  # pragma: no cover - the node's
        raise NotImplementedError

    def claiming(self, nick: str) -> ChatUser | None:
        """The local user whose claim of ``nick`` is on its way to Redis, if any."""
        return self._reserved.get(self._claim_key(nick))

    def _claim_key(self, name: str) -> str:
        # The Redis key itself: look-alike names share it, so they are
        # reserved together, as Redis would grant them to this node together.
        return scripts.nick_key(self._key(name))

    def connected(self, user: ChatUser) -> None:
        """``user`` has just taken a (guest) nickname: claim it."""
        self.claim(user, user.nick, user.nick, publish=False)

    def claim(self, user: ChatUser, old: str, new: str, *, publish: bool = True) -> None:
        """Claim ``new`` for ``user`` (who is ``old``); the server hears the outcome."""
        assert self.server is not None
        server = self.server
        if not self.up:
            if publish:
                server.error(user, BACKPLANE_DOWN, "nicknames cannot change while the other chat nodes are out of reach")
            return  # a connecting user's guest name is claimed by the next resync
        new_key = self._claim_key(new)
        holder = self._reserved.get(new_key)
        if holder is not None and holder is not user:
            server.claimed(user, new, False)
            return
        self._reserved[new_key] = user
        queued = self._claiming.get(user)
        if queued is not None:
            queued.append(new)  # after the claim on its way, from the name it leaves the user with
            return
        self._claiming[user] = []
        self._send_claim(user, old, new, publish)

    def _send_claim(self, user: ChatUser, old: str, new: str, publish: bool) -> None:
        server = self.server
        assert server is not None
        room = user.room.name if user.room else ""
        event = self._event("nick", o=old, u=new, r=room) if publish else ""
        old_key, new_key = self._key(old), self._key(new)
        self.flush()  # what the user said before goes first
        d = self.link.call(scripts.CLAIM, [scripts.nick_key(new_key), scripts.nick_key(old_key),
                                           scripts.users_key(self.node), scripts.node_key(self.node)],
                           [self.node, self.ttl_ms, old_key, new_key, f"{new} {room}", self.link.channel, event])

        def done(claimed: int) -> None:
            gone = server.users.get(self._key(user.nick)) is not user
            if gone and claimed:
                # The user left while the claim was on its way: let it go.
                self._publish(self._event("quit", u=new, r="", why="quit"), None, del_field=new_key,
                              release=scripts.nick_key(new_key))
            elif not gone:
                server.claimed(user, new, bool(claimed))
            self._next_claim(user, scripts.nick_key(new_key), gone)

        def failed(failure: Failure) -> None:
            gone = server.users.get(self._key(user.nick)) is not user
            if publish and not gone:
                server.error(user, BACKPLANE_DOWN, "nicknames cannot change while the other chat nodes are out of reach")
            self._next_claim(user, scripts.nick_key(new_key), gone)

        d.addCallbacks(done, failed)

    def _next_claim(self, user: ChatUser, done_key: str, gone: bool) -> None:
        if self._reserved.get(done_key) is user:
            del self._reserved[done_key]
        queued = self._claiming.pop(user, [])
        for name in queued:
            if self._reserved.get(self._claim_key(name)) is user:
                del self._reserved[self._claim_key(name)]
        if gone or self.server is None:
            return
        for name in queued:
            # Asked again, in order: checked against what holds now, the
            # first sent, the others queued behind it.
            self.server.rename(user, name)
