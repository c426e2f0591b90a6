"""
The storage contract (suite.files.contract): one suite, every backend.

Backends run their blocking work inline here (the directory backend's
``run``), so every coroutine finishes at once; ``done`` says so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock

from suite.files.contract import FileStore, OpenedFile, Upload
from suite.files.memory import MemoryStore
from suite.files.storage import Storage
from suite.files.wire import ErrorCode, FileError

MakeStore = Callable[..., Any]


def done(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """The result of a coroutine that must finish without waiting."""
    d = defer.ensureDeferred(coroutine)
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the backend waited on something"
    if isinstance(results[0], defer.Failure):
        results[0].raiseException()
    return results[0]


def refused(code: str, coroutine: Coroutine[Any, Any, Any]) -> FileError:
    with pytest.raises(FileError) as info:
        done(coroutine)
    assert info.value.code == code, info.value
    return info.value


def sync(f: Any, *args: Any) -> defer.Deferred[Any]:
    return defer.maybeDeferred(f, *args)


def _memory(tmp_path: Path, **options: Any) -> FileStore:
    return MemoryStore(clock=Clock(), **options)


def _directory(tmp_path: Path, **options: Any) -> FileStore:
    storage = Storage(tmp_path / "store", min_free=0, clock=Clock(), run=sync, **options)
    done(storage.ready())
    return storage


BACKENDS: dict[str, Callable[..., FileStore]] = {"memory": _memory, "directory": _directory}


@pytest.fixture(params=sorted(BACKENDS))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    """``make_store(**limits)`` builds a fresh store of each backend."""
    return lambda **options: BACKENDS[request.param](tmp_path, **options)


def put(store: FileStore, name: str, data: bytes, **options: Any) -> Any:
    upload = done(store.begin_upload(name, len(data), **options))
    upload.write(data)
    return done(upload.commit())


def read(store: FileStore, name: str) -> bytes:
    with done(store.open(name)) as opened:
        return opened.file.read()


def test_backends_satisfy_the_protocols(make_store: MakeStore) -> None:
    store = make_store()
    assert isinstance(store, FileStore)
    upload = done(store.begin_upload("a", 1))
    assert isinstance(upload, Upload)
    done(upload.abort())


def test_upload_then_read(make_store: MakeStore) -> None:
    store = make_store()
    stored = put(store, "holiday photo é.jpg", b"picture")
    assert (stored.name, stored.size, stored.sha256) == (
        "holiday photo é.jpg", 7, hashlib.sha256(b"picture").hexdigest(),
    )
    assert done(store.stat("holiday photo é.jpg")) == stored
    assert [f.name for f in done(store.list())] == ["holiday photo é.jpg"]
    opened = done(store.open("holiday photo é.jpg"))
    assert isinstance(opened, OpenedFile)
    assert opened.stored == stored
    assert opened.file.read() == b"picture"
    opened.close()
    assert store.stored_bytes == 7


def test_list_is_sorted(make_store: MakeStore) -> None:
    store = make_store()
    for name in ("b", "a", "c"):
        put(store, name, name.encode())
    assert [f.name for f in done(store.list())] == ["a", "b", "c"]


def test_nothing_visible_before_commit(make_store: MakeStore) -> None:
    store = make_store()
    upload = done(store.begin_upload("f", 4))
    upload.write(b"ab")
    assert done(store.list()) == []
    refused(ErrorCode.NOT_FOUND, store.stat("f"))
    refused(ErrorCode.NOT_FOUND, store.open("f"))
    upload.write(b"cd")
    done(upload.commit())
    assert read(store, "f") == b"abcd"


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "..", "a\\b", "nul\x00", "rtl\u202etxt", "zw\u200bj", "bell\x07"])
def test_bad_names_refused_everywhere(make_store: MakeStore, name: str) -> None:
    store = make_store()
    refused(ErrorCode.BAD_NAME, store.begin_upload(name, 1))
    refused(ErrorCode.BAD_NAME, store.stat(name))
    refused(ErrorCode.BAD_NAME, store.open(name))


def test_exists_unless_overwrite(make_store: MakeStore) -> None:
    store = make_store()
    put(store, "f", b"old")
    refused(ErrorCode.EXISTS, store.begin_upload("f", 3))
    put(store, "f", b"newer", overwrite=True)
    assert read(store, "f") == b"newer"
    assert store.stored_bytes == 5


def test_same_name_twice_is_busy(make_store: MakeStore) -> None:
    store = make_store()
    first = done(store.begin_upload("f", 1))
    refused(ErrorCode.BUSY, store.begin_upload("f", 1))
    done(first.abort())
    put(store, "f", b"x")


def test_too_large_before_data(make_store: MakeStore) -> None:
    store = make_store(max_file_size=10)
    refused(ErrorCode.TOO_LARGE, store.begin_upload("f", 11))
    put(store, "f", b"x" * 10)


def test_checksum_mismatch_stores_nothing(make_store: MakeStore) -> None:
    store = make_store()
    upload = done(store.begin_upload("f", 3, "0" * 64))
    upload.write(b"abc")
    refused(ErrorCode.CHECKSUM_MISMATCH, upload.commit())
    assert done(store.list()) == []
    assert store.stored_bytes == 0
    put(store, "f", b"abc", sha256=hashlib.sha256(b"abc").hexdigest())


def test_quota_reserved_when_accepted(make_store: MakeStore) -> None:
    store = make_store(quota=10)
    first = done(store.begin_upload("a", 6))
    # Together they do not fit: the second is refused before its data.
    refused(ErrorCode.QUOTA_EXCEEDED, store.begin_upload("b", 6))
    second = done(store.begin_upload("b", 4))
    first.write(b"x" * 6)
    second.write(b"y" * 4)
    done(first.commit())
    done(second.commit())
    assert store.stored_bytes == 10
    refused(ErrorCode.QUOTA_EXCEEDED, store.begin_upload("c", 1))


def test_quota_released_by_abort(make_store: MakeStore) -> None:
    store = make_store(quota=10)
    done(done(store.begin_upload("a", 10)).abort())
    put(store, "b", b"x" * 10)


def test_overwrite_counts_only_the_difference(make_store: MakeStore) -> None:
    store = make_store(quota=10)
    put(store, "a", b"x" * 8)
    put(store, "a", b"y" * 10, overwrite=True)
    assert store.stored_bytes == 10


def test_plain_abort_keeps_nothing(make_store: MakeStore) -> None:
    store = make_store()
    upload = done(store.begin_upload("f", 4))
    assert upload.upload_id is None
    upload.write(b"ab")
    assert done(upload.abort()) is False
    again = done(store.begin_upload("f", 4, resume=True))
    assert again.offset == 0
    done(again.abort())


def test_resume_by_name_size_and_digest(make_store: MakeStore) -> None:
    store = make_store()
    data = b"0123456789"
    digest = hashlib.sha256(data).hexdigest()
    upload = done(store.begin_upload("f", 10, digest))
    assert upload.upload_id is not None
    upload.write(data[:4])
    assert done(upload.abort()) is True
    assert done(store.list()) == []
    # A different digest or size is a fresh start; the same continues.
    other = done(store.begin_upload("f", 10, "1" * 64, resume=True))
    assert other.offset == 0
    done(other.abort(keep=False))
    upload = done(store.begin_upload("f", 10, digest))
    upload.write(data[:4])
    done(upload.abort())
    again = done(store.begin_upload("f", 10, digest, resume=True))
    assert (again.offset, again.received, again.remaining) == (4, 4, 6)
    again.write(data[4:])
    stored = done(again.commit())
    assert stored.sha256 == digest
    assert read(store, "f") == data


def test_resume_by_id_suspend_and_discard(make_store: MakeStore) -> None:
    """What tus needs: create, PATCH, put aside, HEAD, PATCH again, commit."""
    store = make_store()
    upload = done(store.begin_upload("t", 6, resumable=True))
    upload_id = upload.upload_id
    assert upload_id is not None
    upload.write(b"abc")
    partial = done(upload.suspend())
    assert (partial.upload_id, partial.name, partial.size, partial.offset) == (upload_id, "t", 6, 3)
    assert done(store.partial(upload_id)).offset == 3
    again = done(store.resume_upload(upload_id))
    refused(ErrorCode.BUSY, store.resume_upload(upload_id))
    refused(ErrorCode.BUSY, store.discard_partial(upload_id))
    assert again.offset == 3
    again.write(b"de")
    done(again.truncate(4))  # the chunk's checksum failed: back to 4
    assert again.received == 4
    again.write(b"ef")
    assert done(again.suspend()).offset == 6
    last = done(store.resume_upload(upload_id))
    assert last.remaining == 0
    done(last.commit())
    assert read(store, "t") == b"abcdef"
    refused(ErrorCode.NOT_FOUND, store.partial(upload_id))


def test_discard_partial(make_store: MakeStore) -> None:
    store = make_store()
    upload = done(store.begin_upload("t", 6, resumable=True))
    upload.write(b"abc")
    done(upload.suspend())
    done(store.discard_partial(upload.upload_id))
    refused(ErrorCode.NOT_FOUND, store.partial(upload.upload_id))
    refused(ErrorCode.NOT_FOUND, store.resume_upload(upload.upload_id))
    refused(ErrorCode.NOT_FOUND, store.discard_partial(upload.upload_id))


def test_suspend_a_plain_upload_is_refused(make_store: MakeStore) -> None:
    store = make_store()
    upload = done(store.begin_upload("t", 6))
    refused(ErrorCode.BAD_COMMAND, upload.suspend())
    done(upload.abort())


def test_refused_begin_keeps_the_older_partial(make_store: MakeStore) -> None:
    store = make_store(max_file_size=10)
    upload = done(store.begin_upload("t", 6, resumable=True))
    upload.write(b"abc")
    done(upload.suspend())
    refused(ErrorCode.TOO_LARGE, store.begin_upload("t", 11))
    assert done(store.partial(upload.upload_id)).offset == 3


def test_empty_file(make_store: MakeStore) -> None:
    store = make_store()
    stored = put(store, "empty", b"")
    assert stored.size == 0
    assert read(store, "empty") == b""
