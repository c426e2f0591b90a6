"""``netsuite chat`` and ``netsuite udp-chat``: logic in memory, commands end to end."""

from __future__ import annotations

import io
import re
import socket

import pytest_twisted
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from suite.cli._net import ClientError
from suite.cli.chat import ChatClient
from suite.cli.udpchat import UDPChatter
from tests.cli.shapes import Banner, NoNewlineThenClose
from tests.helpers import spawn


def chat_client() -> tuple[ChatClient, StringTransport, io.StringIO]:
    out = io.StringIO()
    client = ChatClient(out)
    transport = StringTransport()
    client.makeConnection(transport)
    return client, transport, out


def test_client_follows_its_nick() -> None:
    client, transport, out = chat_client()
    client.dataReceived(b"*** welcome: you are guest4; /nick NAME to change it\n")
    assert client.nick == "guest4"
    client.dataReceived(b"*** nick: guest4 is now alice\n*** nick: bob is now carol\n")
    assert client.nick == "alice"
    assert out.getvalue().splitlines()[-1] == "*** nick: bob is now carol"


def test_client_neutralises_hostile_server_output() -> None:
    client, transport, out = chat_client()
    client.dataReceived(b"[lobby] <x> \x1b]0;pwned\x07 \xff\n")
    assert out.getvalue() == "[lobby] <x> \ufffd]0;pwned\ufffd \ufffd\n"


WELCOME = b"*** welcome: you are guest1; /nick NAME to change it, /help for commands\n"


def test_client_leave_sends_quit_once_and_succeeds() -> None:
    client, transport, out = chat_client()
    client.dataReceived(WELCOME)
    client.send(b"hello")
    client.leave()
    client.leave()
    client.send(b"too late")
    assert transport.value() == b"hello\n/quit\n"
    client.connectionLost(Failure(ConnectionDone()))
    assert client.done.result is None


def test_client_tls_failure_after_leave_is_still_an_error() -> None:
    """stdin can end (and /quit be sent) before a TLS handshake fails."""
    from OpenSSL import SSL

    client, transport, out = chat_client()
    client.leave()
    client.connectionLost(Failure(SSL.Error([("SSL routines", "", "certificate verify failed")])))
    failures: list[Failure] = []
    client.done.addErrback(failures.append)
    assert failures[0].check(SSL.Error)


def test_client_server_hangup_is_an_error() -> None:
    client, transport, out = chat_client()
    client.dataReceived(WELCOME)
    client.connectionLost(Failure(ConnectionDone()))
    failures: list[Failure] = []
    client.done.addErrback(failures.append)
    assert failures[0].check(ClientError)
    assert str(failures[0].value) == "connection closed by the server"


def failure_of(client: ChatClient) -> str:
    failures: list[Failure] = []
    client.done.addErrback(failures.append)
    assert failures and failures[0].check(ClientError), failures
    return str(failures[0].value)


def timed_client(timeout: float = 5) -> tuple[ChatClient, StringTransport, io.StringIO, io.StringIO, Clock]:
    out, err, clock = io.StringIO(), io.StringIO(), Clock()
    client = ChatClient(out, err, timeout=timeout, clock=clock, peer="127.0.0.1:9000")
    transport = StringTransport()
    client.makeConnection(transport)
    return client, transport, out, err, clock


def test_refused_nick_is_told_with_the_nick_the_user_got() -> None:
    client, transport, out, err, clock = timed_client()
    client.request_nick("alice")
    client.dataReceived(WELCOME + b"!!! nick-taken: alice is taken\n")
    assert err.getvalue() == (
        "netsuite chat: nick 'alice' refused (nick-taken: alice is taken); you are guest1\n"
    )
    assert out.getvalue().splitlines()[-1] == "!!! nick-taken: alice is taken"
    client.dataReceived(b"!!! nick-invalid: later, typed by the user\n")
    assert err.getvalue().count("\n") == 1  # the user sees the server's own line for their /nick
    assert not clock.getDelayedCalls()  # nothing due: idle is fine


def test_granted_nick_says_nothing_more() -> None:
    client, transport, out, err, clock = timed_client()
    client.request_nick("Alice")
    client.dataReceived(WELCOME + b"*** nick: guest1 is now Alice\n")
    assert client.nick == "Alice" and client.requested_nick is None
    assert err.getvalue() == ""
    assert not clock.getDelayedCalls()


def test_server_without_newline_never_welcomes() -> None:
    """A blocking server's ``conn.send(b"Welcome")``: shown, then one line; no silent exit 0."""
    client, transport, out, err, clock = timed_client()
    client.dataReceived(b"Welcome")
    clock.advance(5)
    assert out.getvalue() == "Welcome\n"
    assert failure_of(client) == (
        "no welcome from 127.0.0.1:9000 within 5s; it sent b'Welcome' without a newline: "
        "is it a netsuite chat server?"
    )
    assert transport.disconnecting


def test_server_closing_without_welcome_after_quit_is_an_error() -> None:
    client, transport, out, err, clock = timed_client()
    client.leave()
    client.dataReceived(b"got it")
    client.connectionLost(Failure(ConnectionDone()))
    assert out.getvalue() == "got it\n"
    assert failure_of(client) == (
        "127.0.0.1:9000 closed the connection without a chat welcome; it sent b'got it' without a newline: "
        "is it a netsuite chat server?"
    )


def test_refusal_before_welcome_is_reported() -> None:
    client, transport, out, err, clock = timed_client()
    client.dataReceived(b"!!! too-many-connections: too many connections (limit 1)\n")
    client.connectionLost(Failure(ConnectionDone()))
    assert failure_of(client) == "refused by 127.0.0.1:9000: too-many-connections: too many connections (limit 1)"


def test_goodbye_is_due_after_quit() -> None:
    client, transport, out, err, clock = timed_client()
    client.dataReceived(WELCOME)
    client.leave()
    clock.advance(5)
    assert failure_of(client) == "no answer from 127.0.0.1:9000 within 5s"


def test_udp_chatter_refuses_oversized_lines() -> None:
    out, err = io.StringIO(), io.StringIO()
    chatter = UDPChatter(("127.0.0.1", 9), out, err)
    sent = []
    chatter.transport = type("T", (), {"write": lambda self, data, addr: sent.append((data, addr))})()
    chatter.send(b"x" * 65507)
    chatter.send(b"x" * 65508)
    assert [len(d) for d, _ in sent] == [65507]
    assert err.getvalue() == "udp-chat: line of 65508 bytes is too long for one datagram (at most 65507); not sent\n"


def test_udp_chatter_prints_sender() -> None:
    out, err = io.StringIO(), io.StringIO()
    chatter = UDPChatter(("::1", 9), out, err)
    chatter.datagramReceived(b"hi\nthere", ("::1", 4000))
    chatter.datagramReceived("ünï".encode(), ("127.0.0.1", 4001))
    assert out.getvalue() == "[[::1]:4000] hi\ufffdthere\n[127.0.0.1:4001] ünï\n"
    assert chatter.max_payload == 65527


# --- end to end ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_chat_command_with_piped_stdin(chat_port: int) -> None:
    from tests.chat.test_loopback import join

    watcher = await join(chat_port, "watcher")
    run = spawn(
        ["netsuite", "chat", f"127.0.0.1:{chat_port}", "--nick", "piper"],
        stdin=b"first line\r\n/me pipes\nlast line without newline",
    )
    assert await run.ended == 0, run.err
    lines = run.out.decode().splitlines()
    assert lines[0].startswith("*** welcome: you are guest")
    assert "[lobby] <piper> first line" in lines
    assert "[lobby] * piper pipes" in lines
    assert "[lobby] <piper> last line without newline" in lines
    assert lines[-1] == "*** bye: goodbye"
    await watcher.wait_for(r"^\*\*\* leave: piper left lobby \(quit\)$")
    assert [line for line in watcher.lines if "piper" in line][-4:] == [
        "[lobby] <piper> first line",
        "[lobby] * piper pipes",
        "[lobby] <piper> last line without newline",
        "*** leave: piper left lobby (quit)",
    ]
    watcher.transport.loseConnection()
    await watcher.lost


@pytest_twisted.ensureDeferred
async def test_chat_command_over_tls(tmp_path) -> None:
    """``--tls`` with ``--cafile``: the session works; without trusting the certificate, one clear line."""
    from twisted.internet import defer

    from suite.chat import ChatFactory
    from tests.helpers import listen_tls, stop_tracked, track

    factory = track(ChatFactory(max_per_ip=None))
    port, cert = await listen_tls(factory, tmp_path)
    try:
        address = f"localhost:{port.getHost().port}"
        run = spawn(["netsuite", "chat", "--tls", "--cafile", str(cert), address, "--nick", "secure"],
                    stdin=b"hello over tls\n")
        assert await run.ended == 0, run.err
        lines = run.out.decode().splitlines()
        assert "[lobby] <secure> hello over tls" in lines
        assert lines[-1] == "*** bye: goodbye"
        run = spawn(["netsuite", "chat", "--tls", address], stdin=b"")
        assert await run.ended == 1, (run.out, run.err)
        assert run.err.startswith(b"netsuite chat: TLS failed with localhost:"), run.err
        assert run.err.count(b"\n") == 1
    finally:
        await defer.ensureDeferred(stop_tracked(factory, port))


@pytest_twisted.ensureDeferred
async def test_chat_command_is_full_duplex(chat_port: int) -> None:
    """Lines from others appear while the user's own input stays open."""
    from tests.chat.test_loopback import join

    run = spawn(["netsuite", "chat", f"127.0.0.1:{chat_port}", "--nick", "typist", "--room", "dev"], stdin=None)
    await run.wait_for(rb"\*\*\* join: typist joined dev")
    other = await join(chat_port, "other")
    other.transport.write(b"/join dev\nare you there?\n")
    await run.wait_for(rb"\[dev\] <other> are you there\?")  # arrived without typist typing
    run.transport.write(b"yes!\n")
    await other.wait_for(r"^\[dev\] <typist> yes!$")
    run.transport.closeStdin()
    assert await run.ended == 0
    other.transport.loseConnection()
    await other.lost


@pytest_twisted.ensureDeferred
async def test_chat_command_reports_server_hangup(chat_port: int) -> None:
    run = spawn(["netsuite", "chat", f"127.0.0.1:{chat_port}"], stdin=None)
    await run.wait_for(rb"joined lobby")
    run.transport.write(b"/nick " + b"x" * 5000 + b"\n")  # over-long: an error, not a hangup
    await run.wait_for(rb"!!! line-too-long")
    run.transport.closeStdin()
    assert await run.ended == 0


@pytest_twisted.ensureDeferred
async def test_chat_command_tells_a_refused_nick(chat_port: int) -> None:
    from tests.chat.test_loopback import join

    alice = await join(chat_port, "alice")
    try:
        run = spawn(["netsuite", "chat", f"127.0.0.1:{chat_port}", "--nick", "alice"], stdin=b"hi\n")
        assert await run.ended == 0, run.err
        guest = re.search(rb"you are (guest\d+)", run.out).group(1).decode()
        assert run.err.decode() == (
            f"netsuite chat: nick 'alice' refused (nick-taken: the nickname alice is taken); you are {guest}\n"
        )
        assert f"[lobby] <{guest}> hi" in run.out.decode()
    finally:
        alice.transport.loseConnection()
        await alice.lost


@pytest_twisted.ensureDeferred
async def test_chat_command_against_a_server_without_newlines(shape_server) -> None:
    """A blocking server that greets with ``conn.send(b"Welcome")``: shown, one line, exit 1."""
    port, _ = shape_server(Banner)
    run = spawn(["netsuite", "chat", "--timeout", "0.5", f"127.0.0.1:{port}"], stdin=None)
    assert await run.ended == 1
    assert run.out == b"Welcome\n"
    assert run.err == (
        f"netsuite chat: no welcome from 127.0.0.1:{port} within 0.5s; it sent b'Welcome' without a newline: "
        "is it a netsuite chat server?\n"
    ).encode()


@pytest_twisted.ensureDeferred
async def test_chat_command_against_an_echo_without_newline(shape_server) -> None:
    """``conn.send(data.strip())`` and then the piped input ends: exit 1, not a silent 0."""
    port, _ = shape_server(NoNewlineThenClose)
    run = spawn(["netsuite", "chat", f"127.0.0.1:{port}"], stdin=b"hello\n")
    assert await run.ended == 1
    assert run.out.startswith(b"hello")
    # "hello\n/quit\n" may arrive in one read or two: the last piece differs.
    assert re.fullmatch(
        rb"netsuite chat: 127\.0\.0\.1:%d closed the connection without a chat welcome; "
        rb"it sent b'[^']+' without a newline: is it a netsuite chat server\?\n" % port,
        run.err,
    ), run.err


@pytest_twisted.ensureDeferred
async def test_chat_command_ctrl_c(chat_port: int) -> None:
    run = spawn(["netsuite", "chat", f"127.0.0.1:{chat_port}"], stdin=None)
    await run.wait_for(rb"joined lobby")
    run.transport.signalProcess("INT")
    assert await run.ended == 130
    assert run.err == b"netsuite chat: interrupted\n"


@pytest_twisted.ensureDeferred
async def test_udp_chat_ctrl_c() -> None:
    run = spawn(["netsuite", "udp-chat", "--bind", str(free_udp_port()), "--peer", "127.0.0.1:9"], stdin=None)
    await run.wait_for(rb"udp-chat: listening on")
    run.transport.signalProcess("INT")
    assert await run.ended == 130
    assert run.err.endswith(b"netsuite udp-chat: interrupted\n")


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest_twisted.ensureDeferred
async def test_udp_chat_pair_talks_both_ways() -> None:
    a_port, b_port = free_udp_port(), free_udp_port()
    a = spawn(["netsuite", "udp-chat", "--bind", str(a_port), "--peer", f"127.0.0.1:{b_port}"], stdin=None)
    b = spawn(["netsuite", "udp-chat", "--bind", f"127.0.0.1:{b_port}", "--peer", f"localhost:{a_port}"], stdin=None)
    await a.wait_for(rb"udp-chat: listening on 127\.0\.0\.1:\d+")
    await b.wait_for(rb"udp-chat: listening on 127\.0\.0\.1:\d+")
    a.transport.write("hello B, ça va?\n".encode())
    await b.wait_for(f"\\[127.0.0.1:{a_port}\\] hello B, ça va\\?".encode())
    b.transport.write(b"fine, A\n")
    await a.wait_for(f"\\[127.0.0.1:{b_port}\\] fine, A".encode())
    a.transport.write(b"y" * 70000 + b"\n")
    await a.wait_for(rb"too long for one datagram")
    a.transport.closeStdin()
    b.transport.closeStdin()
    assert (await a.ended, await b.ended) == (0, 0)
