"""
HTTP errors of the web service: the file service's error codes mapped to
status codes, with a JSON body ``{"error": CODE, "message": TEXT}``.

See docs/protocols/http.md for the table.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from suite.files.wire import ErrorCode, FileError

__all__ = ["STATUS", "WebError", "error_body", "raw_error_response"]

#: HTTP status for each file-service error code (and the web's own codes).
STATUS: dict[str, int] = {
    ErrorCode.BAD_COMMAND: 400,
    ErrorCode.BAD_NAME: 400,
    ErrorCode.BAD_SIZE: 400,
    ErrorCode.BAD_OFFSET: 409,
    ErrorCode.LINE_TOO_LONG: 431,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.QUOTA_EXCEEDED: 507,
    ErrorCode.NO_SPACE: 507,
    ErrorCode.DISK_FULL: 507,
    ErrorCode.EXISTS: 409,
    ErrorCode.BUSY: 409,
    ErrorCode.TOO_MANY_TRANSFERS: 503,
    ErrorCode.TOO_MANY_CONNECTIONS: 503,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.SHORT: 400,
    ErrorCode.TOO_LONG: 400,
    ErrorCode.CHECKSUM_MISMATCH: 400,
    ErrorCode.TIMEOUT: 408,
    ErrorCode.AUTH_REQUIRED: 401,
    ErrorCode.AUTH_FAILED: 401,
    ErrorCode.INTERNAL: 500,
    # The web's own codes.
    "precondition-failed": 412,
    "length-required": 411,
    "method-not-allowed": 405,
    "range-not-satisfiable": 416,
    "forbidden-origin": 403,
    "unsupported-version": 412,
    "headers-too-large": 431,
}


class WebError(Exception):
    """A refusal: a stable ``code``, a human ``message`` and its HTTP ``status``."""

    def __init__(
        self, code: str, message: str, status: int | None = None, headers: dict[bytes, bytes] | None = None,
        delay: float = 0.0,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status if status is not None else STATUS.get(code, 400)
        self.headers = headers or {}
        #: Seconds the answer waits (wrong tokens: a delay that grows per host).
        self.delay = delay

    @classmethod
    def of(cls, error: FileError, status: int | None = None) -> WebError:
        """The HTTP form of a file-service error."""
        return cls(error.code, error.message, status)


def error_body(code: str, message: str) -> bytes:
    """The JSON body of an error response."""
    return json.dumps({"error": code, "message": message}).encode() + b"\n"


def raw_error_response(error: WebError) -> bytes:
    """
    A complete ``HTTP/1.1`` error response that closes the connection, for
    the moments no ``Request`` can answer (a timeout in the headers).
    """
    body = error_body(error.code, error.message)
    reason = HTTPStatus(error.status).phrase.encode()
    head = [
        b"HTTP/1.1 %d %s" % (error.status, reason),
        b"Content-Type: application/json",
        b"Content-Length: %d" % len(body),
        b"Connection: close",
    ]
    head += [name + b": " + value for name, value in error.headers.items()]
    return b"\r\n".join(head) + b"\r\n\r\n" + body
