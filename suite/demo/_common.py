"""What the demos share: narration, and a line client whose screen can be shown."""

from __future__ import annotations

import re

from twisted.internet import defer
from twisted.protocols.basic import LineReceiver

from suite.demo.lang import Text


def say(text: str) -> None:
    """Narrate one step."""
    print(f"\n== {text}", flush=True)


def note(text: str) -> None:
    """One line of what happened, under the step that caused it."""
    print(f"   {text}", flush=True)


class Screen(LineReceiver):
    """A line client that remembers what its user would have seen."""

    delimiter = b"\n"

    def __init__(self, who: str, text: Text) -> None:
        self.who = who
        self.text = text
        self.lines: list[str] = []
        self._shown = 0
        self._waiting: list[tuple[re.Pattern[str], int, defer.Deferred[str]]] = []
        self.closed: defer.Deferred[None] = defer.Deferred()

    def lineReceived(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        self.lines.append(text)
        ready = [w for w in self._waiting if len(self.lines) > w[1] and w[0].search(text)]
        self._waiting = [w for w in self._waiting if w not in ready]
        for _, _, d in ready:
            d.callback(text)

    def wait_for(self, pattern: str) -> defer.Deferred[str]:
        """Fires with the first line not shown yet (arrived or to come) matching ``pattern``."""
        compiled = re.compile(pattern)
        for text in self.lines[self._shown :]:
            if compiled.search(text):
                return defer.succeed(text)
        d: defer.Deferred[str] = defer.Deferred()
        self._waiting.append((compiled, self._shown, d))
        return d

    def send(self, line: str) -> None:
        """Type one line."""
        self.sendLine(line.encode("utf-8"))

    def show(self) -> None:
        """Print the lines this user has not been shown yet."""
        for line in self.lines[self._shown :]:
            note(self.text("sees", who=self.who, line=line))
        self._shown = len(self.lines)

    def connectionLost(self, reason: object) -> None:
        self.closed.callback(None)
