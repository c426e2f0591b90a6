"""
The web service: stored files over HTTP for curl, wget, browsers and tus
clients, a page, and the place ``/metrics`` and ``/healthz`` are served.
See docs/protocols/http.md.
"""

from suite.web.errors import WebError
from suite.web.site import WebCounters, WebSite

__all__ = ["WebCounters", "WebError", "WebSite"]
