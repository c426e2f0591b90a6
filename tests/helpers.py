"""Helpers shared by the loopback and end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone, ProcessDone
from twisted.python.failure import Failure

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class Collector(protocol.Protocol):
    """A client that records what it receives and when the connection ends."""

    def __init__(self) -> None:
        self.received = bytearray()
        #: Fires with the exception that ended the connection (ConnectionDone...).
        self.lost: defer.Deferred[BaseException] = defer.Deferred()
        self._waiters: list[tuple[int, defer.Deferred[bytes]]] = []

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        still = []
        for size, d in self._waiters:
            if len(self.received) >= size:
                d.callback(bytes(self.received))
            else:
                still.append((size, d))
        self._waiters = still

    def wait_for(self, size: int) -> defer.Deferred[bytes]:
        """Fires with everything received once at least ``size`` bytes came."""
        if len(self.received) >= size:
            return defer.succeed(bytes(self.received))
        d: defer.Deferred[bytes] = defer.Deferred()
        self._waiters.append((size, d))
        return d

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        for _, d in self._waiters:
            d.errback(reason)
        self._waiters = []
        self.lost.callback(reason.value)


async def connect_collector(port: int, host: str = "127.0.0.1") -> Collector:
    client = Collector()
    await connectProtocol(TCP4ClientEndpoint(reactor, host, port), client)
    return client


class ProcessRun(protocol.ProcessProtocol):
    """A child process whose output is collected and whose lines can be awaited."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.err = bytearray()
        self.ended: defer.Deferred[int] = defer.Deferred()
        self._patterns: list[tuple[re.Pattern[bytes], defer.Deferred[re.Match[bytes]]]] = []

    def outReceived(self, data: bytes) -> None:
        self.out += data
        self._check()

    def errReceived(self, data: bytes) -> None:
        self.err += data
        self._check()

    def _check(self) -> None:
        text = bytes(self.out + self.err)
        still = []
        for pattern, d in self._patterns:
            match = pattern.search(text)
            if match:
                d.callback(match)
            else:
                still.append((pattern, d))
        self._patterns = still

    def wait_for(self, pattern: bytes) -> defer.Deferred[re.Match[bytes]]:
        """Fires with the first match of ``pattern`` in stdout+stderr."""
        d: defer.Deferred[re.Match[bytes]] = defer.Deferred()
        self._patterns.append((re.compile(pattern), d))
        self._check()
        return d

    def processEnded(self, reason: Failure) -> None:
        for pattern, d in self._patterns:
            d.errback(AssertionError(f"process ended before {pattern.pattern!r}; output:\n{self.out.decode()}{self.err.decode()}"))
        self._patterns = []
        code = 0 if reason.check(ProcessDone) else reason.value.exitCode
        if code is None:
            code = -reason.value.signal
        self.ended.callback(code)

    def terminate(self) -> None:
        if self.transport.pid is not None:
            self.transport.signalProcess(signal.SIGTERM)


def spawn(args: list[str], stdin: bytes | None = None, cwd: Path | None = None) -> ProcessRun:
    """Start ``args`` (first item a program in the venv's bin directory)."""
    run = ProcessRun()
    program = str(BIN / args[0])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    reactor.spawnProcess(run, program, [program, *args[1:]], env=env, path=str(cwd or ROOT))
    if stdin is not None:
        run.transport.write(stdin)
        run.transport.closeStdin()
    else:
        run.transport.closeStdin()
    return run


def twistd(*args: str, cwd: Path | None = None) -> ProcessRun:
    """Run ``twistd -n netsuite ARGS`` without a pid file."""
    return spawn(["twistd", "-n", "--pidfile=", "netsuite", *args], cwd=cwd)


async def listening_port(run: ProcessRun, service: str) -> int:
    """The port ``service`` logged it listens on."""
    match = await run.wait_for(rb"\b" + service.encode() + rb" listening on \w+6? \[?[0-9a-f.:]+\]?:(\d+)")
    return int(match.group(1))


def stop(runs: list[Any]) -> None:  # pragma: no cover - cleanup
    for run in runs:
        if not run.ended.called:
            run.terminate()
