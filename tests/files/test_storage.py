"""
The directory backend beyond the contract: failures at every step of a
commit, reservations, non-regular entries, permissions, a big index, a
real EFBIG.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import Clock

from suite.files.index import Entry
from suite.files.storage import Storage
from suite.files.wire import ErrorCode, FileError
from tests.files.faults import FailingFS
from tests.files.test_contract import done, put, refused, sync


def make(root: Path, **options: Any) -> Storage:
    options.setdefault("min_free", 0)
    storage = Storage(root, clock=Clock(), run=sync, **options)
    done(storage.ready())
    return storage


def leftovers(root: Path) -> list[str]:
    """Every entry but the index journal."""
    return sorted(p.name for p in root.iterdir() if p.name != Storage.INDEX)


# --- commit and reply agree -------------------------------------------------------------


@pytest.mark.parametrize(
    "call, after, code",
    [
        ("fsync", 0, errno.EIO),  # the file's fsync
        ("fsync", 1, errno.EIO),  # the directory's, after the link
        ("fstat", 0, errno.EIO),
        ("link", 0, errno.ENOSPC),
        ("unlink", 0, errno.EIO),  # the hidden name, after the link
        ("open", 0, errno.EMFILE),  # the directory, for its fsync
    ],
)
def test_commit_failure_leaves_nothing(tmp_path: Path, call: str, after: int, code: int) -> None:
    fs = FailingFS()
    storage = make(tmp_path / "store", fs=fs)
    upload = done(storage.begin_upload("f", 5))
    upload.write(b"hello")
    fs.fail(call, code, after=after, times=1)
    error = refused(ErrorCode.DISK_FULL if code == errno.ENOSPC else ErrorCode.INTERNAL, upload.commit())
    assert "nothing was stored" in error.message
    assert leftovers(storage.root) == []
    assert done(storage.list()) == [] and storage.stored_bytes == 0
    put(storage, "f", b"again")  # and the name is free again


def test_failed_overwrite_keeps_the_old_file(tmp_path: Path) -> None:
    fs = FailingFS()
    storage = make(tmp_path / "store", fs=fs)
    put(storage, "f", b"old")
    upload = done(storage.begin_upload("f", 3, overwrite=True))
    upload.write(b"new")
    fs.fail("replace", errno.EIO, times=1)
    refused(ErrorCode.INTERNAL, upload.commit())
    assert (storage.root / "f").read_bytes() == b"old"
    assert leftovers(storage.root) == ["f"] and storage.stored_bytes == 3


def test_resumable_commit_failure_removes_the_partial_too(tmp_path: Path) -> None:
    fs = FailingFS()
    storage = make(tmp_path / "store", fs=fs)
    upload = done(storage.begin_upload("f", 5, hashlib.sha256(b"hello").hexdigest()))
    upload.write(b"hello")
    fs.fail("link", errno.ENOSPC, times=1)
    refused(ErrorCode.DISK_FULL, upload.commit())
    assert leftovers(storage.root) == []


def test_index_write_failure_does_not_undo_a_stored_file(tmp_path: Path) -> None:
    """The index is a cache: the file is stored, verified and listed; it is hashed again later."""
    fs = FailingFS()
    storage = make(tmp_path / "store", fs=fs)
    upload = done(storage.begin_upload("f", 5))
    upload.write(b"hello")
    done(upload.commit())  # the data write happens here, inline
    fs.fail("write", errno.ENOSPC, after=1)  # the data fits, the index line not
    put(storage, "g", b"world")
    assert fs.calls["write"] >= 3
    fs.heal()
    assert [f.name for f in done(storage.list())] == ["f", "g"]
    again = make(tmp_path / "store")
    assert {f.name: f.sha256 for f in done(again.list())}["g"] == hashlib.sha256(b"world").hexdigest()


def test_write_failure_is_reported_at_commit(tmp_path: Path) -> None:
    fs = FailingFS()
    storage = make(tmp_path / "store", fs=fs)
    upload = done(storage.begin_upload("f", 2 << 20))
    fs.fail("write", errno.EFBIG)
    upload.write(b"x" * (2 << 20))
    refused(ErrorCode.TOO_LARGE, upload.commit())
    assert leftovers(storage.root) == []


def test_real_efbig_from_rlimit_fsize(tmp_path: Path) -> None:
    """A real file-size limit (RLIMIT_FSIZE) in a child process: an error, and nothing left."""
    script = textwrap.dedent(f"""
        import json, resource, signal, sys
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from tests.files.test_storage import make, leftovers
        from tests.files.test_contract import done
        from suite.files.wire import FileError
        from pathlib import Path
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
        storage = make(Path({str(tmp_path / "store")!r}))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        upload = done(storage.begin_upload("big", 3 << 20))
        upload.write(b"x" * (3 << 20))
        try:
            done(upload.commit())
            code = None
        except FileError as e:
            code = e.code
        print(json.dumps({{"code": code, "left": leftovers(storage.root), "listed": len(done(storage.list()))}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == {"code": "too-large", "left": [], "listed": 0}


# --- reservations ---------------------------------------------------------------------------


def test_free_space_reserved_when_accepted(tmp_path: Path) -> None:
    fs = FailingFS()
    fs.free = 100
    storage = make(tmp_path / "store", fs=fs, min_free=10)
    first = done(storage.begin_upload("a", 60))
    # 60 + 40 + 10 spare > 100: refused before any data is sent.
    error = refused(ErrorCode.NO_SPACE, storage.begin_upload("b", 40))
    assert "60 promised to uploads in progress" in error.message
    second = done(storage.begin_upload("b", 30))
    done(first.abort())
    third = done(storage.begin_upload("c", 60))
    for upload in (second, third):
        done(upload.abort())
    assert (storage._reserved_space, storage._reserved_quota) == (0, 0)


def test_reservation_released_whatever_ends_the_upload(tmp_path: Path) -> None:
    fs = FailingFS()
    storage = make(tmp_path / "store", fs=fs, quota=100)
    upload = done(storage.begin_upload("a", 10, "0" * 64))
    upload.write(b"x" * 10)
    refused(ErrorCode.CHECKSUM_MISMATCH, upload.commit())
    upload = done(storage.begin_upload("a", 10))
    upload.write(b"x" * 10)
    fs.fail("link", errno.EIO, times=1)
    refused(ErrorCode.INTERNAL, upload.commit())
    fs.fail("open", errno.EMFILE, times=1)
    refused(ErrorCode.INTERNAL, storage.begin_upload("a", 10))
    assert (storage._reserved_space, storage._reserved_quota, storage.uploading) == (0, 0, {})


class NoIteration(dict):  # type: ignore[type-arg]
    """An index that fails any operation costing O(entries)."""

    def _refuse(self, *args: Any) -> Any:
        raise AssertionError("the whole index was walked")

    __iter__ = values = items = keys = _refuse  # type: ignore[assignment]


@pytest_twisted.ensureDeferred
async def test_quota_with_a_big_index_and_concurrent_uploads(tmp_path: Path) -> None:
    """300,000 entries, 20 uploads at once on real threads: O(1) accounting, exactly right."""
    storage = Storage(tmp_path / "store", min_free=0)
    await storage.ready()
    st = os.stat(tmp_path)
    entries = {f"file {i}": Entry(1000, "0" * 64, st.st_mtime_ns, i) for i in range(300_000)}
    storage.index.entries = NoIteration(entries)
    storage.index.total = 300_000 * 1000
    storage.quota = storage.index.total + 10 * 4096
    results = await defer.DeferredList(
        [defer.ensureDeferred(_one_upload(storage, f"new {i}", 4096)) for i in range(20)], consumeErrors=True
    )
    codes = sorted(r.code if isinstance(r, FileError) else "stored" for ok, r in results)
    assert codes == ["quota-exceeded"] * 10 + ["stored"] * 10
    assert storage.stored_bytes == storage.quota
    assert (storage._reserved_quota, storage._reserved_space) == (0, 0)
    await storage.index.flushed()


async def _one_upload(storage: Storage, name: str, size: int) -> Any:
    try:
        upload = await storage.begin_upload(name, size)
    except FileError as e:
        return e
    # Let the other uploads begin meanwhile: their checks see this reservation.
    await _later()
    upload.write(os.urandom(size))
    return await upload.commit()


def _later() -> defer.Deferred[None]:
    d: defer.Deferred[None] = defer.Deferred()
    reactor.callLater(0, d.callback, None)
    return d


# --- non-regular entries ----------------------------------------------------------------------


def test_non_regular_entries_never_opened_listed_or_replaced(tmp_path: Path) -> None:
    storage = make(tmp_path / "store")
    root = storage.root
    outside = tmp_path / "secret"
    outside.write_bytes(b"not yours")
    os.mkfifo(root / "pipe")  # opening it for reading would block
    (root / "link").symlink_to(outside)
    (root / "dir").mkdir()
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "sock"))
    try:
        put(storage, "real", b"file")
        assert [f.name for f in done(storage.list())] == ["real"]
        for name in ("pipe", "link", "dir", "sock"):
            refused(ErrorCode.NOT_FOUND, storage.stat(name))
            refused(ErrorCode.NOT_FOUND, storage.open(name))
            error = refused(ErrorCode.EXISTS, storage.begin_upload(name, 1, overwrite=True))
            assert "not a regular file" in error.message
        assert stat.S_ISFIFO(os.lstat(root / "pipe").st_mode) and (root / "link").is_symlink()
        assert outside.read_bytes() == b"not yours"
    finally:
        server.close()


def test_entry_turned_fifo_before_commit_is_not_replaced(tmp_path: Path) -> None:
    storage = make(tmp_path / "store")
    upload = done(storage.begin_upload("f", 1, overwrite=True))
    os.mkfifo(storage.root / "f")
    upload.write(b"x")
    refused(ErrorCode.EXISTS, upload.commit())
    assert stat.S_ISFIFO(os.lstat(storage.root / "f").st_mode)
    assert leftovers(storage.root) == ["f"]


# --- permissions ----------------------------------------------------------------------------


@pytest.fixture
def open_umask():
    """A process umask that would let anyone read: the storage must not depend on it."""
    old = os.umask(0)
    yield
    os.umask(old)


def modes(root: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(os.lstat(p).st_mode) for p in root.iterdir()}


def test_everything_private_by_default(tmp_path: Path, open_umask: None) -> None:
    storage = make(tmp_path / "store")
    put(storage, "f", b"data")
    partial = done(storage.begin_upload("p", 10, "1" * 64))
    partial.write(b"half")
    done(partial.abort())
    done(storage.index.flushed())
    found = modes(storage.root)
    assert set(found) == {"f", Storage.INDEX, f".part-{partial.upload_id}", f".part-{partial.upload_id}.json"}
    assert set(found.values()) == {0o600}
    assert stat.S_IMODE(os.stat(storage.root).st_mode) == 0o700


def test_umask_option(tmp_path: Path, open_umask: None) -> None:
    storage = make(tmp_path / "store", umask=0o022)
    put(storage, "f", b"data")
    assert modes(storage.root)["f"] == 0o644


# --- start-up -------------------------------------------------------------------------------


def test_index_loaded_at_start_without_hashing_again(tmp_path: Path) -> None:
    storage = make(tmp_path / "store")
    put(storage, "f", b"data")
    done(storage.index.flushed())
    again = make(tmp_path / "store")
    assert again.stored_bytes == 4
    assert again.index.get("f").sha256 == hashlib.sha256(b"data").hexdigest()


def test_unknown_files_count_toward_the_quota_at_start(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (root / "by hand").write_bytes(b"x" * 50)
    storage = make(root, quota=60)
    assert storage.stored_bytes == 50
    refused(ErrorCode.QUOTA_EXCEEDED, storage.begin_upload("f", 11))


def test_a_big_listing_takes_turns(tmp_path: Path) -> None:
    clock = Clock()
    storage = Storage(tmp_path / "store", min_free=0, clock=clock, run=sync)
    done(storage.ready())
    for i in range(5):
        put(storage, f"f{i}", b"x")
    storage.LIST_STEP = 2
    d = defer.ensureDeferred(storage.list())
    assert not d.called
    clock.advance(0)
    clock.advance(0)
    assert [f.name for f in d.result] == [f"f{i}" for i in range(5)]


def test_hashing_goes_on_while_a_write_is_stalled(tmp_path: Path) -> None:
    """
    Hashing and writing take blocks from their own queues: a disk stall does
    not hold up the hashing (nor a slow hash the disk), and a block stays
    pending until both have done it.
    """
    held: list[tuple[defer.Deferred[Any], Any, tuple[Any, ...]]] = []

    def stall_writes(f: Any, *args: Any) -> defer.Deferred[Any]:
        if getattr(f, "__name__", "") == "_write_blocks":
            d: defer.Deferred[Any] = defer.Deferred()
            held.append((d, f, args))
            return d
        return defer.maybeDeferred(f, *args)

    storage = Storage(tmp_path / "store", min_free=0, clock=Clock(), run=sync)
    done(storage.ready())
    storage.run = stall_writes
    block = os.urandom(1 << 20)
    upload = done(storage.begin_upload("s.bin", 3 << 20, None))
    notified = []
    upload.on_written = lambda: notified.append(upload.pending)
    upload.write(block)
    assert len(held) == 1 and upload.pending == 1 << 20  # hashed, not yet written
    upload.write(block)
    upload.write(block)
    assert len(held) == 1  # one write at a time; the other two blocks wait for the disk...
    assert upload._hashed == 3 << 20  # ...and were hashed meanwhile
    assert upload.pending == 3 << 20
    d, f, args = held.pop()
    f(*args)
    d.callback(None)  # the first write lands; the other two go to the disk in one batch
    assert upload.pending == 2 << 20 and notified[-1] == 2 << 20
    d, f, args = held.pop()
    f(*args)
    d.callback(None)
    assert upload.pending == 0
    storage.run = sync
    stored = done(upload.commit())
    assert stored.sha256 == hashlib.sha256(block * 3).hexdigest()
    assert (tmp_path / "store" / "s.bin").read_bytes() == block * 3
