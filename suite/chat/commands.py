"""The chat's slash commands: parsing a command line and running it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from suite.chat.rooms import ChatServer, ChatUser
from suite.chat.wire import ErrorCode

__all__ = ["COMMANDS", "Command", "CommandUser", "run_command"]


class CommandUser(ChatUser, Protocol):
    """A user who types commands: a :class:`ChatUser` that can also leave (``/quit``)."""

    def quit(self, reason: str) -> None:
        """Leave the chat, telling the room ``reason``."""


@dataclass(frozen=True)
class Command:
    """One slash command: its usage, what it does, and how many words it needs."""

    usage: str
    summary: str
    run: Callable[[ChatServer, CommandUser, list[str]], None]
    needs: int = 0  #: arguments that must be present


def _help(server: ChatServer, user: CommandUser, args: list[str]) -> None:
    for command in COMMANDS.values():
        server.notice(user, "help", f"{command.usage} - {command.summary}")
    server.notice(user, "help", "a line starting with // sends a message starting with /")


COMMANDS: dict[str, Command] = {
    "nick": Command("/nick NAME", "change your nickname", lambda s, u, a: s.rename(u, a[0]), 1),
    "who": Command("/who", "list the users in your room", lambda s, u, a: s.who(u)),
    "msg": Command("/msg NICK TEXT", "send a private message", lambda s, u, a: s.whisper(u, a[0], a[1]), 2),
    "me": Command("/me ACTION", "tell your room what you are doing", lambda s, u, a: s.act(u, a[0]), 1),
    "join": Command("/join ROOM", "leave your room for another (created if new)", lambda s, u, a: s.join(u, a[0]), 1),
    "topic": Command("/topic [TEXT]", "show your room's topic, or set it", lambda s, u, a: s.topic(u, a[0] if a else None)),
    "rooms": Command("/rooms", "list the rooms", lambda s, u, a: s.list_rooms(u)),
    "quit": Command("/quit [REASON]", "leave the chat", lambda s, u, a: u.quit(a[0] if a else "")),
    "help": Command("/help", "this list", _help),
}

def run_command(server: ChatServer, user: CommandUser, line: str) -> None:
    """Run ``line``, which starts with ``/``; errors go to ``user`` alone."""
    name, _, rest = line[1:].partition(" ")
    command = COMMANDS.get(name.lower())
    if command is None:
        server.error(user, ErrorCode.UNKNOWN_COMMAND, f"unknown command /{name[:40]}; /help lists commands")
        return
    rest = rest.strip()
    # Only /msg has two arguments; every other argument is the whole rest, so
    # "/nick two words" is an invalid nickname rather than "two".
    args = (rest.split(None, 1) if name.lower() == "msg" else [rest]) if rest else []
    if len(args) < command.needs:
        server.error(user, ErrorCode.MISSING_ARGUMENT, f"usage: {command.usage}")
        return
    command.run(server, user, args)
