"""
The HTTP text of the web service: file names in URLs, ``Range``,
``If-Range``, ``ETag``, ``Content-Disposition`` and ``Repr-Digest``.

Pure functions: no I/O, no reactor, so every rule is tested on its own.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from twisted.web.http import datetimeToString, stringToDatetime

from suite.files.wire import ErrorCode, FileError, check_name
from suite.web.errors import WebError

__all__ = [
    "ByteRange",
    "content_disposition",
    "etag",
    "etag_matches",
    "http_date",
    "if_range_holds",
    "name_from_segment",
    "parse_range",
    "parse_repr_digest",
    "route",
]


def route(raw_path: bytes) -> list[bytes]:
    """
    The path segments of a request target, each percent-decoded once, as
    ``twisted.web``'s ``Site`` splits them (query string removed).
    """
    path = raw_path.split(b"?", 1)[0]
    return [unquote_to_bytes(segment) for segment in path[1:].split(b"/")]


def name_from_segment(segment: bytes) -> str:
    """
    The stored-file name one decoded URL segment names.

    The segment was percent-decoded exactly once: ``%2f`` became ``/`` (so
    the name is refused), ``%252f`` became the three characters ``%2f`` (a
    harmless name).  The bytes must be strict UTF-8 (no overlong forms, no
    surrogates) and the name must pass the file service's rules.

    :raises WebError: ``bad-name`` (400).
    """
    try:
        name = segment.decode("utf-8")
    except UnicodeDecodeError:
        raise WebError(ErrorCode.BAD_NAME, "the name in the URL is not valid UTF-8") from None
    try:
        return check_name(name)
    except FileError as e:
        raise WebError.of(e) from None


def etag(sha256: str) -> bytes:
    """The strong entity tag of a file: its quoted sha256."""
    return b'"' + sha256.encode("ascii") + b'"'


def http_date(when: float) -> bytes:
    """An IMF-fixdate (``Last-Modified``), to the second."""
    return datetimeToString(int(when))


def content_disposition(name: str, disposition: str = "attachment") -> bytes:
    """
    ``Content-Disposition`` for any stored name (RFC 6266): an ASCII
    ``filename`` with everything doubtful replaced by ``_``, and the exact
    name in ``filename*`` (UTF-8, percent-encoded), which browsers prefer.
    """
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%;' else "_" for c in name)
    exact = quote(name, safe="")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{exact}".encode("ascii")


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``first`` to ``last`` inclusive of a representation of ``size`` bytes."""

    first: int
    last: int
    size: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self) -> bytes:
        return b"bytes %d-%d/%d" % (self.first, self.last, self.size)


_RANGE = re.compile(rb"\s*(\d*)\s*-\s*(\d*)\s*")


def parse_range(header: bytes | None, size: int) -> ByteRange | None:
    """
    The one range a ``Range`` header asks for, or ``None`` to send the whole
    file (no header, another unit, several ranges or a malformed header:
    RFC 9110 lets a server ignore those).

    :raises WebError: ``range-not-satisfiable`` (416) when the range starts
        past the end.
    """
    if header is None:
        return None
    unit, _, spec = header.partition(b"=")
    if unit.strip().lower() != b"bytes" or b"," in spec:
        return None
    match = _RANGE.fullmatch(spec)
    if match is None or not (match.group(1) or match.group(2)):
        return None
    first_text, last_text = match.group(1), match.group(2)
    if len(first_text) > 19 or len(last_text) > 19:
        return None
    if not first_text:  # the last N bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1, size)
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        raise _unsatisfiable(size)
    return ByteRange(first, min(last, size - 1), size)


def _unsatisfiable(size: int) -> WebError:
    return WebError(
        "range-not-satisfiable", f"the file has {size} bytes", headers={b"Content-Range": b"bytes */%d" % size}
    )


def if_range_holds(header: bytes | None, tag: bytes, last_modified: bytes) -> bool:
    """
    Whether a ``Range`` may be honoured under ``If-Range``: no header, the
    same strong entity tag, or exactly the ``Last-Modified`` date.
    """
    if header is None:
        return True
    header = header.strip()
    if header.startswith((b'"', b"W/")):
        return header == tag
    try:
        return stringToDatetime(header) == stringToDatetime(last_modified)
    except (ValueError, IndexError, KeyError):
        return False


def etag_matches(header: bytes | None, tag: bytes) -> bool:
    """Whether an ``If-None-Match``/``If-Match`` list names ``tag`` (or is ``*``)."""
    if header is None:
        return False
    items = [item.strip() for item in header.split(b",")]
    return b"*" in items or tag in items or b"W/" + tag in items


def parse_repr_digest(header: bytes | None) -> str | None:
    """
    The sha256 (hex) a ``Repr-Digest`` header (RFC 9530) declares, or
    ``None`` when it declares none.  Other algorithms are ignored.

    :raises WebError: ``bad-command`` (400) for a malformed sha-256 value.
    """
    if header is None:
        return None
    for item in header.split(b","):
        key, _, value = item.strip().partition(b"=")
        if key.strip().lower() != b"sha-256":
            continue
        value = value.strip()
        if not (value.startswith(b":") and value.endswith(b":") and len(value) > 2):
            raise WebError(ErrorCode.BAD_COMMAND, "Repr-Digest sha-256 must be :BASE64: (RFC 9530)")
        try:
            digest = base64.b64decode(value[1:-1], validate=True)
        except binascii.Error:
            raise WebError(ErrorCode.BAD_COMMAND, "Repr-Digest sha-256 is not valid base64") from None
        if len(digest) != 32:
            raise WebError(ErrorCode.BAD_COMMAND, "Repr-Digest sha-256 must be 32 bytes")
        return digest.hex()
    return None
