"""The one place netsuite falls back to Twisted's global reactor."""

from __future__ import annotations

from typing import Any


def or_global_reactor(reactor: Any) -> Any:
    """
    ``reactor`` itself, or Twisted's global reactor when it is ``None``.

    The global reactor is imported only then, on first use rather than at
    import time, so that an application or a test can install another
    reactor first.
    """
    if reactor is not None:
        return reactor
    from twisted.internet import reactor as global_reactor

    return global_reactor
