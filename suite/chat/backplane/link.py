"""
The backplane's two connections to Redis, through ``txredisapi``.

One connection runs commands (scripts), in order; the other is subscribed
to the chat's channel.  Both reconnect with exponential backoff (txredisapi's
``ClientService``); the subscriber subscribes again on every new connection,
which txredisapi does not do by itself.  :class:`RedisLink` says when both
are up (``on_up``) and when either is lost (``on_down``), and hands every
message to ``on_message`` -- all the messages of one read inside ``batch()``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import txredisapi
from twisted.internet import defer, task
from twisted.internet.interfaces import ITCPTransport
from twisted.logger import Logger

from suite.chat.backplane.node import BackplaneUnavailable
from suite.chat.backplane.url import BackplaneURL

__all__ = ["RedisLink"]


def _no_delay(transport: Any) -> None:
    # Commands and replies are small and go back and forth: Nagle would hold
    # a command while the previous one is unacknowledged.
    if ITCPTransport.providedBy(transport):
        transport.setTcpNoDelay(True)


class _Command(txredisapi.RedisProtocol):  # type: ignore[misc,valid-type]
    def connectionMade(self) -> Any:
        _no_delay(self.transport)
        return super().connectionMade()


class _Commands(txredisapi.RedisFactory):
    """The command connection; tells the link when it is ready and when lost."""

    protocol = _Command
    initialDelay = 0.2
    maxDelay = 5.0

    def __init__(self, link: RedisLink, url: BackplaneURL, reply_timeout: float) -> None:
        super().__init__(url.display(), url.db or None, 1, isLazy=True, password=url.password, replyTimeout=reply_timeout)
        self.link = link
        # txredisapi's own "pool ready" Deferred: unused here (failures come to connectionError).
        self.deferred.addErrback(lambda failure: None)

    def connectionError(self, why: str) -> None:
        # A refused password (or SELECT): txredisapi stops reconnecting.
        super().connectionError(why)
        self.link._refused(why)

    def addConnection(self, conn: Any) -> None:
        super().addConnection(conn)
        if conn in self.pool:
            self.link._commands_up(conn)

    def delConnection(self, conn: Any) -> None:
        super().delConnection(conn)
        self.link._lost(conn)


class _Subscriber(txredisapi.SubscriberProtocol):  # type: ignore[misc,valid-type]
    def connectionMade(self) -> Any:
        _no_delay(self.transport)
        return super().connectionMade()

    def messageReceived(self, pattern: Any, channel: Any, message: Any) -> None:
        self.factory.link.on_message(message)

    def dataReceived(self, data: bytes) -> None:
        with self.factory.link.batch():
            super().dataReceived(data)


class _Subscriptions(_Commands):
    """The subscribed connection: subscribes on every new connection."""

    protocol = _Subscriber

    def addConnection(self, conn: Any) -> None:
        txredisapi.RedisFactory.addConnection(self, conn)
        if conn in self.pool:
            conn.subscribe(self.link.channel).addCallbacks(
                lambda _: self.link._subscribed(conn),
                lambda f: (self.link.log.warn("backplane: SUBSCRIBE failed: {e}", e=f.getErrorMessage()),
                           conn.transport.loseConnection()),
            )


class RedisLink:
    """
    Both connections to the Redis at ``url``, publishing on and subscribed
    to ``channel``.

    :param connect_timeout: seconds :meth:`start` waits for the first
        connection before failing with :class:`BackplaneUnavailable`.
    :param reply_timeout: seconds a command may wait for its reply.
    """

    log = Logger()

    def __init__(
        self, url: BackplaneURL, channel: str, reactor: Any, *,
        connect_timeout: float = 5.0, reply_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.channel = channel
        self.reactor = reactor
        self.connect_timeout = connect_timeout
        self.on_up: Callable[[], None] = lambda: None
        self.on_down: Callable[[], None] = lambda: None
        self.on_message: Callable[[str], None] = lambda message: None
        self.batch: Callable[[], Any] = nullcontext
        self._commands = _Commands(self, url, reply_timeout)
        self._subscriptions = _Subscriptions(self, url, reply_timeout)
        self._cmd: Any = None
        self._sub: Any = None
        self.up = False
        self._first: defer.Deferred[None] | None = None

    def start(self) -> defer.Deferred[None]:
        """Connect; fires once both connections are up, or fails after ``connect_timeout``."""
        self._first = first = defer.Deferred()
        endpoint = self.url.endpoint(self.reactor, self.connect_timeout)
        self._commands.startConnecting(endpoint)
        self._subscriptions.startConnecting(endpoint)

        def timed_out(result: Any, timeout: float) -> Any:
            raise BackplaneUnavailable(f"no answer from {self.url.display()} within {timeout:g}s")

        first.addTimeout(self.connect_timeout, self.reactor, onTimeoutCancel=timed_out)
        return first

    def stop(self) -> defer.Deferred[Any]:
        """Close both connections and stop reconnecting."""
        self.up = False
        if self._first is not None and not self._first.called:
            self._first.cancel()
        stopped = defer.gatherResults(
            [self._commands.disconnect(), self._subscriptions.disconnect()], consumeErrors=True
        )
        # txredisapi finishes some of its work in a callLater(0): let it run.
        return stopped.addCallback(lambda _: task.deferLater(self.reactor, 0, lambda: None))

    def call(self, script: str, keys: list[str], args: list[Any]) -> defer.Deferred[Any]:
        """Run a Lua script; fails at once with :class:`BackplaneUnavailable` while Redis is lost."""
        cmd = self._cmd
        if cmd is None or not self.up:
            return defer.fail(BackplaneUnavailable(f"not connected to {self.url.display()}"))
        return cmd.eval(script, keys, args)

    # -- connection events -------------------------------------------------------

    def _refused(self, why: str) -> None:
        self.log.error("backplane: {url} refused the connection: {why}", url=self.url.display(), why=why)
        first, self._first = self._first, None
        if first is not None and not first.called:
            first.errback(BackplaneUnavailable(f"{self.url.display()} refused the connection: {why}"))

    def _commands_up(self, conn: Any) -> None:
        self._cmd = conn
        self._maybe_up()

    def _subscribed(self, conn: Any) -> None:
        if conn.connected:
            self._sub = conn
            self._maybe_up()

    def _maybe_up(self) -> None:
        if self.up or self._cmd is None or self._sub is None:
            return
        self.up = True
        self.log.info("backplane connected to {url}", url=self.url.display())
        first, self._first = self._first, None
        if first is not None and not first.called:
            first.callback(None)
        else:
            self.on_up()

    def _lost(self, conn: Any) -> None:
        if conn is self._cmd:
            self._cmd = None
        elif conn is self._sub:
            self._sub = None
        else:
            return
        if self.up:
            self.up = False
            self.log.warn("backplane lost its connection to {url}; reconnecting", url=self.url.display())
            # The other connection may still be up: drop it too, so both
            # come back together and the node resynchronises once.
            for other in (self._cmd, self._sub):
                if other is not None and other.transport is not None:
                    other.transport.loseConnection()
            self.on_down()
