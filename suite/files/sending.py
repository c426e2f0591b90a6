"""
Sending on a file-service connection: ``GET`` (a file's bytes) and
``LIST`` (one line per file).  Both hand the transport to a pull producer
(:mod:`suite.files.sender`) that writes the next chunk only when the
transport has sent the last one, so what the server holds for a client is
one chunk however large the file or the listing, and a client that stops
reading stops the sending.  :class:`Sending` is a mixin of
:class:`suite.files.server.FileProtocol`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from suite.endpoints import plain_socket
from suite.files.sender import FileSender, ListingSender, ZeroCopySender
from suite.files.states import State
from suite.files.wire import Command, Data, ErrorCode, FileError, Files

if TYPE_CHECKING:
    from suite.files.factory import FileFactory

__all__ = ["Sending"]


class Sending:
    """The sending half of a file-service connection (see the module doc)."""

    factory: FileFactory
    state: State
    transport: Any
    #: What is being sent: ``"file"``, ``"listing"``, or ``None``.
    sending: str | None = None
    _sender: Any = None
    reply: Any

    async def _list(self, command: Command) -> None:
        files = await self.factory.storage.list()
        if self.state is State.CLOSING:
            return
        self.reply(Files(len(files)).line())
        if files and self.state is not State.CLOSING:
            # Streamed: the lines of a listing of any length are formatted
            # a chunk at a time, as the client reads them.
            sender = ListingSender(self.resetTimeout, files)
            await self._send(sender, "listing", lambda: sender.beginTransfer(self.transport))

    async def _get(self, command: Command) -> None:
        self._start_transfer()
        try:
            opened = await self.factory.storage.open(command.name)
        except BaseException:
            self._end_transfer()
            raise
        try:
            stored = opened.stored
            if command.offset > stored.size:
                raise FileError(ErrorCode.BAD_OFFSET, f"offset {command.offset} is past the end ({stored.size} bytes)")
            if self.state is State.CLOSING:
                return
            self.reply(Data(stored.size, stored.sha256, command.offset).line())
            if self.state is State.CLOSING:  # the reply went over the send queue's cap
                return
            opened.file.seek(command.offset)
            sock = plain_socket(self.transport) if hasattr(os, "sendfile") and opened.fd is not None else None
            sender = FileSender(self.resetTimeout) if sock is None else ZeroCopySender(self.resetTimeout, sock)
            if await self._send(sender, "file", lambda: sender.beginFileTransfer(opened.file, self.transport)):
                self.factory.bytes_served += stored.size - command.offset
        finally:
            opened.close()
            self._end_transfer()

    async def _send(self, sender: Any, what: str, begin: Any) -> bool:
        """
        Let ``sender`` write to the transport until ``begin()``'s Deferred
        fires; ``True`` when everything was sent, ``False`` when it was
        stopped (the connection failed or went away; ``fail()`` said why).
        """
        # The sender is the transport's producer while it sends.
        self.transport.unregisterProducer()
        self.resumeProducing()  # the transport no longer tells this protocol; forget it said "full"
        self.move(State.SENDING)
        self.sending = what
        if what == "file":
            self._set_big_reads(True)
            self.setTimeout(self.factory.transfer_timeout)
        else:
            self.setTimeout(self.factory.reply_timeout)
        self._sender = sender
        try:
            await begin()
        except Exception:
            return False
        finally:
            self._sender = None
            self.sending = None
            self._set_big_reads(False)
        if self.state is not State.CLOSING:
            self.transport.registerProducer(self, True)
            self.move(State.WORKING)
        return True

    def _set_big_reads(self, big: bool) -> None:
        # Files move in 1 MiB steps (16 times fewer trips through the
        # reactor than Twisted's 64 KiB); commands in small ones, so one
        # read never holds many thousands of pipelined lines.
        if hasattr(self.transport, "bufferSize"):
            self.transport.bufferSize = self.factory.transfer_read_size if big else self.COMMAND_READ_SIZE
