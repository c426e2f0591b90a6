"""
A file-service connection's replies, toward a client that may not read
them.  :class:`ReplyOutput` is a mixin of
:class:`suite.files.server.FileProtocol` (listed before the line
receiver, whose input and producer methods it extends).

Reading stops while the client's unread replies fill its send buffer (the
line receiver does that); on top of it, a client that does not read is
disconnected:

- once the server holds more than ``factory.max_send_queue`` bytes for it
  (replies written after its send buffer filled, and commands received but
  not yet run): ``send-queue-exceeded``;
- once its replies have waited unread for ``factory.reply_timeout``
  seconds (``--upload-stall-timeout``): ``timeout``.

Every close lingers: the server sends what is written and then its end of
the stream (a half-close), and reads and drops what the client still
sends until the client closes too, for at most ``factory.close_grace``
seconds.  Closing at once with the client's commands unread would make
the kernel reset the connection and throw away the last replies, the
reason line among them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.interfaces import ITCPTransport

from suite.files.states import State
from suite.files.wire import ErrorCode, FileError

if TYPE_CHECKING:
    from suite.files.factory import FileFactory

__all__ = ["ReplyOutput"]


class ReplyOutput:
    """What a file-service connection writes, and how it stops (see the module doc)."""

    factory: FileFactory
    state: State
    transport: Any
    connected: int
    _buffer: bytes
    _abort_call: Any = None
    #: Reply bytes written since the client's send buffer filled.
    _unread = 0
    #: Closing: the server's end is sent, and input is read only to be dropped.
    lingering = False

    def close(self, after: defer.Deferred[Any] | None = None) -> None:
        """
        Close after what is written (and after ``after``: the client learns
        of the end only once an upload's leftovers are gone); abort if the
        client will not take it within ``factory.close_grace`` seconds.
        """
        if self.state is State.CLOSING:
            return
        self.move(State.CLOSING)
        self.setTimeout(None)
        self._unread = 0
        if after is None:
            self._close_now()
        else:
            after.addBoth(lambda _: self._close_now())

    def _close_now(self) -> None:
        if not self.connected:
            return
        transport = self.transport
        factory = self.factory
        self._abort_call = factory.reactor.callLater(factory.close_grace, transport.abortConnection)
        try:
            # Nothing more is produced: what is written is all that goes.
            transport.unregisterProducer()
        except RuntimeError:
            pass  # none was registered (an in-memory transport says so)
        if ITCPTransport.providedBy(transport):
            self.lingering = True
            transport.loseWriteConnection()
            transport.resumeProducing()  # read, to drop, until the client closes
        else:
            transport.loseConnection()

    def writeConnectionLost(self) -> None:
        if not self.lingering:
            self.transport.loseConnection()

    def reply(self, data: bytes) -> None:
        """Write reply lines, counting what waits for a client that does not read."""
        self.transport.write(data)
        if self.output_blocked:
            self._unread += len(data)
            self._check_send_queue()

    def dataReceived(self, data: bytes) -> None:
        if self.lingering:
            return  # closing: what the client still sends is dropped
        super().dataReceived(data)  # type: ignore[misc]
        if self.output_blocked:
            self._check_send_queue()

    @property
    def send_queue(self) -> int:
        """
        Bytes held for a client that does not read: replies written since
        its send buffer filled, and commands received but not yet run.
        """
        return self._unread + len(self._buffer) if self.output_blocked else 0

    def _check_send_queue(self) -> None:
        limit = self.factory.max_send_queue
        queued = self.send_queue
        if limit is not None and queued > limit and self.state is not State.CLOSING:
            self.fail(FileError(
                ErrorCode.SEND_QUEUE_EXCEEDED,
                f"{queued} bytes of replies and commands wait for a client that reads no replies "
                f"(limit {limit}, --upload-max-send-queue)",
            ))

    def _command_timeout(self) -> float | None:
        # Between commands: the idle timeout, or, while the replies go
        # unread, the (shorter) stall timeout.
        return self.factory.reply_timeout if self.output_blocked else self.factory.idle_timeout

    def pauseProducing(self) -> None:
        """The client's send buffer is full: its replies wait unread."""
        super().pauseProducing()  # type: ignore[misc]
        if self.state is State.COMMAND:
            self.setTimeout(self._command_timeout())

    def resumeProducing(self) -> None:
        """The client read everything it was sent."""
        self._unread = 0
        super().resumeProducing()  # type: ignore[misc]
        if self.state is State.COMMAND:
            self.setTimeout(self._command_timeout())
