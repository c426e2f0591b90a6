"""In-memory clients of the web service: a WebChannel on a StringTransport, time from a Clock."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from suite.files.memory import MemoryStore
from suite.web import WebSite


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_responses(data: bytes) -> list[Response]:
    """Every complete response in ``data`` (bodies by Content-Length)."""
    responses = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status == 100:
            data = rest
            continue
        length = int(headers.get("content-length", "0"))
        responses.append(Response(status, headers, rest[:length]))
        data = rest[length:]
    return responses


class Client:
    """One connection to ``site``."""

    def __init__(self, site: WebSite, host: str = "127.0.0.1", port: int = 40000) -> None:
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
        self.channel = site.buildProtocol(IPv4Address("TCP", host, port))
        self.channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1:8080"]
        headers = dict(headers or {})
        if body or method in ("PUT", "PATCH", "POST"):
            headers.setdefault("Content-Length", str(len(body)))
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.send("\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n\r\n" + body)

    def responses(self) -> list[Response]:
        return parse_responses(self.transport.value())

    def response(self) -> Response:
        responses = self.responses()
        assert responses, f"no complete response in {self.transport.value()!r}"
        return responses[-1]

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting or self.transport.disconnected


def make_site(store: MemoryStore | None = None, **kwargs: Any) -> tuple[WebSite, MemoryStore, Clock]:
    clock = Clock()
    store = store if store is not None else MemoryStore(clock=clock)
    site = WebSite(store, reactor=clock, **kwargs)
    return site, store, clock


def fetch(site: WebSite, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> Response:
    """One request on a new connection; its response."""
    client = Client(site)
    client.request(method, path, headers, body)
    return client.response()
