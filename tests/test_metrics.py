"""suite.metrics: the collectors read each service's counters; /healthz reads its listeners."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from suite.echo import UDPEchoProtocol
from suite.files.memory import MemoryStore
from suite.metrics import HealthResource, SuiteMetrics, guarded
from suite.web import WebSite


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
