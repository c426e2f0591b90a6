"""The page's login: POST /login sets an HttpOnly, SameSite=Strict cookie accepted in place of the bearer token."""

from __future__ import annotations

from suite.web.login import session_value
from tests.web.harness import Client, fetch, make_site

HOST = "127.0.0.1:8080"


def login(site, token: str = "s3cret", **headers: str):  # type: ignore[no-untyped-def]
    return fetch(site, "POST", "/login", {"Authorization": f"Bearer {token}", **headers})


def cookie_of(response) -> str:  # type: ignore[no-untyped-def]
    name_value = response.headers["set-cookie"].split(";", 1)[0]
    assert name_value.startswith("netsuite-session=")
    return name_value


def test_login_sets_a_strict_httponly_cookie_that_is_not_the_token() -> None:
    site, _, _ = make_site(token=b"s3cret")
    response = login(site)
    assert response.status == 204
    attributes = [part.strip().lower() for part in response.headers["set-cookie"].split(";")]
    assert {"httponly", "samesite=strict", "path=/"} <= set(attributes)
    assert "secure" not in attributes  # plain HTTP here; over TLS the cookie is Secure too
    assert response.headers["cache-control"] == "no-store"
    cookie = cookie_of(response)
    assert "s3cret" not in cookie and cookie.endswith(session_value(b"s3cret").decode())


def test_the_cookie_opens_every_route_the_token_opens() -> None:
    site, _, _ = make_site(token=b"s3cret")
    cookie = cookie_of(login(site))
    assert fetch(site, "GET", "/files/", {"Cookie": cookie, "Accept": "application/json"}).json() == []
    assert fetch(site, "PUT", "/files/x", {"Cookie": cookie}, b"x").status == 201
    assert fetch(site, "GET", "/files/x", {"Cookie": cookie}).body == b"x"
    tus = {"Cookie": cookie, "Tus-Resumable": "1.0.0", "Upload-Length": "1", "Upload-Metadata": "filename eQ=="}
    assert fetch(site, "POST", "/uploads/", tus).status == 201
    assert fetch(site, "GET", "/files/").status == 401  # and nothing opens without it


def test_a_wrong_token_sets_no_cookie_and_waits() -> None:
    site, _, clock = make_site(token=b"s3cret")
    client = Client(site)
    client.request("POST", "/login", {"Authorization": "Bearer nope"})
    assert not client.responses()  # answered after --auth-delay
    clock.advance(1)
    response = client.response()
    assert response.status == 401 and response.json()["error"] == "auth-failed"
    assert "set-cookie" not in response.headers
    assert fetch(site, "POST", "/login").status == 401  # the token itself is needed, not a cookie


def test_a_forged_or_stale_cookie_is_refused_like_a_wrong_token() -> None:
    site, _, clock = make_site(token=b"s3cret")
    cookie = cookie_of(login(site))
    site.token = b"rotated"  # what a reload with a new --token-file does
    client = Client(site)
    client.request("GET", "/files/", {"Cookie": cookie})
    clock.advance(1)
    assert client.response().json()["error"] == "auth-failed"
    client = Client(site)
    client.request("GET", "/files/", {"Cookie": "netsuite-session=forged"})
    clock.advance(10)
    assert client.response().status == 401


def test_cookie_writes_from_another_origin_are_refused() -> None:
    site, _, _ = make_site(token=b"s3cret")
    cookie = cookie_of(login(site))
    evil = fetch(site, "PUT", "/files/x", {"Cookie": cookie, "Origin": "http://evil.example"}, b"x")
    assert evil.status == 403 and evil.json()["error"] == "forbidden-origin"
    assert login(site, Origin="http://evil.example").status == 403
    assert login(site, Origin=f"http://{HOST}").status == 204


def test_logout_clears_the_cookie_and_get_is_not_allowed() -> None:
    site, _, _ = make_site(token=b"s3cret")
    response = fetch(site, "POST", "/logout")
    assert response.status == 204
    assert response.headers["set-cookie"].startswith("netsuite-session=;")
    assert "max-age=0" in response.headers["set-cookie"].lower()
    assert fetch(site, "GET", "/login").status == 405


def test_without_a_token_login_is_a_no_op() -> None:
    site, _, _ = make_site()
    response = fetch(site, "POST", "/login")
    assert response.status == 204 and "set-cookie" not in response.headers


def test_protected_resources_follow_the_token_as_it_is_now() -> None:
    from twisted.web.resource import Resource

    class Hello(Resource):
        isLeaf = True

        def render_GET(self, request):  # type: ignore[no-untyped-def]
            return b"hello"

    site, _, clock = make_site(token=b"old")
    site.mount(b"hello", site.protect(Hello()))
    assert fetch(site, "GET", "/hello", {"Authorization": "Bearer old"}).body == b"hello"
    site.token = b"new"
    client = Client(site)
    client.request("GET", "/hello", {"Authorization": "Bearer old"})
    clock.advance(1)
    assert client.response().status == 401
    assert fetch(site, "GET", "/hello", {"Authorization": "Bearer new"}).body == b"hello"
    assert fetch(site, "GET", "/hello", {"Cookie": cookie_of(login(site, "new"))}).body == b"hello"
