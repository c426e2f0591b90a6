"""
A bounded line receiver: the framing layer of netsuite's line services.

:class:`BoundedLineReceiver` is what chat and the file service's command
channel read with.  Unlike ``twisted.protocols.basic.LineOnlyReceiver`` it
is built for input nobody vouches for:

- the longest line is :attr:`BoundedLineReceiver.MAX_LENGTH`; a longer one
  is reported once (:meth:`BoundedLineReceiver.lineLengthExceeded`) and
  discarded as it arrives, so memory stays bounded however long it gets;
- the lines of one read are handed over together
  (:meth:`BoundedLineReceiver.lineBatch` wraps them), so a service can
  answer a batch with one write per recipient;
- one connection gets at most :attr:`BoundedLineReceiver.MAX_LINES_PER_TURN`
  lines per turn of the reactor: a client that pipelines thousands of
  commands in one write waits for the next turn, and every other client is
  served in between;
- reading stops while the connection's own output is backed up (the client
  does not read what it asks for), and while the service says so
  (:meth:`BoundedLineReceiver.pauseReading`, e.g. while a command waits for
  the disk), and resumes with what was already received.

Lines end with LF; a CR before it is removed.  A raw mode hands bytes to
:meth:`BoundedLineReceiver.rawDataReceived` instead (a file body).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from zope.interface import implementer

from suite._reactor import or_global_reactor

__all__ = ["BoundedLineReceiver"]

#: A reason to pause reading (see :meth:`BoundedLineReceiver.pauseReading`):
#: the transport's send buffer is full.
OUTPUT = "output"
#: A reason to pause reading: this turn's line budget is spent.
TURN = "turn"


@implementer(IPushProducer)
class BoundedLineReceiver(Protocol):
    """
    Reads LF-terminated lines within limits (see the module docstring).

    Subclasses implement :meth:`lineReceived` (and :meth:`rawDataReceived`
    if they use raw mode), and may override :meth:`lineLengthExceeded`,
    :meth:`lineBatch` and :meth:`outputResumed`.  Subclasses that override
    ``connectionMade`` call this class's, which registers the receiver as
    its transport's producer so it hears when output backs up.
    """

    #: Longest line in bytes, without its line end.
    MAX_LENGTH = 16384
    #: Lines handled per connection per turn of the reactor.
    MAX_LINES_PER_TURN = 1000
    #: The clock for resuming after a spent turn; ``None``: the factory's
    #: ``reactor`` attribute, else the global reactor.
    clock: Any = None

    _buffer = b""
    _discarding = False
    _line_mode = True
    _paused: frozenset[str] = frozenset()
    _resume_call: Any = None
    _processing = False
    _again = False
    _output_blocked = False
    _transport_paused = False
    #: Bytes held unread (beyond one line) while lines wait for output to drain.
    MAX_HELD = 65536

    def __init__(self) -> None:
        # Every attribute a connection will set, set here in one order
        # (Twisted's too): CPython then keeps one table of keys for all the
        # instances' __dict__s instead of a full dict each, about 1.3 KB
        # less per connection, which counts with 10,000 idle clients.
        # Subclasses that define __init__ call this one first.
        self.factory: Any = None
        self.connected = 0
        self.transport: Any = None
        self._buffer = b""
        self._discarding = False
        self._line_mode = True
        self._paused = frozenset()
        self._resume_call = None
        self._processing = False
        self._again = False
        self._output_blocked = False
        self._transport_paused = False

    def connectionMade(self) -> None:
        self.transport.registerProducer(self, True)

    # -- input -----------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if not self._line_mode:
            self.rawDataReceived(data)
            return
        if self._discarding:
            # The rest of an over-long line, already reported: drop it.
            end = data.find(b"\n")
            if end < 0:
                return
            self._discarding = False
            data = data[end + 1:]
        self._buffer = self._buffer + data if self._buffer else data
        if not self._paused:
            self._process()
        elif not self._transport_paused and len(self._buffer) > self.MAX_LENGTH + self.MAX_HELD:
            self._pause_transport()

    def _process(self) -> None:
        if self._processing:
            # A handler changed state (raw mode ended within this read): the
            # running loop reads on once that handler returns.
            self._again = True
            return
        self._processing = True
        try:
            while True:
                self._again = False
                self._process_lines()
                if not (self._again and self._line_mode and self._buffer and not self._paused):
                    break
        finally:
            self._processing = False

    def _process_lines(self) -> None:
        budget = self.MAX_LINES_PER_TURN
        parts = self._buffer.split(b"\n", budget)
        rest = parts.pop()
        if not parts:
            self._check_partial(rest)
            return
        self._buffer = b""
        limit = self.MAX_LENGTH
        done = 0
        with self.lineBatch() if len(parts) > 1 else contextlib.nullcontext():
            for line in parts:
                done += 1
                if line[-1:] == b"\r":
                    line = line[:-1]
                if len(line) > limit:
                    self.lineLengthExceeded(line)
                else:
                    self.lineReceived(line)
                if self._paused or not self._line_mode or self.transport is None:
                    break
        if done < len(parts):
            rest = b"\n".join([*parts[done:], rest])
        if not self._line_mode:
            self._buffer = b""
            if rest:
                self.rawDataReceived(rest)
            return
        self._buffer = rest
        if self._paused:
            return
        if len(parts) == budget and b"\n" in rest:
            # Budget spent with whole lines left: the rest waits a turn.
            self.pauseReading(TURN)
            self._resume_call = self._clock().callLater(0, self._next_turn)
            return
        self._check_partial(rest)

    def _check_partial(self, rest: bytes) -> None:
        self._buffer = rest
        if len(rest) > self.MAX_LENGTH + 1:  # +1: room for a CR
            # No line end yet and already too long: report it now and drop
            # the rest of it as it arrives, so memory stays bounded.
            self._buffer = b""
            self._discarding = True
            self.lineLengthExceeded(rest[: self.MAX_LENGTH + 1])

    def _next_turn(self) -> None:
        self._resume_call = None
        self.resumeReading(TURN)

    def _clock(self) -> Any:
        return self.clock or or_global_reactor(getattr(getattr(self, "factory", None), "reactor", None))

    # -- hooks -----------------------------------------------------------------

    def lineReceived(self, line: bytes) -> None:
        """One line, without its line end (override)."""
        raise NotImplementedError

    def rawDataReceived(self, data: bytes) -> None:
        """Bytes received in raw mode (override if you use raw mode)."""
        raise NotImplementedError

    def lineLengthExceeded(self, line: bytes) -> None:
        """
        A line longer than :attr:`MAX_LENGTH` (at most ``MAX_LENGTH + 1``
        bytes of it) was received and dropped.  The default closes the
        connection, like Twisted's line receivers.
        """
        self.transport.loseConnection()

    def lineBatch(self) -> contextlib.AbstractContextManager[Any]:
        """A context wrapping the lines of one read, when there are several."""
        return contextlib.nullcontext()

    def outputResumed(self) -> None:
        """The transport took all pending output: the client reads again."""

    # -- modes and pauses -------------------------------------------------------

    def setRawMode(self) -> None:
        """Hand what follows the current line to :meth:`rawDataReceived`."""
        self._line_mode = False

    def setLineMode(self, extra: bytes = b"") -> None:
        """Read lines again, starting with ``extra`` (bytes read past the raw part)."""
        self._line_mode = True
        if extra:
            self._buffer = extra + self._buffer
        if not self._paused and self._buffer:
            self._process()

    @property
    def pending_bytes(self) -> int:
        """
        Bytes of a line still being typed (or never ended): received after
        the last line end.  Whole lines waiting for their turn do not count.
        """
        if not self._line_mode or b"\n" in self._buffer:
            return 0
        return len(self._buffer)

    @property
    def reading_paused(self) -> frozenset[str]:
        """The reasons reading is paused now (empty when reading)."""
        return self._paused

    def pauseReading(self, reason: str) -> None:
        """
        Stop handling lines until :meth:`resumeReading` with the same
        ``reason``, and stop reading from the transport.  While only the
        output is backed up, the transport is still read until
        :attr:`MAX_HELD` bytes wait: a TLS transport must read to finish its
        handshake, which is what unblocks its output.
        """
        if reason in self._paused:
            return
        self._paused = self._paused | {reason}
        if reason != OUTPUT:
            self._pause_transport()

    def _pause_transport(self) -> None:
        if not self._transport_paused and self.transport is not None:
            self._transport_paused = True
            self.transport.pauseProducing()

    def resumeReading(self, reason: str) -> None:
        """Lift one reason to pause; read (and handle what waits) when none is left."""
        if reason not in self._paused:
            return
        self._paused = self._paused - {reason}
        if self._paused or self.transport is None or not self.connected:
            return
        if self._transport_paused:
            self._transport_paused = False
            self.transport.resumeProducing()
        if self._line_mode and self._buffer:
            self._process()

    @contextlib.contextmanager
    def readingPaused(self, reason: str) -> Iterator[None]:
        """Pause reading for the duration of a ``with`` block."""
        self.pauseReading(reason)
        try:
            yield
        finally:
            self.resumeReading(reason)

    def stopLineTurns(self) -> None:
        """Cancel a pending next turn (call from ``connectionLost``)."""
        call, self._resume_call = self._resume_call, None
        if call is not None and call.active():
            call.cancel()

    # IPushProducer, for our own transport: it says when output backs up.
    @property
    def output_blocked(self) -> bool:
        """Whether the transport's send buffer is full (the client is not reading)."""
        return self._output_blocked

    def pauseProducing(self) -> None:
        self._output_blocked = True
        self.pauseReading(OUTPUT)

    def resumeProducing(self) -> None:
        self._output_blocked = False
        self.outputResumed()
        if not self._output_blocked:  # writing what waited may have filled it again
            self.resumeReading(OUTPUT)

    def stopProducing(self) -> None:
        self._output_blocked = True
