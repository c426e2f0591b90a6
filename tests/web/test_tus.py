"""tus 1.0.0 under /uploads/, in memory: creation, offsets, checksums, termination, cuts."""

from __future__ import annotations

import base64
import hashlib

from tests.web.harness import Client, fetch, make_site

TUS = {"Tus-Resumable": "1.0.0"}


def create(site, name: str, size: int, **extra: str):
    headers = {**TUS, "Upload-Length": str(size), "Upload-Metadata": "filename " + base64.b64encode(name.encode()).decode()}
    return fetch(site, "POST", "/uploads/", {**headers, **extra})


def patch(site, location: str, offset: int, body: bytes, **extra: str):
    headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream", **extra}
    return fetch(site, "PATCH", location, headers, body)


def test_discovery() -> None:
    site, store, _ = make_site()
    response = fetch(site, "OPTIONS", "/uploads/")
    assert response.status == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-extension"] == "creation,checksum,termination"
    assert "sha1" in response.headers["tus-checksum-algorithm"]
    assert response.headers["tus-max-size"] == str(store.max_file_size)


def test_upload_in_chunks_with_offsets() -> None:
    site, store, _ = make_site()
    data = bytes(range(256)) * 40
    created = create(site, "t.bin", len(data))
    assert created.status == 201
    location = created.headers["location"]
    assert location.startswith("/uploads/")
    assert patch(site, location, 0, data[:4000]).headers["upload-offset"] == "4000"
    head = fetch(site, "HEAD", location, TUS)
    assert (head.status, head.headers["upload-offset"], head.headers["upload-length"]) == (200, "4000", str(len(data)))
    assert head.headers["cache-control"] == "no-store"
    stale = patch(site, location, 0, data[:10])
    assert stale.status == 409 and stale.json()["error"] == "bad-offset"
    assert fetch(site, "GET", "/files/t.bin").status == 404  # nothing visible before the end
    done = patch(site, location, 4000, data[4000:])
    assert (done.status, done.headers["upload-offset"]) == (204, str(len(data)))
    assert fetch(site, "GET", "/files/t.bin").body == data
    assert fetch(site, "HEAD", location, TUS).status == 404


def test_cut_patch_keeps_what_came() -> None:
    site, store, _ = make_site()
    location = create(site, "cut.bin", 100).headers["location"]
    client = Client(site)
    client.request("PATCH", location, {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream",
                                       "Content-Length": "100"})
    client.send(b"a" * 60)
    client.channel.connectionLost(ConnectionError("cut"))
    assert fetch(site, "HEAD", location, TUS).headers["upload-offset"] == "60"
    assert patch(site, location, 60, b"b" * 40).status == 204
    assert fetch(site, "GET", "/files/cut.bin").body == b"a" * 60 + b"b" * 40


def test_checksums() -> None:
    site, _, _ = make_site()
    location = create(site, "c.bin", 8).headers["location"]
    good = "sha1 " + base64.b64encode(hashlib.sha1(b"abcd").digest()).decode()
    bad = "sha1 " + base64.b64encode(hashlib.sha1(b"xxxx").digest()).decode()
    mismatch = patch(site, location, 0, b"abcd", **{"Upload-Checksum": bad})
    assert mismatch.status == 460 and mismatch.json()["error"] == "checksum-mismatch"
    assert fetch(site, "HEAD", location, TUS).headers["upload-offset"] == "0"  # the chunk was dropped
    assert patch(site, location, 0, b"abcd", **{"Upload-Checksum": good}).headers["upload-offset"] == "4"
    unknown = patch(site, location, 4, b"efgh", **{"Upload-Checksum": "crc32 AAAA"})
    assert unknown.status == 400


def test_termination() -> None:
    site, _, _ = make_site()
    location = create(site, "gone.bin", 10).headers["location"]
    assert fetch(site, "DELETE", location, TUS).status == 204
    assert fetch(site, "HEAD", location, TUS).status == 404
    assert patch(site, location, 0, b"x").status == 404


def test_refusals() -> None:
    site, store, _ = make_site()
    store.max_file_size = 100
    assert create(site, "big.bin", 101).status == 413
    assert create(site, "../x", 10).json()["error"] == "bad-name"
    assert fetch(site, "POST", "/uploads/", {**TUS, "Upload-Length": "10"}).status == 400  # no filename
    no_version = fetch(site, "POST", "/uploads/", {"Upload-Length": "1"})
    assert no_version.status == 412 and no_version.headers["tus-version"] == "1.0.0"
    location = create(site, "x.bin", 10).headers["location"]
    assert patch(site, location, 0, b"x" * 11).status == 413
    assert patch(site, location, 0, b"x", **{"Content-Type": "text/plain"}).status == 415
    assert fetch(site, "HEAD", "/uploads/zzz", TUS).status == 404
    assert fetch(site, "HEAD", "/uploads/" + "0" * 40, TUS).status == 404


def test_same_name_in_line_protocol_terms_is_busy_while_patching() -> None:
    site, store, _ = make_site()
    location = create(site, "b.bin", 10).headers["location"]
    client = Client(site)
    client.request("PATCH", location, {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream",
                                       "Content-Length": "10"})
    client.send(b"x" * 5)
    other = create(site, "b.bin", 10)
    assert other.status == 409 and other.json()["error"] == "busy"
    client.send(b"x" * 5)
    assert client.response().status == 204


def test_empty_upload_is_stored_at_creation() -> None:
    site, _, _ = make_site()
    created = create(site, "empty", 0)
    assert created.status == 201
    assert fetch(site, "GET", "/files/empty").status == 200
