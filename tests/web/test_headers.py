"""The HTTP text of the web service: names in URLs, ranges, validators, dispositions, digests."""

import base64
import hashlib

import pytest

from suite.web.errors import WebError
from suite.web.headers import (
    ByteRange,
    content_disposition,
    etag_matches,
    if_range_holds,
    name_from_segment,
    parse_range,
    parse_repr_digest,
    route,
)
from suite.web.tus import parse_metadata


def test_route_decodes_each_segment_once() -> None:
    assert route(b"/files/a%252fb?x=1") == [b"files", b"a%2fb"]
    assert route(b"/files/a%2fb") == [b"files", b"a/b"]


@pytest.mark.parametrize("segment", [
    b"..", b".", b"../etc", b"a/b", b"a\\b", b"a\x00b", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x80\xae", b"", b".hidden",
    b"x" * 256,
])
def test_hostile_names_are_bad_names(segment: bytes) -> None:
    with pytest.raises(WebError) as caught:
        name_from_segment(segment)
    assert (caught.value.code, caught.value.status) == ("bad-name", 400)


def test_names_in_any_script_are_fine() -> None:
    assert name_from_segment("报告 2026.pdf".encode()) == "报告 2026.pdf"
    assert name_from_segment(b"%2f") == "%2f"  # double-encoded: a harmless literal name


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    (b"bytes=0-9", ByteRange(0, 9, 100)),
    (b"bytes=90-", ByteRange(90, 99, 100)),
    (b"bytes=-10", ByteRange(90, 99, 100)),
    (b"bytes=-1000", ByteRange(0, 99, 100)),
    (b"bytes=50-1000", ByteRange(50, 99, 100)),
    (b"bytes=0-1,5-6", None),  # several ranges: the whole file
    (b"items=0-1", None),
    (b"bytes=9-1", None),
    (b"bytes=abc", None),
])
def test_ranges(header: bytes | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", [b"bytes=100-", b"bytes=200-300", b"bytes=-0"])
def test_unsatisfiable_ranges(header: bytes) -> None:
    with pytest.raises(WebError) as caught:
        parse_range(header, 100)
    assert caught.value.status == 416
    assert caught.value.headers[b"Content-Range"] == b"bytes */100"


def test_range_of_an_empty_file_is_unsatisfiable() -> None:
    for header in (b"bytes=0-", b"bytes=-5"):
        with pytest.raises(WebError):
            parse_range(header, 0)


def test_if_range() -> None:
    tag, date = b'"abc"', b"Thu, 03 Dec 2026 17:00:00 GMT"
    assert if_range_holds(None, tag, date)
    assert if_range_holds(b'"abc"', tag, date)
    assert not if_range_holds(b'"abd"', tag, date)
    assert not if_range_holds(b'W/"abc"', tag, date)
    assert if_range_holds(date, tag, date)
    assert not if_range_holds(b"Thu, 03 Dec 2026 16:00:00 GMT", tag, date)
    assert not if_range_holds(b"garbage", tag, date)


def test_etag_lists() -> None:
    assert etag_matches(b"*", b'"a"')
    assert etag_matches(b'"b", "a"', b'"a"')
    assert not etag_matches(b'"b"', b'"a"')
    assert not etag_matches(None, b'"a"')


@pytest.mark.parametrize("name", ['report "final".pdf', "naïve;name%.txt", "报告.txt", "a\\b"])
def test_content_disposition_is_ascii_and_exact(name: str) -> None:
    header = content_disposition(name)
    header.decode("ascii")
    fallback = header.split(b'filename="')[1].split(b'"')[0]
    assert b"\\" not in fallback and b"%" not in fallback and b";" not in fallback
    from urllib.parse import unquote

    assert unquote(header.split(b"filename*=UTF-8''")[1].decode()) == name


def test_repr_digest() -> None:
    digest = hashlib.sha256(b"hello").digest()
    value = b"sha-256=:" + base64.b64encode(digest) + b":"
    assert parse_repr_digest(value) == digest.hex()
    assert parse_repr_digest(b"sha-512=:AAAA:, " + value) == digest.hex()
    assert parse_repr_digest(b"sha-512=:AAAA:") is None
    assert parse_repr_digest(None) is None
    for bad in (b"sha-256=abc", b"sha-256=:!!!:", b"sha-256=:" + base64.b64encode(b"short") + b":"):
        with pytest.raises(WebError):
            parse_repr_digest(bad)


def test_tus_metadata() -> None:
    header = b"filename " + base64.b64encode("报告.txt".encode()) + b",empty ,sha256 YWJj"
    assert parse_metadata(header) == {"filename": "报告.txt".encode(), "empty": b"", "sha256": b"abc"}
    with pytest.raises(WebError):
        parse_metadata(b"filename !!!")
