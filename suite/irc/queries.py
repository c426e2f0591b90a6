"""
The IRC queries: who is here, what a channel is, what a user is
(NAMES, LIST, WHO, WHOIS, MODE, AWAY, ISON, USERHOST).  With a backplane
they answer for every chat node (users of other nodes are
:class:`suite.chat.room.RemoteUser` s).  A mixin of
:class:`suite.irc.protocol.IRCConnection` (through ``IRCCommands``).
"""

from __future__ import annotations

import time
from typing import Any

from twisted.words.protocols import irc

from suite.chat import wire
from suite.chat.room import RemoteUser
from suite.irc.render import channel

# A mixin: the handlers use the connection's attributes (factory, room,
# numeric...), which IRCConnection provides.  It is typed as a plain object
# subclass because basing it on IRCConnection for type checkers made an
# inheritance cycle (IRCConnection derives from it).
_Base = object

__all__ = ["IRCQueries", "shown"]


def shown(param: str, limit: int = 64) -> str:
    """A client's word, safe to put back in one of our lines (no spaces, controls; bounded)."""
    return wire.sanitize(param)[:limit].replace(" ", "_") or "*"


class IRCQueries(_Base):
    """The ``irc_COMMAND`` handlers that answer questions."""

    def irc_NAMES(self, prefix: str, params: list[str]) -> None:
        names = params[0].split(",")[:4] if params and params[0] else ([channel(self.room.name)] if self.room else [])
        for name in names:
            room = self.factory.server.find_room(name) if name.startswith("#") else None
            if room is None:
                self.numeric(irc.RPL_ENDOFNAMES, shown(name), ":End of /NAMES list.")
                continue
            for line in self._names_lines(room, channel(room.name)):
                self.deliver(line.encode())
        if not names:
            self.numeric(irc.RPL_ENDOFNAMES, "*", ":End of /NAMES list.")

    def irc_LIST(self, prefix: str, params: list[str]) -> None:
        server = self.factory.server
        self.numeric(irc.RPL_LISTSTART, "Channel", ":Users  Name")
        for key, (name, count) in sorted(server.room_sizes().items()):  # other chat nodes' rooms too
            room = server.rooms.get(key)
            self.numeric(irc.RPL_LIST, channel(name), str(count), f":{room.topic if room is not None else ''}")
        self.numeric(irc.RPL_LISTEND, ":End of /LIST")

    # -- who is who ------------------------------------------------------------

    def _me(self) -> str:
        return f"{self.nick}!{self.ident}@{self.host}"

    def _who_line(self, mask: str, user: Any) -> str:
        flag = "G" if getattr(user, "away", None) else "H"
        return (
            f":{self.hostname} {irc.RPL_WHOREPLY} {self.nick} {mask} {getattr(user, 'ident', 'chat')} "
            f"{getattr(user, 'host', 'netsuite')} {self.hostname} {user.nick} {flag} "
            f":0 {getattr(user, 'realname', '') or user.nick}\r\n"
        )

    def irc_WHO(self, prefix: str, params: list[str]) -> None:
        server = self.factory.server
        mask = params[0] if params and params[0] else "*"
        if mask.startswith("#"):
            room = server.find_room(mask)
            found = [server.find_anyone(nick) for nick in server.room_nicks(room)] if room is not None else []
            members = [user for user in found if user is not None]
            label = channel(room.name) if room is not None else shown(mask)
        else:
            user = server.find_anyone(mask)
            members = [user] if user is not None else []
            label = shown(mask)
        for user in members:
            self.deliver(self._who_line(label if label.startswith("#") else "*", user).encode())
        self.numeric(irc.RPL_ENDOFWHO, label, ":End of /WHO list.")

    def irc_WHOIS(self, prefix: str, params: list[str]) -> None:
        if not params or not params[-1]:
            self.numeric(irc.ERR_NONICKNAMEGIVEN, ":No nickname given")
            return
        nick = params[-1]
        user = self.factory.server.find_anyone(nick)
        if user is None:
            self.numeric(irc.ERR_NOSUCHNICK, shown(nick), ":No such nick/channel")
            self.numeric(irc.RPL_ENDOFWHOIS, shown(nick), ":End of /WHOIS list.")
            return
        n = user.nick
        self.numeric(irc.RPL_WHOISUSER, n, getattr(user, "ident", "chat"), getattr(user, "host", "netsuite"), "*",
                     f":{getattr(user, 'realname', '') or n}")
        room_name = user.room_name if isinstance(user, RemoteUser) else (user.room.name if user.room else "")
        if room_name:
            self.numeric(irc.RPL_WHOISCHANNELS, n, f":{channel(room_name)}")
        if isinstance(user, RemoteUser):
            front = "netsuite chat, on another chat node"
        else:
            front = "IRC" if getattr(user, "tracks_members", False) and hasattr(user, "ident") else "netsuite chat"
        self.numeric(irc.RPL_WHOISSERVER, n, self.hostname, f":{front}")
        if getattr(user, "away", None):
            self.numeric(irc.RPL_AWAY, n, f":{user.away}")  # type: ignore[attr-defined]
        if hasattr(user, "signon"):
            idle = int(time.time() - user.last_spoke)  # type: ignore[attr-defined]
            self.numeric(irc.RPL_WHOISIDLE, n, str(idle), str(int(user.signon)), ":seconds idle, signon time")  # type: ignore[attr-defined]
        self.numeric(irc.RPL_ENDOFWHOIS, n, ":End of /WHOIS list.")

    def irc_MODE(self, prefix: str, params: list[str]) -> None:
        if not self._need("MODE", params, 1):
            return
        target = params[0]
        server = self.factory.server
        if target.startswith("#"):
            room = self._room_named(target)
            if room is None:
                return
            chan = channel(room.name)
            if len(params) == 1:
                self.numeric(irc.RPL_CHANNELMODEIS, chan, "+nt")
                self.numeric("329", chan, str(int(room.created)))
            elif params[1].lstrip("+") == "b":
                self.numeric(irc.RPL_ENDOFBANLIST, chan, ":End of channel ban list")
            else:
                self.numeric(irc.ERR_CHANOPRIVSNEEDED, chan, ":Channel modes cannot be changed here")
            return
        user = server.find_anyone(target)
        if user is None:
            self.numeric(irc.ERR_NOSUCHNICK, shown(target), ":No such nick/channel")
        elif user is not self:
            self.numeric("502", ":Can't change mode for other users")
        else:
            self.numeric(irc.RPL_UMODEIS, "+i")

    def irc_AWAY(self, prefix: str, params: list[str]) -> None:
        if params and params[0]:
            self.away = wire.sanitize(params[0])[:200]
            self.numeric(irc.RPL_NOWAWAY, ":You have been marked as being away")
        else:
            self.away = None
            self.numeric(irc.RPL_UNAWAY, ":You are no longer marked as being away")

    def irc_ISON(self, prefix: str, params: list[str]) -> None:
        server = self.factory.server
        nicks = " ".join(params).split()[:50]
        here = [user.nick for user in (server.find_anyone(n) for n in nicks) if user is not None]
        self.numeric(irc.RPL_ISON, ":" + " ".join(here))

    def irc_USERHOST(self, prefix: str, params: list[str]) -> None:
        server = self.factory.server
        replies = []
        for nick in " ".join(params).split()[:5]:
            user = server.find_anyone(nick)
            if user is not None:
                away = "-" if getattr(user, "away", None) else "+"
                replies.append(f"{user.nick}={away}{getattr(user, 'ident', 'chat')}@{getattr(user, 'host', 'netsuite')}")
        self.numeric(irc.RPL_USERHOST, ":" + " ".join(replies))
