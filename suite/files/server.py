"""
The file service: upload (PUT), download (GET), STAT, LIST over one TCP
connection.  A command is one line; an upload's or a download's bytes
follow their header line raw.  See docs/protocols/files.md.
"""

from __future__ import annotations

import hmac
import os
import socket
import time
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IHalfCloseableProtocol, IReactorTime
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import FileSender, LineReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from suite._reactor import or_global_reactor
from suite.endpoints import plain_socket
from suite.files.contract import FileStore, Upload
from suite.files.storage import Storage
from suite.files.wire import PROTOCOL, Command, ErrorCode, FileError, StoredFile, parse_command
from suite.limits import ConnectionLimit, cancel_call, close_then_abort, peer_host

__all__ = ["FileFactory", "FileProtocol", "describe_line"]

log = Logger()


def _when(mtime: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))


def describe_line(stored: StoredFile) -> str:
    """``SIZE SHA256 MTIME NAME``: one file in STAT and LIST replies."""
    return f"{stored.size} {stored.sha256} {_when(stored.mtime)} {stored.name}"


class _Sender(FileSender):
    """FileSender with large chunks, telling its protocol each time it sends."""

    CHUNK_SIZE = 1 << 20

    def __init__(self, on_progress: Any) -> None:
        self._on_progress = on_progress

    def resumeProducing(self) -> None:
        self._on_progress()
        super().resumeProducing()


class _ZeroCopySender(_Sender):
    """
    Sends with ``sendfile(2)`` while the socket takes it: the kernel copies
    from the page cache to the socket, with no Python bytes in between.

    Each turn sends up to ``CHUNK_SIZE`` that way; then the next ``PIECE``
    goes through the transport as ``FileSender`` would send it, so that
    the transport tells this producer (``resumeProducing``) when it has
    written everything and the socket can take more.  Order is kept because
    ``sendfile`` only runs when the transport says it holds nothing: never on
    the first turn, which comes from ``registerProducer`` while the header
    line may still be waiting in the transport.
    """

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


@implementer(IHalfCloseableProtocol)
class FileProtocol(LineReceiver, TimeoutMixin):
    """One client of the file service."""

    factory: FileFactory
    delimiter = b"\n"
    MAX_LENGTH = 4096

    def __init__(self) -> None:
        self._session: Upload | None = None
        self._body_done = False
        self._busy = False  # a command is being carried out: input waits
        self._closing = False
        self._admitted = False
        self._authorized = False
        self._transfer = False
        self._disk_paused = False
        self._input_ended = False
        self._abort_call: Any = None

    # -- connection life ---------------------------------------------------------

    def connectionMade(self) -> None:
        factory = self.factory
        host = peer_host(self.transport.getPeer())
        refusal = factory.connections.acquire(host)
        if refusal is not None:
            self._send_error(FileError(ErrorCode.TOO_MANY_CONNECTIONS, refusal))
            self._close()
            return
        self._admitted = True
        self._authorized = factory.token is None
        if hasattr(self.transport, "bufferSize"):
            # Twisted reads (and buffers writes) in 64 KiB steps; files move
            # in 1 MiB steps: 16 times fewer trips through the reactor.
            self.transport.bufferSize = 1 << 20
        self.callLater = factory.reactor.callLater
        self.setTimeout(factory.idle_timeout)
        self._send(PROTOCOL + ("" if self._authorized else " auth-required"))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.setTimeout(None)
        self._closing = True
        cancel_call(self._abort_call)
        if self._admitted:
            self._admitted = False
            self.factory.connections.release(peer_host(self.transport.getPeer()))
        session = self._session
        if session is not None:
            self._session = None
            if self._body_done:
                # Every byte came and the client closed cleanly: that is the end.
                defer.Deferred.fromCoroutine(session.commit()).addErrback(lambda f: None)
            else:
                defer.Deferred.fromCoroutine(session.abort()).addErrback(log.failure, "aborting upload")
            self._end_transfer()

    def readConnectionLost(self) -> None:
        """The client finished sending: complete an upload whose bytes all came."""
        if self._session is not None and self._body_done:
            self._finish_upload(None)
        elif self._session is not None:
            session, self._session = self._session, None
            self._end_transfer()
            got = session.received
            defer.Deferred.fromCoroutine(session.abort())
            self._send_error(FileError(ErrorCode.SHORT, f"the data ended after {got} of {session.size} bytes"))
            self._close()
        else:
            # Commands sent before the end of input still run; then close.
            self._input_ended = True
            if not self._busy:
                self._close()

    def writeConnectionLost(self) -> None:
        self.transport.loseConnection()

    def timeoutConnection(self) -> None:
        if self._session is not None and not self._body_done:
            message = f"no data for {self.factory.transfer_timeout:g}s"
        else:
            message = f"no command for {self.factory.idle_timeout:g}s"
        log.info("closing {peer}: {message}", peer=self.transport.getPeer(), message=message)
        self._send_error(FileError(ErrorCode.TIMEOUT, message))
        self._close()

    def _close(self) -> None:
        """Close after what is written; abort if the client will not take it."""
        if self._closing:
            return
        self._closing = True
        self._abort_call = close_then_abort(self.transport, self.factory.reactor, self.factory.close_grace)

    # -- replies -------------------------------------------------------------------

    def _send(self, line: str) -> None:
        self.transport.write(line.encode("utf-8") + b"\n")

    def _send_error(self, error: FileError) -> None:
        self.transport.write(error.line())

    # -- commands ------------------------------------------------------------------

    def lineReceived(self, raw: bytes) -> None:
        if self._closing:
            return
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if self._session is not None and self._body_done:
            self._line_after_body(raw)
            return
        self.resetTimeout()
        try:
            command = parse_command(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self._send_error(FileError(ErrorCode.BAD_COMMAND, "command lines are UTF-8"))
            return
        except FileError as e:
            self._send_error(e)
            if raw[:3].upper() == b"PUT":
                self._close()  # its data may follow: it cannot be read as commands
            return
        self._dispatch(command)

    def lineLengthExceeded(self, line: bytes) -> None:
        if self._session is not None and self._body_done:
            self._reject_over_long()
            return
        self._send_error(FileError(ErrorCode.LINE_TOO_LONG, f"command lines are at most {self.MAX_LENGTH} bytes"))
        self._close()

    def _dispatch(self, command: Command) -> None:
        if command.verb == "QUIT":
            self._send("BYE")
            self._close()
            return
        if command.verb == "AUTH":
            self._auth(command.token)
            return
        if not self._authorized:
            self._send_error(FileError(ErrorCode.AUTH_REQUIRED, "send AUTH TOKEN first"))
            self._close()
            return
        if command.verb == "DONE":
            self._send_error(FileError(ErrorCode.BAD_COMMAND, "DONE ends an upload's data, and no upload is open"))
            return
        handler = {"PUT": self._put, "GET": self._get, "STAT": self._stat, "LIST": self._list}[command.verb]
        self._run(handler, command)

    def _auth(self, token: str) -> None:
        expected = self.factory.token
        if expected is None or hmac.compare_digest(token.encode("utf-8"), expected):
            self._authorized = True
            self._send("AUTHORIZED")
        else:
            log.info("wrong token from {peer}", peer=self.transport.getPeer())
            self._send_error(FileError(ErrorCode.AUTH_FAILED, "wrong token"))
            self._close()

    def _run(self, handler: Any, command: Command) -> None:
        """Carry out an asynchronous command; later input waits until it is done."""
        self._busy = True
        self.pauseProducing()

        def done(result: object) -> None:
            self._busy = False
            if self._closing:  # the client went away meanwhile: nobody to tell
                return
            if isinstance(result, Failure):
                if result.check(FileError):
                    self._send_error(result.value)
                    if command.verb == "PUT":
                        self._close()
                else:
                    log.failure("{verb} failed", result, verb=command.verb)
                    self._send_error(FileError(ErrorCode.INTERNAL, "the server failed; see its log"))
                    self._close()
            self._next_command()

        defer.Deferred.fromCoroutine(handler(command)).addBoth(done)

    def _next_command(self) -> None:
        """A command is done: take the next one, or close if input has ended."""
        if self._closing:
            return
        self.resumeProducing()
        if self._input_ended and not self._busy and self._session is None:
            self._close()

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
        self._send("FILE " + describe_line(stored))

    async def _list(self, command: Command) -> None:
        files = await self.factory.storage.list()
        self._send(f"FILES {len(files)}")
        for stored in files:
            self._send(describe_line(stored))

    # -- upload --------------------------------------------------------------------

    async def _put(self, command: Command) -> None:
        self._start_transfer()
        try:
            session = await self.factory.storage.begin_upload(
                command.name, command.size, command.sha256, overwrite=command.overwrite, resume=command.resume
            )
        except BaseException:
            self._end_transfer()
            raise
        if self._closing:  # the client went away meanwhile
            await session.abort()
            self._end_transfer()
            return
        self._session = session
        self._body_done = False
        session.on_written = self._disk_progress
        self.setTimeout(self.factory.transfer_timeout)
        self._send(f"READY {session.offset}")
        log.info("receiving {name} ({size} bytes from {offset}) from {peer}",
                 name=session.name, size=session.size, offset=session.offset, peer=self.transport.getPeer())
        if session.remaining:
            self.setRawMode()
        else:
            self._body_done = True

    def rawDataReceived(self, data: bytes) -> None:
        session = self._session
        if session is None or self._closing:
            return
        self.resetTimeout()
        take = data[: session.remaining] if len(data) > session.remaining else data
        session.write(take)
        if session.pending > self.factory.disk_buffer and not self._disk_paused:
            self._disk_paused = True  # the disk is behind: stop reading
            self.transport.pauseProducing()
        if not session.remaining:
            self._body_done = True
            self.setLineMode(data[len(take):])

    def _disk_progress(self) -> None:
        # Resume at half the buffer, not at empty: the disk keeps working
        # while the network refills it.
        session = self._session
        if self._disk_paused and (session is None or session.pending <= self.factory.disk_buffer // 2):
            self._disk_paused = False
            if not self._closing and not self._busy:
                self.transport.resumeProducing()

    def _line_after_body(self, raw: bytes) -> None:
        """The first line after an upload's data: a command means the data ended there."""
        try:
            command = parse_command(raw.decode("utf-8"))
        except (UnicodeDecodeError, FileError):
            self._reject_over_long()
            return
        self._finish_upload(command)

    def _reject_over_long(self) -> None:
        session, self._session = self._session, None
        assert session is not None
        self._end_transfer()
        self._send_error(FileError(ErrorCode.TOO_LONG, f"more than the declared {session.size} bytes came; nothing was stored"))
        # Never resume from data known to be wrong.
        defer.Deferred.fromCoroutine(session.abort(keep=False))
        self._close()

    def _finish_upload(self, then: Command | None) -> None:
        session, self._session = self._session, None
        assert session is not None
        self._busy = True
        self.pauseProducing()
        self.setTimeout(self.factory.idle_timeout)

        def stored(result: StoredFile | Failure) -> None:
            self._end_transfer()
            self._busy = False
            if isinstance(result, Failure):
                if result.check(FileError):
                    self._send_error(result.value)
                else:
                    log.failure("storing {name} failed", result, name=session.name)
                    self._send_error(FileError(ErrorCode.INTERNAL, "the server failed; see its log"))
                self._close()
                return
            log.info("stored {name}: {size} bytes, sha256 {sha256}", name=result.name, size=result.size, sha256=result.sha256)
            self._send("STORED " + " ".join([str(result.size), result.sha256, result.name]))
            if then is None:  # the client half-closed: nothing more will come
                self._close()
            elif self._closing:
                return
            else:
                if then.verb != "DONE":
                    self._dispatch(then)
                if not self._busy:
                    self._next_command()

        defer.Deferred.fromCoroutine(session.commit()).addBoth(stored)

    # -- download ------------------------------------------------------------------

    async def _get(self, command: Command) -> None:
        self._start_transfer()
        try:
            opened = await self.factory.storage.open(command.name)
        except BaseException:
            self._end_transfer()
            raise
        f, stored = opened.file, opened.stored
        try:
            if command.offset > stored.size:
                raise FileError(ErrorCode.BAD_OFFSET, f"offset {command.offset} is past the end ({stored.size} bytes)")
            self._send(f"DATA {stored.size} {stored.sha256} {command.offset}")
            f.seek(command.offset)
            self.setTimeout(self.factory.transfer_timeout)
            sock = plain_socket(self.transport) if hasattr(os, "sendfile") and opened.fd is not None else None
            sender = _Sender(self.resetTimeout) if sock is None else _ZeroCopySender(self.resetTimeout, sock)
            await sender.beginFileTransfer(f, self.transport)
            self.setTimeout(self.factory.idle_timeout)
        finally:
            opened.close()
            self._end_transfer()


class FileFactory(Factory):
    """
    Builds :class:`FileProtocol` connections sharing one storage (any
    :class:`suite.files.contract.FileStore`).

    :param storage: where files live, with its own size/quota/space limits.
    :param token: the shared secret clients must present (``AUTH``), or
        ``None`` for no authentication.
    :param max_connections: concurrent connections.
    :param max_transfers: concurrent uploads and downloads.
    :param idle_timeout: seconds a connection may wait between commands.
    :param transfer_timeout: seconds a transfer may make no progress.
    :param disk_buffer: bytes of an upload allowed to wait for the disk
        before reading from the client pauses.
    """

    protocol = FileProtocol
    noisy = False

    DEFAULT_MAX_CONNECTIONS = 64
    DEFAULT_MAX_TRANSFERS = 16
    DEFAULT_IDLE_TIMEOUT = 300.0
    DEFAULT_TRANSFER_TIMEOUT = 60.0
    DEFAULT_DISK_BUFFER = 8 << 20

    def __init__(
        self,
        storage: FileStore,
        *,
        token: bytes | None = None,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        max_transfers: int | None = DEFAULT_MAX_TRANSFERS,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        transfer_timeout: float | None = DEFAULT_TRANSFER_TIMEOUT,
        disk_buffer: int = DEFAULT_DISK_BUFFER,
        close_grace: float = 5.0,
        reactor: IReactorTime | None = None,
    ) -> None:
        reactor = or_global_reactor(reactor)
        self.storage = storage
        self.token = token
        self.connections = ConnectionLimit(max_connections or None)
        self.max_transfers = max_transfers or None
        self.transfers = 0
        self.idle_timeout = idle_timeout or None
        self.transfer_timeout = transfer_timeout or None
        self.disk_buffer = disk_buffer
        self.close_grace = close_grace
        self.reactor = reactor
        self._sweeper: Any = None

    def startFactory(self) -> None:
        from twisted.internet.task import LoopingCall

        storage: Any = self.storage
        if isinstance(storage, Storage):
            log.info("storing files in {root}", root=str(storage.root.resolve()))
            # Load the index now (off the reactor thread), not at the first command.
            defer.Deferred.fromCoroutine(storage.ready()).addErrback(log.failure, "loading the storage index")
            # Partial uploads expire: look for them now and then.
            self._sweeper = LoopingCall(storage.sweep)
            self._sweeper.clock = self.reactor
            self._sweeper.start(min(600.0, max(1.0, storage.resume_ttl / 4)), now=False)

    def stopFactory(self) -> None:
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()

