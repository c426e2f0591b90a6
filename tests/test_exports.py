"""The public API: what ``suite`` exports, and that it imports without a reactor."""

import subprocess
import sys

import suite


def test_public_names() -> None:
    assert sorted(suite.__all__) == [
        "CannotListen",
        "ChatFactory",
        "ChatProtocol",
        "ChatRoom",
        "ChatServer",
        "EchoFactory",
        "EchoProtocol",
        "EndpointError",
        "FileError",
        "FileFactory",
        "FileProtocol",
        "ListeningService",
        "Storage",
        "StoredFile",
        "UDPEchoProtocol",
        "UDPEchoStats",
        "UDPServerEndpoint",
        "parse_server_line",
        "parse_udp_description",
        "stream_server_endpoint",
    ]
    for name in suite.__all__:
        assert getattr(suite, name).__doc__, f"{name} has no docstring"


def test_importing_installs_no_reactor() -> None:
    code = (
        "import sys, suite, suite.tap, suite.cli, suite.files.client; "
        "print('twisted.internet.reactor' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
