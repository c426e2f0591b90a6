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
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.interfaces import IHalfCloseableProtocol, IHandshakeListener, ISSLTransport
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from suite.admission import AdmittedConnection
from suite.files.contract import Upload
from suite.files.output import ReplyOutput
from suite.files.receiving import UploadReceiver
from suite.files.sending import Sending
from suite.files.states import MOVES, READING, STAYS, State
from suite.files.wire import Authorized, Bye, Command, ErrorCode, FileError, FileInfo, Greeting, parse_command
from suite.limits import cancel_call, peer_host, peer_text
from suite.lines import BoundedLineReceiver

if TYPE_CHECKING:
    from suite.files.factory import FileFactory

__all__ = ["FileProtocol", "State"]

log = Logger()


@implementer(IHalfCloseableProtocol, IHandshakeListener)
class FileProtocol(AdmittedConnection, UploadReceiver, Sending, ReplyOutput, BoundedLineReceiver, TimeoutMixin):
    """
    One client of the file service.

    Framing is the shared bounded line receiver (``suite.lines``): lines
    of one read handled as a batch, at most :attr:`MAX_LINES_PER_TURN` per
    turn of the reactor, reading paused while the client's unread replies
    back up.  Reading also pauses while the state says so (a command is
    being carried out, a file is being sent) and while an upload's bytes
    wait for the disk.

    A client that does not read its replies is bounded by a send-queue
    cap and a stall timeout (:class:`suite.files.output.ReplyOutput`).
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
        factory.sockets.watch(self.transport)
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
        if self.lingering:
            self.transport.loseConnection()  # the end of a lingering close
            return
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

    def timeoutConnection(self) -> None:
        factory = self.factory
        if self.state is State.SENDING and self.sending == "listing" or self.output_blocked:
            message = f"the client read no replies for {factory.reply_timeout:g}s ({factory.reply_timeout_flag})"
        elif self.state in (State.BODY, State.SENDING):
            what = "no data came" if self.state is State.BODY else "the client took no data"
            message = f"{what} for {factory.transfer_timeout:g}s (--transfer-timeout)"
        elif not self._commanded and factory.first_command_timeout:
            message = f"no command within {factory.first_command_timeout:g}s of connecting (--upload-first-command-timeout)"
        else:
            message = f"no command for {factory.idle_timeout:g}s (--upload-idle-timeout)"
        self.fail(FileError(ErrorCode.TIMEOUT, message))

    def fail(self, error: FileError) -> None:
        """
        The one failure path: say why (never inside a download's bytes),
        log it once per peer, drop any upload (a cut-off resumable upload
        keeps its bytes), close.
        """
        if self.state is State.CLOSING:
            return
        self.factory.refused(self, error)
        if self.state is State.SENDING:
            if self._sender is not None:
                self._sender.stopProducing()
        else:
            self.transport.write(error.line())  # the last line, whatever waits before it
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
        self.factory.refused(self, error)
        self.reply(error.line())

    # -- commands ------------------------------------------------------------------

    def lineReceived(self, raw: bytes) -> None:
        if self.state is State.CLOSING:
            return
        if self.state is State.AFTER_BODY:
            self._line_after_body(raw)
            return
        if not self._commanded:
            self._commanded = True
        self.setTimeout(self._command_timeout())
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
            self.reply(Bye().line())
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
            self.reply(Authorized().line())
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
        self.setTimeout(self._command_timeout())
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
        self.reply(FileInfo(stored).line())
