"""
The chat service: a line-based, multi-room chat usable from ``nc`` and
``telnet``.  See docs/protocols/chat.md for the protocol.
"""

from suite.chat.factory import ChatFactory
from suite.chat.protocol import ChatProtocol
from suite.chat.rooms import ChatRoom, ChatServer
from suite.chat.wire import ErrorCode, ServerLine, parse_server_line

__all__ = [
    "ChatFactory",
    "ChatProtocol",
    "ChatRoom",
    "ChatServer",
    "ErrorCode",
    "ServerLine",
    "parse_server_line",
]
