"""
How a download's bytes and a listing's lines leave: producers for the
transport.

:class:`FileSender` reads large chunks through the transport (over TLS
every byte must be encrypted); :class:`ZeroCopySender` uses
``sendfile(2)`` on a plain TCP socket, so the kernel copies from the page
cache to the socket with no Python bytes in between;
:class:`ListingSender` writes ``LIST``'s lines a chunk at a time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IPullProducer
from twisted.protocols import basic
from zope.interface import implementer

from suite.files.wire import StoredFile, listing_line

__all__ = ["FileSender", "ListingSender", "ZeroCopySender"]


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
    #: The socket's send buffer while a file goes out, when the kernel's is
    #: smaller (Linux doubles it, up to ``net.core.wmem_max``): each
    #: ``sendfile`` call moves more, and the download does not wait on the
    #: buffer's autotuning (measured in benchmarks/README.md, "files").
    SEND_BUFFER = 4 << 20

    def __init__(self, on_progress: Any, sock: socket.socket) -> None:
        super().__init__(on_progress)
        try:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < self.SEND_BUFFER:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.SEND_BUFFER)
        except OSError:
            pass  # not a setting this socket takes: the kernel's default then
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


@implementer(IPullProducer)
class ListingSender:
    """
    Writes ``LIST``'s lines (:func:`suite.files.wire.listing_line`) about
    ``CHUNK_SIZE`` bytes at a time, each chunk when the transport asks for
    more: a listing of any length costs one chunk of memory per client,
    and a client that stops reading stops it.
    """

    CHUNK_SIZE = 64 * 1024

    def __init__(self, on_progress: Any, files: Sequence[StoredFile]) -> None:
        self._on_progress = on_progress
        self._files = files
        self._next = 0
        self._consumer: Any = None
        self._deferred: defer.Deferred[None] | None = None

    def beginTransfer(self, consumer: Any) -> defer.Deferred[None]:
        """Write every line to ``consumer``; the Deferred fires once all are sent."""
        self._consumer = consumer
        self._deferred = defer.Deferred()
        consumer.registerProducer(self, False)
        return self._deferred

    def resumeProducing(self) -> None:
        self._on_progress()
        if self._consumer is None:
            return
        files, index, end = self._files, self._next, len(self._files)
        if index >= end:
            # Everything was written, and the transport has sent it.
            self._consumer.unregisterProducer()
            self._consumer = None
            deferred, self._deferred = self._deferred, None
            if deferred is not None:
                deferred.callback(None)
            return
        chunk: list[bytes] = []
        size = 0
        while index < end and size < self.CHUNK_SIZE:
            line = listing_line(files[index])
            chunk.append(line)
            size += len(line)
            index += 1
        self._next = index
        self._consumer.write(b"".join(chunk))

    def stopProducing(self) -> None:
        self._consumer = None
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            deferred.errback(Exception("the listing was stopped"))
