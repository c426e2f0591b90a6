"""
Admission: who may connect to a TCP service.

One policy for every stream service: a cap on concurrent connections, a cap
per client IP (with exempt addresses), a refusal written in the service's
own wire format, and one log line per refused peer (throttled), with the
peer as ``host:port``.  It is the first layer of a netsuite service::

    descriptor -> admission -> framing (lines or a body) -> service state

A factory becomes admitting by inheriting :class:`AdmittingFactory` and
setting :attr:`AdmittingFactory.admission`; its protocol inherits
:class:`AdmittedConnection` so the connection's place is given back when
it ends.  Refused connections never reach the service's protocol.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from suite._reactor import or_global_reactor
from suite.limits import PeerLog, cancel_call, close_then_abort, normal_host, peer_host, peer_text
from suite.service import Config, Option, ip_address, non_negative

__all__ = [
    "AdmissionPolicy",
    "AdmittedConnection",
    "AdmittingFactory",
    "Refusal",
    "RefusalProtocol",
    "admission_options",
    "admission_settings",
]

#: Seconds a refused client gets to take its refusal line.
REFUSAL_GRACE = 5.0


@dataclass(frozen=True)
class Refusal:
    """Why a connection is turned away: a short ``kind`` for counters, a sentence for people."""

    kind: str  #: ``max-connections`` or ``max-per-ip``
    text: str


class AdmissionPolicy:
    """
    The connection caps of one service, and the counts they are checked against.

    :param service: the service's name, for the log.
    :param max_connections: concurrent connections in total; ``None``: no cap.
    :param max_per_ip: concurrent connections per client IP; ``None``: no cap.
    :param exempt: IP addresses the per-IP cap does not apply to (they still
        count towards the total).
    :param refusal_line: the bytes a refused client reads, from the
        refusal's text, in the service's own wire format.
    :param clock: for throttling the log.
    """

    log = Logger()

    def __init__(
        self,
        service: str,
        *,
        max_connections: int | None = None,
        max_per_ip: int | None = None,
        exempt: Iterable[str] = (),
        refusal_line: Callable[[str], bytes] = lambda text: f"error: {text}\r\n".encode(),
        clock: IReactorTime | None = None,
    ) -> None:
        self.service = service
        self.refusal_line = refusal_line
        self.clock = or_global_reactor(clock)
        self.max_connections: int | None = None
        self.max_per_ip: int | None = None
        self.exempt: frozenset[str] = frozenset()
        self.configure(max_connections=max_connections, max_per_ip=max_per_ip, exempt=exempt)
        #: Connections admitted and not yet ended.
        self.open = 0
        #: Connections admitted since start.
        self.accepted = 0
        #: Connections refused since start, by :attr:`Refusal.kind`.
        self.refused: Counter[str] = Counter()
        self._per_host: dict[str, int] = {}
        self._refusal_log = PeerLog(self.log, self.clock)

    def configure(
        self, *, max_connections: int | None, max_per_ip: int | None, exempt: Iterable[str] = ()
    ) -> None:
        """Set the caps (at start, or on reload: connections already in are kept)."""
        for name, value in (("max_connections", max_connections), ("max_per_ip", max_per_ip)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 or None, not {value!r}")
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.exempt = frozenset(h for h in (normal_host(e) for e in exempt) if h is not None)

    def _counted_host(self, peer: IAddress) -> str | None:
        host = normal_host(peer_host(peer))
        if host is None or host in self.exempt:
            return None
        # One string per host, not one per connection (each holds it).
        return sys.intern(host)

    def admit(self, peer: IAddress) -> Refusal | None:
        """
        Count a new connection from ``peer``, or say why it is refused (and
        log that once per peer host, throttled).
        """
        refusal = None
        host = self._counted_host(peer)
        if self.max_connections is not None and self.open >= self.max_connections:
            refusal = Refusal("max-connections", f"too many connections (limit {self.max_connections})")
        elif self.max_per_ip is not None and host is not None and self._per_host.get(host, 0) >= self.max_per_ip:
            refusal = Refusal("max-per-ip", f"too many connections from {host} (limit {self.max_per_ip})")
        if refusal is not None:
            self.refused[refusal.kind] += 1
            self._refusal_log.warn(
                peer_host(peer) or "local",
                "{service}: refused {peer}: {reason}",
                service=self.service, peer=peer_text(peer), reason=refusal.text,
            )
            return refusal
        self.open += 1
        self.accepted += 1
        if host is not None:
            self._per_host[host] = self._per_host.get(host, 0) + 1
        return None

    def counted_host(self, peer: IAddress) -> str | None:
        """The host ``peer`` counts against now (``None``: no per-IP count), to give to :meth:`release`."""
        return self._counted_host(peer)

    def release(self, host: str | None) -> None:
        """Forget one admitted connection, counted against ``host`` when it was admitted."""
        self.open -= 1
        if host is not None and host in self._per_host:
            left = self._per_host[host] - 1
            if left > 0:
                self._per_host[host] = left
            else:
                del self._per_host[host]

    def connections_from(self, host: str) -> int:
        """Admitted connections counted against ``host``'s per-IP cap now."""
        return self._per_host.get(host, 0)


class RefusalProtocol(Protocol):
    """Writes a refusal line, ignores input, and closes (aborting a client that never reads)."""

    def __init__(self, line: bytes, clock: IReactorTime) -> None:
        self._line = line
        self._clock = clock
        self._abort: Any = None

    def connectionMade(self) -> None:
        self.transport.write(self._line)
        self._abort = close_then_abort(self.transport, self._clock, REFUSAL_GRACE)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        cancel_call(self._abort)


class AdmittingFactory(Factory):
    """
    A factory that asks its :attr:`admission` policy before building a
    protocol.  A refused connection gets a :class:`RefusalProtocol`; an
    admitted one is built as usual and given a release callback that
    :class:`AdmittedConnection` calls when it ends.
    """

    admission: AdmissionPolicy

    def buildProtocol(self, addr: IAddress) -> Protocol | None:
        policy = self.admission
        refusal = policy.admit(addr)
        if refusal is not None:
            return RefusalProtocol(policy.refusal_line(refusal.text), policy.clock)
        protocol = super().buildProtocol(addr)
        if protocol is None:  # pragma: no cover - a subclass declined
            policy.release(policy.counted_host(addr))
            return None
        # The host as counted now: a reload may change the exemptions before it ends.
        protocol._admitted_as = (policy, policy.counted_host(addr))  # type: ignore[attr-defined]
        return protocol


class AdmittedConnection:
    """
    Mixin for the protocol of an :class:`AdmittingFactory`: gives the
    connection's place back when it ends.  List it before ``Protocol`` in
    the bases, and call ``super().connectionLost(reason)`` when overriding.
    """

    _admitted_as: tuple[AdmissionPolicy, str | None] | None = None

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        admitted, self._admitted_as = self._admitted_as, None
        if admitted is not None:
            policy, host = admitted
            policy.release(host)
        parent: Any = super()
        if hasattr(parent, "connectionLost"):
            parent.connectionLost(reason)


def admission_options(service: str, *, max_connections: int, max_per_ip: int) -> tuple[Option, ...]:
    """The options of a service's admission policy: ``--SERVICE-max-connections`` and the per-IP cap."""
    return (
        Option(f"{service}-max-connections", max_connections,
               f"Concurrent {service} connections; 0 = no cap.", non_negative(int)),
        Option(f"{service}-max-per-ip", max_per_ip,
               f"Concurrent {service} connections per client IP; 0 = no cap.", non_negative(int)),
        Option(f"{service}-per-ip-exempt", [],
               f"IP address the per-IP {service} cap does not apply to (repeatable, comma-separated).",
               ip_address, multiple=True),
    )


def admission_settings(service: str, config: Config) -> dict[str, Any]:
    """The :meth:`AdmissionPolicy.configure` keywords from a service's options (0 means no cap)."""
    return {
        "max_connections": config[f"{service}-max-connections"] or None,
        "max_per_ip": config[f"{service}-max-per-ip"] or None,
        "exempt": config[f"{service}-per-ip-exempt"],
    }


def raise_file_limit(connections: int | None, margin: int = 64) -> str | None:
    """
    Make room for ``connections`` open sockets (``None``: a service with no
    cap) plus ``margin`` for listeners and files: raise the soft
    ``RLIMIT_NOFILE`` up to the hard limit if needed.  Without room, one
    service at its cap would take the descriptors the others need, and
    their clients would be reset instead of reading a refusal.

    :return: a warning to log when the limit cannot cover the caps, else ``None``.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if connections is None:
        wanted = hard
    else:
        wanted = connections + margin
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    if connections is None:
        return None if soft == resource.RLIM_INFINITY else (
            f"a service has no connection cap; the open-file limit ({soft}) bounds them all together"
        )
    if soft != resource.RLIM_INFINITY and soft < connections + margin:
        return (
            f"the connection caps add up to {connections}, but the open-file limit is {soft} "
            f"(hard limit {hard}): lower the caps or raise the limit (ulimit -n, LimitNOFILE=)"
        )
    return None
