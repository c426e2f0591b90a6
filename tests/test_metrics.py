"""suite.metrics: the collectors read each service's counters; /healthz reads its listeners."""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest_twisted

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from suite.echo import UDPEchoProtocol
from suite.files.memory import MemoryStore
from suite.metrics import HealthResource, SuiteMetrics, guarded, reason_label
from suite.web import WebSite
from tests.helpers import connect_collector, listening_port, spawn, twistd


def samples(metrics: SuiteMetrics) -> dict[tuple[str, tuple], float]:
    text = generate_latest(metrics.registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_every_kind_of_counter_is_read() -> None:
    metrics = SuiteMetrics()
    admission = SimpleNamespace(open=3, accepted=10, refused=Counter({"max-per-ip": 2}))
    chat = SimpleNamespace(admission=admission, server=SimpleNamespace(
        lines_received=7, lines_delivered=21, disconnects=Counter({"flood": 1})))
    udp = UDPEchoProtocol(reactor=Clock())
    site = WebSite(MemoryStore(clock=Clock()), reactor=Clock())
    site.counters.stored(100)
    site.counters.store_failed("checksum-mismatch")
    site.counters.bytes_in = 500
    metrics.watch("chat", chat)
    metrics.watch("udp-echo", udp)
    metrics.watch("web", site)
    found = samples(metrics)
    assert found[("netsuite_connections_open", (("service", "chat"),))] == 3
    assert found[("netsuite_connections_accepted_total", (("service", "chat"),))] == 10
    assert found[("netsuite_connections_refused_total", (("reason", "max-per-ip"), ("service", "chat")))] == 2
    assert found[("netsuite_chat_lines_received_total", (("service", "chat"),))] == 7
    assert found[("netsuite_chat_lines_delivered_total", (("service", "chat"),))] == 21
    assert found[("netsuite_clients_disconnected_total", (("reason", "flood"), ("service", "chat")))] == 1
    assert found[("netsuite_udp_datagrams_answered_total", (("service", "udp-echo"),))] == 0
    assert found[("netsuite_udp_datagrams_dropped_total", (("reason", "rate-limited"), ("service", "udp-echo")))] == 0
    assert found[("netsuite_files_stored_total", (("service", "web"),))] == 1
    assert found[("netsuite_file_bytes_stored_total", (("service", "web"),))] == 100
    assert found[("netsuite_files_failed_total", (("code", "checksum-mismatch"), ("service", "web")))] == 1
    assert found[("netsuite_bytes_received_total", (("service", "web"),))] == 500


def test_a_shared_chat_server_is_reported_once_and_socket_bytes_are_read() -> None:
    metrics = SuiteMetrics()
    server = SimpleNamespace(lines_delivered=9)
    sockets = SimpleNamespace(bytes_in=None, bytes_out=70)
    metrics.watch("chat", SimpleNamespace(server=server, bytes_in=5, sockets=sockets))
    metrics.watch("irc", SimpleNamespace(server=server, lines_received=2))
    found = samples(metrics)
    assert found[("netsuite_chat_lines_delivered_total", (("service", "chat"),))] == 9
    assert ("netsuite_chat_lines_delivered_total", (("service", "irc"),)) not in found
    assert found[("netsuite_chat_lines_received_total", (("service", "irc"),))] == 2
    assert found[("netsuite_bytes_received_total", (("service", "chat"),))] == 5
    assert found[("netsuite_bytes_sent_total", (("service", "chat"),))] == 70


def test_reason_labels() -> None:
    assert [reason_label(r) for r in ("Quit: bye", "idle timeout", "send queue exceeded", "")] == [
        "quit", "idle-timeout", "send-queue-exceeded", "unknown"]


def test_health_follows_the_listeners() -> None:
    metrics = SuiteMetrics()
    up = SimpleNamespace(port=object(), running=True)
    down = SimpleNamespace(port=None, running=True)
    metrics.watch("echo", object(), up)
    health = HealthResource(metrics)
    request = DummyRequest([b""])
    body = health.render_GET(request)
    assert request.responseCode == 200 and json.loads(body) == {"status": "ok", "listeners": {"echo": True}}
    metrics.watch("chat", object(), down)
    request = DummyRequest([b""])
    body = health.render_GET(request)
    assert request.responseCode == 503 and json.loads(body)["listeners"] == {"echo": True, "chat": False}
    assert samples(metrics)[("netsuite_listener_up", (("service", "chat"),))] == 0


def test_guarded_needs_the_token() -> None:
    health = HealthResource(SuiteMetrics())
    resource = guarded(health, b"t")
    request = DummyRequest([b""])
    request.method = b"GET"
    resource.render(request)
    assert request.responseCode == 401
    request = DummyRequest([b""])
    request.method = b"GET"
    request.requestHeaders.setRawHeaders(b"Authorization", [b"Bearer t"])
    resource.render(request)
    assert request.responseCode in (None, 200)
    assert guarded(health, None) is health


# --- every service under twistd, traffic flowing, /metrics read with prometheus_client.parser ---------------


def _scrape_text(text: bytes) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def _value(found: dict[tuple[str, tuple], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest_twisted.ensureDeferred
async def test_every_family_moves_with_all_services_running(tmp_path: Path) -> None:
    """
    The Observability paragraph of the web issue, item by item, against a
    running ``twistd netsuite --mode all``: each counter it lists moves
    when its service carries traffic.
    """
    from twisted.web.websocket import WebSocketClientEndpoint

    from tests.chat.test_websocket import WSClient
    from tests.web.test_loopback import CURL, run

    local = "tcp:0:interface=127.0.0.1"
    server = twistd(
        "--mode", "all", "--echo-listen", local, "--udp-echo-listen", "udp:0:interface=127.0.0.1",
        "--chat-listen", local, "--irc-listen", local, "--upload-listen", local, "--web-listen", local,
        "--udp-rate", "1", "--udp-burst", "1", "--storage", str(tmp_path / "files"), "--min-free", "0",
        cwd=tmp_path,
    )
    cleanup: list[Any] = []
    try:
        ports = {name: await listening_port(server, name) for name in ("echo", "udp-echo", "chat", "irc", "upload", "web")}
        web = f"http://127.0.0.1:{ports['web']}"

        async def scrape() -> dict[tuple[str, tuple], float]:
            code, out = await run([*CURL, f"{web}/metrics"])
            assert code == 0, out
            return _scrape_text(out)

        before = await scrape()

        # echo: 1000 bytes each way (from the kernel's counters, nothing per read)
        echo = await connect_collector(ports["echo"])
        echo.transport.write(b"e" * 1000)
        await echo.wait_for(1000)
        echo.transport.loseConnection()
        await echo.lost

        # udp-echo: one datagram answered, then more than the burst of 1 dropped as rate-limited
        answered: defer.Deferred[bytes] = defer.Deferred()

        class Pinger(DatagramProtocol):
            def datagramReceived(self, data: bytes, addr: Any) -> None:
                if not answered.called:
                    answered.callback(data)

        pinger = Pinger()
        udp_port = reactor.listenUDP(0, pinger, interface="127.0.0.1")
        cleanup.append(udp_port.stopListening)
        pinger.transport.write(b"ping", ("127.0.0.1", ports["udp-echo"]))
        assert await answered.addTimeout(10, reactor) == b"ping"
        for _ in range(3):
            pinger.transport.write(b"more", ("127.0.0.1", ports["udp-echo"]))

        # chat (line front): a message heard by another user, one quit, one client that just goes away
        talker, listener = await connect_collector(ports["chat"]), await connect_collector(ports["chat"])
        talker.transport.write(b"hello metrics\n")
        while b"hello metrics" not in listener.received:
            await listener.wait_for(len(listener.received) + 1)
        talker.transport.write(b"/quit\n")
        await talker.lost
        listener.transport.loseConnection()
        await listener.lost

        # irc: register, speak, quit
        irc = await connect_collector(ports["irc"])
        irc.transport.write(b"NICK ircy\r\nUSER u 0 * :U\r\nJOIN #lobby\r\nPRIVMSG #lobby :hi\r\nQUIT :bye\r\n")
        await irc.lost

        # the chat's WebSocket front, on the web service
        endpoint = WebSocketClientEndpoint.new(reactor, f"{web}/chat")
        ws = await endpoint.connect(type("F", (), {"buildProtocol": lambda self, url: WSClient()})())
        await ws.wait(type="joined", room="lobby")
        ws.send(type="say", text="from a browser")
        await ws.wait(type="message", text="from a browser")
        ws.transport.loseConnection()
        await ws.lost

        # upload: one stored, one refused for a wrong checksum; the file served back
        source = tmp_path / "up.bin"
        source.write_bytes(os.urandom(50_000))
        sent = spawn(["netsuite", "upload", f"127.0.0.1:{ports['upload']}", str(source)])
        assert await sent.ended == 0, sent.err
        bad = await connect_collector(ports["upload"])
        bad.transport.write(b"PUT sha256=" + b"0" * 64 + b" 3 bad.bin\nabcDONE\n")
        await bad.lost
        assert b"ERR checksum-mismatch" in bad.received, bad.received
        got = spawn(["netsuite", "download", f"127.0.0.1:{ports['upload']}", "up.bin", "-o", str(tmp_path / "back1.bin")])
        assert await got.ended == 0, got.err

        # web: PUT, GET, and a PUT whose Repr-Digest does not match
        code, out = await run([*CURL, "-T", str(source), f"{web}/files/web.bin"])
        assert code == 0, out
        code, out = await run([*CURL, "-o", str(tmp_path / "back2.bin"), f"{web}/files/web.bin"])
        assert code == 0, out
        wrong = "sha-256=:" + base64.b64encode(bytes(32)).decode() + ":"
        code, out = await run(["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                               f"Repr-Digest: {wrong}", "-T", str(source), f"{web}/files/wrong.bin"])
        assert out == b"400" or out == b"409" or out.startswith(b"4"), out

        # Dropped datagrams are counted when the server reads them: poll with a deadline.
        deadline = reactor.seconds() + 10
        after = await scrape()
        while _value(after, "netsuite_udp_datagrams_dropped_total", service="udp-echo", reason="rate-limited") < 1:
            assert reactor.seconds() < deadline, "no rate-limited datagram counted"
            after = await scrape()

        def moved(name: str, **labels: str) -> float:
            return _value(after, name, **labels) - _value(before, name, **labels)

        for service in ("echo", "chat", "irc", "upload", "web"):
            assert moved("netsuite_connections_accepted_total", service=service) >= 1, service
            assert ("netsuite_connections_open", (("service", service),)) in after, service
            assert moved("netsuite_bytes_received_total", service=service) > 0, service
            assert moved("netsuite_bytes_sent_total", service=service) > 0, service
        assert moved("netsuite_bytes_received_total", service="echo") == 1000
        assert moved("netsuite_bytes_sent_total", service="echo") == 1000
        assert moved("netsuite_bytes_received_total", service="upload") > 50_000
        assert moved("netsuite_bytes_sent_total", service="upload") > 50_000
        for service in ("chat", "irc", "chat-websocket"):
            assert moved("netsuite_chat_lines_received_total", service=service) >= 1, service
        # The three fronts share one ChatServer: its deliveries are reported once, under chat.
        assert moved("netsuite_chat_lines_delivered_total", service="chat") >= 3
        assert ("netsuite_chat_lines_delivered_total", (("service", "irc"),)) not in after
        assert moved("netsuite_clients_disconnected_total", service="chat", reason="quit") == 1
        assert moved("netsuite_clients_disconnected_total", service="chat", reason="connection-lost") == 1
        assert moved("netsuite_clients_disconnected_total", service="irc", reason="quit") == 1
        assert moved("netsuite_clients_disconnected_total", service="chat-websocket", reason="connection-lost") == 1
        for service in ("upload", "web"):
            assert moved("netsuite_files_stored_total", service=service) == 1, service
            assert moved("netsuite_file_bytes_stored_total", service=service) == 50_000, service
            assert moved("netsuite_file_bytes_served_total", service=service) == 50_000, service
            assert moved("netsuite_files_failed_total", service=service, code="checksum-mismatch") == 1, service
        assert moved("netsuite_udp_datagrams_received_total", service="udp-echo") >= 2
        assert moved("netsuite_udp_datagrams_answered_total", service="udp-echo") >= 1
        assert _value(after, "netsuite_udp_datagrams_dropped_total", service="udp-echo", reason="denied-port") == 0
        for service in ("echo", "udp-echo", "chat", "irc", "upload", "web"):
            assert _value(after, "netsuite_listener_up", service=service) == 1, service
    finally:
        for stop in cleanup:
            await stop()
        server.terminate()
        await server.ended
