"""--mode web and --metrics-listen through twistd, and the web service's options."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, reactor
from twisted.python import usage

from suite.tap import Options
from tests.helpers import BIN, connect_collector, listening_port, spawn, twistd
from tests.web.test_loopback import CURL, run

LOCAL = "tcp:0:interface=127.0.0.1"


def samples(text: bytes) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


@pytest_twisted.ensureDeferred
async def test_mode_web_shares_storage_with_upload(tmp_path: Path) -> None:
    server = twistd("--mode", "upload,web", "--upload-listen", LOCAL, "--web-listen", LOCAL,
                    "--storage", str(tmp_path / "files"), "--min-free", "0", cwd=tmp_path)
    try:
        web = await listening_port(server, "web")
        upload = await listening_port(server, "upload")
        source = tmp_path / "both.bin"
        source.write_bytes(os.urandom(1_000_000))
        sent = spawn(["netsuite", "upload", f"127.0.0.1:{upload}", str(source)])
        assert await sent.ended == 0, sent.err
        code, out = await run([*CURL, "-o", str(tmp_path / "back.bin"), f"http://127.0.0.1:{web}/files/both.bin"])
        assert code == 0, out
        assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
        code, out = await run([*CURL, f"http://127.0.0.1:{web}/healthz"])
        assert code == 0 and b'"ok"' in out
        code, out = await run([*CURL, f"http://127.0.0.1:{web}/metrics"])
        found = samples(out)
        assert found[("netsuite_listener_up", (("service", "upload"),))] == 1
        assert found[("netsuite_file_bytes_served_total", (("service", "web"),))] == 1_000_000
        assert ("netsuite_connections_open", (("service", "upload"),)) in found
    finally:
        server.terminate()
        await server.ended


@pytest_twisted.ensureDeferred
async def test_metrics_listen_next_to_echo(tmp_path: Path) -> None:
    server = twistd("--mode", "echo", "--listen", LOCAL, "--metrics-listen", LOCAL, cwd=tmp_path)
    try:
        echo = await listening_port(server, "echo")
        metrics = await listening_port(server, "metrics")
        client = await connect_collector(echo)
        client.transport.write(b"hello\n")
        await client.wait_for(6)
        client.transport.loseConnection()
        await client.lost
        code, out = await run([*CURL, f"http://127.0.0.1:{metrics}/metrics"])
        assert code == 0, out
        found = samples(out)
        assert found[("netsuite_connections_accepted_total", (("service", "echo"),))] == 1
        assert found[("netsuite_listener_up", (("service", "echo"),))] == 1
        code, out = await run([*CURL, f"http://127.0.0.1:{metrics}/healthz"])
        assert code == 0 and b'"echo": true' in out
        code, out = await run(["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                               f"http://127.0.0.1:{metrics}/files/"])
        assert out == b"404"  # just the two routes
    finally:
        server.terminate()
        await server.ended


@pytest_twisted.ensureDeferred
async def test_per_ip_cap_answers_503(tmp_path: Path) -> None:
    server = twistd("--mode", "web", "--listen", LOCAL, "--web-max-per-ip", "2", "--storage", str(tmp_path / "f"),
                    cwd=tmp_path)
    try:
        port = await listening_port(server, "web")
        held = [await connect_collector(port) for _ in range(2)]
        third = await connect_collector(port)
        await third.lost.addTimeout(10, reactor)
        assert third.received.startswith(b"HTTP/1.1 503 ")
        assert b'"too-many-connections"' in third.received and b"Retry-After: 5" in third.received
        for client in held:
            client.transport.loseConnection()
            await client.lost
        await server.wait_for(rb"web: refused 127\.0\.0\.1:\d+: too many connections from 127\.0\.0\.1")
    finally:
        server.terminate()
        await server.ended


def test_options() -> None:
    options = Options()
    options.parseOptions(["--mode", "web", "--web-cors-origin", "https://app.example:8443"])
    assert options["web-cors-origin"] == "https://app.example:8443"
    for bad in (["--web-cors-origin", "app.example"], ["--web-cors-origin", "https://a/b"],
                ["--metrics-listen", "udp:9108"]):
        with pytest.raises(usage.UsageError):
            Options().parseOptions(["--mode", "web", *bad])
