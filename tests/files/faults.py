"""An ``os``-like object for :class:`suite.files.Storage` that fails on request."""

from __future__ import annotations

import errno
import os
from types import SimpleNamespace
from typing import Any


class FailingFS:
    """
    ``os``, except that the calls named in :attr:`failures` raise
    ``OSError(errno)``: ``fs.fail("write", errno.ENOSPC)`` makes every
    later write fail, ``after=2`` lets two succeed first.
    """

    def __init__(self) -> None:
        self.failures: dict[str, tuple[int, int, int | None]] = {}
        self.calls: dict[str, int] = {}
        #: Free bytes ``statvfs`` reports, when set.
        self.free: int | None = None

    def fail(self, call: str, code: int = errno.EIO, after: int = 0, times: int | None = None) -> None:
        """Make ``call`` raise ``code`` after ``after`` more successes, ``times`` times (None: always)."""
        self.failures[call] = (code, after, times)

    def heal(self) -> None:
        self.failures.clear()

    def statvfs(self, path: Any) -> Any:
        real = os.statvfs(path)
        if self.free is None:
            return real
        return SimpleNamespace(f_bavail=self.free, f_frsize=1, f_bsize=real.f_bsize)

    def __getattr__(self, call: str) -> Any:
        real = getattr(os, call)
        if not callable(real):
            return real

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.calls[call] = self.calls.get(call, 0) + 1
            if call in self.failures:
                code, after, times = self.failures[call]
                if after <= 0:
                    if times is not None:
                        if times <= 1:
                            del self.failures[call]
                        else:
                            self.failures[call] = (code, 0, times - 1)
                    raise OSError(code, f"{os.strerror(code)} (injected into {call})")
                self.failures[call] = (code, after - 1, times)
            return real(*args, **kwargs)

        return wrapped
