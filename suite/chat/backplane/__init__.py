"""
The chat's Redis backplane: any number of chat processes on one Redis form
one chat (see docs/scaling.md).

:func:`cluster_server` builds a :class:`ClusterChatServer` and its
:class:`RedisBackplane` from a ``redis://``, ``rediss://`` or ``unix://``
URL; :meth:`RedisBackplane.start` connects (and fails if Redis cannot be
reached), :meth:`RedisBackplane.stop` leaves the cluster.
"""

from __future__ import annotations

from typing import Any

from suite.chat.backplane.node import BACKPLANE_DOWN, BackplaneUnavailable, RedisBackplane
from suite.chat.backplane.scripts import channel
from suite.chat.backplane.server import ClusterChatServer
from suite.chat.backplane.url import BackplaneURL, parse_backplane_url

__all__ = [
    "BACKPLANE_DOWN",
    "BackplaneURL",
    "BackplaneUnavailable",
    "ClusterChatServer",
    "RedisBackplane",
    "cluster_server",
    "parse_backplane_url",
]


def cluster_server(
    url: BackplaneURL | str, reactor: Any = None, *, node_timeout: float = RedisBackplane.DEFAULT_NODE_TIMEOUT,
    connect_timeout: float = 5.0, room_ttl: float | None = RedisBackplane.DEFAULT_ROOM_TTL, **server_options: Any,
) -> ClusterChatServer:
    """
    A chat server joined to the backplane at ``url`` (not connected yet:
    call ``server.backplane.start()``).  ``server_options`` are
    ``ChatServer``'s keyword arguments.
    """
    from suite._reactor import or_global_reactor
    from suite.chat.backplane.link import RedisLink  # txredisapi imports the global reactor

    reactor = or_global_reactor(reactor)
    if isinstance(url, str):
        url = parse_backplane_url(url)
    link = RedisLink(url, channel(url.db), reactor, connect_timeout=connect_timeout)
    backplane = RedisBackplane(link, node_timeout=node_timeout, clock=reactor, room_ttl=room_ttl)
    return ClusterChatServer(backplane, **server_options)


def __getattr__(name: str) -> Any:
    # RedisLink on first use: txredisapi imports the global reactor, which
    # importing suite (and the twistd plugin) must not.
    if name == "RedisLink":
        from suite.chat.backplane.link import RedisLink

        return RedisLink
    raise AttributeError(name)
