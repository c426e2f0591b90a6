"""
The output half every chat front shares: a connection's queue of unread
output with its limit, and fanning one line out to a room's members.

:class:`ChatOutput` is a mixin of the line chat's, the IRC front's and the
WebSocket front's connections.  Each front says how it writes a chat line
(:meth:`ChatOutput.render`, :meth:`ChatOutput.shared_form`) and what it does
when a client leaves too much unread (:meth:`ChatOutput.send_queue_exceeded`);
the queue, the flushing and the count of unread bytes are here, once.

:meth:`ChatOutput.enqueue_all` is how :meth:`suite.chat.rooms.ChatServer.broadcast`
reaches the members of one front in a batch: the line is rendered once in
the front's form and the same bytes are appended to each member's queue,
without a method call per member; only the member the line is about (the
sender, who may see it another way) goes the long way.  The unread bytes of
a client that is not reading are counted when the batch ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from typing import Any

__all__ = ["ChatOutput"]


class ChatOutput:
    """
    A chat connection's output queue (a mixin).

    The connection provides ``factory.max_pending`` (bytes a client may leave
    unread, or ``None``), ``nick``, and the flags below; it calls
    :meth:`init_output` before any output.  While the client reads, what
    is queued in a batch is written at its end, in one write; while it does
    not (``_output_blocked``), the queue holds it, up to ``max_pending``.
    """

    nick: str
    factory: Any
    #: The client is not reading: output waits (set by the connection).
    _output_blocked: bool = False
    #: The connection is closing: nothing more is queued.
    _closing: bool = False

    def init_output(self) -> None:
        """Start with an empty queue."""
        self._outbox: list[bytes] = []
        #: Bytes of the first ``_counted`` entries of the queue: the fast
        #: path of :meth:`enqueue_all` appends without counting, and what it
        #: appended is counted for a client that is not reading when the
        #: batch ends (:meth:`flush`), so a batch may overshoot the limit.
        self._outbox_size = 0
        self._counted = 0

    # -- what a front provides ---------------------------------------------------

    def render(self, data: bytes) -> bytes | None:
        """``data`` (a chat line or the front's own bytes) as this client is sent it; ``None``: nothing."""
        return data

    def shared_form(self, data: bytes) -> tuple[bytes | None, str | None]:
        """
        ``(bytes, nick)``: what every member of this front is sent for the
        broadcast line ``data``, except the member called ``nick`` (whom the
        line is about, and who may be sent something else); ``(None, None)``
        if members differ (each one is then rendered on its own).
        """
        return data, None

    def write_out(self, data: bytes) -> None:
        """Write bytes already in this front's form to the client."""
        self.transport.write(data)  # type: ignore[attr-defined]

    def send_queue_exceeded(self, limit: int) -> None:
        """The client left more than ``limit`` bytes unread: disconnect it, in the front's words."""
        raise NotImplementedError

    # -- the queue ---------------------------------------------------------------

    def enqueue(self, data: bytes) -> None:
        """Queue ``data`` for the end of the batch; disconnect the client if its unread output grows too large."""
        if self._closing:
            return
        out = self.render(data)
        if out is None:
            return
        self._outbox.append(out)
        if self._output_blocked:
            self._check_pending()

    def _check_pending(self) -> None:
        limit = self.factory.max_pending
        if limit is None:
            return
        outbox = self._outbox
        if self._counted < len(outbox):
            self._outbox_size += sum(map(len, islice(outbox, self._counted, None)))
            self._counted = len(outbox)
        if self._outbox_size > limit:
            self._drop_queue()
            self.send_queue_exceeded(limit)

    def _drop_queue(self) -> None:
        self._outbox.clear()
        self._outbox_size = self._counted = 0

    @property
    def pending_output(self) -> int:
        """Bytes queued and not yet written."""
        return sum(map(len, self._outbox))

    def deliver(self, data: bytes) -> None:
        """Write ``data`` now, or queue it while the client is not reading."""
        if self._output_blocked or self._outbox:
            self.enqueue(data)
            self.flush()
        elif not self._closing:
            out = self.render(data)
            if out is not None:
                self.write_out(out)

    def flush(self, force: bool = False) -> None:
        """Write the queue, in one write, unless the client is not reading (or ``force``)."""
        outbox = self._outbox
        if not outbox:
            return
        if not force and (self._output_blocked or self._closing):
            if self._output_blocked and not self._closing:
                self._check_pending()  # what enqueue_all appended in the batch
            return
        data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
        self._drop_queue()
        self.write_out(data)

    @staticmethod
    def enqueue_all(members: Sequence[ChatOutput], data: bytes) -> None:
        """
        :meth:`enqueue` ``data`` for every one of ``members`` (connections
        of one front): rendered once, the same bytes appended to each queue.
        """
        shared, about = members[0].shared_form(data)
        if shared is None:
            for member in members:
                member.enqueue(data)
            return
        for member in members:
            if member._closing or member.nick == about:
                member.enqueue(data)
            else:
                # Counted against max_pending by flush(), at the end of the batch.
                member._outbox.append(shared)
