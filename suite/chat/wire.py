"""
The chat protocol's text: names, sanitising, and the server lines.

Every server line is UTF-8 ending in a single LF and matches one of the forms
in docs/protocols/chat.md; the functions here are the only place those forms
are written, and :func:`parse_server_line` is the one place they are read.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "ErrorCode",
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

NAME_MAX = 32
_NAME = re.compile(r"[A-Za-z0-9_-]{1,%d}" % NAME_MAX)

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
    """Whether ``name`` is a valid nickname or room name: 1-32 of ``A-Z a-z 0-9 _ -``."""
    return _NAME.fullmatch(name) is not None


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


def _line(text: str) -> bytes:
    return (text + "\n").encode("utf-8")


def message_line(room: str, nick: str, text: str) -> bytes:
    """``[ROOM] <NICK> TEXT``: a message to a room."""
    return _line(f"[{room}] <{nick}> {text}")


def action_line(room: str, nick: str, text: str) -> bytes:
    """``[ROOM] * NICK TEXT``: a /me action in a room."""
    return _line(f"[{room}] * {nick} {text}")


def history_line(room: str, line: bytes) -> bytes:
    """A message or action line from ROOM's history, replayed: ``[history ROOM] ...``."""
    prefix = f"[{room}] ".encode()
    return f"[history {room}] ".encode() + line[len(prefix) :]


def private_line(sender: str, target: str, text: str) -> bytes:
    """``[private] <FROM -> TO> TEXT``: seen by FROM and TO only."""
    return _line(f"[private] <{sender} -> {target}> {text}")


def notice_line(kind: str, text: str) -> bytes:
    """``*** KIND: TEXT``: a server notice (join, leave, nick, who...)."""
    return _line(f"*** {kind}: {text}")


def error_line(code: str, text: str) -> bytes:
    """``!!! CODE: TEXT``: an error, sent to the one user it concerns."""
    return _line(f"!!! {code}: {text}")


@dataclass(frozen=True)
class ServerLine:
    """One server line, parsed.

    ``kind`` is ``message``, ``action``, ``private``, ``history``, ``notice``
    or ``error``.  ``code`` is the notice kind or error code; ``room``,
    ``nick``, ``target`` and ``text`` are set where the form has them.
    """

    kind: str
    text: str
    code: str | None = None
    room: str | None = None
    nick: str | None = None
    target: str | None = None


_N = r"[A-Za-z0-9_-]{1,32}"
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
