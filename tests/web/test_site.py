"""Auth, origins, limits and time limits of the web service, in memory."""

from __future__ import annotations

import pytest

from tests.web.harness import Client, fetch, make_site


def test_token_required_everywhere_but_health_and_the_page() -> None:
    site, _, clock = make_site(token=b"s3cret")
    for method, path in [("GET", "/files/"), ("GET", "/files/x"), ("PUT", "/files/x"), ("POST", "/uploads/")]:
        response = fetch(site, method, path, body=b"x" if method == "PUT" else b"")
        assert response.status == 401, path
        assert response.headers["www-authenticate"] == 'Bearer realm="netsuite"'
        assert response.json()["error"] == "auth-required"
    client = Client(site)
    client.request("GET", "/files/", {"Authorization": "Bearer nope"})
    clock.advance(1)
    wrong = client.response()
    assert wrong.status == 401 and wrong.json()["error"] == "auth-failed"
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    right = fetch(site, "GET", "/files/", {"Authorization": "Bearer s3cret", "Accept": "application/json"})
    assert right.status == 200 and right.json() == []
    assert fetch(site, "PUT", "/files/x", {"Authorization": "Bearer s3cret"}, b"x").status == 201
    assert fetch(site, "GET", "/").status == 200
    assert fetch(site, "GET", "/app.js").status == 200


def test_unauthorized_put_is_refused_before_its_body() -> None:
    site, _, _ = make_site(token=b"s3cret")
    client = Client(site)
    client.send(b"PUT /files/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
    assert client.response().status == 401
    assert client.closed


def test_cross_origin_writes_are_refused() -> None:
    site, _, _ = make_site()
    evil = fetch(site, "PUT", "/files/x", {"Origin": "http://evil.example"}, b"x")
    assert evil.status == 403 and evil.json()["error"] == "forbidden-origin"
    assert "access-control-allow-origin" not in evil.headers
    same = fetch(site, "PUT", "/files/x", {"Origin": "http://127.0.0.1:8080"}, b"x")
    assert same.status == 201


def test_cors_origin_is_allowed() -> None:
    site, _, _ = make_site(cors_origin="http://app.example")
    preflight = fetch(site, "OPTIONS", "/files/x", {
        "Origin": "http://app.example", "Access-Control-Request-Method": "PUT",
    })
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == "http://app.example"
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    put = fetch(site, "PUT", "/files/x", {"Origin": "http://app.example"}, b"x")
    assert put.status == 201 and put.headers["access-control-allow-origin"] == "http://app.example"
    assert fetch(site, "PUT", "/files/y", {"Origin": "http://evil.example"}, b"x").status == 403


def test_small_bodies_only_where_nothing_is_stored() -> None:
    site, _, _ = make_site(max_small_body=100)
    client = Client(site)
    client.send(b"POST /files/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    response = client.response()
    assert response.status == 413 and client.closed
    chunked = Client(site)
    chunked.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunked.send(b"1000\r\n" + b"x" * 0x1000 + b"\r\n")
    assert chunked.response().status == 413 and chunked.closed


def test_slow_headers_time_out() -> None:
    site, _, clock = make_site(header_timeout=5, idle_timeout=60)
    client = Client(site)
    client.send(b"GET /files/ HTTP/1.1\r\n")
    for _ in range(4):
        clock.advance(1.9)  # a byte now and then keeps the idle timer away, not this one
        client.send(b"X-Slow: 1\r\n")
    response = client.response()
    assert response.status == 408 and response.json()["error"] == "timeout"
    assert client.closed


def test_slow_body_times_out() -> None:
    site, store, clock = make_site(idle_timeout=10)
    client = Client(site)
    client.send(b"PUT /files/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    clock.advance(11)
    response = client.response()
    assert response.status == 408 and client.closed
    client.channel.connectionLost(ConnectionError("closed"))
    assert fetch(site, "GET", "/files/slow").status == 404
    assert fetch(site, "PUT", "/files/slow", body=b"x").status == 201  # not left busy


def test_idle_connection_closes_quietly() -> None:
    site, _, clock = make_site(idle_timeout=10)
    client = Client(site)
    clock.advance(11)
    assert client.closed and client.transport.value() == b""


def test_header_limits() -> None:
    site, _, _ = make_site(max_headers=5, max_header_bytes=2000)
    many = Client(site)
    many.send(b"GET /files/ HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(10)) + b"\r\n")
    assert many.response().status == 400 and many.closed
    long = Client(site)
    long.send(b"GET /files/" + b"a" * 3000 + b" HTTP/1.1\r\n")
    assert long.response().status == 431 and long.closed


def test_health_and_counters() -> None:
    site, _, _ = make_site()
    fetch(site, "GET", "/files/nothing")
    assert site.counters.errors["not-found"] == 1
    assert site.counters.accepted == 1


def test_wrong_tokens_wait_longer_each_time() -> None:
    site, _, clock = make_site(token=b"s3cret")
    waits = []
    for _ in range(4):
        client = Client(site)
        client.request("GET", "/files/", {"Authorization": "Bearer wrong"})
        waited = 0.0
        while not client.responses():
            clock.advance(0.05)
            waited += 0.05
        assert client.response().status == 401
        waits.append(round(waited, 2))
    assert waits == pytest.approx([0.25, 0.5, 1.0, 2.0], abs=0.06)
    right = Client(site)
    right.request("GET", "/files/", {"Authorization": "Bearer s3cret"})
    assert right.response().status == 200  # the right token is never slowed


def test_refusals_are_logged_once_per_host(caplog_events) -> None:
    site, _, clock = make_site()
    for _ in range(5):
        fetch(site, "GET", "/files/..%2fx")
    lines = [e for e in caplog_events if "web: {peer}" in e.get("log_format", "")]
    assert len(lines) == 1
    assert lines[0]["peer"] == "127.0.0.1:40000" and lines[0]["status"] == 400 and lines[0]["code"] == "bad-name"
    clock.advance(61)
    fetch(site, "GET", "/files/missing")
    lines = [e for e in caplog_events if "web: {peer}" in e.get("log_format", "")]
    assert len(lines) == 2 and lines[1]["suppressed"] == 4
