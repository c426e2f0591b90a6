"""
Echo services: TCP (RFC 862) and UDP.

:class:`EchoFactory` builds :class:`EchoProtocol` connections that return
every byte in order (written eagerly to the socket), apply backpressure,
honour half-close, and enforce a connection cap and an idle timeout.
:class:`UDPEchoProtocol` answers each datagram with the same bytes, behind a
loop/reflection guard and rate limits.  See docs/protocols/echo.md.
"""

from suite.echo.service import ECHO_SERVICE, UDP_ECHO_SERVICE
from suite.echo.tcp import EchoFactory, EchoProtocol
from suite.echo.udp import UDPEchoProtocol, UDPEchoStats

__all__ = [
    "ECHO_SERVICE",
    "UDP_ECHO_SERVICE",
    "EchoFactory",
    "EchoProtocol",
    "UDPEchoProtocol",
    "UDPEchoStats",
]
