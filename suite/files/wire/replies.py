"""
Reply lines of the file-transfer protocol: one dataclass per reply, each
writing its own line (``.line()``), and :func:`parse_reply` reading them
back on the client's side.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

from suite.files.wire.commands import _SHA256, PROTOCOL, StoredFile, error_line

__all__ = [
    "Authorized",
    "Bye",
    "Data",
    "ErrorReply",
    "FileInfo",
    "Files",
    "Greeting",
    "Ready",
    "Reply",
    "Stored",
    "WireError",
    "listing_line",
    "parse_listing",
    "parse_reply",
]


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
