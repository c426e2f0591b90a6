"""
Receiving an upload on a file-service connection: ``PUT``, its bytes, the
line after them, and the commit.  :class:`UploadReceiver` is a mixin of
:class:`suite.files.server.FileProtocol` (listed before the line receiver,
whose ``rawDataReceived`` and ``setLineMode`` it provides).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from suite.files.contract import Upload
from suite.files.states import State
from suite.files.wire import Command, ErrorCode, FileError, Ready, Stored, parse_command

if TYPE_CHECKING:
    from suite.files.factory import FileFactory

__all__ = ["UploadReceiver"]

log = Logger()


class UploadReceiver:
    """The upload half of a file-service connection (see the module doc)."""

    factory: FileFactory
    session: Upload | None
    state: State
    transport: Any
    _buffer: bytes
    _processing: bool
    reply: Any

    async def _put(self, command: Command) -> None:
        self._start_transfer()
        try:
            session = await self.factory.storage.begin_upload(
                command.name, command.size, command.sha256, overwrite=command.overwrite, resume=command.resume
            )
        except BaseException:
            self._end_transfer()
            raise
        if self.state is State.CLOSING:  # the client went away meanwhile
            await session.abort()
            return
        self.session = session
        session.on_written = self._disk_progress
        self.reply(Ready(session.offset).line())
        if self.state is State.CLOSING:  # the reply went over the send queue's cap
            return
        log.info("receiving {name} ({size} bytes from {offset}) from {peer}",
                 name=session.name, size=session.size, offset=session.offset, peer=self.peer)
        self.setTimeout(self.factory.transfer_timeout)
        if session.remaining:
            self._set_big_reads(True)
            self.setRawMode()
            self.move(State.BODY)
            early, self._buffer = self._buffer, b""
            if early:  # the data sent right after the PUT line, not waiting for READY
                self.rawDataReceived(early)
        else:
            self.move(State.AFTER_BODY)

    def rawDataReceived(self, data: bytes) -> None:
        session = self.session
        if self.state is not State.BODY or session is None:
            return
        self.resetTimeout()
        take = data[: session.remaining] if len(data) > session.remaining else data
        try:
            session.write(take)
        except FileError as e:  # the upload was ended under it (the server is stopping)
            self.fail(e)
            return
        if session.pending > self.factory.disk_buffer:
            self.pauseReading("disk")  # the disk is behind: stop reading
        if not session.remaining:
            self._set_big_reads(False)
            self.move(State.AFTER_BODY)
            self.setLineMode(data[len(take):])

    def _disk_progress(self) -> None:
        # Resume at half the buffer, not at empty: the disk keeps working
        # while the network refills it.
        session = self.session
        if session is None or session.pending <= self.factory.disk_buffer // 2:
            self.resumeReading("disk")

    def _line_after_body(self, raw: bytes) -> None:
        """The first line after an upload's data: a command means the data ended there."""
        try:
            command = parse_command(raw.decode("utf-8"))
        except (UnicodeDecodeError, FileError):
            self._too_long()
            return
        self._commit(command)

    def _too_long(self) -> None:
        size = self.session.size if self.session is not None else 0
        self.fail(FileError(ErrorCode.TOO_LONG, f"more than the declared {size} bytes came; nothing was stored"))

    def _commit(self, then: Command | None) -> None:
        session, self.session = self.session, None
        assert session is not None
        self.move(State.WORKING)
        self.setTimeout(None)

        def stored(result: Any) -> None:
            self._end_transfer()
            if self.state is State.CLOSING:
                return
            if isinstance(result, Failure):
                if not result.check(FileError):
                    log.failure("storing {name} failed", result, name=session.name)
                    result = Failure(FileError(ErrorCode.INTERNAL, "the server failed; see its log"))
                self.factory.files_failed[result.value.code] += 1
                self.fail(result.value)
                return
            log.info("stored {name}: {size} bytes, sha256 {sha256}", name=result.name, size=result.size, sha256=result.sha256)
            self.factory.files_stored += 1
            self.factory.bytes_stored += result.size
            self.reply(Stored(result.size, result.sha256, result.name).line())
            if self.state is State.CLOSING:  # the reply went over the send queue's cap
                return
            if then is None:  # the client half-closed: nothing more will come
                self.close()
                return
            self._next_command()
            if then.verb != "DONE" and self.state is State.COMMAND:
                self.dispatch(then)

        defer.Deferred.fromCoroutine(session.commit()).addBoth(stored)
