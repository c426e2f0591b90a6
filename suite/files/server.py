"""
The file service: upload (PUT), download (GET), STAT, LIST over one TCP
connection.  A command is one line; an upload's or a download's bytes
follow their header line raw.  See docs/protocols/files.md.

A connection is in one :class:`State` at a time; every error that ends it
goes through one failure path (:meth:`FileProtocol.fail`), which never
writes inside a download's bytes.  Storage is any
:class:`suite.files.contract.FileStore`; lines are written and read only
through :mod:`suite.files.wire`.
"""

from __future__ import annotations

import hmac
import os
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.interfaces import IHalfCloseableProtocol, IHandshakeListener, ISSLTransport
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from suite.admission import AdmittedConnection
from suite.endpoints import plain_socket
from suite.files.contract import Upload
from suite.files.receiving import UploadReceiver
from suite.files.sender import FileSender, ZeroCopySender
from suite.files.states import MOVES, READING, STAYS, State
from suite.files.wire import (
    Authorized, Bye, Command, Data, ErrorCode, FileError, FileInfo, Files, Greeting, listing_line, parse_command,
)
from suite.limits import cancel_call, close_then_abort, peer_host, peer_text
from suite.lines import BoundedLineReceiver

if TYPE_CHECKING:
    from suite.files.factory import FileFactory

__all__ = ["FileProtocol", "State"]

log = Logger()


@implementer(IHalfCloseableProtocol, IHandshakeListener)
class FileProtocol(AdmittedConnection, UploadReceiver, BoundedLineReceiver, TimeoutMixin):
    """
    One client of the file service.

    Framing is the shared bounded line receiver (``suite.lines``): lines
    of one read handled as a batch, at most :attr:`MAX_LINES_PER_TURN` per
    turn of the reactor, reading paused while the client's unread replies
    back up.  Reading also pauses while the state says so (a command is
    being carried out, a file is being sent) and while an upload's bytes
    wait for the disk.
    """

    factory: FileFactory
    MAX_LENGTH = 4096
    #: Command lines handled per turn of the reactor before the rest wait.
    MAX_LINES_PER_TURN = 32
    #: Bytes read at once between transfers, and the send buffer above which
    #: reading pauses: pipelined commands wait in the client's socket, not here.
    COMMAND_READ_SIZE = 16 * 1024

    def __init__(self) -> None:
        self.state = State.COMMAND
        self.session: Upload | None = None
        self._authorized = False
        self._commanded = False  # a first command line came
        self._transfer = False
        self._input_ended = False
        self._sender: FileSender | None = None
        self._abort_call: Any = None
        self._auth_call: Any = None

    @property
    def peer(self) -> str:
        """The client as ``host:port``."""
        return peer_text(self.transport.getPeer())

    def move(self, state: State) -> None:
        """Enter ``state``; reading follows it."""
        if state not in MOVES[self.state]:
            raise AssertionError(f"{self.state.name} -> {state.name}")
        self.state = state
        if state in READING:
            self.resumeReading("state")
        else:
            self.pauseReading("state")

    def resumeReading(self, reason: str) -> None:
        super().resumeReading(reason)
        self._end_of_input()

    def _end_of_input(self) -> None:
        """Input has ended and every whole command line has run: close."""
        if self._input_ended and self.state is State.COMMAND and not self.reading_paused and b"\n" not in self._buffer:
            self.close()

    # -- connection life ---------------------------------------------------------

    def connectionMade(self) -> None:
        factory = self.factory
        self._authorized = factory.token is None
        if not ISSLTransport.providedBy(self.transport):
            super().connectionMade()  # this protocol becomes its transport's producer
        # Over TLS, only once the handshake is done: TLS pauses its producer
        # while it buffers the greeting, and pausing reading then would
        # stall the handshake itself.
        self._set_big_reads(False)
        self.callLater = factory.reactor.callLater
        self.setTimeout(factory.first_command_timeout or factory.idle_timeout)
        self.transport.write(Greeting(not self._authorized).line())

    def handshakeCompleted(self) -> None:
        if self.state is not State.CLOSING and self.state is not State.SENDING:
            self.transport.registerProducer(self, True)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        self.stopLineTurns()
        for call in (self._abort_call, self._auth_call):
            cancel_call(call)
        state, self.state = self.state, State.CLOSING
        super().connectionLost(reason)  # the admission policy gets the place back
        if self._sender is not None:
            self._sender.stopProducing()
        session, self.session = self.session, None
        if session is not None:
            if state is State.AFTER_BODY and not self._buffer:
                # Every byte came and the client closed cleanly: that is the end.
                defer.Deferred.fromCoroutine(session.commit()).addErrback(lambda f: None)
            else:
                # Cut off: a resumable upload keeps its bytes, unless they are known wrong.
                keep = state is State.BODY
                defer.Deferred.fromCoroutine(session.abort(keep=keep)).addErrback(log.failure, "aborting upload")
        self._end_transfer()

    def readConnectionLost(self) -> None:
        """The client finished sending."""
        self._input_ended = True
        if self.state is State.BODY and self.session is not None:
            got, size = self.session.received, self.session.size
            self.fail(FileError(ErrorCode.SHORT, f"the data ended after {got} of {size} bytes"))
        elif self.state is State.AFTER_BODY:
            if self._buffer:
                self._too_long()  # bytes after the data that never became a line
            else:
                self._commit(None)
        else:
            # Commands sent before the end still run; then it closes.
            self._end_of_input()

    def writeConnectionLost(self) -> None:
        self.transport.loseConnection()

    def timeoutConnection(self) -> None:
        factory = self.factory
        if self.state in (State.BODY, State.SENDING):
            what = "no data came" if self.state is State.BODY else "the client took no data"
            message = f"{what} for {factory.transfer_timeout:g}s (--transfer-timeout)"
        elif self.output_blocked:
            message = f"the client read no replies for {factory.idle_timeout:g}s (--upload-idle-timeout)"
        elif not self._commanded and factory.first_command_timeout:
            message = f"no command within {factory.first_command_timeout:g}s of connecting (--upload-first-command-timeout)"
        else:
            message = f"no command for {factory.idle_timeout:g}s (--upload-idle-timeout)"
        self.fail(FileError(ErrorCode.TIMEOUT, message))

    def close(self, after: defer.Deferred[Any] | None = None) -> None:
        """
        Close after what is written (and after ``after``: the client learns
        of the end only once an upload's leftovers are gone); abort if the
        client will not take it.
        """
        if self.state is State.CLOSING:
            return
        self.move(State.CLOSING)
        self.setTimeout(None)

        def now(_: object = None) -> None:
            if self.connected:
                self._abort_call = close_then_abort(self.transport, self.factory.reactor, self.factory.close_grace)

        if after is None:
            now()
        else:
            after.addBoth(now)

    def fail(self, error: FileError) -> None:
        """
        The one failure path: say why (never inside a download's bytes),
        log it once per peer, drop any upload (a cut-off resumable upload
        keeps its bytes), close.
        """
        if self.state is State.CLOSING:
            return
        self.factory.refused(self, f"{error.code}: {error.message}")
        if self.state is State.SENDING:
            if self._sender is not None:
                self._sender.stopProducing()
        else:
            self.transport.write(error.line())
        session, self.session = self.session, None
        aborted = None
        if session is not None:
            self.factory.files_failed[error.code] += 1
        if session is not None:
            keep = error.code in (ErrorCode.SHORT, ErrorCode.TIMEOUT)
            aborted = defer.Deferred.fromCoroutine(session.abort(keep=keep))
            aborted.addErrback(log.failure, "aborting upload")
        self._end_transfer()
        self.close(aborted)

    def refuse(self, error: FileError) -> None:
        """An error after which the connection stays open (or closes, see ``STAYS``)."""
        if error.code not in STAYS:
            self.fail(error)
            return
        self.factory.refused(self, f"{error.code}: {error.message}")
        self.transport.write(error.line())

    # -- commands ------------------------------------------------------------------

    def lineReceived(self, raw: bytes) -> None:
        if self.state is State.CLOSING:
            return
        if self.state is State.AFTER_BODY:
            self._line_after_body(raw)
            return
        if not self._commanded:
            self._commanded = True
        self.setTimeout(self.factory.idle_timeout)
        try:
            command = parse_command(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self.refuse(FileError(ErrorCode.BAD_COMMAND, "command lines are UTF-8"))
            return
        except FileError as e:
            if raw[:3].upper() == b"PUT":
                self.fail(e)  # its data may follow: it cannot be read as commands
            else:
                self.refuse(e)
            return
        self.dispatch(command)

    def lineLengthExceeded(self, line: bytes) -> None:
        if self.state is State.AFTER_BODY:
            self._too_long()
            return
        self.fail(FileError(ErrorCode.LINE_TOO_LONG, f"command lines are at most {self.MAX_LENGTH} bytes"))

    def dispatch(self, command: Command) -> None:
        """Carry out one command (in :attr:`State.COMMAND`)."""
        if command.verb == "QUIT":
            self.transport.write(Bye().line())
            self.close()
        elif command.verb == "AUTH":
            self._auth(command.token)
        elif not self._authorized:
            self.fail(FileError(ErrorCode.AUTH_REQUIRED, "send AUTH TOKEN first"))
        elif command.verb == "DONE":
            self.refuse(FileError(ErrorCode.BAD_COMMAND, "DONE ends an upload's data, and no upload is open"))
        else:
            handler = {"PUT": self._put, "GET": self._get, "STAT": self._stat, "LIST": self._list}[command.verb]
            self._run(handler, command)

    def _auth(self, token: str) -> None:
        factory = self.factory
        expected = factory.token
        if expected is None or hmac.compare_digest(token.encode("utf-8"), expected):
            self._authorized = True
            self.transport.write(Authorized().line())
            return
        # Wrong: wait a delay that grows with this host's failures, then close.
        delay = factory.auth_failed(peer_host(self.transport.getPeer()))
        self.move(State.WORKING)
        self.setTimeout(None)

        def answer() -> None:
            self._auth_call = None
            self.fail(FileError(ErrorCode.AUTH_FAILED, "wrong token"))

        self._auth_call = factory.reactor.callLater(delay, answer)

    def _run(self, handler: Any, command: Command) -> None:
        """Carry out an asynchronous command; input waits until it is done."""
        self.move(State.WORKING)
        self.setTimeout(None)  # the storage is working, not the client

        def done(result: object) -> None:
            if self.state is State.CLOSING:  # failed, or the client went away: nobody to tell
                return
            if isinstance(result, Failure):
                if result.check(FileError) and command.verb == "PUT":
                    self.factory.files_failed[result.value.code] += 1
                    self.fail(result.value)
                elif result.check(FileError):
                    self.refuse(result.value)
                else:
                    log.failure("{verb} failed", result, verb=command.verb)
                    self.fail(FileError(ErrorCode.INTERNAL, "the server failed; see its log"))
                if self.state is State.CLOSING:
                    return
            if self.state is State.WORKING:
                self._next_command()

        defer.Deferred.fromCoroutine(handler(command)).addBoth(done)

    def _next_command(self) -> None:
        """A command is done: take the next one, or close if input has ended."""
        self.setTimeout(self.factory.idle_timeout)
        self.move(State.COMMAND)
        self._end_of_input()

    def _start_transfer(self) -> None:
        factory = self.factory
        if factory.max_transfers is not None and factory.transfers >= factory.max_transfers:
            raise FileError(ErrorCode.TOO_MANY_TRANSFERS, f"the server is busy (limit {factory.max_transfers} transfers)")
        factory.transfers += 1
        self._transfer = True

    def _end_transfer(self) -> None:
        if self._transfer:
            self._transfer = False
            self.factory.transfers -= 1

    async def _stat(self, command: Command) -> None:
        stored = await self.factory.storage.stat(command.name)
        self.transport.write(FileInfo(stored).line())

    async def _list(self, command: Command) -> None:
        files = await self.factory.storage.list()
        self.transport.write(Files(len(files)).line() + b"".join(map(listing_line, files)))

    # -- download ------------------------------------------------------------------

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
            self.transport.write(Data(stored.size, stored.sha256, command.offset).line())
            opened.file.seek(command.offset)
            # The sender is the transport's producer while it sends.
            self.transport.unregisterProducer()
            self.resumeProducing()  # the transport no longer tells this protocol; forget it said "full"
            self.move(State.SENDING)
            self._set_big_reads(True)
            self.setTimeout(self.factory.transfer_timeout)
            sock = plain_socket(self.transport) if hasattr(os, "sendfile") and opened.fd is not None else None
            self._sender = FileSender(self.resetTimeout) if sock is None else ZeroCopySender(self.resetTimeout, sock)
            try:
                await self._sender.beginFileTransfer(opened.file, self.transport)
            except Exception:
                return  # stopped: the connection failed or went away; fail() said why
            finally:
                self._sender = None
                self._set_big_reads(False)
            self.factory.bytes_served += stored.size - command.offset
            if self.state is not State.CLOSING:
                self.transport.registerProducer(self, True)
                self.move(State.WORKING)
        finally:
            opened.close()
            self._end_transfer()

    def _set_big_reads(self, big: bool) -> None:
        # Files move in 1 MiB steps (16 times fewer trips through the
        # reactor than Twisted's 64 KiB); commands in small ones, so one
        # read never holds many thousands of pipelined lines.
        if hasattr(self.transport, "bufferSize"):
            self.transport.bufferSize = self.factory.transfer_read_size if big else self.COMMAND_READ_SIZE
