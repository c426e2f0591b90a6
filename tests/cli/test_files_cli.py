"""``netsuite upload``, ``download`` and ``ls`` against ``twistd -n netsuite --mode upload``, and the nc recipe."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import pytest_twisted

from tests.helpers import ProcessRun, listening_port, spawn, twistd


@pytest.fixture
def file_server(tmp_path: Path):
    """A twistd file server; yields (port, storage directory, extra args)."""
    runs: list[ProcessRun] = []

    async def start(*extra: str) -> int:
        server = twistd("--mode", "upload", "--listen", "tcp:0:interface=127.0.0.1",
                        "--storage", str(tmp_path / "store"), *extra, cwd=tmp_path)
        runs.append(server)
        return await listening_port(server, "upload")

    yield start
    for run in runs:
        if not run.ended.called:
            run.terminate()
            pytest_twisted.blockon(run.ended)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest_twisted.ensureDeferred
async def test_upload_ls_download(file_server, tmp_path: Path) -> None:
    port = await file_server()
    photo = tmp_path / "photo one.jpg"
    photo.write_bytes(os.urandom(2_500_000))
    notes = tmp_path / "notes.txt"
    notes.write_text("ünïcode notes\n")
    run = spawn(["netsuite", "upload", f"127.0.0.1:{port}", str(photo), str(notes)])
    assert await run.ended == 0, run.err
    assert run.out.decode().splitlines() == [
        f"stored photo one.jpg 2500000 bytes sha256 {sha(photo.read_bytes())}",
        f"stored notes.txt {notes.stat().st_size} bytes sha256 {sha(notes.read_bytes())}",
    ]
    assert run.err == b""  # not a terminal: no progress bar
    ls = spawn(["netsuite", "ls", f"localhost:{port}"])
    assert await ls.ended == 0
    lines = ls.out.decode().splitlines()
    assert [line.split("  ")[-1] for line in lines] == ["notes.txt", "photo one.jpg"]
    assert sha(photo.read_bytes()) in lines[1]
    out = tmp_path / "out"
    out.mkdir()
    get = spawn(["netsuite", "download", f"127.0.0.1:{port}", "photo one.jpg", "-o", str(out), "--progress", "json"])
    assert await get.ended == 0, get.err
    assert (out / "photo one.jpg").read_bytes() == photo.read_bytes()
    events = [json.loads(line) for line in get.err.decode().splitlines()]
    assert events[0] == {"event": "progress", "file": "photo one.jpg", "done": 0, "total": 2_500_000}
    assert events[-1] == {"event": "done", "file": "photo one.jpg", "size": 2_500_000, "sha256": sha(photo.read_bytes())}
    # Again, without --force: refused, the local file untouched.
    again = spawn(["netsuite", "download", f"127.0.0.1:{port}", "photo one.jpg", "-o", str(out), "-q"])
    assert await again.ended == 1
    assert again.err.decode() == f"netsuite download: photo one.jpg: {out / 'photo one.jpg'} exists; use --force to replace it\n"


@pytest_twisted.ensureDeferred
async def test_upload_errors_are_one_line_each(file_server, tmp_path: Path) -> None:
    port = await file_server("--max-file-size", "1K")
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"s" * 100)
    big.write_bytes(b"b" * 2000)
    run = spawn(["netsuite", "upload", f"127.0.0.1:{port}", str(big), str(small), str(small)])
    assert await run.ended == 1
    assert run.err.decode().splitlines() == [
        f"netsuite upload: {big}: server refused: too-large: 2000 bytes is over the limit of 1024",
        f"netsuite upload: {small}: server refused: exists: small exists; ask to overwrite it",
    ]
    assert run.out.decode().splitlines() == [f"stored small 100 bytes sha256 {sha(b's' * 100)}"]


@pytest_twisted.ensureDeferred
async def test_token_file(file_server, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("letmein\n")
    token.chmod(0o600)  # the server refuses a token file others can read
    port = await file_server("--token-file", str(token))
    denied = spawn(["netsuite", "ls", f"127.0.0.1:{port}"])
    assert await denied.ended == 1
    assert denied.err == b"netsuite ls: server refused: auth-required: the server needs a token\n"
    allowed = spawn(["netsuite", "ls", f"127.0.0.1:{port}", "--token-file", str(token)])
    assert await allowed.ended == 0, allowed.err


@pytest.mark.skipif(shutil.which("nc") is None, reason="needs netcat-openbsd (.ci/run installs it)")
@pytest_twisted.ensureDeferred
async def test_the_documented_nc_recipe(file_server, tmp_path: Path) -> None:
    port = await file_server()
    picture = tmp_path / "cat picture.png"
    picture.write_bytes(os.urandom(300_000))
    script = (
        'file="$1"; name="$2"; size=$(wc -c < "$file"); '
        '{ printf \'PUT %s %s\\n\' "$size" "$name"; cat "$file"; } | nc -N 127.0.0.1 "$3"'
    )
    run = spawn(["/bin/sh", "-c", script, "sh", str(picture), "cat picture.png", str(port)])
    assert await run.ended == 0, run.err
    assert run.out.decode().splitlines() == [
        "NETSUITE-FILES 1",
        "READY 0",
        f"STORED 300000 {sha(picture.read_bytes())} cat picture.png",
    ]
    assert (tmp_path / "store" / "cat picture.png").read_bytes() == picture.read_bytes()


def test_progress_bar_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    from suite.cli.files import ProgressReport

    bar = ProgressReport("bar", quiet=False, label="photo.jpg")
    for done in (0, 500, 1000):
        bar(done, 1000)
    bar.finish()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("\rphoto.jpg:") and "0.98k" in captured.err  # a tqdm bar, in KiB


def test_quiet_and_auto_without_terminal_print_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    from suite.cli.files import ProgressReport

    for report in (ProgressReport("bar", quiet=True, label="f"), ProgressReport("auto", quiet=False, label="f")):
        report(5, 10)
        report.finish({"size": 10})
    assert capsys.readouterr() == ("", "")


# --- a server that never greets -----------------------------------------------------


@pytest.mark.parametrize(
    "command, prefix",
    [
        (["upload", "{file}"], "{file}: "),
        (["download", "photo.jpg", "-o", "{out}"], "photo.jpg: "),
        (["ls"], ""),
    ],
)
@pytest_twisted.ensureDeferred
async def test_server_that_never_greets_times_out(shape_server, tmp_path: Path, command, prefix) -> None:
    """``s.accept()`` and nothing more: --timeout covers the greeting, one line, exit 1."""
    from tests.cli.shapes import Silent

    port, _ = shape_server(Silent)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"jpeg")
    names = {"file": str(photo), "out": str(tmp_path / "copy.jpg")}
    args = [part.format(**names) for part in command]
    run = spawn(["netsuite", args[0], "--timeout", "0.5", f"127.0.0.1:{port}", *args[1:]])
    assert await run.ended == 1
    assert run.err.decode() == (
        f"netsuite {args[0]}: {prefix.format(**names)}timed out: 127.0.0.1:{port} sent nothing in 0.5s (no greeting)\n"
    )


@pytest_twisted.ensureDeferred
async def test_upload_ctrl_c_says_interrupted(shape_server, tmp_path: Path) -> None:
    from tests.cli.shapes import Silent

    port, factory = shape_server(Silent)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"jpeg")
    run = spawn(["netsuite", "upload", "--timeout", "60", f"127.0.0.1:{port}", str(photo), str(photo)])
    await factory.connected.get()
    run.transport.signalProcess("INT")
    assert await run.ended == 130
    assert run.err == b"netsuite upload: interrupted\n"


@pytest_twisted.ensureDeferred
async def test_greeting_without_newline_times_out(shape_server, tmp_path: Path) -> None:
    """``conn.send(b"Welcome")``: the bytes that came are named, one line, exit 1."""
    from tests.cli.shapes import Banner

    port, _ = shape_server(Banner)
    run = spawn(["netsuite", "ls", "--timeout", "0.5", f"127.0.0.1:{port}"])
    assert await run.ended == 1
    assert run.err.decode() == (
        f"netsuite ls: timed out: 127.0.0.1:{port} sent nothing more in 0.5s "
        "(it last sent b'Welcome', without a newline)\n"
    )


@pytest_twisted.ensureDeferred
async def test_server_closing_early(shape_server, tmp_path: Path) -> None:
    """``accept()`` then ``close()``: the upload fails with one true line, exit 1, at once."""
    from tests.cli.shapes import CloseAtOnce

    port, _ = shape_server(CloseAtOnce)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"jpeg")
    run = spawn(["netsuite", "upload", "--timeout", "60", f"127.0.0.1:{port}", str(photo)])
    assert await run.ended == 1
    assert run.err.decode() == f"netsuite upload: {photo}: the server closed the connection\n"
