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

from suite.echo import EchoFactory

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
        ready = [d for size, d in self._waiters if len(self.received) >= size]
        self._waiters = [(size, d) for size, d in self._waiters if len(self.received) < size]
        for d in ready:  # after the update: callbacks may wait again
            d.callback(bytes(self.received))

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


def track(factory: Any) -> Any:
    """
    Make ``factory`` remember its open server-side connections, so a test can
    wait for them to end (see :func:`stop_tracked`).  ``factory.closed`` is a
    queue of connections as they end.
    """
    base = factory.protocol

    class Tracked(base):  # type: ignore[misc, valid-type]
        def connectionMade(self) -> None:
            self.closed: defer.Deferred[None] = defer.Deferred()
            factory.open.add(self)
            super().connectionMade()

        def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
            super().connectionLost(reason)
            factory.open.discard(self)
            factory.closed.put(self)
            self.closed.callback(None)

    factory.protocol = Tracked
    factory.open = set()
    factory.closed = defer.DeferredQueue()
    return factory


async def stop_tracked(factory: Any, port: Any) -> None:
    """Stop listening, then wait (briefly) for the server side of every connection to end."""
    await defer.maybeDeferred(port.stopListening)
    for proto in list(factory.open):
        await proto.closed.addTimeout(10, reactor)


def tracked_echo(**kwargs: Any) -> EchoFactory:
    """An :class:`EchoFactory` made with ``kwargs``, tracked (see :func:`track`)."""
    return track(EchoFactory(**kwargs))


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
        found, still = [], []
        for pattern, d in self._patterns:
            match = pattern.search(text)
            (found if match else still).append((match, d) if match else (pattern, d))
        self._patterns = still
        for match, d in found:  # after the update: callbacks may wait again
            d.callback(match)

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


def spawn(
    args: list[str], stdin: bytes | None = b"", cwd: Path | None = None, env: dict[str, str] | None = None
) -> ProcessRun:
    """
    Start ``args`` (first item a program in the venv's bin directory), give
    it ``stdin`` and close its standard input; with ``stdin=None`` standard
    input stays open for the test to write to (``run.transport.write``).
    ``env`` adds environment variables.
    """
    run = ProcessRun()
    program = args[0] if args[0].startswith("/") else str(BIN / args[0])
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    reactor.spawnProcess(run, program, [program, *args[1:]], env=env, path=str(cwd or ROOT))
    if stdin is not None:
        run.transport.write(stdin)
        run.transport.closeStdin()
    return run


def twistd(*args: str, cwd: Path | None = None) -> ProcessRun:
    """Run ``twistd -n netsuite ARGS`` without a pid file."""
    return spawn(["twistd", "-n", "--pidfile=", "netsuite", *args], cwd=cwd)


async def listening_port(run: ProcessRun, service: str) -> int:
    """The port ``service`` logged it listens on."""
    match = await run.wait_for(rb"(?<![\w-])" + service.encode() + rb" listening on \w+6? \[?[0-9a-f.:]+\]?:(\d+)")
    return int(match.group(1))


def stop(runs: list[Any]) -> None:  # pragma: no cover - cleanup
    for run in runs:
        if not run.ended.called:
            run.terminate()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1: (key.pem, cert.pem)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


async def listen_tls(factory: Any, directory: Path) -> tuple[Any, Path]:
    """
    ``factory`` listening with TLS on 127.0.0.1, a free port, with a fresh
    self-signed certificate for localhost: (the listening port, cert.pem).
    """
    from suite.endpoints import stream_server_endpoint

    key, cert = make_certificate(directory)
    port = await stream_server_endpoint(
        reactor, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    ).listen(factory)
    return port, cert


def tls_client_endpoint(port: Any, cert: Path) -> Any:
    """A client endpoint to ``port`` (from :func:`listen_tls`) that trusts only ``cert``."""
    from twisted.internet import ssl
    from twisted.internet.endpoints import wrapClientTLS

    return wrapClientTLS(
        ssl.optionsForClientTLS("localhost", trustRoot=ssl.Certificate.loadPEM(cert.read_bytes())),
        TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port),
    )
