"""
One connection of the file client (:mod:`suite.files.client`): the
greeting and ``AUTH``, reply lines awaited one at a time, commands sent
through :mod:`suite.files.wire`, a download's raw bytes handed to a sink,
an upload's bytes sent by a producer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

from twisted.internet import defer, error
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.protocols.basic import FileSender, LineReceiver
from twisted.python.failure import Failure

from suite.files.wire import Authorized, Command, ErrorReply, Greeting, Reply, WireError, format_command, parse_reply

__all__ = ["FileClient", "RemoteError", "TransferError", "open_session"]

#: Bytes an upload sends per turn.
CHUNK = 256 * 1024


class RemoteError(Exception):
    """The server refused: ``code`` is its stable error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TransferError(Exception):
    """The transfer failed on this side: cut off, or the data did not verify."""


class _ProgressSender(FileSender):
    CHUNK_SIZE = CHUNK

    def __init__(self, on_chunk: Callable[[int], None]) -> None:
        self._on_chunk = on_chunk

    def resumeProducing(self) -> None:
        position = self.file.tell() if self.file else 0
        super().resumeProducing()
        if self.file:
            self._on_chunk(self.file.tell() - position)


class FileClient(LineReceiver):
    """
    The protocol: line replies are awaited one at a time with
    :meth:`read_line`; a download's bytes go to a sink with :meth:`receive`.
    """

    delimiter = b"\n"
    MAX_LENGTH = 64 * 1024

    def __init__(self) -> None:
        self._lines: defer.DeferredQueue[str | None] = defer.DeferredQueue()
        self._closed: defer.Deferred[None] = defer.Deferred()
        self._sink: Callable[[bytes], None] | None = None
        self._remaining = 0
        self._received: defer.Deferred[None] | None = None

    def lineReceived(self, line: bytes) -> None:
        self._lines.put(line.removesuffix(b"\r").decode("utf-8", "replace"))

    def lineLengthExceeded(self, line: bytes) -> None:
        self.transport.loseConnection()

    async def read_line(self) -> str:
        """The next line, as it came.

        :raises TransferError: when the connection has ended.
        """
        text = await self._lines.get()
        if text is None:
            self._lines.put(None)  # every later read fails the same way
            raise TransferError("the server closed the connection")
        return text

    async def read_reply(self, *expected: type[Reply]) -> Any:
        """The next reply, one of the ``expected`` kinds.

        :raises RemoteError: for an ``ERR`` line.
        :raises TransferError: the connection ended, or the line is not
            what the protocol says comes next.
        """
        text = await self.read_line()
        try:
            reply = parse_reply(text)
        except WireError as e:
            raise TransferError(f"the server does not speak the protocol: {e}") from None
        if isinstance(reply, ErrorReply):
            raise RemoteError(reply.code, reply.message)
        if not isinstance(reply, expected):
            raise TransferError(f"the server answered {text[:80]!r} out of turn")
        return reply

    def send(self, command: Command) -> None:
        self.transport.write(format_command(command))

    def receive(self, length: int, sink: Callable[[bytes], None]) -> defer.Deferred[None]:
        """Pass the next ``length`` raw bytes to ``sink``; fires when all came."""
        self._sink = sink
        self._remaining = length
        self._received = defer.Deferred()
        if length == 0:
            d, self._received = self._received, None
            d.callback(None)
            return d
        self.setRawMode()
        return self._received

    def rawDataReceived(self, data: bytes) -> None:
        assert self._sink is not None and self._received is not None
        take = data if len(data) <= self._remaining else data[: self._remaining]
        self._sink(take)
        self._remaining -= len(take)
        if not self._remaining:
            d, self._received = self._received, None
            self._sink = None
            d.callback(None)
            self.setLineMode(data[len(take):])

    def connectionLost(self, reason: Failure = Failure(error.ConnectionDone())) -> None:  # noqa: B008
        if self._received is not None:
            d, self._received = self._received, None
            d.errback(TransferError(f"the connection ended with {self._remaining} bytes still to come"))
        self._lines.put(None)
        if not self._closed.called:
            self._closed.callback(None)

    async def greet(self, token: str | None) -> None:
        """Read the greeting, and authenticate when the server asks for it."""
        text = await self.read_line()
        try:
            greeting = parse_reply(text)
        except WireError:
            greeting = None
        if isinstance(greeting, ErrorReply):  # e.g. too many connections
            raise RemoteError(greeting.code, greeting.message)
        if not isinstance(greeting, Greeting):
            raise TransferError(f"not a netsuite file server (it said {text[:60]!r})")
        if greeting.auth_required or token is not None:
            if token is None:
                raise RemoteError("auth-required", "the server needs a token")
            self.send(Command("AUTH", token=token))
            await self.read_reply(Authorized)

    def send_file(self, f: BinaryIO, on_chunk: Callable[[int], None]) -> defer.Deferred[Any]:
        return _ProgressSender(on_chunk).beginFileTransfer(f, self.transport)

    async def close(self) -> None:
        self.transport.loseConnection()
        await self._closed


async def open_session(endpoint: IStreamClientEndpoint, token: str | None) -> FileClient:
    """Connect to ``endpoint``, read the greeting and present ``token`` if the server asks for one."""
    client = FileClient()
    await connectProtocol(endpoint, client)
    try:
        await client.greet(token)
    except BaseException:
        client.transport.abortConnection()
        raise
    return client
