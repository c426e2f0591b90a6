"""
The chat protocol's text: names, sanitising, and the server lines.

Every server line is UTF-8 ending in a single LF and matches one of the forms
in docs/protocols/chat.md; the functions here are the only place those forms
are written, and :func:`parse_server_line` is the one place they are read.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from suite.chat.names import NAME_MAX, InvalidName, check_name

__all__ = [
    "ErrorCode",
    "Line",
    "ServerLine",
    "action_line",
    "error_line",
    "history_line",
    "message_line",
    "normalize_room",
    "notice_line",
    "parse_server_line",
    "private_line",
    "sanitize",
    "strip_telnet",
    "valid_name",
]


# Unicode characters that could change how other lines look: line and
# paragraph separators, and the bidirectional overrides/isolates that can
# reorder text ("Trojan Source").
_INVISIBLE_FORMATTING = set("\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REPLACEMENT = "\ufffd"


# Telnet commands (RFC 854) start with IAC, byte 255, which never occurs in
# UTF-8: a telnet client sends them for Ctrl-C (IAC IP, IAC DO TIMING-MARK),
# for its Ctrl-] commands and to negotiate options.
_IAC, _SB, _SE = 0xFF, 0xFA, 0xF0
_WILL, _WONT, _DO, _DONT = 0xFB, 0xFC, 0xFD, 0xFE

#: Longest unfinished telnet command (a subnegotiation) kept between reads.
TELNET_MAX_PENDING = 4096


def strip_telnet(data: bytes) -> tuple[bytes, bytes, bytes]:
    """
    ``data`` without telnet commands: ``(text, replies, pending)``.

    Every option the client offers or asks for is refused (``IAC DONT x``
    for ``IAC WILL x``, ``IAC WONT x`` for ``IAC DO x``; RFC 854 lets either
    side refuse any option), and ``replies`` holds those answers.  A data
    byte 255 (``IAC IAC``) is kept, and fails UTF-8 decoding as it would
    have.  ``pending`` is a command cut off at the end of ``data``: put it
    in front of the next read.
    """
    text = bytearray()
    replies = bytearray()
    end = len(data)
    i = 0
    while True:
        j = data.find(b"\xff", i)
        if j < 0:
            text += data[i:]
            return bytes(text), bytes(replies), b""
        text += data[i:j]
        if j + 1 == end:
            return bytes(text), bytes(replies), data[j:]
        command = data[j + 1]
        if command == _IAC:
            text.append(_IAC)
            i = j + 2
        elif _WILL <= command <= _DONT:
            if j + 2 == end:
                return bytes(text), bytes(replies), data[j:]
            if command == _WILL:
                replies += bytes((_IAC, _DONT, data[j + 2]))
            elif command == _DO:
                replies += bytes((_IAC, _WONT, data[j + 2]))
            i = j + 3
        elif command == _SB:
            close = data.find(b"\xff\xf0", j + 2)
            if close < 0:
                return bytes(text), bytes(replies), data[j:]
            i = close + 2
        else:  # NOP, DM, BRK, IP, AO, AYT, EC, EL, GA, a stray SE
            i = j + 2


class ErrorCode:
    """Stable error codes: the word after ``!!!`` on an error line."""

    NICK_INVALID = "nick-invalid"
    NICK_TAKEN = "nick-taken"
    NO_SUCH_NICK = "no-such-nick"
    ROOM_INVALID = "room-invalid"
    NOT_IN_ROOM = "not-in-room"
    TOPIC_TOO_LONG = "topic-too-long"
    UNKNOWN_COMMAND = "unknown-command"
    MISSING_ARGUMENT = "missing-argument"
    LINE_TOO_LONG = "line-too-long"
    INVALID_UTF8 = "invalid-utf8"
    FLOOD = "flood"
    SEND_QUEUE_EXCEEDED = "send-queue-exceeded"
    IDLE_TIMEOUT = "idle-timeout"
    TOO_MANY_CONNECTIONS = "too-many-connections"
    SERVER_SHUTDOWN = "server-shutdown"


def valid_name(name: str) -> bool:
    """Whether ``name`` is a valid nickname or room name (see :mod:`suite.chat.names`)."""
    try:
        check_name(name)
    except InvalidName:
        return False
    return True


def normalize_room(name: str) -> str:
    """A room as typed (``#dev`` or ``dev``) without its optional ``#``."""
    return name[1:] if name.startswith("#") else name


def sanitize(text: str) -> str:
    """
    ``text`` made safe to show on another user's terminal: a tab becomes a
    space; control characters (C0, DEL, C1, so CR and ESC too), line
    separators and bidirectional overrides become U+FFFD.
    """
    if text.isprintable():
        # Fast path: printable text has no Cc, Zl, Zp or Cf characters.
        return text
    out = []
    for char in text:
        if char == "\t":
            out.append(" ")
        elif char in _INVISIBLE_FORMATTING or unicodedata.category(char) == "Cc":
            out.append(_REPLACEMENT)
        else:
            out.append(char)
    return "".join(out)


class Line(bytes):
    """
    One server line: these bytes are what the line chat sends, and
    :attr:`what` says what the line means, so that other fronts (IRC,
    WebSocket) write the same event in their own form without parsing it.

    :meth:`rendered` keeps each front's form of a line, so a line fanned
    out to a thousand IRC users is formatted once.
    """

    what: ServerLine

    def __new__(cls, text: str, what: ServerLine) -> Line:
        line = super().__new__(cls, (text + "\n").encode("utf-8"))
        line.what = what
        return line

    def rendered(self, front: str, render: Callable[[ServerLine], bytes]) -> bytes:
        """``render(self.what)``, computed once per line and ``front``."""
        cache = self.__dict__
        try:
            return cache[front]  # type: ignore[no-any-return]
        except KeyError:
            data = cache[front] = render(self.what)
            return data


def message_line(room: str, nick: str, text: str) -> Line:
    """``[ROOM] <NICK> TEXT``: a message to a room."""
    return Line(f"[{room}] <{nick}> {text}", ServerLine("message", text, room=room, nick=nick))


def action_line(room: str, nick: str, text: str) -> Line:
    """``[ROOM] * NICK TEXT``: a /me action in a room."""
    return Line(f"[{room}] * {nick} {text}", ServerLine("action", text, room=room, nick=nick))


def history_line(room: str, line: bytes) -> Line:
    """A message or action line from ROOM's history, replayed: ``[history ROOM] ...``."""
    prefix = f"[{room}] ".encode()
    what = getattr(line, "what", None)
    rest = line[len(prefix) : -1].decode("utf-8")
    return Line(
        f"[history {room}] {rest}",
        ServerLine("history", rest, code=what.kind if what else None, room=room,
                   nick=what.nick if what else None, detail=what.text if what else None),
    )


def private_line(sender: str, target: str, text: str) -> Line:
    """``[private] <FROM -> TO> TEXT``: seen by FROM and TO only."""
    return Line(f"[private] <{sender} -> {target}> {text}", ServerLine("private", text, nick=sender, target=target))


def notice_line(
    kind: str, text: str, *, room: str | None = None, nick: str | None = None,
    target: str | None = None, detail: str | None = None,
) -> Line:
    """
    ``*** KIND: TEXT``: a server notice (join, leave, nick, who...).  The
    keywords say what the notice is about, for the other fronts: ``room``
    and ``nick`` of a join or leave, ``nick`` and ``target`` (the new nick)
    of a nick change, ``detail`` the reason of a leave or the new topic.
    """
    return Line(f"*** {kind}: {text}",
                ServerLine("notice", text, code=kind, room=room, nick=nick, target=target, detail=detail))


def error_line(code: str, text: str) -> Line:
    """``!!! CODE: TEXT``: an error, sent to the one user it concerns."""
    return Line(f"!!! {code}: {text}", ServerLine("error", text, code=code))


@dataclass(frozen=True)
class ServerLine:
    """One server line, parsed.

    ``kind`` is ``message``, ``action``, ``private``, ``history``, ``notice``
    or ``error``.  ``code`` is the notice kind or error code; ``room``,
    ``nick``, ``target`` and ``text`` are set where the form has them.
    Lines the server makes (:attr:`Line.what`) say more than parsing can:
    a notice's ``room``/``nick``/``target``, and ``detail`` (a leave's
    reason, a new topic, a replayed line's text; a replayed line's ``code``
    is ``message`` or ``action``).
    """

    kind: str
    text: str
    code: str | None = None
    room: str | None = None
    nick: str | None = None
    target: str | None = None
    detail: str | None = None


# A name as the forms show it: no spaces or brackets (see suite.chat.names).
_N = r"[^\s\[\]<>*]{1,%d}" % NAME_MAX
_FORMS = [
    ("private", re.compile(rf"\[private\] <(?P<nick>{_N}) -> (?P<target>{_N})> (?P<text>.*)")),
    ("history", re.compile(rf"\[history (?P<room>{_N})\] (?P<text>.*)")),
    ("message", re.compile(rf"\[(?P<room>{_N})\] <(?P<nick>{_N})> (?P<text>.*)")),
    ("action", re.compile(rf"\[(?P<room>{_N})\] \* (?P<nick>{_N}) (?P<text>.*)")),
    ("notice", re.compile(r"\*\*\* (?P<code>[a-z-]+): (?P<text>.*)")),
    ("error", re.compile(r"!!! (?P<code>[a-z0-9-]+): (?P<text>.*)")),
]


def parse_server_line(line: str) -> ServerLine | None:
    """Parse one server line (without its LF); ``None`` if it has no known form."""
    for kind, pattern in _FORMS:
        match = pattern.fullmatch(line)
        if match:
            return ServerLine(kind=kind, **match.groupdict())
    return None
