"""
A client library for the file service, under the ``netsuite upload``,
``download`` and ``ls`` commands.

Each function connects to an endpoint, does one job, closes, and returns a
Deferred.  Uploads resume when the server holds part of the same file;
downloads resume from what an earlier, interrupted download left; both are
verified end to end with sha256.  The connection itself (replies,
commands, raw bytes) is :class:`suite.files.session.FileClient`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IStreamClientEndpoint

from suite.files.session import RemoteError, TransferError, open_session
from suite.files.wire import Command, Data, FileInfo, Files, Ready, Stored, StoredFile, WireError, check_name, parse_listing

__all__ = ["RemoteError", "TransferError", "download", "list_files", "stat", "upload"]

#: ``progress(done, total)`` is called as bytes move.
Progress = Callable[[int, int], None]


def _hasher_of(path: str | os.PathLike[str], length: int | None = None) -> Any:
    """A sha256 fed with a file's first ``length`` bytes (all by default). Blocking."""
    hasher = hashlib.sha256()
    with open(path, "rb") as f:
        left = length
        while left is None or left > 0:
            chunk = f.read(1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            hasher.update(chunk)
            if left is not None:
                left -= len(chunk)
    return hasher


def sha256_of(path: str | os.PathLike[str], length: int | None = None) -> str:
    """The sha256 of a file's first ``length`` bytes (all by default). Blocking."""
    return _hasher_of(path, length).hexdigest()


async def _upload(
    endpoint: IStreamClientEndpoint, path: str | os.PathLike[str], name: str | None,
    overwrite: bool, token: str | None, progress: Progress | None, run: Any,
) -> StoredFile:
    path = Path(path)
    name = check_name(name if name is not None else path.name)
    size = path.stat().st_size
    digest = await run(sha256_of, path)
    client = await open_session(endpoint, token)
    try:
        client.send(Command("PUT", name=name, size=size, sha256=digest, overwrite=overwrite, resume=True))
        offset = (await client.read_reply(Ready)).offset
        if offset > size:
            raise TransferError(f"the server asked to resume at {offset}, past the end ({size} bytes)")
        done = offset
        if progress:
            progress(done, size)

        def sent(count: int) -> None:
            nonlocal done
            done += count
            if progress:
                progress(done, size)

        with open(path, "rb") as f:
            f.seek(offset)
            try:
                await client.send_file(f, sent)
            except Exception:
                await client.read_reply(Stored)  # the server's reason (RemoteError), if it gave one
                raise TransferError(f"the upload of {name} was cut off after {done} of {size} bytes") from None
        if done != size:
            raise TransferError(f"{path} changed while it was sent ({done} of {size} bytes)")
        client.send(Command("DONE"))
        stored = await client.read_reply(Stored)
        if stored.sha256 != digest or stored.size != size:
            raise TransferError(f"the server stored sha256 {stored.sha256}, but {path} has {digest}")
        client.send(Command("QUIT"))
        return StoredFile(stored.name, stored.size, stored.sha256, time.time())
    finally:
        await client.close()


def upload(
    endpoint: IStreamClientEndpoint,
    path: str | os.PathLike[str],
    name: str | None = None,
    *,
    overwrite: bool = False,
    token: str | None = None,
    progress: Progress | None = None,
    run: Any = None,
) -> defer.Deferred[StoredFile]:
    """
    Upload ``path`` as ``name`` (default: the file's own name).

    Resumes when the server holds part of this very file (same size and
    sha256).  Fires with the stored file once the server's sha256 matched
    the local one.

    :raises RemoteError: the server refused (``exists``, ``too-large``...).
    :raises TransferError: cut off, or the digests differ.
    """
    return defer.Deferred.fromCoroutine(
        _upload(endpoint, path, name, overwrite, token, progress, run or _thread)
    )


def _thread(f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    from twisted.internet.threads import deferToThread

    return deferToThread(f, *args)


def _partial_paths(destination: Path) -> tuple[Path, Path]:
    part = destination.with_name(f".{destination.name}.netsuite-part")
    return part, part.with_name(part.name + ".json")


async def _download(
    endpoint: IStreamClientEndpoint, name: str, destination: str | os.PathLike[str],
    force: bool, token: str | None, progress: Progress | None, run: Any,
) -> StoredFile:
    check_name(name)
    destination = Path(destination)
    if destination.exists() and not force:
        raise TransferError(f"{destination} exists; use --force to replace it")
    part, meta_path = _partial_paths(destination)
    client = await open_session(endpoint, token)
    try:
        client.send(Command("STAT", name=name))
        remote = (await client.read_reply(FileInfo)).file
        offset = 0
        hasher = hashlib.sha256()
        try:
            meta = json.loads(meta_path.read_text())
            if meta == {"sha256": remote.sha256, "size": remote.size} and part.stat().st_size <= remote.size:
                offset = part.stat().st_size
                hasher = await run(_hasher_of, part, offset)
        except (OSError, ValueError):
            pass
        if offset == 0:
            meta_path.write_text(json.dumps({"sha256": remote.sha256, "size": remote.size}))
        client.send(Command("GET", name=name, offset=offset))
        data = await client.read_reply(Data)
        size, sha256 = data.size, data.sha256
        if sha256 != remote.sha256 or data.offset != offset:
            raise TransferError(f"{name} changed on the server during the download; run it again")
        done = offset
        if progress:
            progress(done, size)
        with open(part, "r+b" if offset else "wb") as out:
            out.seek(offset)
            out.truncate()

            def sink(data: bytes) -> None:
                nonlocal done
                out.write(data)
                hasher.update(data)
                done += len(data)
                if progress:
                    progress(done, size)

            await client.receive(size - offset, sink)
            out.flush()
            os.fsync(out.fileno())
        if hasher.hexdigest() != sha256:
            part.unlink()
            meta_path.unlink(missing_ok=True)
            raise TransferError(f"{name} arrived with sha256 {hasher.hexdigest()}, not {sha256}; nothing was kept")
        if force:
            os.replace(part, destination)
        else:
            try:
                os.link(part, destination)
            except FileExistsError:
                raise TransferError(f"{destination} exists; use --force to replace it") from None
            part.unlink()
        meta_path.unlink(missing_ok=True)
        client.send(Command("QUIT"))
        return StoredFile(name, size, sha256, remote.mtime)
    finally:
        await client.close()


def download(
    endpoint: IStreamClientEndpoint,
    name: str,
    destination: str | os.PathLike[str],
    *,
    force: bool = False,
    token: str | None = None,
    progress: Progress | None = None,
    run: Any = None,
) -> defer.Deferred[StoredFile]:
    """
    Download ``name`` to ``destination``, through a hidden temporary file
    beside it that is renamed only once the sha256 matched.

    Resumes from what an interrupted download of the same remote file left.
    Refuses to replace an existing file unless ``force``.

    :raises RemoteError: the server refused (``not-found``...).
    :raises TransferError: cut off, or the digest did not match.
    """
    return defer.Deferred.fromCoroutine(
        _download(endpoint, name, destination, force, token, progress, run or _thread)
    )


async def _list(endpoint: IStreamClientEndpoint, token: str | None) -> list[StoredFile]:
    client = await open_session(endpoint, token)
    try:
        client.send(Command("LIST"))
        count = (await client.read_reply(Files)).count
        try:
            files = [parse_listing(await client.read_line()) for _ in range(count)]
        except WireError as e:
            raise TransferError(f"the server does not speak the protocol: {e}") from None
        client.send(Command("QUIT"))
        return files
    finally:
        await client.close()


def list_files(endpoint: IStreamClientEndpoint, *, token: str | None = None) -> defer.Deferred[list[StoredFile]]:
    """Every file the server stores: name, size, sha256, modification time."""
    return defer.Deferred.fromCoroutine(_list(endpoint, token))


async def _stat(endpoint: IStreamClientEndpoint, name: str, token: str | None) -> StoredFile:
    client = await open_session(endpoint, token)
    try:
        client.send(Command("STAT", name=check_name(name)))
        stored = (await client.read_reply(FileInfo)).file
        client.send(Command("QUIT"))
        return stored
    finally:
        await client.close()


def stat(endpoint: IStreamClientEndpoint, name: str, *, token: str | None = None) -> defer.Deferred[StoredFile]:
    """One stored file's size, sha256 and modification time."""
    return defer.Deferred.fromCoroutine(_stat(endpoint, name, token))
