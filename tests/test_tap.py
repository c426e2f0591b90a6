"""The twistd plugin: discovery, options, service tree."""

import ast
import sys
from pathlib import Path

import pytest
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.python import usage

from suite import tap
from suite.chat import ChatFactory
from suite.echo import EchoFactory, UDPEchoProtocol
from suite.endpoints import ListeningService
from suite.files import FileFactory

ROOT = Path(__file__).resolve().parent.parent


def parse(*args: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(args))
    return options


@pytest.fixture
def build(tmp_path: Path):
    """Parse options and build the service tree, with storage in a temporary directory."""

    def build(*args: str) -> list[ListeningService]:
        if "--storage" not in args:
            args = (*args, "--storage", str(tmp_path / "files"))
        return [s for s in tap.makeService(parse(*args)) if isinstance(s, ListeningService)]

    return build


def test_plugin_is_discoverable() -> None:
    makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
    assert "netsuite" in makers
    assert makers["netsuite"].module == "suite.tap"


def test_plugin_file_is_light() -> None:
    source = (ROOT / "twisted/plugins/netsuite_plugin.py").read_text()
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    assert imported == ["twisted.application.service"]
    assert not (ROOT / "twisted/__init__.py").exists()
    assert not (ROOT / "twisted/plugins/__init__.py").exists()


def test_defaults_are_loopback_and_mnemonic(build) -> None:
    options = parse()
    assert options["mode"] == "all"
    assert options["echo-listen"] == "tcp:8007:interface=127.0.0.1"
    assert options["udp-echo-listen"] == "udp:8007:interface=127.0.0.1"
    assert options["chat-listen"] == "tcp:8023:interface=127.0.0.1"
    assert options["upload-listen"] == "tcp:8021:interface=127.0.0.1"
    assert options["web-listen"] == "tcp:8080:interface=127.0.0.1"
    assert options["irc-listen"] == "tcp:6667:interface=127.0.0.1"
    assert [s.name for s in build()] == ["echo", "udp-echo", "chat", "irc", "upload", "web"]


def test_parsing_has_no_side_effects(tmp_path: Path) -> None:
    parse("--storage", str(tmp_path / "not-yet"))
    assert not (tmp_path / "not-yet").exists()


def test_single_mode_with_listen(build) -> None:
    (service,) = build("--mode", "echo", "--listen", r"tcp6:0:interface=\:\:1")
    assert service.name == "echo"
    assert service.description == r"tcp6:0:interface=\:\:1"
    assert isinstance(service.target, EchoFactory)


def test_unknown_mode_lists_modes() -> None:
    with pytest.raises(usage.UsageError, match="unknown mode 'chatty'; choose one of: echo, udp-echo, chat, irc, upload, web, all"):
        parse("--mode", "chatty")


def test_listen_needs_single_mode() -> None:
    with pytest.raises(usage.UsageError, match="--echo-listen, --udp-echo-listen, --chat-listen, --irc-listen, --upload-listen"):
        parse("--listen", "tcp:1")


def test_per_service_listen_in_all_mode(build) -> None:
    services = build(
        "--echo-listen", "tcp:0", "--udp-echo-listen", "udp:0:interface=::1",
        "--chat-listen", "unix:/tmp/c", "--irc-listen", "tcp:0:interface=127.0.0.1", "--upload-listen", "tcp6:0",
        "--web-listen", "tcp:0",
    )
    assert [s.description for s in services] == [
        "tcp:0", "udp:0:interface=::1", "unix:/tmp/c", "tcp:0:interface=127.0.0.1", "tcp6:0", "tcp:0",
    ]


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["--mode", "udp-echo", "--listen", "tcp:0"], "give it a udp:PORT"),
        (["--mode", "echo", "--listen", "udp:0"], "stream service"),
        (["--mode", "echo", "--listen", "tcp:banana"], "bad endpoint description"),
        (["--udp-echo-listen", "udp:0:interface=localhost"], "interface must be"),
        (["--echo-max-connections", "-1"], "zero or more"),
        (["--echo-idle-timeout", "soon"], "expected a float"),
        (["--echo-max-buffer", "0"], "at least 1 byte"),
        (["--echo-max-buffer", "big"], "expected a size"),
        (["--udp-burst", "0"], "at least 1"),
        (["--udp-deny-port", "70000"], "port number"),
        (["--chat-flood-burst", "0"], "at least 1"),
        (["--chat-per-ip-exempt", "localhost"], "not an IP address"),
        (["--history", "-3"], "zero or more"),
        (["--max-file-size", "lots"], "expected a size"),
        (["--token-file", "/nonexistent/token"], "No such file"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], complaint: str) -> None:
    with pytest.raises(usage.UsageError, match=complaint):
        parse(*args)


def test_empty_token_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  \n")
    (tmp_path / "token").chmod(0o600)  # a token file others can read is refused
    with pytest.raises(usage.UsageError, match="is empty"):
        parse("--token-file", str(tmp_path / "token"))


def test_limit_flags_reach_the_services(build) -> None:
    services = build(
        "--echo-max-connections", "5", "--echo-idle-timeout", "0", "--echo-max-buffer", "1M",
        "--udp-rate", "7", "--udp-burst", "3", "--udp-global-rate", "0",
        "--udp-deny-port", "9000,9001", "--udp-deny-port", "9002",
    )
    echo, udp = services[0].target, services[1].target
    assert isinstance(echo, EchoFactory) and isinstance(udp, UDPEchoProtocol)
    assert echo.admission.max_connections == 5
    assert echo.idle_timeout is None
    assert echo.max_buffer == 1 << 20
    assert (udp.per_source.rate, udp.per_source.burst) == (7, 3)
    assert udp.global_limit.rate is None
    assert udp.deny_ports == {9000, 9001, 9002}


def test_chat_flags_reach_the_factory(build) -> None:
    (service,) = build(
        "--mode", "chat", "--history", "5", "--chat-max-line", "100",
        "--chat-flood-rate", "0", "--chat-flood-burst", "7", "--chat-max-pending", "0",
        "--chat-max-connections", "9", "--chat-max-per-ip", "3",
        "--chat-per-ip-exempt", "127.0.0.1,::1", "--chat-idle-timeout", "60",
    )
    chat = service.target
    assert isinstance(chat, ChatFactory)
    assert chat.server.history == 5
    assert (chat.max_line, chat.flood_rate, chat.flood_burst, chat.max_pending) == (100, None, 7, None)
    assert (chat.admission.max_connections, chat.admission.max_per_ip) == (9, 3)
    assert chat.admission.exempt == {"127.0.0.1", "::1"}
    assert chat.idle_timeout == 60


def test_chat_line_limit_can_be_off(build) -> None:
    (service,) = build("--mode", "chat", "--chat-max-line", "0")
    assert service.target.max_line == sys.maxsize


def test_chat_defaults(build) -> None:
    (service,) = build("--mode", "chat")
    chat = service.target
    assert chat.server.history == 20
    assert (chat.max_line, chat.max_pending, chat.idle_timeout) == (2048, 1 << 20, None)
    assert chat.flood_rate == 10 and chat.flood_burst == 50


def test_upload_flags_reach_the_factory(build, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("s3cret\n")
    (tmp_path / "token").chmod(0o600)  # a token file others can read is refused
    (service,) = build(
        "--mode", "upload", "--storage", str(tmp_path / "store"), "--max-file-size", "2G",
        "--quota", "10GiB", "--min-free", "1M", "--resume-ttl", "60", "--token-file", str(tmp_path / "token"),
        "--upload-max-connections", "4", "--max-transfers", "2", "--upload-idle-timeout", "0",
        "--transfer-timeout", "9",
    )
    files = service.target
    assert isinstance(files, FileFactory)
    storage = files.storage
    assert storage.root == tmp_path / "store" and storage.root.is_dir()
    assert (storage.max_file_size, storage.quota, storage.min_free, storage.resume_ttl) == (2 << 30, 10 << 30, 1 << 20, 60)
    assert files.token == b"s3cret"
    assert (files.admission.max_connections, files.max_transfers, files.idle_timeout, files.transfer_timeout) == (4, 2, None, 9)


def test_upload_defaults(build) -> None:
    (service,) = build("--mode", "upload")
    files = service.target
    assert files.token is None
    assert files.storage.max_file_size == 4 << 30 and files.storage.quota is None
    assert (files.max_transfers, files.transfer_timeout) == (16, 60)


def test_zero_disables_connection_cap(build) -> None:
    (service,) = build("--mode", "echo", "--echo-max-connections", "0")
    assert service.target.admission.max_connections is None


def test_make_service_tree(build) -> None:
    services = build()
    assert [s.name for s in services] == ["echo", "udp-echo", "chat", "irc", "upload", "web"]
    assert all(isinstance(s, ListeningService) for s in services)


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["--workers", "2"], "which chat, irc, upload, web does not allow: it keeps its state in one process"),
        (["--workers", "2", "--mode", "chat"], "which chat does not allow"),
        (["--workers", "2", "--mode", "echo,udp-echo,upload"], "which upload does not allow"),
        (["--workers", "2", "--mode", "echo", "--listen", "unix:/tmp/x"], "needs a tcp:, tcp6: or udp: address"),
        (["--workers", "0"], "at least 1"),
    ],
)
def test_workers_usage_errors(args: list[str], complaint: str) -> None:
    with pytest.raises(usage.UsageError, match=complaint):
        parse(*args)


def test_workers_get_the_same_options(tmp_path: Path) -> None:
    config = tmp_path / "netsuite.toml"
    config.write_text("echo-idle-timeout = 30\n")
    options = parse("--mode", "echo", "--workers", "3", "--echo-max-connections", "7", "--reuse-port",
                    "--udp-deny-port", "9000", "--listen", "tcp:0:interface=127.0.0.1", "--config", str(config))
    assert options.arguments() == [
        "--mode=echo", "--workers=3", "--echo-max-connections=7", "--reuse-port",
        "--udp-deny-port=9000", "--listen=tcp:0:interface=127.0.0.1", f"--config={config}",
    ]
    again = parse(*options.arguments())
    assert again["echo-max-connections"] == 7 and again["udp-deny-port"] == [9000]
    assert again["echo-idle-timeout"] == 30 and again["reuse-port"]


def test_several_modes(build) -> None:
    assert [s.name for s in build("--mode", "upload, chat,upload")] == ["upload", "chat"]
    assert parse("--mode", "chat,all")["mode"] == "all"


def test_help_lists_every_service() -> None:
    from suite.registry import SERVICES

    text = str(tap.Options())
    for service in SERVICES:
        assert f"--{service.name}-listen" in text
        assert service.summary in tap.Options.longdesc


def test_plugin_description_names_every_service() -> None:
    from suite.registry import SERVICES

    (maker,) = [maker for maker in getPlugins(IServiceMaker) if maker.tapname == "netsuite"]
    description = maker.description
    for service in SERVICES:
        assert service.summary in description, f"the plugin description does not mention {service.name}"
