"""The config file (--config) and live reload (SIGHUP)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python import usage

from suite import tap
from suite.config import ConfigReloader
from tests.chat.test_loopback import close_all, join
from tests.helpers import listening_port, twistd


def parse(*args: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(args))
    return options


def test_file_values_and_the_command_line_wins(tmp_path: Path) -> None:
    config = tmp_path / "netsuite.toml"
    config.write_text(
        'mode = "chat, upload"\n'
        "chat-max-line = 4096\n"
        'chat-flood-rate = "2.5"\n'
        'quota = "10G"\n'
        'chat-per-ip-exempt = ["10.0.0.1", "::1"]\n'
        "udp-deny-port = [9000, 9001]\n"
        "reuse-port = false\n"
        "history = 7\n"
    )
    options = parse("--config", str(config), "--history", "3")
    assert options["mode"] == "chat,upload"
    assert [s.name for s in options.selected_modes()] == ["chat", "upload"]
    assert options["chat-max-line"] == 4096
    assert options["chat-flood-rate"] == 2.5
    assert options["quota"] == 10 << 30
    assert options["chat-per-ip-exempt"] == ["10.0.0.1", "::1"]
    assert options["udp-deny-port"] == [9000, 9001]
    assert options["history"] == 3  # the command line wins


@pytest.mark.parametrize(
    "content, complaint",
    [
        ("chat-max-lines = 5\n", "unknown key 'chat-max-lines'"),
        ("config = 'other.toml'\n", "unknown key 'config'"),
        ("chat-max-line = -5\n", "--chat-max-line: expected zero or more"),
        ("chat-max-line = [1, 2]\n", "chat-max-line takes one value"),
        ("reuse-port = 'yes'\n", "reuse-port must be true or false"),
        ("mode = 'chatty'\n", "unknown mode 'chatty'"),
        ("chat-max-line = \n", "is not valid TOML"),
        ("echo-listen = 'udp:7'\n", "echo is a stream service"),
    ],
)
def test_bad_files_are_usage_errors_naming_the_key(tmp_path: Path, content: str, complaint: str) -> None:
    config = tmp_path / "netsuite.toml"
    config.write_text(content)
    with pytest.raises(usage.UsageError, match=complaint):
        parse("--config", str(config))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(usage.UsageError, match="--config: No such file or directory"):
        parse("--config", str(tmp_path / "nope.toml"))


def test_reload_applies_limits_to_open_connections(tmp_path: Path, caplog_events: list[dict]) -> None:
    config = tmp_path / "netsuite.toml"
    config.write_text("chat-max-line = 100\nchat-flood-rate = 0\nhistory = 5\n")
    options = parse("--mode", "chat", "--config", str(config), "--chat-listen", "tcp:0:interface=127.0.0.1")
    clock = Clock()
    top = tap.makeService(options, reactor=clock)
    reloader = top.getServiceNamed("config")
    assert isinstance(reloader, ConfigReloader)
    factory = top.getServiceNamed("chat").target
    address = IPv4Address("TCP", "192.0.2.1", 1000)
    user = factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    user.makeConnection(transport)
    user.dataReceived(b"x" * 60 + b"\n")
    assert b"line-too-long" not in transport.value()

    config.write_text("chat-max-line = 50\nchat-max-per-ip = 1\nhistory = 9\n")
    assert reloader.reload()
    transport.clear()
    user.dataReceived(b"x" * 60 + b"\n")
    assert b"!!! line-too-long: line longer than 50 bytes rejected" in transport.value()
    assert factory.admission.max_per_ip == 1 and factory.flood_rate == 10  # back to the default
    assert not transport.disconnecting, "a reload disconnects nobody"
    assert factory.server.history == 5, "history is fixed at start"
    messages = [e.get("log_format", "") for e in caplog_events]
    assert any("--{option} cannot change while running" in m for m in messages)

    # A broken file is one error, and the running configuration stays.
    config.write_text("chat-max-line = 'lots'\n")
    caplog_events.clear()
    assert not reloader.reload()
    errors = [e for e in caplog_events if "reload refused" in e.get("log_format", "")]
    assert len(errors) == 1 and "--chat-max-line" in errors[0]["error"]
    assert factory.max_line == 50


@pytest.fixture
def runs():
    started = []
    yield started
    for run in started:
        if not run.ended.called:
            run.terminate()
            pytest_twisted.blockon(run.ended)


@pytest_twisted.ensureDeferred
async def test_sighup_reload_end_to_end(runs, tmp_path: Path) -> None:
    """A connected client's limits change under it on SIGHUP; nobody is disconnected."""
    config = tmp_path / "netsuite.toml"
    config.write_text('chat-listen = "tcp:0:interface=127.0.0.1"\nchat-max-line = 200\n')
    server = twistd("--mode", "chat", "--config", str(config), cwd=tmp_path)
    runs.append(server)
    port = await listening_port(server, "chat")
    alice = await join(port, "alice")
    alice.transport.write(b"y" * 100 + b"\n")
    await alice.wait_for(r"^\[lobby\] <alice> y{100}$")

    config.write_text('chat-listen = "tcp:0:interface=127.0.0.1"\nchat-max-line = 50\n')
    reloaded = server.wait_for(rb"configuration reloaded")
    server.transport.signalProcess(signal.SIGHUP)
    await reloaded
    alice.transport.write(b"z" * 100 + b"\n")
    await alice.wait_for(r"^!!! line-too-long: line longer than 50 bytes rejected$")
    alice.transport.write(b"short\n")
    await alice.wait_for(r"^\[lobby\] <alice> short$")

    config.write_text("chat-max-line = [")
    refused = server.wait_for(rb"reload refused, the running configuration stays: .*not valid TOML")
    server.transport.signalProcess(signal.SIGHUP)
    await refused
    alice.transport.write(b"w" * 60 + b"\n")
    await alice.wait_for(r"^!!! line-too-long: line longer than 50 bytes rejected$")
    await close_all(alice)


def test_a_file_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "netsuite.toml"
    config.write_bytes(b"\xff\xfe = 1\n")
    with pytest.raises(usage.UsageError, match="is not valid TOML"):
        parse("--config", str(config))


def test_a_file_value_is_checked_even_when_the_command_line_wins(tmp_path: Path) -> None:
    config = tmp_path / "netsuite.toml"
    config.write_text('mode = "chat,bogus"\n')
    with pytest.raises(usage.UsageError, match="unknown mode 'bogus'"):
        parse("--config", str(config), "--mode", "chat")
