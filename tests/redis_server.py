"""
A real ``redis-server`` for tests: started on a free loopback port (and a
Unix socket) without persistence, ready once it logs that it accepts
connections (its log goes to its standard output, which the reactor reads:
no sleeping poll, nothing blocks the reactor), stopped by PID.  The
``redis_server`` fixture gives a :class:`RedisServer`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.python.failure import Failure

from tests.helpers import ProcessRun, spawn

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process; :meth:`kill` and :meth:`start` again keep its port."""

    def __init__(self, directory: Path, password: str | None = None, tls: tuple[Path, Path] | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        #: (key.pem, cert.pem): serve TLS on ``tls_port`` too.
        self.tls = tls
        self.tls_port = free_port() if tls else 0
        self.socket = str(directory / "redis.sock")
        self.password = password
        self.process: ProcessRun | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> defer.Deferred[None]:
        """Start it; fires once it accepts connections, fails (and stops it) after ``timeout`` seconds."""
        args = [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--unixsocket", self.socket, "--unixsocketperm", "700", "--dir", str(self.directory),
            "--logfile", "",  # standard output: the reactor reads it, so the pipe never fills
        ]
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            key, cert = self.tls
            args += ["--tls-port", str(self.tls_port), "--tls-key-file", str(key), "--tls-cert-file", str(cert),
                     "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
        self.process = run = spawn(args)
        ready = run.wait_for(rb"Ready to accept connections")
        ready.addTimeout(timeout, reactor)

        def failed(failure: Failure) -> defer.Deferred[None]:
            def report(_: object) -> None:
                output = bytes(run.out + run.err)[-2000:].decode(errors="replace")
                raise RuntimeError(f"redis-server did not start on port {self.port}: "
                                   f"{failure.getErrorMessage()}\n{output}")

            return self.stop().addBoth(report)

        return ready.addCallbacks(lambda _: None, failed)

    def ping(self) -> bool:
        """Whether it answers PING now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                auth = f"AUTH {self.password}\r\n" if self.password else ""
                s.sendall(f"{auth}PING\r\n".encode())
                data = b""
                while b"PONG" not in data and len(data) < 200:
                    chunk = s.recv(200)
                    if not chunk:
                        break
                    data += chunk
                return b"PONG" in data
        except OSError:
            return False

    def command(self, *words: str) -> bytes:
        """Run one command (inline form) and return the raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            auth = f"AUTH {self.password}\r\n" if self.password else ""
            s.sendall(f"{auth}{' '.join(words)}\r\n".encode())
            s.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            return data

    def kill(self) -> defer.Deferred[int]:
        """SIGKILL it by PID; fires once it is reaped."""
        return self._signal(signal.SIGKILL)

    def stop(self) -> defer.Deferred[int]:
        """SIGTERM it by PID; fires once it is reaped (SIGKILL if it still runs 10 seconds later)."""
        return self._signal(signal.SIGTERM, kill_after=10.0)

    def _signal(self, signum: int, kill_after: float | None = None) -> defer.Deferred[int]:
        run, self.process = self.process, None
        if run is None or run.ended.called:
            return defer.succeed(0)
        pid = run.transport.pid
        os.kill(pid, signum)
        ended: defer.Deferred[int] = defer.Deferred()

        def reaped(code: int) -> int:
            if late is not None and late.active():
                late.cancel()
            ended.callback(code)
            return code

        def overdue() -> None:
            if run.transport.pid is not None:
                os.kill(run.transport.pid, signal.SIGKILL)

        late = reactor.callLater(kill_after, overdue) if kill_after is not None else None
        run.ended.addCallback(reaped)
        return ended


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh ``redis-server`` for one test; stopped after it."""
    server = RedisServer(tmp_path)
    pytest_twisted.blockon(server.start())
    try:
        yield server
    finally:
        pytest_twisted.blockon(server.stop())
