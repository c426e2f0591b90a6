"""What the demos share: narration, and a line client whose screen can be shown."""

from __future__ import annotations

import re

from twisted.internet import defer
from twisted.protocols.basic import LineReceiver


def say(text: str) -> None:
    """Narrate one step."""
    print(f"\n== {text}", flush=True)


class Screen(LineReceiver):
    """A line client that remembers what its user would have seen."""

    delimiter = b"\n"

    def __init__(self, who: str) -> None:
        self.who = who
        self.lines: list[str] = []
        self._shown = 0
        self._waiting: list[tuple[re.Pattern[str], defer.Deferred[str]]] = []
        self.closed: defer.Deferred[None] = defer.Deferred()

    def lineReceived(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        self.lines.append(text)
        ready = [(p, d) for p, d in self._waiting if p.search(text)]
        self._waiting = [w for w in self._waiting if w not in ready]
        for _, d in ready:
            d.callback(text)

    def wait_for(self, pattern: str) -> defer.Deferred[str]:
        """Fires with the first line (seen or to come) matching ``pattern``."""
        compiled = re.compile(pattern)
        for text in self.lines:
            if compiled.search(text):
                return defer.succeed(text)
        d: defer.Deferred[str] = defer.Deferred()
        self._waiting.append((compiled, d))
        return d

    def show(self) -> None:
        """Print the lines this user has not been shown yet."""
        for text in self.lines[self._shown :]:
            print(f"   {self.who:>6} sees | {text}", flush=True)
        self._shown = len(self.lines)

    def connectionLost(self, reason: object) -> None:
        self.closed.callback(None)
