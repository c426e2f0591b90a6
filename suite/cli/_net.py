"""Connecting, resolving and reading stdin for the console clients."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, error
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import IResolutionReceiver, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutFactory, TimeoutProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from suite.cli.address import HostPort

#: Longest line the clients read or send (stdin and replies alike).
MAX_LINE = 4 * 1024 * 1024


class ClientError(Exception):
    """A failure the client reports as one line and a non-zero exit status."""


class _Interruption:
    """Whether the user pressed Ctrl-C: failures after that are not reported."""

    happened = False


INTERRUPTION = _Interruption()


def describe_failure(failure: Failure | BaseException, target: HostPort, timeout: float | None = None) -> str:
    """One human line for why talking to ``target`` failed."""
    e = failure.value if isinstance(failure, Failure) else failure
    if isinstance(e, error.ConnectionRefusedError):
        return f"cannot connect to {target}: connection refused"
    if isinstance(e, error.DNSLookupError):
        return f"cannot resolve host {target.host!r}"
    if isinstance(e, error.TimeoutError | defer.TimeoutError | defer.CancelledError):
        after = f" after {timeout:g}s" if timeout else ""
        return f"timed out talking to {target}{after}"
    if isinstance(e, error.NoRouteError):
        return f"cannot connect to {target}: no route to host"
    if isinstance(e, ClientError):
        return str(e)
    module = type(e).__module__ or ""
    if module.startswith("OpenSSL") or module.startswith("service_identity"):
        detail = e.args[0] if e.args else e
        return f"TLS failed with {target}: {detail}"
    if isinstance(e, error.ConnectError):
        return f"cannot connect to {target}: {e.osError or e.__class__.__name__}"
    return f"{target}: {e}"


async def checked(d: Any, target: HostPort, timeout: float | None = None) -> Any:
    """Await ``d``; any failure becomes a :class:`ClientError` with one human line."""
    try:
        return await d
    except ClientError:
        raise
    except Exception as e:
        raise ClientError(describe_failure(e, target, timeout)) from None


def client_endpoint(
    reactor: Any, target: HostPort, *, tls: bool = False, cafile: str | None = None, timeout: float = 10.0
) -> IStreamClientEndpoint:
    """A client endpoint for ``target``: TCP (any address family), or TLS when ``tls``."""
    endpoint: Any = HostnameEndpoint(reactor, target.host, target.port, timeout=timeout)
    if tls:
        from twisted.internet.ssl import Certificate, optionsForClientTLS, platformTrust

        if cafile:
            try:
                with open(cafile, "rb") as f:
                    trust: Any = Certificate.loadPEM(f.read())
            except (OSError, ValueError) as e:
                raise ClientError(f"cannot read CA file {cafile!r}: {e}") from None
        else:
            trust = platformTrust()
        endpoint = wrapClientTLS(optionsForClientTLS(target.host, trust), endpoint)
    return endpoint


def connect(
    reactor: Any,
    target: HostPort,
    protocol: Protocol,
    *,
    tls: bool = False,
    cafile: str | None = None,
    timeout: float = 10.0,
) -> defer.Deferred[Protocol]:
    """Connect ``protocol`` to ``target`` over TCP, or TLS when ``tls``."""
    return connectProtocol(client_endpoint(reactor, target, tls=tls, cafile=cafile, timeout=timeout), protocol)


class _WatchedProtocol(TimeoutProtocol):
    """Aborts the connection (and says so) after a period with no bytes moving."""

    def dataReceived(self, data: bytes) -> None:
        self.factory.received += len(data)
        self.factory.last = (self.factory.last + data)[-40:]
        super().dataReceived(data)

    def timeoutFunc(self) -> None:
        self.factory.timed_out = True
        # abort, not lose: a server that stopped reading would keep a
        # graceful close waiting on unsent bytes.
        self.transport.abortConnection()


class _WatchedFactory(TimeoutFactory):
    protocol = _WatchedProtocol

    def __init__(self, wrapped: Factory, timeout: float, reactor: Any) -> None:
        super().__init__(wrapped, timeout)
        self._reactor = reactor
        self.timed_out = False
        self.received = 0
        self.last = b""  # the last bytes received, for the message

    def callLater(self, period: float, func: Callable[[], None]) -> Any:
        return self._reactor.callLater(period, func)


class WatchedEndpoint:
    """
    A client endpoint whose connections end after ``timeout`` seconds in
    which no byte moved either way: the one ``--timeout`` of the file
    clients covers connecting (the wrapped endpoint's own timeout), the
    greeting and every reply, and a transfer that stalls.

    After a failure, :meth:`explain` says whether the timeout caused it.
    """

    def __init__(self, endpoint: IStreamClientEndpoint, reactor: Any, timeout: float, target: HostPort) -> None:
        self._endpoint = endpoint
        self._reactor = reactor
        self.timeout = timeout
        self.target = target
        self._factories: list[_WatchedFactory] = []

    def connect(self, factory: Factory) -> defer.Deferred[Protocol]:
        watched = _WatchedFactory(factory, self.timeout, self._reactor)
        self._factories.append(watched)
        return self._endpoint.connect(watched).addCallback(lambda wrapper: wrapper.wrappedProtocol)

    def explain(self) -> str | None:
        """Why the last connection failed, when it was this timeout; else ``None``."""
        if not self._factories or not self._factories[-1].timed_out:
            return None
        factory = self._factories[-1]
        if factory.received == 0:
            return f"timed out: {self.target} sent nothing in {self.timeout:g}s (no greeting)"
        ending = "" if factory.last.endswith(b"\n") else ", without a newline"
        return (f"timed out: {self.target} sent nothing more in {self.timeout:g}s "
                f"(it last sent {factory.last!r}{ending})")


@implementer(IResolutionReceiver)
class _Addresses:
    def __init__(self) -> None:
        self.found: list[Any] = []
        self.done: defer.Deferred[list[Any]] = defer.Deferred()

    def resolutionBegan(self, resolution: Any) -> None:
        pass

    def addressResolved(self, address: Any) -> None:
        self.found.append(address)

    def resolutionComplete(self) -> None:
        self.done.callback(self.found)


async def resolve(reactor: Any, target: HostPort) -> str:
    """The first IP address of ``target.host`` (IPv4 or IPv6), without blocking."""
    try:
        return str(ipaddress.ip_address(target.host))
    except ValueError:
        pass
    receiver = _Addresses()
    reactor.nameResolver.resolveHostName(receiver, target.host, target.port, transportSemantics="UDP")
    addresses = await receiver.done
    if not addresses:
        raise ClientError(f"cannot resolve host {target.host!r}")
    return addresses[0].host


class StdinLines(LineReceiver):
    """Reads lines from standard input (a pipe or a terminal) for a client."""

    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, on_line: Callable[[bytes], None], on_end: Callable[[], None]) -> None:
        self._on_line = on_line
        self._on_end = on_end

    def lineReceived(self, line: bytes) -> None:
        self._on_line(line.removesuffix(b"\r"))

    def lineLengthExceeded(self, line: bytes) -> None:
        sys.stderr.write(f"netsuite: input line longer than {self.MAX_LENGTH} bytes skipped\n")

    def connectionLost(self, reason: Failure = error.ConnectionDone) -> None:  # type: ignore[assignment]
        # A last line without a newline still counts.
        rest = self.clearLineBuffer()
        if rest:
            self.lineReceived(rest)
        self._on_end()
