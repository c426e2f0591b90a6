"""The web service on real loopback sockets, driven by real curl, wget and tuspy."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, threads

from suite.files.storage import Storage
from suite.web import WebSite
from tests.helpers import spawn, stop_tracked, track

pytestmark = pytest.mark.skipif(not (shutil.which("curl") and shutil.which("wget")), reason="needs curl and wget")


@pytest.fixture
def web(tmp_path: Path):
    """Start a web server on 127.0.0.1:0 over a directory: returns (site, base URL)."""
    started = []

    def start(**kwargs: Any) -> tuple[WebSite, str]:
        storage_options = {k: kwargs.pop(k) for k in ("max_file_size", "quota") if k in kwargs}
        storage = Storage(tmp_path / "store", min_free=0, **storage_options)
        site = track(WebSite(storage, **kwargs))
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        started.append((site, port, storage))
        return site, f"http://127.0.0.1:{port.getHost().port}"

    yield start
    for site, port, storage in started:
        for channel in list(site.open):  # keep-alive connections of Python clients
            channel.transport.loseConnection()
        pytest_twisted.blockon(defer.ensureDeferred(stop_tracked(site, port)))
        close = getattr(storage, "close", None)
        if close is not None:
            pytest_twisted.blockon(defer.ensureDeferred(close()))


def make_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def run(args: list[str], cwd: Path | None = None) -> tuple[int, bytes]:
    """Run a program to its end: (exit status, stdout + stderr)."""
    process = spawn(args, cwd=cwd)
    code = await process.ended
    return code, bytes(process.out + process.err)


CURL = ["/usr/bin/curl", "--silent", "--show-error", "--fail"]


@pytest_twisted.ensureDeferred
async def test_curl_put_get_and_resume_after_a_cut(web, tmp_path: Path) -> None:
    site, base = web()
    source = make_file(tmp_path / "data.bin", 3_000_017)
    code, out = await run([*CURL, "-T", str(source), f"{base}/files/data.bin"])
    assert code == 0, out
    assert digest(source) in out.decode()
    # A download cut after 1 MB (the reader goes away), then resumed with -C -.
    target = tmp_path / "copy.bin"
    code, out = await run(["/bin/sh", "-c", f"curl -s {base}/files/data.bin | head -c 1000000 > {target}"])
    assert target.stat().st_size == 1_000_000
    code, out = await run([*CURL, "-C", "-", "-o", str(target), f"{base}/files/data.bin"])
    assert code == 0, out
    assert digest(target) == digest(source)
    # An existing name is refused unless the request says to replace it.
    code, out = await run(["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-T", str(source),
                           f"{base}/files/data.bin"])
    assert out == b"409"
    code, out = await run(["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "If-Match: *",
                           "-T", str(source), f"{base}/files/data.bin"])
    assert out == b"204"


@pytest_twisted.ensureDeferred
async def test_wget_download_and_resume_after_a_cut(web, tmp_path: Path) -> None:
    site, base = web()
    source = make_file(tmp_path / "big.bin", 2_500_000)
    code, out = await run([*CURL, "-T", str(source), f"{base}/files/big.bin"])
    assert code == 0, out
    into = tmp_path / "wget"
    into.mkdir()
    code, out = await run(["/bin/sh", "-c", f"wget -q -O - {base}/files/big.bin | head -c 700000 > big.bin"], cwd=into)
    assert (into / "big.bin").stat().st_size == 700_000
    code, out = await run(["/usr/bin/wget", "-c", "--no-verbose", f"{base}/files/big.bin"], cwd=into)
    assert code == 0, out
    assert digest(into / "big.bin") == digest(source)
    assert b"206" in out or b"big.bin" in out


@pytest_twisted.ensureDeferred
async def test_too_large_is_refused_before_the_body_over_a_socket(web, tmp_path: Path) -> None:
    site, base = web(max_file_size=1_000_000)
    source = make_file(tmp_path / "huge.bin", 3_000_000)
    code, out = await run(["/usr/bin/curl", "-s", "-w", "\n%{http_code}", "-T", str(source), f"{base}/files/huge.bin"])
    assert out.endswith(b"413"), out
    assert b'"too-large"' in out
    assert site.counters.bytes_in < 100_000  # the body was never read


@pytest_twisted.ensureDeferred
async def test_tuspy_upload_cut_in_the_middle_and_resumed(web, tmp_path: Path) -> None:
    from tusclient import client as tus

    site, base = web()
    source = make_file(tmp_path / "resumable.bin", 4_000_000)
    cut_after = 1_500_000
    channels: list[Any] = []
    base_channel = site.protocol

    class CuttingChannel(base_channel):  # type: ignore[misc, valid-type]
        """Cuts the first connection that sends more than cut_after bytes (the network failing)."""

        def dataReceived(self, data: bytes) -> None:
            super().dataReceived(data)
            if not channels and site.counters.bytes_in > cut_after:
                channels.append(self)
                self.transport.abortConnection()

    site.protocol = CuttingChannel

    def first_attempt() -> str:
        uploader = tus.TusClient(f"{base}/uploads/").uploader(
            str(source), chunk_size=8 << 20, metadata={"filename": "resumable.bin"}, retries=0
        )
        try:
            uploader.upload()
        except Exception:  # the cut: tuspy reports a communication error
            pass
        return uploader.url

    url = await threads.deferToThread(first_attempt)
    assert channels, "the upload was not cut"
    head = await threads.deferToThread(
        lambda: __import__("requests").head(url, headers={"Tus-Resumable": "1.0.0"}, timeout=10)
    )
    offset = int(head.headers["Upload-Offset"])
    assert 0 < offset < source.stat().st_size

    def resume() -> int:
        uploader = tus.TusClient(f"{base}/uploads/").uploader(str(source), url=url, chunk_size=8 << 20)
        resumed_at = uploader.offset
        uploader.upload()
        return resumed_at

    resumed_at = await threads.deferToThread(resume)
    assert resumed_at == offset  # tuspy asked where to go on and sent only the rest
    code, out = await run([*CURL, "-o", str(tmp_path / "back.bin"), f"{base}/files/resumable.bin"])
    assert code == 0, out
    assert digest(tmp_path / "back.bin") == digest(source)


@pytest_twisted.ensureDeferred
async def test_metrics_and_health_over_a_socket(web, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.twisted import MetricsResource

    from suite.metrics import HealthResource, SuiteMetrics, guarded

    site, base = web(token=b"tok")
    metrics = SuiteMetrics()
    listener = type("Listener", (), {"port": object(), "running": True})()
    metrics.watch("web", site, listener)
    site.mount(b"metrics", guarded(MetricsResource(metrics.registry), site.token))
    site.mount(b"healthz", HealthResource(metrics))
    source = make_file(tmp_path / "m.bin", 100_000)
    auth = ["-H", "Authorization: Bearer tok"]
    code, out = await run([*CURL, *auth, "-T", str(source), f"{base}/files/m.bin"])
    assert code == 0, out
    code, out = await run(["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{base}/metrics"])
    assert out == b"401"
    code, text = await run(["/usr/bin/curl", "-s", *auth, f"{base}/metrics"])
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }
    assert found[("netsuite_files_stored_total", (("service", "web"),))] == 1
    assert found[("netsuite_file_bytes_stored_total", (("service", "web"),))] == 100_000
    assert found[("netsuite_bytes_received_total", (("service", "web"),))] > 100_000
    assert found[("netsuite_connections_accepted_total", (("service", "web"),))] >= 2
    assert found[("netsuite_listener_up", (("service", "web"),))] == 1
    code, out = await run(["/usr/bin/curl", "-s", "-w", "\n%{http_code}", f"{base}/healthz"])  # no token needed
    assert out.endswith(b"\n200") and b'"ok"' in out
    listener.port = None
    code, out = await run(["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{base}/healthz"])
    assert out == b"503"


@pytest_twisted.ensureDeferred
async def test_chat_mounted_at_chat_over_a_websocket(web) -> None:
    from twisted.web.websocket import WebSocketClientEndpoint

    from suite.chat import ChatServer
    from suite.chat.websocket import chat_page_resource, chat_websocket_resource
    from tests.chat.test_websocket import WSClient

    site, base = web()
    site.mount_chat(chat_websocket_resource(ChatServer(), max_per_ip=None), chat_page_resource())
    code, page = await run([*CURL, f"{base}/chat.html"])
    assert code == 0 and b"<html" in page.lower()
    endpoint = WebSocketClientEndpoint.new(reactor, f"{base}/chat")
    client = await endpoint.connect(type("F", (), {"buildProtocol": lambda self, url: WSClient()})())
    await client.wait(type="joined", room="lobby")
    client.send(type="say", text="hello from the web service")
    await client.wait(type="message", text="hello from the web service")
    assert site.counters.open == 1
    client.transport.loseConnection()
    await client.lost
    for proto in list(site.open):
        await proto.closed.addTimeout(10, reactor)
    assert site.counters.open == 0  # the upgraded connection gave its place back


async def raw_client(base: str, data: bytes, *, read: bool = True) -> Any:
    """A raw TCP client that sends ``data`` (and stops reading when ``read`` is false)."""
    from tests.helpers import connect_collector

    client = await connect_collector(int(base.rsplit(":", 1)[1]))
    if not read:
        client.transport.pauseProducing()
    client.transport.write(data)
    return client


@pytest_twisted.ensureDeferred
async def test_slow_headers_and_slow_bodies_are_cut(web, tmp_path: Path) -> None:
    site, base = web(header_timeout=0.5, idle_timeout=1.0)
    slow = await raw_client(base, b"GET /files/ HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
    await slow.lost.addTimeout(10, reactor)
    assert slow.received.startswith(b"HTTP/1.1 408 ") and b'"timeout"' in slow.received
    body = await raw_client(base, b"PUT /files/slow.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
    await body.lost.addTimeout(10, reactor)
    assert b" 408 " in body.received.split(b"\r\n")[0]
    small = make_file(tmp_path / "small.bin", 10)
    code, out = await run([*CURL, "-T", str(small), f"{base}/files/slow.bin"])  # not left busy, nothing stored
    assert code == 0, out


@pytest_twisted.ensureDeferred
async def test_a_download_nobody_reads_is_cut(web, tmp_path: Path) -> None:
    site, base = web(send_timeout=0.5)
    source = make_file(tmp_path / "unread.bin", 32 << 20)
    code, out = await run([*CURL, "-T", str(source), f"{base}/files/unread.bin"])
    assert code == 0, out
    before = set(site.open)
    reader = await raw_client(base, b"GET /files/unread.bin HTTP/1.1\r\nHost: x\r\n\r\n", read=False)
    for proto in set(site.open) - before:  # the server gives up on it after send_timeout
        await proto.closed.addTimeout(10, reactor)
    reader.transport.resumeProducing()
    await reader.lost.addTimeout(10, reactor)
    assert len(reader.received) < 32 << 20


@pytest_twisted.ensureDeferred
async def test_header_limits_over_a_socket(web) -> None:
    site, base = web(max_headers=10, max_header_bytes=4096)
    many = await raw_client(base, b"GET /files/ HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(50)) + b"\r\n")
    await many.lost.addTimeout(10, reactor)
    assert many.received.startswith(b"HTTP/1.1 400 ")
    long = await raw_client(base, b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\n")
    await long.lost.addTimeout(10, reactor)
    assert long.received.startswith(b"HTTP/1.1 431 ")


@pytest_twisted.ensureDeferred
async def test_login_cookie_with_curl(web, tmp_path: Path) -> None:
    """The page's session cookie over a socket: curl logs in, keeps it in a jar, and uploads and downloads with it."""
    site, base = web(token=b"tok")
    source = make_file(tmp_path / "c.bin", 10_000)
    jar = tmp_path / "jar"
    code, out = await run(["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-c", str(jar), "-X", "POST",
                           "-H", "Authorization: Bearer tok", f"{base}/login"])
    assert out == b"204"
    line = next(line for line in jar.read_text().splitlines() if "netsuite-session" in line)
    assert line.startswith("#HttpOnly_127.0.0.1") and "tok" not in line.split("\t")[-1]
    code, out = await run([*CURL, "-b", str(jar), "-T", str(source), f"{base}/files/c.bin"])
    assert code == 0, out
    code, out = await run([*CURL, "-b", str(jar), "-o", str(tmp_path / "back.bin"), f"{base}/files/c.bin"])
    assert code == 0, out
    assert digest(tmp_path / "back.bin") == digest(source)
    code, out = await run(["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{base}/files/c.bin"])
    assert out == b"401"  # without the cookie or the token
