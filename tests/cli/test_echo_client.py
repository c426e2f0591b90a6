"""``netsuite echo``: client logic in memory, and the command against real servers."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from suite.cli._net import ClientError
from suite.cli.echo import EchoClient, UDPEchoClient
from suite.echo import UDPEchoProtocol
from suite.endpoints import stream_server_endpoint
from tests.cli.shapes import Banner, CloseAtOnce, NoNewline, NoNewlineThenClose, Silent, Upper
from tests.helpers import make_certificate, spawn, stop_tracked, tracked_echo

# --- in memory ------------------------------------------------------------------


def echo_client() -> tuple[EchoClient, StringTransport, io.BytesIO]:
    out = io.BytesIO()
    client = EchoClient(out)
    transport = StringTransport()
    client.makeConnection(transport)
    return client, transport, out


def test_client_pipelines_and_closes_when_all_came_back() -> None:
    client, transport, out = echo_client()
    client.send(b"one")
    client.send(b"two")
    client.end_input()
    assert transport.value() == b"one\ntwo\n"
    client.dataReceived(b"one\ntw")
    assert out.getvalue() == b"one\n"
    assert not transport.disconnecting
    client.dataReceived(b"o\n")
    assert out.getvalue() == b"one\ntwo\n"
    assert transport.disconnecting
    client.connectionLost(Failure(ConnectionDone()))
    assert client.done.called


def failure_of(client: EchoClient) -> str:
    failures: list[Failure] = []
    client.done.addErrback(failures.append)
    assert failures and failures[0].check(ClientError), failures
    return str(failures[0].value)


def test_client_reports_short_echo() -> None:
    client, transport, out = echo_client()
    client.send(b"one")
    client.send(b"two")
    client.end_input()
    client.dataReceived(b"one\n")
    client.connectionLost(Failure(ConnectionDone()))
    assert failure_of(client) == "the server closed the connection when 1 of 2 lines had come back"


def test_reply_without_newline_is_shown_and_times_out() -> None:
    """A blocking server's ``conn.send(data.strip())``: shown, then one line, no hang."""
    clock = Clock()
    out = io.BytesIO()
    client = EchoClient(out, timeout=5, clock=clock, peer="127.0.0.1:9000")
    transport = StringTransport()
    client.makeConnection(transport)
    client.send(b"hello")
    client.end_input()
    client.dataReceived(b"hello")
    clock.advance(4.9)
    assert not client.done.called
    clock.advance(0.1)
    assert out.getvalue() == b"hello\n"
    assert failure_of(client) == (
        "no reply from 127.0.0.1:9000 within 5s when 0 of 1 line had come back, then b'hello' without its newline"
    )
    assert transport.disconnecting


def test_timeout_runs_only_while_a_reply_is_due() -> None:
    clock = Clock()
    client = EchoClient(io.BytesIO(), timeout=5, clock=clock)
    client.makeConnection(StringTransport())
    clock.advance(60)  # nothing sent: a user thinking is not a timeout
    client.send(b"a")
    clock.advance(4)
    client.dataReceived(b"a")  # progress resets the clock
    clock.advance(4)
    client.dataReceived(b"\n")
    clock.advance(60)
    assert not client.done.called
    assert not clock.getDelayedCalls()


def test_reply_that_is_not_the_echo_fails_at_once() -> None:
    client, transport, out = echo_client()
    client.send(b"hello")
    client.dataReceived(b"HELLO\n")
    assert out.getvalue() == b"HELLO\n"
    assert failure_of(client) == "the reply is not the echo: expected b'hello\\n', got b'HELLO\\n'"
    assert transport.disconnecting


def test_bytes_before_anything_was_sent_are_not_an_echo() -> None:
    client, transport, out = echo_client()
    client.dataReceived(b"Welcome")
    assert out.getvalue() == b"Welcome\n"
    assert failure_of(client) == "the server sent b'Welcome', which is not an echo of anything sent"


def test_raw_writes_exactly_what_arrived() -> None:
    out = io.BytesIO()
    client = EchoClient(out, raw=True)
    client.makeConnection(StringTransport())
    client.send(b"x\xff")
    client.dataReceived(b"x")
    client.dataReceived(b"\xff")
    client.connectionLost(Failure(ConnectionDone()))
    assert out.getvalue() == b"x\xff"
    assert failure_of(client) == (
        "the server closed the connection when 0 of 1 line had come back, then b'x\\xff' without its newline"
    )


def test_udp_client_times_out() -> None:
    clock = Clock()
    client = UDPEchoClient(clock, ("127.0.0.1", 8007), timeout=3)
    client.transport = type("T", (), {"write": lambda self, data, addr: None})()
    d = client.echo(b"hello?")
    clock.advance(3)
    with pytest.raises(defer.TimeoutError):
        d.result.raiseException()
    d.addErrback(lambda f: None)


def test_udp_client_ignores_strangers() -> None:
    client = UDPEchoClient(Clock(), ("127.0.0.1", 8007), timeout=3)
    sent = []
    client.transport = type("T", (), {"write": lambda self, data, addr: sent.append((data, addr))})()
    d = client.echo(b"hi")
    assert sent == [(b"hi", ("127.0.0.1", 8007))]
    client.datagramReceived(b"spoof", ("127.0.0.1", 9999))
    assert not d.called
    client.datagramReceived(b"hi", ("127.0.0.1", 8007))
    assert d.result == b"hi"


def test_udp_client_refuses_oversized() -> None:
    client = UDPEchoClient(Clock(), ("127.0.0.1", 8007), timeout=3)
    d = client.echo(b"x" * 65508)
    with pytest.raises(ClientError, match="larger than a datagram"):
        d.result.raiseException()
    d.addErrback(lambda f: None)


# --- the command against real servers --------------------------------------------


@pytest.fixture
def tcp_server():
    ports = []

    def start(description: str = "tcp:0:interface=127.0.0.1") -> int:
        factory = tracked_echo()
        port = stream_server_endpoint(reactor, description).listen(factory).result
        ports.append((factory, port))
        return port.getHost().port

    yield start
    for factory, port in ports:
        pytest_twisted.blockon(defer.ensureDeferred(stop_tracked(factory, port)))


@pytest.fixture
def udp_server():
    port = reactor.listenUDP(0, UDPEchoProtocol(), interface="127.0.0.1", maxPacketSize=65535)
    yield port.getHost().port
    pytest_twisted.blockon(defer.maybeDeferred(port.stopListening))


@pytest_twisted.ensureDeferred
async def test_command_messages(tcp_server) -> None:
    port = tcp_server()
    run = spawn(["netsuite", "echo", f"127.0.0.1:{port}", "hello", "two words", "ünïcode"])
    assert await run.ended == 0
    assert run.out.decode() == "hello\ntwo words\nünïcode\n"
    assert run.err == b""


@pytest_twisted.ensureDeferred
async def test_command_stdin(tcp_server) -> None:
    port = tcp_server()
    lines = b"".join(b"line %d\n" % i for i in range(2000)) + b"no newline at end"
    run = spawn(["netsuite", "echo", f"localhost:{port}"], stdin=lines)
    assert await run.ended == 0
    assert bytes(run.out) == lines + b"\n"


@pytest_twisted.ensureDeferred
async def test_command_ipv6(tcp_server) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    port = tcp_server(r"tcp6:0:interface=\:\:1")
    run = spawn(["netsuite", "echo", f"[::1]:{port}", "v6"])
    assert await run.ended == 0
    assert run.out == b"v6\n"


@pytest_twisted.ensureDeferred
async def test_command_tls(tcp_server, tmp_path: Path) -> None:
    key, cert = make_certificate(tmp_path)
    port = tcp_server(f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}")
    run = spawn(["netsuite", "echo", "--tls", "--cafile", str(cert), f"localhost:{port}", "secret"])
    assert await run.ended == 0, run.err
    assert run.out == b"secret\n"
    # Without trusting the certificate, TLS fails with one clear line.
    run = spawn(["netsuite", "echo", "--tls", f"localhost:{port}", "secret"])
    assert await run.ended == 1
    assert run.err.startswith(b"netsuite echo: TLS failed with localhost:")
    assert run.err.count(b"\n") == 1


@pytest_twisted.ensureDeferred
async def test_command_udp(udp_server) -> None:
    run = spawn(["netsuite", "echo", "--udp", f"127.0.0.1:{udp_server}", "a", "b" * 60000])
    assert await run.ended == 0, run.err
    assert bytes(run.out) == b"a\n" + b"b" * 60000 + b"\n"


@pytest_twisted.ensureDeferred
async def test_command_udp_stdin(udp_server) -> None:
    run = spawn(["netsuite", "echo", "--udp", f"localhost:{udp_server}"], stdin=b"x\ny\n")
    assert await run.ended == 0, run.err
    assert run.out == b"x\ny\n"


def unused_port(kind: int) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest_twisted.ensureDeferred
async def test_command_udp_no_reply() -> None:
    port = unused_port(socket.SOCK_DGRAM)
    run = spawn(["netsuite", "echo", "--udp", "--timeout", "0.3", f"127.0.0.1:{port}", "anyone?"])
    assert await run.ended == 1
    assert run.err == f"netsuite echo: no reply from 127.0.0.1:{port} within 0.3s\n".encode()


@pytest.mark.parametrize(
    "address, message",
    [
        ("127.0.0.1:{port}", "netsuite echo: cannot connect to 127.0.0.1:{port}: connection refused\n"),
        ("no-such-host.invalid:7", "netsuite echo: cannot resolve host 'no-such-host.invalid'\n"),
        ("127.0.0.1", "argument HOST:PORT: expected HOST:PORT, got '127.0.0.1'\n"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_command_errors(address: str, message: str) -> None:
    port = unused_port(socket.SOCK_STREAM)
    run = spawn(["netsuite", "echo", address.format(port=port), "hi"])
    assert await run.ended != 0
    assert run.err.decode().endswith(message.format(port=port))


# --- the classic blocking servers' shapes -----------------------------------------


@pytest_twisted.ensureDeferred
async def test_server_replying_without_newline(shape_server) -> None:
    """``conn.send(data.strip())``: the bytes are shown, then one line, exit 1; no hang."""
    port, _ = shape_server(NoNewline)
    run = spawn(["netsuite", "echo", "--timeout", "0.5", f"127.0.0.1:{port}", "hello"])
    assert await run.ended == 1
    assert run.out == b"hello\n"
    assert run.err == (
        f"netsuite echo: no reply from 127.0.0.1:{port} within 0.5s when 0 of 1 line had come back, "
        "then b'hello' without its newline\n"
    ).encode()


@pytest_twisted.ensureDeferred
async def test_server_replying_without_newline_raw(shape_server) -> None:
    port, _ = shape_server(NoNewline)
    run = spawn(["netsuite", "echo", "--raw", "--timeout", "0.5", f"127.0.0.1:{port}", "hello"])
    assert await run.ended == 1
    assert run.out == b"hello"
    assert run.err.count(b"\n") == 1


@pytest_twisted.ensureDeferred
async def test_server_closing_after_a_reply_without_newline(shape_server) -> None:
    port, _ = shape_server(NoNewlineThenClose)
    run = spawn(["netsuite", "echo", f"127.0.0.1:{port}", "hello"])
    assert await run.ended == 1
    assert run.out == b"hello\n"
    assert run.err == (
        f"netsuite echo: 127.0.0.1:{port} closed the connection when 0 of 1 line had come back, "
        "then b'hello' without its newline\n"
    ).encode()


@pytest_twisted.ensureDeferred
async def test_server_closing_at_once(shape_server) -> None:
    port, _ = shape_server(CloseAtOnce)
    run = spawn(["netsuite", "echo", f"127.0.0.1:{port}", "hello"])
    assert await run.ended == 1
    assert run.err == f"netsuite echo: 127.0.0.1:{port} closed the connection when 0 of 1 line had come back\n".encode()


@pytest_twisted.ensureDeferred
async def test_server_never_replying(shape_server) -> None:
    port, _ = shape_server(Silent)
    run = spawn(["netsuite", "echo", "--timeout", "0.5", f"127.0.0.1:{port}"], stdin=b"one\ntwo\n")
    assert await run.ended == 1
    assert run.out == b""
    assert run.err == (
        f"netsuite echo: no reply from 127.0.0.1:{port} within 0.5s when 0 of 2 lines had come back\n"
    ).encode()


@pytest_twisted.ensureDeferred
async def test_server_changing_the_reply(shape_server) -> None:
    port, _ = shape_server(Upper)
    run = spawn(["netsuite", "echo", f"127.0.0.1:{port}", "hello"])
    assert await run.ended == 1
    assert run.out == b"HELLO\n"
    assert run.err == b"netsuite echo: the reply is not the echo: expected b'hello\\n', got b'HELLO\\n'\n"


@pytest_twisted.ensureDeferred
async def test_server_greeting_first(shape_server) -> None:
    port, _ = shape_server(Banner)
    run = spawn(["netsuite", "echo", f"127.0.0.1:{port}", "hello"])
    assert await run.ended == 1
    assert run.out == b"Welcome\n"
    assert run.err == b"netsuite echo: the reply is not the echo: expected b'hello\\n', got b'Welcome'\n"


@pytest_twisted.ensureDeferred
async def test_udp_reply_that_is_not_the_echo(udp_upper: int) -> None:
    run = spawn(["netsuite", "echo", "--udp", f"127.0.0.1:{udp_upper}", "hello", "never sent"])
    assert await run.ended == 1
    assert run.out == b"HELLO\n"
    assert run.err == b"netsuite echo: the reply is not the echo: sent b'hello', got b'HELLO'\n"


@pytest_twisted.ensureDeferred
async def test_udp_raw(udp_server) -> None:
    run = spawn(["netsuite", "echo", "--udp", "--raw", f"127.0.0.1:{udp_server}", "a", "b"])
    assert await run.ended == 0, run.err
    assert run.out == b"ab"


@pytest.mark.parametrize("udp", [False, True])
@pytest_twisted.ensureDeferred
async def test_ctrl_c_says_interrupted(shape_server, udp_silent, udp: bool) -> None:
    """SIGINT while waiting for a reply: one line, exit 130, not a misleading error."""
    if udp:
        port, arrived = udp_silent
        run = spawn(["netsuite", "echo", "--udp", "--timeout", "60", f"127.0.0.1:{port}", "hello"])
        await arrived.get()  # sent: now waiting for the reply
    else:
        port, factory = shape_server(Silent)
        run = spawn(["netsuite", "echo", "--timeout", "60", f"127.0.0.1:{port}", "hello"])
        await factory.data.get()
    run.transport.signalProcess("INT")
    assert await run.ended == 130
    assert run.err == b"netsuite echo: interrupted\n"
