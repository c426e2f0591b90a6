"""The chat page (``/chat.html``): the browser side of :mod:`suite.chat.websocket`."""

from __future__ import annotations

from importlib import resources

from twisted.web.resource import Resource
from twisted.web.server import Request

__all__ = ["ChatPage", "chat_page_resource"]


class ChatPage(Resource):
    """The chat page: one HTML file with its script and style inline, nothing fetched from elsewhere."""

    isLeaf = True
    #: The page may only talk to its own origin (the WebSocket at ``chat``).
    POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'")

    def __init__(self) -> None:
        super().__init__()
        self.page = resources.files("suite.chat").joinpath("static/chat.html").read_bytes()

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"content-security-policy", self.POLICY.encode())
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"cache-control", b"no-cache")
        return self.page

    render_HEAD = render_GET


def chat_page_resource() -> Resource:
    """The chat page (``/chat.html``): one HTML file, no build step, no external URLs."""
    return ChatPage()
