"""
Sending a stored file (or one range of it) as an HTTP response body with
bounded memory.

:class:`FileBodyProducer` is a push producer registered with the request:
the connection pauses it while the socket is full and resumes it once the
transport has sent everything.  On a plain TCP connection, each resumption
first hands the socket as much as it takes with ``sendfile(2)`` (the
transport holds nothing then, so order is kept), then writes one piece
through the transport, big enough that the transport pauses us again and
says when the socket drained.  Elsewhere (TLS, tests) pieces go through the
transport only.  A client that stops reading for ``send_timeout`` seconds
is disconnected.
"""

from __future__ import annotations

import os
from typing import Any, BinaryIO

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from suite.endpoints import plain_socket
from suite.web.channel import peer_text
from suite.limits import cancel_call

__all__ = ["FileBodyProducer"]

log = Logger()


@implementer(IPushProducer)
class FileBodyProducer:
    """
    Writes ``length`` bytes of ``file`` from ``offset`` to ``request``,
    then finishes the request.

    :ivar done: fires (with ``None``) when the body was sent or the
        connection ended; the caller closes the file then.
    """

    #: Bytes per piece written through the transport.
    PIECE = 256 * 1024
    #: Most bytes one ``sendfile`` turn hands the socket.
    SENDFILE_TURN = 16 << 20

    def __init__(
        self, request: Any, file: BinaryIO, fd: int | None, offset: int, length: int, *,
        clock: IReactorTime, send_timeout: float | None, on_sent: Any = None, on_sendfile: Any = None,
    ) -> None:
        self.request = request
        self.file = file
        self.offset = offset
        self.remaining = length
        self.clock = clock
        self.send_timeout = send_timeout
        self.fd = fd
        self.on_sent = on_sent or (lambda count: None)
        self.on_sendfile = on_sendfile or (lambda count: None)
        self.done: defer.Deferred[None] = defer.Deferred()
        self._paused = False
        self._stopped = False
        self._stall: Any = None
        transport = request.channel.transport
        self._socket = plain_socket(transport) if fd is not None and hasattr(os, "sendfile") else None
        # The first turn runs before the transport sent the headers: no sendfile then.
        self._transport_empty = False
        # Each piece must fill the transport past its bufferSize, so that it pauses us.
        self.piece = max(self.PIECE, getattr(transport, "bufferSize", 0) + 1)

    def start(self) -> defer.Deferred[None]:
        """Register with the request and send the first piece."""
        self.request.registerProducer(self, True)
        self.resumeProducing()
        return self.done

    # -- IPushProducer ----------------------------------------------------------

    def pauseProducing(self) -> None:
        self._paused = True
        if self.send_timeout and self._stall is None:
            self._stall = self.clock.callLater(self.send_timeout, self._stalled)

    def resumeProducing(self) -> None:
        cancel_call(self._stall)
        self._stall = None
        if self._stopped:
            return
        empty, self._transport_empty = self._transport_empty, True
        self._paused = False
        if empty and self._socket is not None:
            self._sendfile(self.fd)
        while not self._paused and not self._stopped and self.remaining > 0:
            piece = self._read(min(self.piece, self.remaining))
            if not piece:  # the file shrank under us: the response cannot be completed
                log.warn("{name} is shorter than announced; closing", name=getattr(self.file, "name", "?"))
                self.request.channel.transport.abortConnection()
                self._end()
                return
            self.offset += len(piece)
            self.remaining -= len(piece)
            self.on_sent(len(piece))
            self.request.write(piece)
            if self._socket is not None:
                # The transport pauses us once it holds more than its
                # bufferSize (PIECE is larger) and resumes us when it drained.
                # One piece through the transport, then wait for it to drain.
                break
        if self.remaining == 0 and not self._stopped:
            self.request.unregisterProducer()
            self.request.finish()
            self._end()

    def _read(self, size: int) -> bytes:
        if self.fd is not None:
            return os.pread(self.fd, size, self.offset)
        self.file.seek(self.offset)
        return self.file.read(size)

    def _sendfile(self, fd: int) -> None:
        turn = min(self.SENDFILE_TURN, self.remaining)
        while turn > 0 and self.remaining > self.piece:
            try:
                sent = os.sendfile(self._socket.fileno(), fd, self.offset, min(turn, self.remaining - 1))
            except OSError:
                # The socket is full (EAGAIN) or broken; the piece written
                # next through the transport finds out which.
                return
            if not sent:
                return
            self.offset += sent
            self.remaining -= sent
            turn -= sent
            self.on_sent(sent)
            self.on_sendfile(sent)

    def stopProducing(self) -> None:
        self._end()

    # -- end --------------------------------------------------------------------

    def _stalled(self) -> None:
        self._stall = None
        peer = peer_text(self.request.getClientAddress())
        log.info("{peer}: took nothing for {timeout:g}s of a download; closing", peer=peer, timeout=self.send_timeout)
        self.request.channel.transport.abortConnection()
        self._end()

    def _end(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        cancel_call(self._stall)
        self._stall = None
        self.done.callback(None)
