"""An ``os``-like object for :class:`suite.files.Storage` that fails on request."""

from __future__ import annotations

import errno
import os
from typing import Any


class FailingFS:
    """
    ``os``, except that the calls named in :attr:`failures` raise
    ``OSError(errno)``: ``fs.fail("write", errno.ENOSPC)`` makes every
    later write fail, ``after=2`` lets two succeed first.
    """

    def __init__(self) -> None:
        self.failures: dict[str, tuple[int, int]] = {}
        self.calls: dict[str, int] = {}

    def fail(self, call: str, code: int = errno.EIO, after: int = 0) -> None:
        self.failures[call] = (code, after)

    def heal(self) -> None:
        self.failures.clear()

    def __getattr__(self, call: str) -> Any:
        real = getattr(os, call)
        if not callable(real):
            return real

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.calls[call] = self.calls.get(call, 0) + 1
            if call in self.failures:
                code, after = self.failures[call]
                if after <= 0:
                    raise OSError(code, f"{os.strerror(code)} (injected into {call})")
                self.failures[call] = (code, after - 1)
            return real(*args, **kwargs)

        return wrapped
