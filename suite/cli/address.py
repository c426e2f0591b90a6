"""``HOST:PORT`` arguments of the console clients."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["AddressError", "HostPort", "host_port_argument", "parse_host_port"]


class AddressError(ValueError):
    """A ``HOST:PORT`` argument is malformed; the message says how."""


@dataclass(frozen=True)
class HostPort:
    """A server address given on the command line."""

    host: str
    port: int

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.is_ipv6 else f"{self.host}:{self.port}"


def parse_host_port(text: str, default_host: str | None = None) -> HostPort:
    """
    Parse ``HOST:PORT`` where HOST is a name, an IPv4 address or ``[IPv6]``.

    With ``default_host``, a bare ``PORT`` (or ``:PORT``) is accepted too.

    :raises AddressError: saying what is wrong.
    """
    if text.startswith("["):
        end = text.find("]")
        if end == -1:
            raise AddressError(f"missing ']' in {text!r} (IPv6 is written [ADDR]:PORT)")
        host, rest = text[1:end], text[end + 1 :]
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise AddressError(f"{host!r} in {text!r} is not an IPv6 address") from None
        if not rest.startswith(":"):
            raise AddressError(f"missing ':PORT' after ']' in {text!r}")
        port_text = rest[1:]
    elif text.count(":") > 1:
        raise AddressError(f"write IPv6 addresses in brackets: [ADDR]:PORT, not {text!r}")
    elif ":" in text:
        host, port_text = text.split(":", 1)
    elif default_host is not None:
        host, port_text = "", text
    else:
        raise AddressError(f"expected HOST:PORT, got {text!r}")
    if not host:
        if default_host is None:
            raise AddressError(f"missing host in {text!r} (expected HOST:PORT)")
        host = default_host
    elif not _valid_host(host):
        raise AddressError(f"{host!r} is not a valid host name or address")
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise AddressError(f"port must be a number 1-65535, not {port_text!r}, in {text!r}")
    return HostPort(host, int(port_text))


def _valid_host(host: str) -> bool:
    if ":" in host:
        return True  # bracketed IPv6, checked above
    try:
        ipaddress.IPv4Address(host)
        return True
    except ValueError:
        pass
    try:
        encoded = host.encode("idna")
    except UnicodeError:
        return False
    labels = encoded.rstrip(b".").split(b".")
    return len(encoded) <= 253 and all(
        0 < len(label) <= 63 and not label.startswith(b"-") and all(chr(c).isalnum() or c in b"-_" for c in label)
        for label in labels
    )


def host_port_argument(text: str) -> HostPort:
    """An argparse ``type=`` for ``HOST:PORT`` arguments: errors become usage errors."""
    import argparse

    try:
        return parse_host_port(text)
    except AddressError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
