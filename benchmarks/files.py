"""
File transfer: a 1 GiB upload and download over loopback, netsuite's file
service next to a C server (blocking sockets, 1 MiB reads, the practical
limit) and the plain Twisted "write each chunk to a file" sink, in the same
run; with the netsuite server's peak RSS.  Every server fsyncs the upload.

Two passes: files on disk (what a user gets; on a virtual machine the disk
makes this noisy, so every run starts with nothing left to write back), and
files in memory (tmpfs), where the servers' own costs decide.

The C baseline and netsuite run back to back in every repetition (their
order alternating), after one untimed warm-up transfer each, and besides
the tables of medians the report gives the median of the per-repetition
ratios: two transfers a few seconds apart share the machine's mood far
better than medians over the whole run.  Shorter runs on a shared machine:
``BENCH_FILES_MIB`` (file size, default 1024), ``BENCH_FILES_REPEAT``
(default 5), ``BENCH_FILES_BASELINES=c`` (only the C servers), and
``BENCH_FILES_TMPFS=0`` (no in-memory pass).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from pathlib import Path

from benchmarks._harness import HERE, PYTHON, TWISTD, Series, Server, compile_c, run_load, table


def _peak_rss_mb(server: Server) -> float:
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _netsuite(storage: Path) -> Server:
    return Server(
        "netsuite upload",
        [TWISTD, "-n", "--pidfile=", "netsuite", "--mode", "upload", "--listen", "tcp:0:interface=127.0.0.1",
         "--storage", str(storage), "--max-file-size", "0", "--min-free", "0"],
        r"upload listening on tcp 127\.0\.0\.1:(\d+)",
    )


def _tmpfs_with_room(size: int) -> str | None:
    """A memory-backed directory (/dev/shm) with room for the source and one upload, if there is one."""
    shm = Path("/dev/shm")
    try:
        if shm.is_dir() and shutil.disk_usage(shm).free > 3 * size and os.access(shm, os.W_OK):
            return str(shm)
    except OSError:
        pass
    return None


def run(quick: bool = False) -> str:
    size = (64 << 20) if quick else int(os.environ.get("BENCH_FILES_MIB", "1024")) << 20
    repetitions = 1 if quick else int(os.environ.get("BENCH_FILES_REPEAT", "5"))
    with tempfile.TemporaryDirectory(prefix="netsuite-bench-") as build:
        # Compiled outside the data directory: /dev/shm is often noexec.
        c_binary = compile_c(HERE / "servers" / "filebench.c", Path(build))
        report = [transfers(size, repetitions, c_binary, os.environ.get("BENCH_DIR"), "on disk, fsynced")]
        in_memory = os.environ.get("BENCH_FILES_TMPFS", "1") != "0"
        tmpfs = None if quick or not in_memory else _tmpfs_with_room(size)  # the same code as on disk: not for a smoke run
        if tmpfs is not None:
            report.append(transfers(size, repetitions, c_binary, tmpfs, "in memory (tmpfs)"))
        else:
            report.append("(in-memory pass skipped: quick run, or no /dev/shm with room)")
    return "\n\n".join(report)


def transfers(size: int, repetitions: int, c_binary: Path | None, directory: str | None, where: str) -> str:
    """Uploads and downloads of ``size`` bytes with every server, their files kept in ``directory``."""
    with tempfile.TemporaryDirectory(prefix="netsuite-bench-", dir=directory) as tmp:
        workdir = Path(tmp)
        source = workdir / "source.bin"
        block = os.urandom(1 << 20)
        with open(source, "wb") as f:
            for _ in range(size >> 20):
                f.write(block)
        sinks = workdir / "sinks"
        sinks.mkdir()
        storage = workdir / "storage"

        def upload_servers() -> list[Server]:
            servers = []
            if c_binary is not None:
                servers.append(Server("C sink", [str(c_binary), "sink", str(sinks)], r"listening on (\d+)"))
            servers.append(_netsuite(storage))
            if os.environ.get("BENCH_FILES_BASELINES") != "c":
                servers.append(Server("twisted sink", [PYTHON, str(HERE / "servers" / "twisted_sink.py"), str(sinks)],
                                      r"listening on (\d+)"))
                servers.append(Server("asyncio sink", [PYTHON, str(HERE / "servers" / "asyncio_sink.py"), str(sinks)],
                                      r"listening on (\d+)"))
            return servers

        def download_servers() -> list[Server]:
            servers = []
            if c_binary is not None:
                servers.append(Server("C source", [str(c_binary), "source", str(source)], r"listening on (\d+)"))
            servers.append(_netsuite(storage))
            return servers

        up = {s.name: Series(s.name) for s in upload_servers()}
        down = {s.name: Series(s.name) for s in download_servers()}
        rss = {"upload": Series("netsuite upload (upload)"), "download": Series("netsuite upload (download)")}
        timeout = 120 + size / 20e6

        def measure(server: Server, direction: str, what: str, results: dict[str, Series], peak: Series) -> None:
            """One transfer against a fresh server; netsuite's peak RSS too."""
            port = server.start()
            try:
                argv = [PYTHON, "-m", "benchmarks.fileload", direction, str(port), what]
                netsuite = server.name == "netsuite upload"
                if netsuite:
                    argv += ["--netsuite", "bench.bin"]
                results[server.name].values.append(run_load(argv, timeout)["mb_per_s"])
                if netsuite:
                    peak.values.append(_peak_rss_mb(server))
            finally:
                server.stop()

        def upload_with(server: Server, results: dict[str, Series], peak: Series) -> None:
            # Every server starts from an empty directory, and with
            # nothing of the previous run still being written back.
            shutil.rmtree(sinks, ignore_errors=True)
            sinks.mkdir()
            if server.name == "netsuite upload":
                shutil.rmtree(storage, ignore_errors=True)
            os.sync()
            measure(server, "upload", str(source), results, peak)

        if repetitions > 1:
            # Warm-up, not counted: the page cache, the interpreter's first
            # imports, the disk's first new file.
            scratch = {s.name: Series(s.name) for s in upload_servers()}
            for server in upload_servers():
                upload_with(server, scratch, Series("warm-up"))
            for server in download_servers():
                measure(server, "download", str(size), {server.name: Series(server.name)}, Series("warm-up"))

        for rep in range(repetitions):
            servers = upload_servers()
            # The C baseline and netsuite back to back, their order
            # alternating; the other sinks after them.
            if rep % 2:
                servers[:2] = servers[1::-1]
            for server in servers:
                upload_with(server, up, rss["upload"])
            # The netsuite upload above left bench.bin (with its digest indexed) to download.
            servers = download_servers()
            for server in servers[::-1] if rep % 2 else servers:
                measure(server, "download", str(size), down, rss["download"])

        label = f"{size >> 20} MiB"
        return "\n\n".join([
            table(f"Upload of {label} over loopback, {where}", "MB/s", list(up.values()),
                  baseline="C sink" if "C sink" in up else None) + paired(up, "C sink"),
            table(f"Download of {label} over loopback, {where}", "MB/s", list(down.values())) + paired(down, "C source"),
            table(f"netsuite file server peak RSS, {where}", "MB", list(rss.values()), rss["upload"].name,
                  higher_is_better=False),
        ])


def paired(results: dict[str, Series], baseline: str) -> str:
    """The median of netsuite's per-repetition ratios to ``baseline``, measured back to back."""
    if baseline not in results:
        return ""
    ratios = sorted(n / b for n, b in zip(results["netsuite upload"].values, results[baseline].values) if b)
    if not ratios:
        return ""
    middle = statistics.median(ratios)
    listed = ", ".join(f"{r:.2f}" for r in ratios)
    return (f"\n\nnetsuite / {baseline}, each repetition's pair run back to back: median **{middle:.2f}×** "
            f"(all: {listed}).")
