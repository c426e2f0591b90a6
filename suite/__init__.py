"""
netsuite: event-driven network services and clients built on Twisted.

The public API of the services is re-exported here; see docs/embedding.md.
"""

from suite.echo import EchoFactory, EchoProtocol, UDPEchoProtocol, UDPEchoStats
from suite.endpoints import (
    CannotListen,
    EndpointError,
    ListeningService,
    UDPServerEndpoint,
    parse_udp_description,
)

__version__ = "0.1.0"

__all__ = [
    "CannotListen",
    "EchoFactory",
    "EchoProtocol",
    "EndpointError",
    "ListeningService",
    "UDPEchoProtocol",
    "UDPEchoStats",
    "UDPServerEndpoint",
    "parse_udp_description",
]
