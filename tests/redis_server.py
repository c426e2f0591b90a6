"""
A real ``redis-server`` for tests: started on a free loopback port (and a
Unix socket) without persistence, ready once it answers ``PING``, stopped
by PID.  The ``redis_server`` fixture gives a :class:`RedisServer`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait (at most ``timeout`` seconds) until it answers PING."""
        args = [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--unixsocket", self.socket, "--unixsocketperm", "700", "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            key, cert = self.tls
            args += ["--tls-port", str(self.tls_port), "--tls-key-file", str(key), "--tls-cert-file", str(cert),
                     "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.01)  # polling a condition with a deadline

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

    def kill(self) -> None:
        """SIGKILL it and reap it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM it by PID and wait for it."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh ``redis-server`` for one test; stopped after it."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
