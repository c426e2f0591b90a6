"""
The page at ``/``: list, download and upload (tus, with a progress bar).

Plain HTML and one script, shipped in the package (``suite/web/static``):
no build step, no external URLs.  Neither holds any data, so both are
served without the token; the page asks for it once when the server wants
one and logs in for a session cookie (:mod:`suite.web.login`; see
docs/protocols/http.md, "Authentication").
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from twisted.web.resource import Resource

__all__ = ["PageResource", "ScriptResource"]

#: No external resources, no framing by other sites, no inline script.
CSP = b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; frame-ancestors 'none'"


class _Asset(Resource):
    isLeaf = True
    filename = ""
    content_type = b""

    def __init__(self) -> None:
        super().__init__()
        self.body = files("suite.web").joinpath("static", self.filename).read_bytes()

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"Content-Type", self.content_type)
        request.setHeader(b"Content-Security-Policy", CSP)
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Cache-Control", b"no-cache")
        return self.body

    render_HEAD = render_GET


class PageResource(_Asset):
    """``/``: the HTML page."""

    filename = "index.html"
    content_type = b"text/html; charset=utf-8"


class ScriptResource(_Asset):
    """``/app.js``: the page's script."""

    filename = "app.js"
    content_type = b"text/javascript; charset=utf-8"
