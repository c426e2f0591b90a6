"""
The page's login: ``POST /login`` with the bearer token sets a session
cookie (``HttpOnly``, ``SameSite=Strict``) that the site accepts in place of
``Authorization: Bearer``; ``POST /logout`` clears it.  A browser cannot
add a header to a plain link or to the page load, so the cookie is what
lets the page download files with ordinary links and keeps the token out
of the page's script.  See docs/protocols/http.md, "Authentication".
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from suite.web.errors import WebError

if TYPE_CHECKING:
    from suite.web.site import WebSite

__all__ = ["LOGIN_COOKIE", "LoginResource", "LogoutResource", "Protected", "session_value"]

#: The session cookie's name.
LOGIN_COOKIE = b"netsuite-session"


def session_value(token: bytes) -> bytes:
    """
    The cookie's value for ``token``: an HMAC of it, so the cookie never
    holds the token itself, needs no state on the server, and stops working
    when the token changes (``--token-file``, reloaded on SIGHUP).
    """
    return hmac.new(token, b"netsuite web session 1", hashlib.sha256).hexdigest().encode()


def _cookie(request: Any, value: bytes, max_age: int | None = None) -> None:
    request.addCookie(LOGIN_COOKIE, value, path=b"/", httpOnly=True, sameSite="strict",
                      secure=True if request.isSecure() else None,
                      max_age=None if max_age is None else str(max_age).encode())
    request.setHeader(b"Cache-Control", b"no-store")


class _SiteResource(Resource):
    isLeaf = True

    def __init__(self, site: WebSite) -> None:
        super().__init__()
        self.site = site

    def render_GET(self, request: Any) -> Any:
        request.write_error(WebError("method-not-allowed", "POST here", headers={b"Allow": b"POST"}))
        return NOT_DONE_YET


class LoginResource(_SiteResource):
    """``POST /login`` with ``Authorization: Bearer TOKEN``: ``204`` and the session cookie."""

    def render_POST(self, request: Any) -> Any:
        try:
            self.site.authorize(request, write=True, cookie=False)
        except WebError as e:
            request.write_error(e)
            return NOT_DONE_YET
        request.setResponseCode(204)
        if self.site.token is not None:
            _cookie(request, session_value(self.site.token))
        return b""


class LogoutResource(_SiteResource):
    """``POST /logout``: ``204``, and the session cookie is cleared."""

    def render_POST(self, request: Any) -> Any:
        try:
            self.site.check_origin(request)
        except WebError as e:
            request.write_error(e)
            return NOT_DONE_YET
        request.setResponseCode(204)
        _cookie(request, b"", max_age=0)
        return b""


class Protected(Resource):
    """``inner`` behind the site's token (as it is now: a reload's new token applies), bearer or cookie."""

    isLeaf = True

    def __init__(self, site: WebSite, inner: Resource) -> None:
        super().__init__()
        self.site = site
        self.inner = inner

    def render(self, request: Any) -> Any:
        try:
            self.site.authorize(request)
        except WebError as e:
            request.write_error(e)
            return NOT_DONE_YET
        return self.inner.render(request)
