"""
The file-transfer protocol's text: file names, command lines and replies,
in both directions.

See docs/protocols/files.md.  Commands are one UTF-8 line each (LF or
CRLF); an upload's or a download's bytes follow their header line raw.
:mod:`suite.files.wire.commands` holds what a client sends (and the names
and error codes), :mod:`suite.files.wire.replies` what the server answers;
both are re-exported here.
"""

from suite.files.wire.commands import (
    NAME_MAX_BYTES, PROTOCOL, Command, ErrorCode, FileError, StoredFile, check_name, error_line, escape_name,
    format_command, parse_command,
)
from suite.files.wire.replies import (
    Authorized, Bye, Data, ErrorReply, FileInfo, Files, Greeting, Ready, Reply, Stored, WireError, listing_line,
    parse_listing, parse_reply,
)

__all__ = [
    "Authorized",
    "Bye",
    "Command",
    "Data",
    "ErrorCode",
    "ErrorReply",
    "FileError",
    "FileInfo",
    "Files",
    "Greeting",
    "NAME_MAX_BYTES",
    "PROTOCOL",
    "Ready",
    "Reply",
    "Stored",
    "StoredFile",
    "WireError",
    "check_name",
    "error_line",
    "escape_name",
    "format_command",
    "listing_line",
    "parse_command",
    "parse_listing",
    "parse_reply",
]
