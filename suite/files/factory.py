"""
The file service's factory: the storage, the limits and the state every
connection shares (transfers in progress, failed AUTH attempts per host,
the refusal log).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from suite._reactor import or_global_reactor
from suite.admission import AdmissionPolicy, AdmittingFactory
from suite.files.contract import FileStore
from suite.files.server import FileProtocol
from suite.files.wire import ErrorCode, FileError
from suite.limits import PeerLog, peer_host
from suite.sockbytes import SocketBytes

__all__ = ["FileFactory"]

log = Logger()


class FileFactory(AdmittingFactory):
    """
    Builds :class:`suite.files.server.FileProtocol` connections sharing one
    storage (any :class:`suite.files.contract.FileStore`).

    :param storage: where files live, with its own size/quota/space limits.
    :param token: the shared secret clients must present (``AUTH``), or
        ``None`` for no authentication.
    :param max_connections: concurrent connections (the admission policy's).
    :param max_per_ip: concurrent connections from one IP address.
    :param max_transfers: concurrent uploads and downloads.
    :param first_command_timeout: seconds a new connection has to send its
        first command line.
    :param idle_timeout: seconds a connection may wait between commands.
    :param stall_timeout: seconds a client may leave its replies unread
        (the server waiting to send it more) before it is disconnected;
        ``None``: the idle timeout.
    :param max_send_queue: bytes the server holds for a client that does
        not read its replies (replies written after its send buffer filled,
        and commands received but not yet run) before it is disconnected.
    :param transfer_timeout: seconds a transfer may make no progress.
    :param disk_buffer: bytes of an upload allowed to wait for the disk
        before reading from the client pauses.
    :param auth_delay: seconds a first wrong token waits for its answer;
        each further failure from the same host doubles it, up to
        ``auth_delay_max``.
    """

    protocol = FileProtocol
    noisy = False

    DEFAULT_MAX_CONNECTIONS = 64
    DEFAULT_MAX_PER_IP = 16
    DEFAULT_MAX_TRANSFERS = 16
    DEFAULT_FIRST_COMMAND_TIMEOUT = 10.0
    DEFAULT_IDLE_TIMEOUT = 300.0
    DEFAULT_STALL_TIMEOUT = 60.0
    DEFAULT_MAX_SEND_QUEUE = 64 * 1024
    DEFAULT_TRANSFER_TIMEOUT = 60.0
    DEFAULT_DISK_BUFFER = 8 << 20
    DEFAULT_AUTH_DELAY = 1.0
    AUTH_DELAY_MAX = 30.0
    #: Failed AUTH attempts are forgotten after this many quiet seconds.
    AUTH_MEMORY = 900.0
    #: Hosts remembered for AUTH delays (the oldest forgotten first).
    AUTH_HOSTS = 4096

    def __init__(
        self,
        storage: FileStore,
        *,
        token: bytes | None = None,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        max_per_ip: int | None = DEFAULT_MAX_PER_IP,
        max_transfers: int | None = DEFAULT_MAX_TRANSFERS,
        first_command_timeout: float | None = DEFAULT_FIRST_COMMAND_TIMEOUT,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
        max_send_queue: int | None = DEFAULT_MAX_SEND_QUEUE,
        transfer_timeout: float | None = DEFAULT_TRANSFER_TIMEOUT,
        disk_buffer: int = DEFAULT_DISK_BUFFER,
        auth_delay: float = DEFAULT_AUTH_DELAY,
        close_grace: float = 5.0,
        reactor: IReactorTime | None = None,
    ) -> None:
        reactor = or_global_reactor(reactor)
        self.storage = storage
        self.token = token
        #: Who may connect: refusals are written as ``ERR too-many-connections``.
        self.admission = AdmissionPolicy(
            "upload",
            max_connections=max_connections or None,
            max_per_ip=max_per_ip or None,
            refusal_line=lambda text: FileError(ErrorCode.TOO_MANY_CONNECTIONS, text).line(),
            clock=reactor,
        )
        self.max_transfers = max_transfers or None
        self.transfers = 0
        self.first_command_timeout = first_command_timeout or None
        self.idle_timeout = idle_timeout or None
        self.stall_timeout = stall_timeout or None
        self.max_send_queue = max_send_queue or None
        self.transfer_timeout = transfer_timeout or None
        self.disk_buffer = disk_buffer
        self.auth_delay = auth_delay
        self.close_grace = close_grace
        self.reactor = reactor
        #: Bytes read at once while a file moves.
        self.transfer_read_size = 1 << 20
        #: For /metrics (suite.metrics): uploads stored and failed (by code), bytes stored and served.
        self.files_stored = 0
        self.bytes_stored = 0
        self.bytes_served = 0
        self.files_failed: Counter[str] = Counter()
        #: Bytes in and out, from the kernel (not counted per read or write).
        self.sockets = SocketBytes()
        self._auth_failures: dict[str, tuple[int, float]] = {}
        self._refusals = PeerLog(log, reactor)
        self._sweeper: Any = None
        self._shutdown: Any = None

    @property
    def reply_timeout(self) -> float | None:
        """Seconds replies may wait unread: the stall timeout, else the idle timeout."""
        return self.stall_timeout or self.idle_timeout

    @property
    def reply_timeout_flag(self) -> str:
        """The option that sets :attr:`reply_timeout`, for messages."""
        return "--upload-stall-timeout" if self.stall_timeout else "--upload-idle-timeout"

    def refused(self, connection: FileProtocol, error: FileError) -> None:
        """
        Log a refusal or protocol error with the peer as host:port, once a
        minute per peer host and error code: a host's flood of bad commands
        does not hide its disconnection for a full send queue.
        """
        host = peer_host(connection.transport.getPeer()) or "local"
        self._refusals.warn(
            f"{host} {error.code}", "upload: {peer}: {why}", peer=connection.peer, why=f"{error.code}: {error.message}"
        )

    def auth_failed(self, host: str | None) -> float:
        """Count a wrong token from ``host``; returns how long its answer waits."""
        now = self.reactor.seconds()
        key = host or "local"
        count, last = self._auth_failures.pop(key, (0, now))
        if now - last > self.AUTH_MEMORY:
            count = 0
        count += 1
        if len(self._auth_failures) >= self.AUTH_HOSTS:
            del self._auth_failures[next(iter(self._auth_failures))]
        self._auth_failures[key] = (count, now)
        return min(self.auth_delay * 2 ** (count - 1), self.AUTH_DELAY_MAX)

    def startFactory(self) -> None:
        from twisted.internet.task import LoopingCall

        from suite.files.storage import Storage

        storage: Any = self.storage
        if isinstance(storage, Storage):
            log.info("storing files in {root}", root=str(storage.root.resolve()))
            # Load the index now (off the reactor thread), not at the first command.
            defer.Deferred.fromCoroutine(storage.ready()).addErrback(log.failure, "loading the storage index")
            # Partial uploads expire: look for them now and then.
            self._sweeper = LoopingCall(storage.sweep)
            self._sweeper.clock = self.reactor
            self._sweeper.start(min(600.0, max(1.0, storage.resume_ttl / 4)), now=False)
        if hasattr(storage, "close") and hasattr(self.reactor, "addSystemEventTrigger"):
            # At shutdown (SIGTERM), before connections are dropped: plain
            # uploads' hidden files are removed, resumable partials kept.
            self._shutdown = self.reactor.addSystemEventTrigger(
                "before", "shutdown", lambda: defer.Deferred.fromCoroutine(storage.close())
            )

    def stopFactory(self) -> None:
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()
        if self._shutdown is not None:
            try:
                self.reactor.removeSystemEventTrigger(self._shutdown)
            except ValueError:
                pass  # already run
            self._shutdown = None
