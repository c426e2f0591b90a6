"""
The chat's events in IRC's words: what an IRC client is sent when someone
in a room talks, acts, joins, leaves, changes nick or sets the topic.

Every function returns whole lines of UTF-8 ending in CRLF.  A message
longer than an IRC line allows (512 bytes with the CRLF) is split into
several, between characters, so no client has to cope with a longer line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from suite.chat.wire import ServerLine

if TYPE_CHECKING:
    from suite.chat.rooms import ChatServer

__all__ = ["IRC_LINE_MAX", "chunks", "mask", "render_shared"]

#: Longest line IRC allows, CRLF included (RFC 1459 section 2.3).
IRC_LINE_MAX = 512

_ACTION = "\x01ACTION "


def mask(server: ChatServer, nick: str) -> str:
    """``nick!user@host`` of whoever is called ``nick`` (line and WebSocket users: ``nick!chat@netsuite``)."""
    user = server.find_user(nick)
    return f"{nick}!{getattr(user, 'ident', 'chat')}@{getattr(user, 'host', 'netsuite')}"


def chunks(text: str, budget: int) -> list[str]:
    """``text`` cut into pieces of at most ``budget`` UTF-8 bytes, between characters (at least one piece)."""
    data = text.encode("utf-8")
    if len(data) <= budget:
        return [text]
    budget = max(budget, 4)
    pieces = []
    while data:
        cut = min(budget, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:  # not inside a character
            cut -= 1
        pieces.append(data[:cut].decode("utf-8"))
        data = data[cut:]
    return pieces


def _lines(head: str, text: str, before: str = "", after: str = "") -> bytes:
    """``head :before TEXT after`` as one or more lines, ``text`` split to fit."""
    start = f"{head} :{before}"
    budget = IRC_LINE_MAX - 2 - len(start.encode()) - len(after.encode())
    return b"".join(f"{start}{piece}{after}\r\n".encode() for piece in chunks(text, budget))


def channel(room: str) -> str:
    """The IRC channel of a chat room: ``lobby`` is ``#lobby``."""
    return "#" + room


def render_shared(server: ChatServer, hostname: str, what: ServerLine) -> bytes | None:
    """
    The lines every IRC member of a room is sent for ``what`` (the same for
    all of them, so computed once per event); ``None`` for events an IRC
    client is told about in its own way (see ``IRCConnection.deliver``).
    """
    kind = what.kind
    if kind == "message":
        return _lines(f":{mask(server, what.nick)} PRIVMSG {channel(what.room)}", what.text)  # type: ignore[arg-type]
    if kind == "action":
        return _lines(f":{mask(server, what.nick)} PRIVMSG {channel(what.room)}", what.text, _ACTION, "\x01")  # type: ignore[arg-type]
    if kind == "private":
        text = what.text
        if text.startswith("* "):  # an IRC /me in private: CTCP ACTION again
            return _lines(f":{mask(server, what.nick)} PRIVMSG {what.target}", text[2:], _ACTION, "\x01")  # type: ignore[arg-type]
        return _lines(f":{mask(server, what.nick)} PRIVMSG {what.target}", text)  # type: ignore[arg-type]
    if kind == "history":
        said = f"* {what.nick} {what.detail}" if what.code == "action" else f"<{what.nick}> {what.detail}"
        return _lines(f":{hostname} NOTICE {channel(what.room)}", said, "[history] ")  # type: ignore[arg-type]
    if kind != "notice":
        return None
    code = what.code
    if code == "join":
        return f":{mask(server, what.nick)} JOIN {channel(what.room)}\r\n".encode()  # type: ignore[arg-type]
    if code == "leave":
        if what.target == "part":
            return _lines(f":{mask(server, what.nick)} PART {channel(what.room)}", what.detail or "")  # type: ignore[arg-type]
        reason = what.detail or ""
        if reason == "quit" or reason.startswith("quit: "):  # the user's own words: Quit: WORDS
            reason = "Quit" + reason[4:]
        return _lines(f":{mask(server, what.nick)} QUIT", reason)  # type: ignore[arg-type]
    if code == "nick":
        # Sent after the change: the user is found under the new nick.
        user_host = mask(server, what.target).split("!", 1)[1]  # type: ignore[arg-type]
        return f":{what.nick}!{user_host} NICK :{what.target}\r\n".encode()
    if code == "topic" and what.nick:
        return _lines(f":{mask(server, what.nick)} TOPIC {channel(what.room)}", what.detail or "")  # type: ignore[arg-type]
    return None
