"""
How a download's bytes leave: producers for the transport.

:class:`FileSender` reads large chunks through the transport (over TLS
every byte must be encrypted); :class:`ZeroCopySender` uses
``sendfile(2)`` on a plain TCP socket, so the kernel copies from the page
cache to the socket with no Python bytes in between.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet import defer
from twisted.protocols import basic

__all__ = ["FileSender", "ZeroCopySender"]


class FileSender(basic.FileSender):
    """Twisted's FileSender with large chunks, telling its protocol each time it sends."""

    CHUNK_SIZE = 1 << 20

    def __init__(self, on_progress: Any) -> None:
        self._on_progress = on_progress

    def resumeProducing(self) -> None:
        self._on_progress()
        super().resumeProducing()


class ZeroCopySender(FileSender):
    """
    Sends with ``sendfile(2)`` while the socket takes it.

    Each turn sends up to ``CHUNK_SIZE`` that way; then the next ``PIECE``
    goes through the transport as ``FileSender`` would send it, so that
    the transport tells this producer (``resumeProducing``) when it has
    written everything and the socket can take more.  Order is kept because
    ``sendfile`` only runs when the transport says it holds nothing: never on
    the first turn, which comes from ``registerProducer`` while the header
    line may still be waiting in the transport.
    """

    CHUNK_SIZE = 4 << 20
    PIECE = 64 * 1024

    def __init__(self, on_progress: Any, sock: socket.socket) -> None:
        super().__init__(on_progress)
        self._socket = sock.fileno()
        self._offset = 0
        self._drained = False

    def beginFileTransfer(self, file: Any, consumer: Any, transform: Any = None) -> defer.Deferred[bytes]:
        self._offset = file.tell()
        return super().beginFileTransfer(file, consumer, transform)

    def resumeProducing(self) -> None:
        self._on_progress()
        if not self.file:
            return
        source = self.file.fileno()
        quota = self.CHUNK_SIZE if self._drained else 0
        self._drained = True  # every later call comes from the transport, empty
        while quota > 0:
            try:
                sent = os.sendfile(self._socket, source, self._offset, quota)
            except OSError:
                # The socket is full (EAGAIN), or broken, which the
                # transport reports when it writes the piece below.
                break
            if not sent:
                break  # end of file
            self._offset += sent
            quota -= sent
        piece = os.pread(source, self.PIECE, self._offset)
        if not piece:
            self.file = None
            self.consumer.unregisterProducer()
            if self.deferred:
                self.deferred.callback(self.lastSent)
                self.deferred = None
            return
        self._offset += len(piece)
        self.lastSent = piece[-1:]
        self.consumer.write(piece)
