"""
Running a node under ``twistd``: the chat server a chat service builds when
``--chat-backplane`` is given, connected when the reactor starts and
disconnected (with a goodbye to the other nodes) when it stops.

If Redis cannot be reached at start the node does not run degraded: it logs
one error line and the process exits with status 1 (see docs/scaling.md).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Mapping
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure

from suite.chat.backplane import RedisBackplane, cluster_server, parse_backplane_url
from suite.chat.backplane.server import ClusterChatServer
from suite.service import Option

__all__ = ["BACKPLANE_OPTIONS", "backplane_server", "uses_backplane"]

log = Logger()

def _url(value: str) -> str:
    parse_backplane_url(value)  # raises ValueError saying what is wrong
    return value


def _password_file(value: str) -> str:
    parse_backplane_url("redis://localhost", value)  # readable, not empty
    return value


def _timeout(value: str) -> float:
    seconds = float(value)
    if not seconds > 0 or seconds != seconds:
        raise ValueError(f"expected a number of seconds above 0, got {value!r}")
    return seconds


#: The backplane's options, for the chat's descriptor (fixed at start: not reloadable).
BACKPLANE_OPTIONS: tuple[Option, ...] = (
    Option("chat-backplane", None,
           "Redis joining chat processes into one chat: redis://[:PASSWORD@]HOST[:PORT][/DB], "
           "rediss://...[?ca=FILE] (TLS) or unix:///PATH[?db=N]; see docs/scaling.md.",
           _url, reloadable=False),
    Option("chat-backplane-password-file", None, "File whose first line is the backplane's Redis password.",
           _password_file, reloadable=False),
    Option("chat-node-timeout", RedisBackplane.DEFAULT_NODE_TIMEOUT,
           "Seconds after which a silent chat node counts as dead: its nicknames are freed and its users leave.",
           _timeout, reloadable=False),
    Option("chat-room-ttl", RedisBackplane.DEFAULT_ROOM_TTL,
           "Seconds a room's shared history and topic stay in Redis once nobody on any node is in the room.",
           _timeout, reloadable=False),
)


def uses_backplane(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` joins the chat to a backplane (then ``--workers`` may run it)."""
    return bool(config.get("chat-backplane"))


def backplane_server(config: Mapping[str, Any], reactor: Any, **server_options: Any) -> ClusterChatServer:
    """
    A :class:`ClusterChatServer` for ``config`` whose backplane connects
    when ``reactor`` runs and leaves when it stops.
    """
    try:
        url = parse_backplane_url(config["chat-backplane"], config.get("chat-backplane-password-file"))
    except ValueError as e:
        # Before twistd's logging starts: say it on stderr, as a usage error would.
        sys.stderr.write(f"netsuite: --chat-backplane: {e}\n")
        raise SystemExit(1) from None
    server = cluster_server(url, reactor, node_timeout=config.get("chat-node-timeout") or 30.0,
                            room_ttl=config.get("chat-room-ttl") or RedisBackplane.DEFAULT_ROOM_TTL, **server_options)
    backplane = server.backplane

    def start() -> None:
        log.info("chat backplane: connecting to {url} as node {node}", url=url.display(), node=backplane.node)
        backplane.start().addCallbacks(started, fatal)

    def started(_: object) -> None:
        # What exists now (modules, the services) lives as long as the
        # process: out of the collector's sight, its full collections stay
        # short and the latency tail with them.
        gc.freeze()

    def fatal(failure: Failure) -> None:
        log.critical("netsuite: cannot reach the chat backplane at {url}: {error}",
                     url=url.display(), error=failure.getErrorMessage())
        exit_with_status(reactor, 1)

    def running() -> None:
        # "before" shutdown, while the connections are still up (the reactor
        # drops them "during"); registered now so the services' own stop
        # starts first.  The goodbye tells the other nodes that all of this
        # node's users are gone at once.
        reactor.addSystemEventTrigger("before", "shutdown", backplane.stop)
        start()

    reactor.callWhenRunning(running)
    return server


def exit_with_status(reactor: Any, status: int) -> None:
    """Stop the reactor; the process then exits with ``status`` (twistd alone always exits 0)."""

    def leave() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    atexit.register(leave)
    if reactor.running:
        reactor.stop()
