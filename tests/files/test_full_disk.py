"""
A real full disk over loopback: the storage directory on a 1 MiB tmpfs.

The injected failures (``tests/files/test_storage.py``, ENOSPC and EIO at
every step) stay; this checks the same promise against the kernel: an
upload that does not fit gets an error, no file is visible, and no
temporary file is left behind.  Mounting needs root (or CAP_SYS_ADMIN);
where that is not allowed (an unprivileged CI container) the tests are
skipped and say why.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from suite.files import FileFactory, Storage
from suite.files.client import RemoteError, list_files, upload
from tests.helpers import Collector, stop_tracked, track

SIZE = 1 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted in ``tmp_path``, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) here")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(mount)],
        capture_output=True, text=True, timeout=30,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def fill(path: Path) -> None:
    """Write ``path`` until the file system is full."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC
    assert os.statvfs(path.parent).f_bavail == 0


def leftovers(store: Path) -> list[str]:
    """Everything in the storage directory but the index."""
    return sorted(p.name for p in store.iterdir() if p.name != Storage.INDEX)


@pytest.fixture
def server(small_disk: Path):
    started = []

    def start() -> tuple[FileFactory, int, Path]:
        store = small_disk / "store"
        factory = track(FileFactory(Storage(store, min_free=0), close_grace=1))
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        started.append((factory, port))
        return factory, port.getHost().port, store

    yield start
    for factory, port in started:
        pytest_twisted.blockon(defer.ensureDeferred(stop_tracked(factory, port)))


def endpoint(port: int) -> TCP4ClientEndpoint:
    return TCP4ClientEndpoint(reactor, "127.0.0.1", port)


@pytest_twisted.ensureDeferred
async def test_an_upload_larger_than_the_disk_is_refused_before_its_data(server, tmp_path: Path) -> None:
    factory, port, store = server()
    source = tmp_path / "big"
    source.write_bytes(os.urandom(2 * SIZE))
    with pytest.raises(RemoteError) as raised:
        await upload(endpoint(port), source)
    assert raised.value.code == "no-space"
    assert await list_files(endpoint(port)) == []
    assert leftovers(store) == []


@pytest.mark.parametrize("options", ["", "sha256={digest} resume "], ids=["plain", "resumable"])
@pytest_twisted.ensureDeferred
async def test_the_disk_filling_up_during_an_upload(server, small_disk: Path, options: str) -> None:
    factory, port, store = server()
    await list_files(endpoint(port))  # the storage is ready (its index written)
    data = os.urandom(SIZE // 2)
    head = f"PUT {options.format(digest=hashlib.sha256(data).hexdigest())}{len(data)} f\n".encode()
    client = Collector()
    await connectProtocol(endpoint(port), client)
    client.transport.write(head)
    await client.wait_for(len(b"NETSUITE-FILES 1\nREADY 0\n"))
    # Accepted (it fitted then); now something else fills the disk.
    fill(small_disk / "filler")
    client.transport.write(data + b"DONE\n")
    await client.lost
    assert bytes(client.received).decode().splitlines()[1:] == [
        "READY 0", "ERR disk-full the disk is full; nothing was stored",
    ]
    assert await list_files(endpoint(port)) == []
    assert leftovers(store) == [], "no temporary file, not even a partial to resume"
    # Space again: the service works on.
    (small_disk / "filler").unlink()
    source = small_disk.parent / "small"
    source.write_bytes(b"fits now")
    stored = await upload(endpoint(port), source)
    assert stored.size == 8 and leftovers(store) == ["small"]
