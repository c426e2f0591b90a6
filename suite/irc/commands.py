"""
What an IRC client may send, and what it is answered: registration (CAP,
PASS, NICK, USER), then the commands real clients use.  A mixin of
:class:`suite.irc.protocol.IRCConnection`; see docs/protocols/irc.md.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from twisted.words.protocols import irc

from suite import __version__
from suite.chat import wire
from suite.chat.names import NAME_MAX, NAME_RULE
from suite.irc.queries import IRCQueries, shown
from suite.irc.render import IRC_LINE_MAX, channel

__all__ = ["IRCCommands"]

#: What may be sent before registering; anything else gets 451.
_BEFORE_REGISTRATION = frozenset(("CAP", "PASS", "NICK", "USER", "PING", "PONG", "QUIT"))


class IRCCommands(IRCQueries):
    """The ``irc_COMMAND`` handlers, called by Twisted's ``IRC.handleCommand``."""

    def _init_registration(self) -> None:
        self._wanted_nick: str | None = None
        self._user_given = False
        self._cap_negotiating = False
        self._password_ok = False

    def handleCommand(self, command: str, prefix: str, params: list[str]) -> None:
        if not self.registered and command not in _BEFORE_REGISTRATION:
            self.numeric(irc.ERR_NOTREGISTERED, ":You have not registered")
            return
        super().handleCommand(command, prefix, params)

    def irc_unknown(self, prefix: str, command: str, params: list[str]) -> None:
        self.numeric(irc.ERR_UNKNOWNCOMMAND, shown(command), ":Unknown command")

    def _need(self, command: str, params: list[str], count: int) -> bool:
        if len(params) >= count and all(params[:count]):
            return True
        self.numeric(irc.ERR_NEEDMOREPARAMS, command, ":Not enough parameters")
        return False

    # -- registration ----------------------------------------------------------

    def irc_CAP(self, prefix: str, params: list[str]) -> None:
        # No capabilities: LS lists none, REQ is refused, END goes on.
        sub = params[0].upper() if params else ""
        who = self.nick or "*"
        if sub == "LS":
            self._cap_negotiating = not self.registered
            self.deliver(f":{self.hostname} CAP {who} LS :\r\n".encode())
        elif sub == "LIST":
            self.deliver(f":{self.hostname} CAP {who} LIST :\r\n".encode())
        elif sub == "REQ":
            self._cap_negotiating = not self.registered
            asked = wire.sanitize(params[1] if len(params) > 1 else "")[:400]
            self.deliver(f":{self.hostname} CAP {who} NAK :{asked}\r\n".encode())
        elif sub == "END":
            self._cap_negotiating = False
            self._maybe_register()
        else:
            self.numeric("410", shown(sub), ":Invalid CAP command")

    def irc_PASS(self, prefix: str, params: list[str]) -> None:
        if self.registered:
            self.numeric(irc.ERR_ALREADYREGISTRED, ":You may not reregister")
            return
        if not self._need("PASS", params, 1):
            return
        password = self.factory.password
        # compare_digest: the answer's timing says nothing about the password.
        self._password_ok = password is not None and hmac.compare_digest(params[0].encode(), password.encode())

    def irc_NICK(self, prefix: str, params: list[str]) -> None:
        if not params or not params[0]:
            self.numeric(irc.ERR_NONICKNAMEGIVEN, ":No nickname given")
            return
        nick = params[0]
        server = self.factory.server
        problem = server.nick_problem(self if self.registered else None, nick)
        if problem is not None:
            code, text = problem
            numeric = irc.ERR_NICKNAMEINUSE if code == wire.ErrorCode.NICK_TAKEN else irc.ERR_ERRONEUSNICKNAME
            self.numeric(numeric, shown(nick), f":{text}")
            return
        if self.registered:
            if nick != self.nick:
                server.rename(self, nick)
            return
        self._wanted_nick = nick
        self._maybe_register()

    def irc_USER(self, prefix: str, params: list[str]) -> None:
        if self.registered:
            self.numeric(irc.ERR_ALREADYREGISTRED, ":You may not reregister")
            return
        if not self._need("USER", params, 4):
            return
        ident = "".join(c for c in params[0] if c.isalnum() or c in "-_.")[:10] or "user"
        self.ident = "~" + ident
        self.realname = wire.sanitize(params[3])[:100]
        self._user_given = True
        self._maybe_register()

    def _maybe_register(self) -> None:
        if self.registered or self._cap_negotiating or not self._user_given or self._wanted_nick is None:
            return
        factory = self.factory
        if factory.password is not None and not self._password_ok:
            self.numeric(irc.ERR_PASSWDMISMATCH, ":Password incorrect (PASS TOKEN before NICK and USER)")
            self.close("Bad password")
            return
        server = factory.server
        nick = self._wanted_nick
        problem = server.nick_problem(None, nick)
        if problem is not None:  # taken since NICK was accepted
            self.numeric(irc.ERR_NICKNAMEINUSE, shown(nick), f":{problem[1]}")
            self._wanted_nick = None
            return
        self.registered = True
        self.signon = self.last_spoke = time.time()
        server.connect(self, nick, join=False)
        self.setTimeout(factory.ping_interval)
        me = f"{self.nick}!{self.ident}@{self.host}"
        version = f"netsuite-{__version__}"
        created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(server.created))
        self.numeric(irc.RPL_WELCOME, f":Welcome to the {factory.network} IRC network {me}")
        self.numeric(irc.RPL_YOURHOST, f":Your host is {self.hostname}, running version {version}")
        self.numeric(irc.RPL_CREATED, f":This server was created {created}")
        self.numeric(irc.RPL_MYINFO, self.hostname, version, "i", "bnt")
        self.numeric(
            irc.RPL_ISUPPORT, "CASEMAPPING=rfc8265", "CHANTYPES=#", "PREFIX=", "CHANMODES=b,,,nt",
            f"NICKLEN={NAME_MAX}", f"CHANNELLEN={NAME_MAX + 1}", f"TOPICLEN={server.topic_max}",
            f"NETWORK={factory.network}", "UTF8ONLY", "CHANLIMIT=#:1", "MAXTARGETS=4", ":are supported by this server",
        )
        self.server_notice(f"*** names: {NAME_RULE}; compared case- and width-insensitively (PRECIS, RFC 8265)")
        self.irc_MOTD("", [])

    def irc_MOTD(self, prefix: str, params: list[str]) -> None:
        motd = self.factory.motd
        if not motd:
            self.numeric(irc.ERR_NOMOTD, ":MOTD File is missing")
            return
        self.numeric(irc.RPL_MOTDSTART, f":- {self.hostname} Message of the day -")
        for line in motd.splitlines():
            self.numeric(irc.RPL_MOTD, f":- {line}")
        self.numeric(irc.RPL_ENDOFMOTD, ":End of /MOTD command.")

    def irc_PING(self, prefix: str, params: list[str]) -> None:
        if not params:
            self.numeric(irc.ERR_NOORIGIN, ":No origin specified")
            return
        self.deliver(f":{self.hostname} PONG {self.hostname} :{wire.sanitize(params[-1])[:200]}\r\n".encode())

    def irc_PONG(self, prefix: str, params: list[str]) -> None:
        pass  # any line answers the server's PING (dataReceived resets the timer)

    def irc_QUIT(self, prefix: str, params: list[str]) -> None:
        reason = wire.sanitize(params[0])[:200] if params else ""
        self.close(f"Quit: {reason}" if reason else "Quit", f"quit: {reason}" if reason else "quit")

    # -- rooms -----------------------------------------------------------------

    def _room_named(self, name: str) -> Any:
        """The room of channel ``name``, answering 403 when there is none."""
        room = self.factory.server.find_room(name) if name.startswith("#") else None
        if room is None:
            self.numeric(irc.ERR_NOSUCHCHANNEL, shown(name), ":No such channel")
        return room

    def irc_JOIN(self, prefix: str, params: list[str]) -> None:
        if not self._need("JOIN", params, 1):
            return
        server = self.factory.server
        if params[0] == "0":
            self._part("Left all channels")
            return
        for name in params[0].split(",")[:4]:
            if not name.startswith("#"):
                self.numeric(irc.ERR_NOSUCHCHANNEL, shown(name), f":Channel names start with #; {NAME_RULE}")
                continue
            problem = server.room_problem(name[1:])
            if problem is not None:
                self.numeric(irc.ERR_NOSUCHCHANNEL, shown(name), f":{problem[1]}")
                continue
            target = server.find_room(name)
            if target is not None and target is self.room:
                continue
            if self.room is not None:  # one channel at a time, as in the line chat
                self.deliver(f":{self._me()} PART {channel(self.room.name)} :Joined {shown(name)}\r\n".encode())
            server.join(self, name[1:])

    def joined_lines(self, room_name: str) -> bytes:
        """What a client is sent when it joins: JOIN, the topic (332/333 or 331), the names (353, 366)."""
        room = self.factory.server.find_room(room_name)
        chan = channel(room_name)
        out = [f":{self._me()} JOIN {chan}\r\n"]
        if room is not None:
            out += self._topic_lines(room, chan)
            out += self._names_lines(room, chan)
        return "".join(out).encode()

    def _topic_lines(self, room: Any, chan: str) -> list[str]:
        if not room.topic:
            return [f":{self.hostname} {irc.RPL_NOTOPIC} {self.nick} {chan} :No topic is set\r\n"]
        return [
            f":{self.hostname} {irc.RPL_TOPIC} {self.nick} {chan} :{room.topic}\r\n",
            f":{self.hostname} 333 {self.nick} {chan} {room.topic_by} {int(room.topic_at)}\r\n",
        ]

    def _names_lines(self, room: Any, chan: str) -> list[str]:
        head = f":{self.hostname} {irc.RPL_NAMREPLY} {self.nick} = {chan} :"
        budget = IRC_LINE_MAX - 2 - len(head.encode())
        out, names, size = [], [], 0
        for nick in self.factory.server.room_nicks(room):  # other chat nodes' users too
            n = len(nick.encode()) + 1
            if names and size + n > budget:
                out.append(head + " ".join(names) + "\r\n")
                names, size = [], 0
            names.append(nick)
            size += n
        if names:
            out.append(head + " ".join(names) + "\r\n")
        out.append(f":{self.hostname} {irc.RPL_ENDOFNAMES} {self.nick} {chan} :End of /NAMES list.\r\n")
        return out

    def _part(self, reason: str) -> None:
        if self.room is not None:
            self.deliver(f":{self._me()} PART {channel(self.room.name)} :{reason}\r\n".encode())
            self.factory.server.part(self, reason)

    def irc_PART(self, prefix: str, params: list[str]) -> None:
        if not self._need("PART", params, 1):
            return
        reason = wire.sanitize(params[1])[:200] if len(params) > 1 else "Leaving"
        for name in params[0].split(",")[:4]:
            room = self._room_named(name)
            if room is None:
                continue
            if room is not self.room:
                self.numeric(irc.ERR_NOTONCHANNEL, shown(name), ":You're not on that channel")
                continue
            self._part(reason)

    def irc_TOPIC(self, prefix: str, params: list[str]) -> None:
        if not self._need("TOPIC", params, 1):
            return
        room = self._room_named(params[0])
        if room is None:
            return
        if len(params) == 1:
            for line in self._topic_lines(room, channel(room.name)):
                self.deliver(line.encode())
            return
        if room is not self.room:
            self.numeric(irc.ERR_NOTONCHANNEL, shown(params[0]), ":You're not on that channel")
            return
        server = self.factory.server
        if len(params[1]) > server.topic_max:
            self.server_notice(f"!!! topic-too-long: a topic has at most {server.topic_max} characters; not set")
            return
        server.topic(self, params[1])

    # -- talking ---------------------------------------------------------------

    def irc_PRIVMSG(self, prefix: str, params: list[str], notice: bool = False) -> None:
        command = "NOTICE" if notice else "PRIVMSG"
        if not params or not params[0]:
            if not notice:
                self.numeric(irc.ERR_NORECIPIENT, f":No recipient given ({command})")
            return
        if len(params) < 2 or not params[1]:
            if not notice:
                self.numeric(irc.ERR_NOTEXTTOSEND, ":No text to send")
            return
        text = params[1]
        action = text.startswith("\x01ACTION") and len(text) > 8
        if action:
            text = text[8:].rstrip("\x01")
        elif text.startswith("\x01"):
            return  # other CTCP requests (VERSION, PING...) are not relayed
        server = self.factory.server
        self.last_spoke = time.time()
        for target in params[0].split(",")[:4]:
            if target.startswith("#"):
                room = server.find_room(target)
                if room is None:
                    if not notice:
                        self.numeric(irc.ERR_NOSUCHCHANNEL, shown(target), ":No such channel")
                elif room is not self.room:
                    if not notice:
                        self.numeric(irc.ERR_CANNOTSENDTOCHAN, shown(target), ":Cannot send to channel (join it first)")
                elif action:
                    server.act(self, text)
                else:
                    server.say(self, text)
                continue
            user = server.find_anyone(target)  # on this chat node or another
            if user is None:
                if not notice:
                    self.numeric(irc.ERR_NOSUCHNICK, shown(target), ":No such nick/channel")
                continue
            server.whisper(self, user.nick, f"* {text}" if action else text)
            away = getattr(user, "away", None)
            if away and not notice:
                self.numeric(irc.RPL_AWAY, user.nick, f":{away}")

    def irc_NOTICE(self, prefix: str, params: list[str]) -> None:
        self.irc_PRIVMSG(prefix, params, notice=True)

