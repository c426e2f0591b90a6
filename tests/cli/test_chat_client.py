"""``netsuite chat`` and ``netsuite udp-chat``: logic in memory, commands end to end."""

from __future__ import annotations

import io
import socket

import pytest_twisted
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from suite.cli._net import ClientError
from suite.cli.chat import ChatClient
from suite.cli.udpchat import UDPChatter
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


def test_client_leave_sends_quit_once_and_succeeds() -> None:
    client, transport, out = chat_client()
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
    client.connectionLost(Failure(ConnectionDone()))
    failures: list[Failure] = []
    client.done.addErrback(failures.append)
    assert failures[0].check(ClientError)
    assert str(failures[0].value) == "connection closed by the server"


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
