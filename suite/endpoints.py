"""
Endpoint descriptions for netsuite services.

Stream (TCP-like) services take any Twisted server endpoint string
(``tcp:8007:interface=127.0.0.1``, ``tcp6:...``, ``unix:...``, ``ssl:...``,
``systemd:...``).  Twisted has no UDP endpoint, so this module adds the
``udp:PORT[:interface=ADDR]`` description and a matching endpoint.

:class:`ListeningService` listens on either kind, logs the address it really
got, and stops listening when stopped.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, tcp
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IAddress,
    IListeningPort,
    IProtocolFactory,
    IReactorUDP,
    ISSLTransport,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from suite._reactor import or_global_reactor

__all__ = [
    "CannotListen",
    "EndpointError",
    "ListeningService",
    "ReusePortEndpoint",
    "UDPDescription",
    "UDPServerEndpoint",
    "describe_address",
    "is_datagram",
    "parse_udp_description",
    "plain_socket",
    "stream_server_endpoint",
]

#: Largest datagram a socket can receive: bigger than any UDP payload
#: (65,507 bytes over IPv4, 65,527 over IPv6), so nothing is ever truncated.
#: Twisted's default ``maxPacketSize`` of 8192 silently truncates.
MAX_DATAGRAM = 65535

#: Listen backlog applied to stream endpoints that do not set one.  Twisted's
#: default of 50 overflows under bursts of connects (SYN retries of 1 s, 3 s).
DEFAULT_BACKLOG = 1024

_BACKLOG_TYPES = ("tcp", "tcp6", "unix", "ssl")


class EndpointError(ValueError):
    """An endpoint description is malformed; the message says how."""


class CannotListen(Exception):
    """A service could not listen on its address (in use, no permission...)."""

    def __init__(self, service: str, description: str, reason: str) -> None:
        super().__init__(f"{service}: cannot listen on {description}: {reason}")
        self.service = service
        self.description = description
        self.reason = reason


def _split(description: str) -> list[str]:
    """Split on ``:`` honouring Twisted's ``\\:`` escape."""
    parts = [""]
    chars = iter(description)
    for char in chars:
        if char == "\\":
            parts[-1] += next(chars, "\\")
        elif char == ":":
            parts.append("")
        else:
            parts[-1] += char
    return parts


@dataclass(frozen=True)
class UDPDescription:
    """A parsed ``udp:PORT[:interface=ADDR]`` description."""

    port: int
    interface: str = ""

    def __str__(self) -> str:
        if not self.interface:
            return f"udp:{self.port}"
        return f"udp:{self.port}:interface={self.interface.replace(':', chr(92) + ':')}"


def is_datagram(description: str) -> bool:
    """Whether ``description`` names a UDP (datagram) endpoint."""
    return description.split(":", 1)[0].strip().lower() == "udp"


def parse_udp_description(description: str) -> UDPDescription:
    """
    Parse ``udp:PORT[:interface=ADDR]``.

    ``ADDR`` is an IPv4 or IPv6 literal; IPv6 colons may be escaped as in
    Twisted (``interface=\\:\\:1``) or written plainly (``interface=::1``).
    An empty or missing interface means every IPv4 interface.

    :raises EndpointError: for anything else, saying what is wrong.
    """
    parts = _split(description)
    if parts[0].strip().lower() != "udp":
        raise EndpointError(f"not a udp description: {description!r} (expected udp:PORT[:interface=ADDR])")
    if len(parts) < 2 or not parts[1]:
        raise EndpointError(f"missing port in {description!r} (expected udp:PORT[:interface=ADDR])")
    port = _parse_port(parts[1], description)
    options: dict[str, str] = {}
    last: str | None = None
    for part in parts[2:]:
        key, sep, value = part.partition("=")
        if sep and key in ("interface", "port"):
            if key in options:
                raise EndpointError(f"option {key!r} given twice in {description!r}")
            options[key] = value
            last = key
        elif last == "interface":
            # An unescaped IPv6 address: the colons split it; glue it back.
            options[last] += ":" + part
        else:
            raise EndpointError(
                f"unknown option {part!r} in {description!r} (only interface=ADDR is supported)"
            )
    if "port" in options:
        raise EndpointError(f"give the port positionally, not as port=, in {description!r}")
    interface = options.get("interface", "")
    if interface:
        try:
            interface = str(ipaddress.ip_address(interface.strip("[]")))
        except ValueError:
            raise EndpointError(
                f"interface must be an IPv4 or IPv6 address, not {interface!r}, in {description!r}"
            ) from None
    return UDPDescription(port, interface)


def _parse_port(text: str, description: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise EndpointError(f"port must be a number 0-65535, not {text!r}, in {description!r}")
    port = int(text)
    if port > 65535:
        raise EndpointError(f"port must be 0-65535, not {port}, in {description!r}")
    return port


class UDPServerEndpoint:
    """
    Listens for datagrams with ``reactor.listenUDP``, never truncating them.

    Shaped like ``IStreamServerEndpoint``: :meth:`listen` returns a Deferred
    that fires with the listening port.
    """

    def __init__(
        self, reactor: IReactorUDP, port: int, interface: str = "", max_packet_size: int = MAX_DATAGRAM
    ) -> None:
        self._reactor = reactor
        self.port = port
        self.interface = interface
        self.max_packet_size = max_packet_size

    @classmethod
    def from_description(cls, reactor: IReactorUDP, description: str) -> UDPServerEndpoint:
        """Build from a ``udp:`` description (see :func:`parse_udp_description`)."""
        parsed = parse_udp_description(description)
        return cls(reactor, parsed.port, parsed.interface)

    def listen(self, protocol: DatagramProtocol) -> defer.Deferred[IListeningPort]:
        """Start ``protocol`` on this address."""
        return defer.execute(
            self._reactor.listenUDP,
            self.port,
            protocol,
            interface=self.interface,
            maxPacketSize=self.max_packet_size,
        )


class ReusePortEndpoint:
    """
    Listens on a TCP or UDP port shared with other processes through
    ``SO_REUSEPORT`` (Linux, BSD): the kernel spreads connections (or
    datagrams, by source) over every process listening on it.  Used by
    ``--workers``.
    """

    def __init__(self, reactor: Any, kind: str, port: int, interface: str = "", backlog: int = DEFAULT_BACKLOG) -> None:
        self._reactor = reactor
        self.kind = kind
        self.port = port
        self.interface = interface
        self.backlog = backlog

    @classmethod
    def from_description(cls, reactor: Any, description: str) -> ReusePortEndpoint:
        """``tcp:PORT[:interface=ADDR]``, ``tcp6:...`` or ``udp:PORT[:interface=ADDR]``."""
        kind = description.split(":", 1)[0].strip().lower()
        if kind not in ("tcp", "tcp6", "udp"):
            raise EndpointError(f"a shared port needs a tcp:, tcp6: or udp: address, not {description!r}")
        # The same PORT[:interface=ADDR] syntax as udp: descriptions.
        parsed = parse_udp_description("udp" + description[len(kind):])
        return cls(reactor, kind, parsed.port, parsed.interface)

    def listen(self, target: Any) -> defer.Deferred[IListeningPort]:
        """Bind with ``SO_REUSEPORT`` and hand the socket to the reactor."""
        return defer.execute(self._listen, target)

    def _listen(self, target: Any) -> IListeningPort:
        v6 = self.kind == "tcp6" or ":" in self.interface
        family = socket.AF_INET6 if v6 else socket.AF_INET
        stream = self.kind != "udp"
        sock = socket.socket(family, socket.SOCK_STREAM if stream else socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.interface or ("::" if v6 else "0.0.0.0"), self.port))
            sock.setblocking(False)
            if stream:
                sock.listen(self.backlog)
                return self._reactor.adoptStreamPort(sock.fileno(), family, target)
            return self._reactor.adoptDatagramPort(sock.fileno(), family, target, MAX_DATAGRAM)
        finally:
            sock.close()  # the reactor holds its own duplicate


def stream_server_endpoint(reactor: Any, description: str) -> IStreamServerEndpoint:
    """
    Build a Twisted server endpoint from ``description``, with a larger listen
    backlog (:data:`DEFAULT_BACKLOG`) when the description sets none.

    :raises EndpointError: when Twisted cannot parse it.
    """
    kind = description.split(":", 1)[0].strip().lower()
    if kind == "udp":
        raise EndpointError(f"{description!r} is a UDP address; this service needs a stream endpoint (tcp:, unix:, ssl:...)")
    if kind in _BACKLOG_TYPES and "backlog=" not in description:
        description = f"{description}:backlog={DEFAULT_BACKLOG}"
    try:
        return serverFromString(reactor, description)
    except Exception as e:
        # serverFromString raises ValueError, TypeError, KeyError, OSError...
        raise EndpointError(f"bad endpoint description {description!r}: {e}") from None


def plain_socket(transport: object) -> socket.socket | None:
    """
    The socket under ``transport`` when bytes may be written to it directly,
    bypassing the transport: a plain TCP or UNIX connection of Twisted's
    reactor.  ``None`` for any transport that transforms or wraps the bytes
    (TLS, protocol wrappers such as throttling, in-memory test transports).

    Whoever writes to the socket must keep order with the transport: only
    while the transport holds no unsent output.
    """
    if isinstance(transport, tcp.Connection) and not ISSLTransport.providedBy(transport):
        return transport.getHandle()  # type: ignore[no-any-return]
    return None


def describe_address(address: IAddress) -> str:
    """A short human form of a listening or peer address: ``tcp 127.0.0.1:8007``."""
    if isinstance(address, IPv4Address):
        return f"{address.type.lower()} {address.host}:{address.port}"
    if isinstance(address, IPv6Address):
        return f"{address.type.lower()}6 [{address.host}]:{address.port}"
    if isinstance(address, UNIXAddress):
        name = address.name.decode("utf-8", "replace") if isinstance(address.name, bytes) else address.name
        return f"unix {name}"
    return str(address)


class ListeningService(Service):
    """
    Listens on one endpoint description with a stream factory or a datagram
    protocol, and stops listening when stopped.

    Listening happens in ``privilegedStartService`` so privileged ports are
    bound before twistd drops privileges.  On failure it raises
    :class:`CannotListen`; :attr:`port` holds the listening port once started.
    """

    log = Logger()

    def __init__(
        self,
        name: str,
        description: str,
        target: IProtocolFactory | DatagramProtocol,
        reactor: Any = None,
        reuse_port: bool = False,
    ) -> None:
        reactor = or_global_reactor(reactor)
        self.setName(name)
        self.description = description
        self.target = target
        self._reactor = reactor
        self.port: IListeningPort | None = None
        # Parse now so a bad description is a usage error, not a start failure.
        if reuse_port:
            self._endpoint = ReusePortEndpoint.from_description(reactor, description)
        elif is_datagram(description):
            if not isinstance(target, DatagramProtocol):
                raise EndpointError(f"{name} is a stream service; {description!r} is a UDP address")
            self._endpoint: Any = UDPServerEndpoint.from_description(reactor, description)
        else:
            if isinstance(target, DatagramProtocol):
                raise EndpointError(f"{name} is a UDP service; give it a udp:PORT[:interface=ADDR] address, not {description!r}")
            self._endpoint = stream_server_endpoint(reactor, description)

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        if self.port is not None:
            return
        failures: list[Any] = []
        d = self._endpoint.listen(self.target)
        d.addCallbacks(self._listening, failures.append)
        if failures:
            error = failures[0].value
            reason = error.socketError if isinstance(error, CannotListenError) else error
            reason = getattr(reason, "strerror", None) or str(reason)
            raise CannotListen(self.name, self.description, reason)
        if self.port is None:  # pragma: no cover - only for asynchronous endpoints
            d.addErrback(lambda f: self.log.failure("{service} could not listen", f, service=self.name))

    @property
    def datagram(self) -> bool:
        """Whether this service listens for datagrams (UDP)."""
        return isinstance(self.target, DatagramProtocol)

    @property
    def tls(self) -> bool:
        """Whether connections to this service are TLS (an ``ssl:`` address)."""
        return self.description.split(":", 1)[0].strip().lower() == "ssl"

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        address = describe_address(port.getHost())
        if self.tls:
            address = "tls " + address.split(" ", 1)[1]
        self.log.info("{service} listening on {address}", service=self.name, address=address)

    def reload_tls(self) -> None:
        """
        Read this TLS listener's certificate and key files again: new
        connections get the new certificate, open ones keep theirs.

        :raises EndpointError: when the files cannot be read; the listener
            keeps the certificate it had.
        """
        if not self.tls or self.port is None:
            return
        # Twisted parses the files when it builds the endpoint; the running
        # port's TLS factory then takes the new context, as listenSSL set it up.
        endpoint = stream_server_endpoint(self._reactor, self.description)
        from twisted.protocols.tls import TLSMemoryBIOFactory, _convertToAppropriateFactory

        factory = getattr(self.port, "factory", None)
        if not isinstance(factory, TLSMemoryBIOFactory):  # pragma: no cover - not a listenSSL port
            return
        factory._creatorCallable = _convertToAppropriateFactory(False, endpoint._sslContextFactory)

    def startService(self) -> None:
        if self.port is None:
            self.privilegedStartService()
        super().startService()

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        port, self.port = self.port, None
        if port is None:
            return None
        self.log.info("{service} stopped listening", service=self.name)
        return defer.maybeDeferred(port.stopListening)
