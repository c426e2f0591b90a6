"""
The file-transfer protocol's text: file names, command lines and replies.

See docs/protocols/files.md.  Commands are one UTF-8 line each (LF or
CRLF); an upload's or a download's bytes follow their header line raw.
"""

from __future__ import annotations

import calendar
import re
import time
import unicodedata
from dataclasses import dataclass, field

__all__ = [
    "Authorized",
    "Bye",
    "Command",
    "Data",
    "ErrorReply",
    "FileInfo",
    "Files",
    "Greeting",
    "Ready",
    "Reply",
    "Stored",
    "WireError",
    "escape_name",
    "format_command",
    "listing_line",
    "parse_listing",
    "parse_reply",
    "ErrorCode",
    "FileError",
    "PROTOCOL",
    "StoredFile",
    "check_name",
    "error_line",
    "parse_command",
]

#: The greeting's first word and version.
PROTOCOL = "NETSUITE-FILES 1"

NAME_MAX_BYTES = 255
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BAD_NAME_CHARS = set("/\\\x00")
#: Control, format (bidi controls, zero-width), surrogate, line and
#: paragraph separator characters: invisible, or change how a name prints.
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


class ErrorCode:
    """Stable error codes: the word after ``ERR`` on an error line."""

    BAD_COMMAND = "bad-command"
    BAD_NAME = "bad-name"
    BAD_SIZE = "bad-size"
    BAD_OFFSET = "bad-offset"
    LINE_TOO_LONG = "line-too-long"
    TOO_LARGE = "too-large"
    QUOTA_EXCEEDED = "quota-exceeded"
    NO_SPACE = "no-space"
    DISK_FULL = "disk-full"
    EXISTS = "exists"
    BUSY = "busy"
    TOO_MANY_TRANSFERS = "too-many-transfers"
    TOO_MANY_CONNECTIONS = "too-many-connections"
    NOT_FOUND = "not-found"
    SHORT = "short"
    TOO_LONG = "too-long"
    CHECKSUM_MISMATCH = "checksum-mismatch"
    TIMEOUT = "timeout"
    AUTH_REQUIRED = "auth-required"
    AUTH_FAILED = "auth-failed"
    INTERNAL = "internal-error"


class FileError(Exception):
    """A refusal with a stable :class:`ErrorCode` and a human message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def line(self) -> bytes:
        """The ``ERR CODE message`` reply line."""
        return error_line(self.code, self.message)


def error_line(code: str, message: str) -> bytes:
    return f"ERR {code} {message}\n".encode()


def check_name(name: str) -> str:
    """
    Return ``name`` if it is a valid stored-file name, else raise.

    A name is one path component of UTF-8, 1-255 bytes, not ``.`` or
    ``..``, without ``/``, ``\\``, NUL, control, format (bidi) or
    line/paragraph separator characters, and not
    starting with ``.`` (reserved for the server's temporary files).

    :raises FileError: ``bad-name``, saying what is wrong.
    """
    if not name:
        raise FileError(ErrorCode.BAD_NAME, "the name is empty")
    if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
        raise FileError(ErrorCode.BAD_NAME, f"the name is longer than {NAME_MAX_BYTES} bytes")
    if name.startswith("."):
        raise FileError(ErrorCode.BAD_NAME, "names starting with '.' are reserved")
    for char in name:
        if char in _BAD_NAME_CHARS or unicodedata.category(char) in _BAD_CATEGORIES:
            # Format characters include the bidi controls (U+202E makes
            # "gpj.exe" print as "exe.jpg") and zero-width joiners.
            raise FileError(ErrorCode.BAD_NAME, f"the name contains {char!r} (U+{ord(char):04X}), which is not allowed")
    return name


@dataclass(frozen=True)
class StoredFile:
    """A complete, verified file in storage (what ``FILE`` lines describe)."""

    name: str
    size: int
    sha256: str
    mtime: float


@dataclass(frozen=True)
class Command:
    """One parsed command line."""

    verb: str
    name: str = ""
    size: int = 0
    offset: int = 0
    sha256: str | None = None
    overwrite: bool = False
    resume: bool = False
    token: str = ""
    options: frozenset[str] = field(default_factory=frozenset)


def _number(text: str, code: str, what: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise FileError(code, f"{what} must be a whole number of bytes, not {text[:30]!r}")
    return int(text)


def parse_command(line: str) -> Command:
    """
    Parse one command line (without its line end).

    ::

        AUTH TOKEN
        PUT [sha256=HEX] [overwrite] [resume] SIZE NAME
        GET OFFSET NAME
        STAT NAME
        LIST
        DONE
        QUIT

    :raises FileError: ``bad-command``, ``bad-size``, ``bad-offset`` or
        ``bad-name``.
    """
    verb, _, rest = line.partition(" ")
    verb = verb.upper()
    if verb == "PUT":
        options: set[str] = set()
        sha256 = None
        while True:
            word, _, after = rest.partition(" ")
            if not word:
                raise FileError(ErrorCode.BAD_SIZE, "usage: PUT [sha256=HEX] [overwrite] [resume] SIZE NAME")
            if word.isascii() and word.isdigit():
                break
            if word.startswith("sha256="):
                sha256 = word[len("sha256="):].lower()
                if not _SHA256.fullmatch(sha256):
                    raise FileError(ErrorCode.BAD_COMMAND, "sha256= needs 64 hexadecimal digits")
            elif word in ("overwrite", "resume"):
                options.add(word)
            else:
                raise FileError(
                    ErrorCode.BAD_COMMAND,
                    f"unexpected {word[:30]!r}: usage: PUT [sha256=HEX] [overwrite] [resume] SIZE NAME",
                )
            rest = after
        size = _number(word, ErrorCode.BAD_SIZE, "SIZE")
        if "resume" in options and sha256 is None:
            raise FileError(ErrorCode.BAD_COMMAND, "resume needs sha256=HEX to match the partial upload")
        return Command(
            "PUT", name=check_name(after), size=size, sha256=sha256,
            overwrite="overwrite" in options, resume="resume" in options, options=frozenset(options),
        )
    if verb == "GET":
        offset_text, _, name = rest.partition(" ")
        return Command("GET", name=check_name(name), offset=_number(offset_text, ErrorCode.BAD_OFFSET, "OFFSET"))
    if verb == "STAT":
        return Command("STAT", name=check_name(rest))
    if verb == "AUTH":
        return Command("AUTH", token=rest)
    if verb in ("LIST", "DONE", "QUIT"):
        if rest.strip():
            raise FileError(ErrorCode.BAD_COMMAND, f"{verb} takes no arguments")
        return Command(verb)
    raise FileError(ErrorCode.BAD_COMMAND, f"unknown command {verb[:30]!r}; commands: AUTH PUT GET STAT LIST DONE QUIT")


def format_command(command: Command) -> bytes:
    """The line a client sends for ``command`` (the inverse of :func:`parse_command`)."""
    verb = command.verb
    if verb == "PUT":
        words = ["PUT"]
        if command.sha256 is not None:
            words.append(f"sha256={command.sha256}")
        words += [w for w, on in (("overwrite", command.overwrite), ("resume", command.resume)) if on]
        words += [str(command.size), check_name(command.name)]
        text = " ".join(words)
    elif verb == "GET":
        text = f"GET {command.offset} {check_name(command.name)}"
    elif verb == "STAT":
        text = f"STAT {check_name(command.name)}"
    elif verb == "AUTH":
        if "\n" in command.token or "\r" in command.token:
            raise ValueError("a token is one line")
        text = f"AUTH {command.token}"
    else:
        text = verb
    return text.encode("utf-8") + b"\n"


# -- replies -----------------------------------------------------------------------


class WireError(ValueError):
    """A reply line that does not follow the protocol."""


def _when(mtime: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))


@dataclass(frozen=True)
class Greeting:
    """``NETSUITE-FILES 1 [auth-required]``: the server's first line."""

    auth_required: bool = False

    def line(self) -> bytes:
        return (PROTOCOL + (" auth-required" if self.auth_required else "")).encode() + b"\n"


@dataclass(frozen=True)
class Authorized:
    """``AUTHORIZED``: the token was right."""

    def line(self) -> bytes:
        return b"AUTHORIZED\n"


@dataclass(frozen=True)
class Bye:
    """``BYE``: the answer to ``QUIT``; the server closes."""

    def line(self) -> bytes:
        return b"BYE\n"


@dataclass(frozen=True)
class Ready:
    """``READY OFFSET``: send the upload's bytes from OFFSET."""

    offset: int

    def line(self) -> bytes:
        return f"READY {self.offset}\n".encode()


@dataclass(frozen=True)
class Stored:
    """``STORED SIZE SHA256 NAME``: the upload is stored and visible."""

    size: int
    sha256: str
    name: str

    def line(self) -> bytes:
        return f"STORED {self.size} {self.sha256} {self.name}\n".encode()


@dataclass(frozen=True)
class Data:
    """``DATA SIZE SHA256 OFFSET``: SIZE - OFFSET bytes of the file follow."""

    size: int
    sha256: str
    offset: int

    def line(self) -> bytes:
        return f"DATA {self.size} {self.sha256} {self.offset}\n".encode()


@dataclass(frozen=True)
class FileInfo:
    """``FILE SIZE SHA256 MTIME NAME``: the answer to ``STAT``."""

    file: StoredFile

    def line(self) -> bytes:
        return b"FILE " + listing_line(self.file)


@dataclass(frozen=True)
class Files:
    """``FILES N``: N listing lines follow (see :func:`listing_line`)."""

    count: int

    def line(self) -> bytes:
        return f"FILES {self.count}\n".encode()


@dataclass(frozen=True)
class ErrorReply:
    """``ERR CODE MESSAGE``: a refusal."""

    code: str
    message: str

    def line(self) -> bytes:
        return error_line(self.code, self.message)


Reply = Greeting | Authorized | Bye | Ready | Stored | Data | FileInfo | Files | ErrorReply


def listing_line(stored: StoredFile) -> bytes:
    """``SIZE SHA256 MTIME NAME``: one file in ``LIST`` (and ``FILE``) replies."""
    return f"{stored.size} {stored.sha256} {_when(stored.mtime)} {stored.name}\n".encode()


def _count(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise WireError(f"expected a number, not {text[:30]!r}")
    return int(text)


def _digest(text: str) -> str:
    if not _SHA256.fullmatch(text):
        raise WireError(f"expected a sha256, not {text[:70]!r}")
    return text


def parse_listing(text: str) -> StoredFile:
    """One ``SIZE SHA256 MTIME NAME`` line (without its line end)."""
    fields = text.split(" ", 3)
    if len(fields) != 4:
        raise WireError(f"not a file line: {text[:80]!r}")
    size, sha256, when, name = fields
    try:
        mtime = calendar.timegm(time.strptime(when, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        raise WireError(f"not a time: {when[:30]!r}") from None
    return StoredFile(name, _count(size), _digest(sha256), float(mtime))


def parse_reply(text: str) -> Reply:
    """
    One reply line (without its line end) as the server sends it, except
    the lines that follow ``FILES`` (:func:`parse_listing`).

    :raises WireError: the line is not a reply of this protocol.
    """
    word, _, rest = text.partition(" ")
    if text.startswith(PROTOCOL):
        return Greeting(text[len(PROTOCOL):].strip() == "auth-required")
    if word == "ERR":
        code, _, message = rest.partition(" ")
        return ErrorReply(code, message)
    if word == "AUTHORIZED" and not rest:
        return Authorized()
    if word == "BYE" and not rest:
        return Bye()
    if word == "READY":
        return Ready(_count(rest))
    if word == "FILES":
        return Files(_count(rest))
    if word == "FILE":
        return FileInfo(parse_listing(rest))
    fields = rest.split(" ", 2)
    if word == "STORED" and len(fields) == 3:
        return Stored(_count(fields[0]), _digest(fields[1]), fields[2])
    if word == "DATA" and len(fields) == 3:
        return Data(_count(fields[0]), _digest(fields[1]), _count(fields[2]))
    raise WireError(f"unexpected reply {text[:80]!r}")


def escape_name(name: str) -> str:
    """
    A name safe to print on a terminal: anything invisible or that moves
    the cursor or changes direction (control, format, separator
    characters, a lone surrogate) becomes a ``\\u`` escape, and a
    backslash is doubled.  Names the server accepts need no escaping;
    this protects a client from a server that does not check.
    """
    out = []
    for char in name:
        if char == "\\":
            out.append("\\\\")
        elif unicodedata.category(char) in _BAD_CATEGORIES or char in "\x00":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)
