"""
Helpers for testing code that embeds netsuite, without sockets.

:class:`MemoryServer` puts a netsuite factory (or any server factory)
behind an in-memory client endpoint, in the spirit of ``treq.testing``:
your code connects to it exactly as it would connect over TCP, and the
test moves the bytes with :meth:`MemoryServer.flush` or waits for a result
with :meth:`MemoryServer.settle`.  Time is a ``twisted.internet.task.Clock``
the test controls.

:func:`inline` runs a :class:`suite.files.Storage`'s disk work in the
calling thread, so file-service tests need no thread pool::

    server = MemoryServer(FileFactory(Storage(tmp_path, run=inline, min_free=0)))
    stored = server.settle(upload(server, "picture.png"))

:func:`build_service` builds any registered service (or your own
:class:`suite.service.ServiceDescriptor`) the way ``twistd netsuite`` does,
from option values, on a clock you control::

    factory = build_service("chat", chat_max_line=100)
    server = MemoryServer(factory, clock=factory.reactor)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IProtocolFactory, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.test import iosim
from zope.interface import implementer

__all__ = ["MemoryServer", "build_service", "inline", "service_config"]

T = TypeVar("T")


def inline(f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    """Run ``f(*args)`` now, in this thread; a ``run=`` for :class:`suite.files.Storage`."""
    return defer.maybeDeferred(f, *args)


@implementer(IStreamClientEndpoint)
class MemoryServer:
    """
    A server factory reachable in memory through a client endpoint.

    :param factory: the server factory (``EchoFactory``, ``ChatFactory``,
        ``FileFactory``...).  Build it with ``reactor=server.clock`` to
        control its timeouts.
    :param clock: the clock pumping advances; a new one by default.
    """

    def __init__(self, factory: IProtocolFactory, clock: Clock | None = None) -> None:
        self.factory = factory
        self.clock = clock if clock is not None else Clock()
        self._pumps: list[iosim.IOPump] = []
        self._peers = 0

    def connect(self, protocolFactory: IProtocolFactory) -> defer.Deferred[Protocol]:
        """Connect a client protocol built by ``protocolFactory`` (IStreamClientEndpoint)."""
        self._peers += 1
        peer = IPv4Address("TCP", "127.0.0.1", 40000 + self._peers)
        server_protocol = self.factory.buildProtocol(peer)
        client_protocol = protocolFactory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 8000))
        if server_protocol is None or client_protocol is None:
            return defer.fail(ConnectionRefusedError("the factory refused the connection"))
        server_transport = iosim.FakeTransport(server_protocol, isServer=True, peerAddress=peer)
        client_transport = iosim.FakeTransport(client_protocol, isServer=False, hostAddress=peer)
        pump = iosim.connect(server_protocol, server_transport, client_protocol, client_transport,
                             greet=False, clock=self.clock)
        self._pumps.append(pump)
        return defer.succeed(client_protocol)

    def connect_protocol(self, protocol: Protocol) -> defer.Deferred[Protocol]:
        """Connect an already built client ``protocol``."""

        class One(Factory):
            def buildProtocol(self, addr: Any) -> Protocol:
                return protocol

        return self.connect(One())

    def flush(self) -> bool:
        """Move bytes both ways on every connection until none move; whether any did."""
        moved = False
        while any([pump.flush() for pump in self._pumps]):
            moved = True
        self._pumps = [p for p in self._pumps if not (p.clientIO.disconnected and p.serverIO.disconnected)]
        return moved

    def settle(self, d: defer.Deferred[T] | Any, rounds: int = 10_000) -> T:
        """
        Pump until ``d`` (a Deferred or coroutine) has a result; return it or raise its failure.

        :raises AssertionError: if nothing more moves and ``d`` still waits.
        """
        d = defer.ensureDeferred(d)
        results: list[Any] = []
        d.addBoth(results.append)
        for _ in range(rounds):
            if results:
                break
            if not self.flush():
                self.clock.advance(0)
                if not self.flush() and not results:
                    raise AssertionError("nothing moves and the result is still pending")
        else:
            raise AssertionError(f"no result after {rounds} rounds")
        result = results[0]
        if isinstance(result, Failure):
            result.raiseException()
        return result


def service_config(service: Any, **values: Any) -> dict[str, Any]:
    """
    The option values a service is built with: every default of ``service``
    (a :class:`suite.service.ServiceDescriptor` or a registered name), with
    ``values`` on top (``chat_max_line=100`` sets ``chat-max-line``).
    """
    descriptor = _descriptor(service)
    config = {o.name: o.default for o in (descriptor.listen_option, *descriptor.options)}
    for key, value in values.items():
        name = key.replace("_", "-")
        if name not in config:
            raise KeyError(f"{descriptor.name} has no option --{name}")
        config[name] = value
    return config


def build_service(service: Any, *, reactor: Any = None, **values: Any) -> Any:
    """
    Build ``service``'s factory (or datagram protocol) from its defaults
    and ``values`` (see :func:`service_config`), on ``reactor`` (a new
    ``Clock`` when not given), as ``twistd netsuite`` would.
    """
    from suite.service import ServiceContext

    descriptor = _descriptor(service)
    return descriptor.build(service_config(descriptor, **values), ServiceContext(reactor or Clock()))


def _descriptor(service: Any) -> Any:
    if not isinstance(service, str):
        return service
    from suite.registry import SERVICES

    for descriptor in SERVICES:
        if descriptor.name == service:
            return descriptor
    raise KeyError(f"no service named {service!r}")
