"""
Log observers for ``twistd --logger``: ``twistd --logger suite.logs.json``
writes one JSON object per event to standard output (Twisted's
``jsonFileLogObserver`` format), for log collectors.
"""

from __future__ import annotations

import sys

from twisted.logger import ILogObserver, jsonFileLogObserver

__all__ = ["json"]


def json() -> ILogObserver:
    """An observer writing each event as one JSON line (record-separated) to stdout."""
    return jsonFileLogObserver(sys.stdout)
