"""GET, HEAD, PUT and the listing of /files/, in memory."""

from __future__ import annotations

import base64
import hashlib

import pytest

from suite.web.headers import http_date
from tests.web.harness import Client, fetch, make_site


def put(site, name: str, body: bytes, **headers: str):
    return fetch(site, "PUT", f"/files/{name}", headers, body)


def test_put_then_get_head_and_list() -> None:
    site, store, _ = make_site()
    data = b"hello, web\n" * 1000
    created = put(site, "greeting.txt", data)
    assert created.status == 201
    sha = hashlib.sha256(data).hexdigest()
    assert created.json() == {"name": "greeting.txt", "size": len(data), "sha256": sha, "mtime": 0.0}
    assert created.headers["location"] == "/files/greeting.txt"
    got = fetch(site, "GET", "/files/greeting.txt")
    assert got.status == 200 and got.body == data
    assert got.headers["etag"] == f'"{sha}"'
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["last-modified"] == http_date(0).decode()
    assert got.headers["content-disposition"] == "attachment; filename=\"greeting.txt\"; filename*=UTF-8''greeting.txt"
    head = fetch(site, "HEAD", "/files/greeting.txt")
    assert head.status == 200 and head.headers["content-length"] == str(len(data)) and head.body == b""
    listing = fetch(site, "GET", "/files/", {"Accept": "application/json"})
    assert listing.json() == [{"name": "greeting.txt", "size": len(data), "sha256": sha, "mtime": 0.0}]
    html = fetch(site, "GET", "/files/")
    assert html.headers["content-type"].startswith("text/html") and b"greeting.txt" in html.body
    assert site.counters.files_stored == 1 and site.counters.bytes_served == len(data)


def test_listing_escapes_names() -> None:
    site, _, _ = make_site()
    put(site, "%3Cscript%3E.txt", b"x")
    html = fetch(site, "GET", "/files/").body
    assert b"<script>" not in html and b"&lt;script&gt;.txt" in html


def test_ranges_and_if_range() -> None:
    site, _, _ = make_site()
    data = bytes(range(256)) * 4
    put(site, "r.bin", data)
    tag = fetch(site, "HEAD", "/files/r.bin").headers["etag"]
    part = fetch(site, "GET", "/files/r.bin", {"Range": "bytes=1000-"})
    assert part.status == 206 and part.body == data[1000:]
    assert part.headers["content-range"] == f"bytes 1000-1023/{len(data)}"
    assert fetch(site, "GET", "/files/r.bin", {"Range": "bytes=-4"}).body == data[-4:]
    same = fetch(site, "GET", "/files/r.bin", {"Range": "bytes=0-9", "If-Range": tag})
    assert same.status == 206 and same.body == data[:10]
    changed = fetch(site, "GET", "/files/r.bin", {"Range": "bytes=0-9", "If-Range": '"other"'})
    assert changed.status == 200 and changed.body == data
    past = fetch(site, "GET", "/files/r.bin", {"Range": "bytes=5000-"})
    assert past.status == 416 and past.headers["content-range"] == f"bytes */{len(data)}"
    assert past.json()["error"] == "range-not-satisfiable"
    assert fetch(site, "GET", "/files/r.bin", {"If-None-Match": tag}).status == 304


def test_exists_rules() -> None:
    site, store, _ = make_site()
    assert put(site, "a.txt", b"one").status == 201
    conflict = put(site, "a.txt", b"two")
    assert conflict.status == 409 and conflict.json()["error"] == "exists"
    assert put(site, "a.txt", b"two", **{"If-None-Match": "*"}).status == 412
    assert put(site, "new.txt", b"two", **{"If-None-Match": "*"}).status == 201
    assert put(site, "a.txt", b"two", **{"If-Match": '"nope"'}).status == 412
    assert put(site, "missing.txt", b"two", **{"If-Match": "*"}).status == 412
    assert put(site, "a.txt", b"two", **{"If-Match": "*"}).status == 204
    assert fetch(site, "GET", "/files/a.txt").body == b"two"
    tag = fetch(site, "HEAD", "/files/a.txt").headers["etag"]
    assert put(site, "a.txt", b"three", **{"If-Match": tag}).status == 204


def test_repr_digest_is_verified_before_commit() -> None:
    site, store, _ = make_site()
    good = "sha-256=:" + base64.b64encode(hashlib.sha256(b"data").digest()).decode() + ":"
    bad = "sha-256=:" + base64.b64encode(hashlib.sha256(b"other").digest()).decode() + ":"
    refused = put(site, "d.txt", b"data", **{"Repr-Digest": bad})
    assert refused.status == 400 and refused.json()["error"] == "checksum-mismatch"
    assert fetch(site, "GET", "/files/d.txt").status == 404
    assert site.counters.files_failed["checksum-mismatch"] == 1
    assert put(site, "d.txt", b"data", **{"Repr-Digest": good}).status == 201


def test_too_large_is_refused_before_the_body() -> None:
    site, store, _ = make_site()
    store.max_file_size = 1000
    client = Client(site)
    client.send(b"PUT /files/big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
    response = client.response()
    assert response.status == 413 and response.json()["error"] == "too-large"
    assert b"100 Continue" not in client.transport.value()
    assert client.closed
    client.send(b"x" * 5000)  # whatever still comes is dropped, never parsed
    assert len(client.responses()) == 1


def test_continue_only_once_storage_accepted() -> None:
    site, _, _ = make_site()
    client = Client(site)
    client.send(b"PUT /files/c.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert client.transport.value() == b"HTTP/1.1 100 Continue\r\n\r\n"
    client.send(b"abc")
    assert client.response().status == 201


def test_chunked_put_needs_a_length_and_partial_put_is_refused() -> None:
    site, _, _ = make_site()
    client = Client(site)
    client.send(b"PUT /files/c.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert client.response().status == 411
    partial = put(site, "p.txt", b"abc", **{"Content-Range": "bytes 0-2/10"})
    assert partial.status == 400


def test_cut_put_leaves_nothing() -> None:
    site, store, _ = make_site()
    client = Client(site)
    client.send(b"PUT /files/cut.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 40)
    client.channel.connectionLost(ConnectionError("gone"))
    assert fetch(site, "GET", "/files/cut.bin").status == 404
    assert put(site, "cut.bin", b"y" * 10).status == 201  # not busy: the cut upload ended


def test_disk_backpressure_pauses_reading() -> None:
    site, store, _ = make_site(disk_buffer=100)
    uploads = []
    real_begin = store.begin_upload

    async def begin(*args, **kwargs):
        upload = await real_begin(*args, **kwargs)
        uploads.append(upload)
        return upload

    store.begin_upload = begin
    client = Client(site)
    client.send(b"PUT /files/slow.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    upload = uploads[0]
    upload.pending = 500  # the disk is behind
    client.send(b"x" * 10)
    assert client.transport.producerState == "paused"
    upload.pending = 40
    upload.on_written()
    assert client.transport.producerState == "producing"
    client.send(b"x" * 990)
    assert client.response().status == 201


@pytest.mark.parametrize("path", [
    "/files/..%2fetc%2fpasswd", "/files/%2e%2e", "/files/a%5cb", "/files/a%00b", "/files/%c0%ae%c0%ae",
    "/files/a/b", "/files/%E2%80%AEtxt.exe",
])
def test_hostile_paths_are_bad_names(path: str) -> None:
    site, _, _ = make_site()
    for method in ("GET", "PUT"):
        response = fetch(site, method, path, body=b"x" if method == "PUT" else b"")
        assert (response.status, response.json()["error"]) == (400, "bad-name"), (method, path)


def test_double_encoding_is_a_literal_name() -> None:
    site, _, _ = make_site()
    assert put(site, "%252e%252e", b"x").status == 201
    assert fetch(site, "GET", "/files/", {"Accept": "application/json"}).json()[0]["name"] == "%2e%2e"


def test_missing_file() -> None:
    site, _, _ = make_site()
    response = fetch(site, "GET", "/files/nothing")
    assert response.status == 404
    assert response.json() == {"error": "not-found", "message": "there is no file called nothing"}
