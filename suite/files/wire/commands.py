"""
Command lines, file names and errors of the file-transfer protocol: what a
client sends (:func:`parse_command`, :func:`format_command`), which names
are allowed (:func:`check_name`, :func:`escape_name`) and the ``ERR`` codes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

__all__ = [
    "Command",
    "ErrorCode",
    "FileError",
    "NAME_MAX_BYTES",
    "PROTOCOL",
    "StoredFile",
    "check_name",
    "error_line",
    "escape_name",
    "format_command",
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
    SEND_QUEUE_EXCEEDED = "send-queue-exceeded"
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
