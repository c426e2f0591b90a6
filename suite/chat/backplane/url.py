"""
Where the backplane's Redis is: ``redis://``, ``rediss://`` and ``unix://`` URLs.

``redis://[:PASSWORD@]HOST[:PORT][/DB]`` (TCP), ``rediss://...[?ca=FILE]``
(TCP with TLS, the server's certificate checked against the system's trust
roots, or against the PEM certificate(s) in FILE) and
``unix:///PATH[?db=DB]`` (a Unix socket).  A password may also come from a
file (``--chat-backplane-password-file``), which keeps it out of ``ps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint

__all__ = ["BackplaneURL", "parse_backplane_url"]

DEFAULT_PORT = 6379


@dataclass(frozen=True)
class BackplaneURL:
    """A parsed backplane address; :meth:`display` never shows the password."""

    scheme: str
    host: str = ""
    port: int = DEFAULT_PORT
    path: str = ""
    db: int = 0
    password: str | None = field(default=None, repr=False)
    ca: str | None = None

    def display(self) -> str:
        """The URL without its password, for logs and errors."""
        if self.scheme == "unix":
            return f"unix://{self.path}" + (f"?db={self.db}" if self.db else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}" + (f"/{self.db}" if self.db else "")

    def endpoint(self, reactor: Any, timeout: float) -> IStreamClientEndpoint:
        """A client endpoint that reaches this Redis."""
        if self.scheme == "unix":
            return UNIXClientEndpoint(reactor, self.path, timeout=timeout)
        tcp = HostnameEndpoint(reactor, self.host, self.port, timeout=timeout)
        if self.scheme == "rediss":
            from twisted.internet.ssl import Certificate, optionsForClientTLS

            trust = Certificate.loadPEM(Path(self.ca).read_bytes()) if self.ca else None
            return wrapClientTLS(optionsForClientTLS(self.host, trustRoot=trust), tcp)
        return tcp


def parse_backplane_url(text: str, password_file: str | None = None) -> BackplaneURL:
    """
    Parse ``text``; the password is read from ``password_file`` if given
    (its first line).  Raises ``ValueError`` saying what is wrong.
    """
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as e:
        raise ValueError(f"{text!r} is not a redis://, rediss:// or unix:// URL: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"{text!r}: the backplane URL must start with redis://, rediss:// or unix://")
    password = unquote(parts.password) if parts.password else None
    if password_file is not None:
        if password is not None:
            raise ValueError("give the backplane password in the URL or in a file, not both")
        try:
            lines = Path(password_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"cannot read the backplane password file {password_file}: {e}") from None
        password = lines[0].strip() if lines else ""
        if not password:
            raise ValueError(f"the backplane password file {password_file} is empty")
    if scheme == "unix":
        if parts.hostname or not parts.path:
            raise ValueError(f"{text!r}: a unix URL is unix:///absolute/path/to/redis.sock[?db=N]")
        db_text = parse_qs(parts.query).get("db", ["0"])[-1]
        return BackplaneURL("unix", path=unquote(parts.path), db=_db(db_text, text), password=password)
    if not parts.hostname:
        raise ValueError(f"{text!r}: the URL names no host, as in redis://127.0.0.1:6379")
    db_text = parts.path.strip("/") or "0"
    ca = parse_qs(parts.query).get("ca", [None])[-1]
    if ca is not None:
        if scheme != "rediss":
            raise ValueError(f"{text!r}: ?ca= is for rediss:// URLs")
        try:
            Path(ca).read_bytes()
        except OSError as e:
            raise ValueError(f"cannot read the backplane CA file {ca}: {e.strerror}") from None
    return BackplaneURL(
        scheme, host=parts.hostname, port=port or DEFAULT_PORT, db=_db(db_text, text), password=password, ca=ca
    )


def _db(value: str, text: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) > 1_000_000:
        raise ValueError(f"{text!r}: the database must be a number, as in redis://127.0.0.1:6379/0")
    return int(value)
