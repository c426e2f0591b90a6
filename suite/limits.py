"""
Limits shared by every netsuite service: token buckets, bounded per-source
rate tables, connection caps and throttled logging.

Every class takes its clock (an ``IReactorTime``) as an argument, so tests
drive time with ``twisted.internet.task.Clock``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Hashable
from typing import Any

from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger


class TokenBucket:
    """
    A token bucket: up to ``burst`` events at once, ``rate`` events per second
    sustained.

    A ``rate`` of ``None`` means "unlimited": :meth:`consume` always succeeds.
    """

    __slots__ = ("rate", "burst", "_clock", "_tokens", "_stamp")

    def __init__(self, rate: float | None, burst: float, clock: IReactorTime) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive or None, not {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock.seconds()

    def consume(self) -> bool:
        """
        Take one token if the bucket holds one.

        :return: ``True`` when the event is allowed, ``False`` when it exceeds
            the rate (and nothing is taken).
        """
        if self.rate is None:
            return True
        now = self._clock.seconds()
        tokens = self._tokens + (now - self._stamp) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self._stamp = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False

    def reconfigure(self, rate: float | None, burst: float) -> None:
        """Change the rate and burst, keeping the tokens earned so far (up to the new burst)."""
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive or None, not {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.rate = rate
        self.burst = float(burst)
        self._tokens = min(self._tokens, self.burst)


class RateLimiterTable:
    """
    Token buckets per key (a source address, a peer host), for hot paths.

    Each key may have ``burst`` events at once and ``rate`` per second
    sustained, like :class:`TokenBucket`; but buckets are refilled by
    :meth:`refill`, which a timer calls every ``interval`` seconds, instead
    of by reading the clock on every event, so :meth:`allow` is one dict
    lookup.  A bucket that refills to full is forgotten (it is the same as a
    new one), so the table holds only keys seen lately, and at most
    ``max_keys``: when full, the oldest key is forgotten and starts again
    with a full bucket.  Memory stays bounded whatever the number of sources
    (spoofed UDP sources included); a global cap in front of the table
    bounds the total rate.

    Because tokens arrive once per ``interval``, a bucket holds at least one
    interval's worth (``rate * interval``) even when ``burst`` is smaller:
    otherwise every rate above ``burst / interval`` would silently be capped
    there.

    :meth:`start` runs the refill timer on ``clock``; :meth:`stop` ends it.
    """

    def __init__(
        self,
        rate: float | None,
        burst: float,
        clock: IReactorTime,
        max_keys: int = 4096,
        interval: float = 0.1,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, not {max_keys!r}")
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive or None, not {rate!r}")
        self.max_keys = max_keys
        self.interval = interval
        self.rate = rate
        self.burst = self._capacity(rate, burst, interval)
        self._clock = clock
        self._tokens: dict[Hashable, float] = {}
        self._timer: LoopingCall | None = None

    @staticmethod
    def _capacity(rate: float | None, burst: float, interval: float) -> float:
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        return max(float(burst), (rate or 0.0) * interval)

    def reconfigure(self, rate: float | None, burst: float) -> None:
        """Change the rate and burst; buckets seen so far keep their tokens (up to the new burst)."""
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive or None, not {rate!r}")
        running = self._timer is not None
        self.stop()
        self.rate = rate
        self.burst = self._capacity(rate, burst, self.interval)
        for key, value in list(self._tokens.items()):
            self._tokens[key] = min(value, self.burst - 1.0)
        if running:
            self.start()

    def allow(self, key: Hashable) -> bool:
        """Take one token from ``key``'s bucket; ``True`` if there was one."""
        if self.rate is None:
            return True
        tokens = self._tokens.get(key)
        if tokens is None:
            if len(self._tokens) >= self.max_keys:
                del self._tokens[next(iter(self._tokens))]  # dicts keep insertion order
            self._tokens[key] = self.burst - 1.0
            return True
        if tokens >= 1.0:
            self._tokens[key] = tokens - 1.0
            return True
        return False

    def refill(self, intervals: int = 1) -> None:
        """Add ``intervals`` intervals' worth of tokens to every bucket."""
        if self.rate is None:
            return
        added = self.rate * self.interval * intervals
        burst = self.burst
        tokens = self._tokens
        for key, value in list(tokens.items()):
            value += added
            if value >= burst:
                del tokens[key]  # full: the same as a key never seen
            else:
                tokens[key] = value

    def start(self) -> None:
        """Refill every ``interval`` seconds on the clock, until :meth:`stop`."""
        if self.rate is not None and self._timer is None:
            self._timer = LoopingCall.withCount(self.refill)
            self._timer.clock = self._clock
            self._timer.start(self.interval, now=False)

    def stop(self) -> None:
        if self._timer is not None:
            if self._timer.running:
                self._timer.stop()
            self._timer = None

    def __len__(self) -> int:
        return len(self._tokens)


def close_then_abort(transport: Any, clock: IReactorTime, grace: float) -> IDelayedCall:
    """
    Close ``transport`` once its pending output is sent, and abort it if
    that takes more than ``grace`` seconds: a peer that never reads cannot
    hold a closing connection open.  Cancel the returned call when the
    connection is lost.
    """
    transport.loseConnection()
    return clock.callLater(grace, transport.abortConnection)


def cancel_call(call: IDelayedCall | None) -> None:
    """Cancel ``call`` if it is still pending."""
    if call is not None and call.active():
        call.cancel()


def peer_host(address: IAddress) -> str | None:
    """The host part of a peer address, or ``None`` (UNIX sockets, pipes)."""
    return getattr(address, "host", None)


def normal_host(host: str | None) -> str | None:
    """
    ``host`` in one canonical form, so caps and exemptions match however a
    listener saw it: an IPv4 client of a dual-stack IPv6 listener
    (``::ffff:127.0.0.1``) is its IPv4 address; IPv6 in compressed form.
    """
    if host is None:
        return None
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def peer_text(address: IAddress) -> str:
    """
    A peer address as people write it in logs: ``127.0.0.1:5555``,
    ``[::1]:5555``, or ``unix`` for a local socket; never a ``repr``.
    """
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is None:
        return "local"
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


class ConnectionLimit:
    """
    Caps on concurrent connections: a total, and optionally one per peer host.
    (Superseded by :class:`suite.admission.AdmissionPolicy`, which also
    refuses and logs; kept while the file service moves over.)

    ``None`` for either cap means "no cap".  A service calls :meth:`acquire`
    when a connection arrives and :meth:`release` when it ends.
    """

    def __init__(self, max_total: int | None, max_per_host: int | None = None) -> None:
        for name, value in (("max_total", max_total), ("max_per_host", max_per_host)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 or None, not {value!r}")
        self.max_total = max_total
        self.max_per_host = max_per_host
        self.total = 0
        self._per_host: dict[str, int] = {}

    def acquire(self, host: str | None) -> str | None:
        """
        Count a new connection from ``host``.

        :return: ``None`` when it is admitted (and counted), or the reason it
            is refused (and not counted).
        """
        if self.max_total is not None and self.total >= self.max_total:
            return f"too many connections (limit {self.max_total})"
        if self.max_per_host is not None and host is not None:
            if self._per_host.get(host, 0) >= self.max_per_host:
                return f"too many connections from {host} (limit {self.max_per_host})"
        self.total += 1
        if host is not None:
            self._per_host[host] = self._per_host.get(host, 0) + 1
        return None

    def release(self, host: str | None) -> None:
        """Forget one admitted connection from ``host``."""
        self.total -= 1
        if host is not None:
            left = self._per_host[host] - 1
            if left:
                self._per_host[host] = left
            else:
                del self._per_host[host]


class ThrottledLog:
    """
    Emits a repeated warning at most once per ``interval`` seconds, and says
    how many were suppressed in between.  Used where a remote party could
    otherwise fill the log (refused datagrams, rate-limit drops).
    """

    def __init__(self, log: Logger, clock: IReactorTime, interval: float = 10.0) -> None:
        self._log = log
        self._clock = clock
        self.interval = interval
        self._next = float("-inf")
        self.suppressed = 0

    def warn(self, format: str, **kwargs: Any) -> bool:
        """Log ``format`` now unless one was logged recently; ``True`` if logged."""
        now = self._clock.seconds()
        if now < self._next:
            self.suppressed += 1
            return False
        self._log.warn(format + " ({suppressed} similar suppressed)", suppressed=self.suppressed, **kwargs)
        self.suppressed = 0
        self._next = now + self.interval
        return True


class PeerLog:
    """
    A log line at most once per ``interval`` seconds per peer host: a peer
    that is refused a thousand times is logged once, with the count of what
    was suppressed since; other peers are still logged.  Remembers at most
    ``max_peers`` hosts (the oldest forgotten first), so memory is bounded
    whatever the number of peers.
    """

    def __init__(
        self, log: Logger, clock: IReactorTime, interval: float = 60.0, max_peers: int = 4096, max_lines: int = 100
    ) -> None:
        self._log = log
        self._clock = clock
        self.interval = interval
        self.max_peers = max_peers
        #: Lines per interval from all hosts together: many hosts (a botnet,
        #: an IPv6 /64) cannot grow the log without bound either.
        self.max_lines = max_lines
        self._window_end = float("-inf")
        self._window_lines = 0
        self._window_suppressed = 0
        #: host -> (when it may be logged again, lines suppressed since)
        self._peers: dict[str, tuple[float, int]] = {}

    def warn(self, host: str, format: str, **kwargs: Any) -> bool:
        """Log ``format`` for ``host`` unless it was logged lately; ``True`` if logged."""
        now = self._clock.seconds()
        seen = self._peers.get(host)
        if seen is not None and now < seen[0]:
            self._peers[host] = (seen[0], seen[1] + 1)
            return False
        if now >= self._window_end:
            self._window_end = now + self.interval
            self._window_lines = 0
        if self._window_lines >= self.max_lines:
            self._window_suppressed += 1
            return False
        self._window_lines += 1
        others, self._window_suppressed = self._window_suppressed, 0
        suppressed = seen[1] if seen is not None else 0
        self._peers.pop(host, None)
        if len(self._peers) >= self.max_peers:
            del self._peers[next(iter(self._peers))]  # dicts keep insertion order
        self._peers[host] = (now + self.interval, 0)
        if suppressed:
            format += " ({suppressed} more from this host suppressed)"
        if others:
            format += " ({others} more from many hosts suppressed)"
        self._log.warn(format, suppressed=suppressed, others=others, **kwargs)
        return True
