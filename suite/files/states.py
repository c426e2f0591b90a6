"""
The states of a file-service connection and the moves between them
(``suite.files.server.FileProtocol.move``).
"""

from __future__ import annotations

import enum

from suite.files.wire import ErrorCode

__all__ = ["MOVES", "READING", "STAYS", "State"]


class State(enum.Enum):
    """What a connection is doing; it reads input only in the first three."""

    COMMAND = "awaiting a command"
    BODY = "receiving an upload's bytes"
    AFTER_BODY = "awaiting the line after an upload's bytes"
    WORKING = "carrying out a command"
    SENDING = "sending a file"
    CLOSING = "closing"


#: The moves a connection may make; anything else is a bug (internal-error).
MOVES: dict[State, frozenset[State]] = {
    State.COMMAND: frozenset({State.WORKING, State.CLOSING}),
    State.WORKING: frozenset({State.COMMAND, State.BODY, State.AFTER_BODY, State.SENDING, State.CLOSING}),
    State.BODY: frozenset({State.AFTER_BODY, State.CLOSING}),
    State.AFTER_BODY: frozenset({State.WORKING, State.CLOSING}),
    State.SENDING: frozenset({State.WORKING, State.CLOSING}),
    State.CLOSING: frozenset(),
}
#: States in which input is read.
READING = frozenset({State.COMMAND, State.BODY, State.AFTER_BODY})

#: Errors after which the connection stays open (the rest close it).
STAYS = frozenset({ErrorCode.BAD_COMMAND, ErrorCode.BAD_NAME, ErrorCode.BAD_OFFSET, ErrorCode.NOT_FOUND,
                    ErrorCode.TOO_MANY_TRANSFERS})
