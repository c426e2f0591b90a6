"""
netsuite: event-driven network services and clients built on Twisted.

The public API of the services is re-exported here (pinned by
tests/test_exports.py); everything else may change.
"""

from suite.chat import ChatFactory, ChatProtocol, ChatRoom, ChatServer, parse_server_line
from suite.echo import EchoFactory, EchoProtocol, UDPEchoProtocol, UDPEchoStats
from suite.files import FileError, FileFactory, FileProtocol, Storage, StoredFile
from suite.endpoints import (
    CannotListen,
    EndpointError,
    ListeningService,
    UDPServerEndpoint,
    parse_udp_description,
    stream_server_endpoint,
)

__version__ = "0.1.0"

__all__ = [
    "CannotListen",
    "ChatFactory",
    "ChatProtocol",
    "ChatRoom",
    "ChatServer",
    "EchoFactory",
    "EchoProtocol",
    "EndpointError",
    "FileError",
    "FileFactory",
    "FileProtocol",
    "ListeningService",
    "Storage",
    "StoredFile",
    "UDPEchoProtocol",
    "UDPEchoStats",
    "UDPServerEndpoint",
    "parse_server_line",
    "parse_udp_description",
    "stream_server_endpoint",
]
