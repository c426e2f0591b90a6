"""
File transfer: a 1 GiB upload and download over loopback, netsuite's file
service next to a C server (blocking sockets, 1 MiB reads, the practical
limit) and the plain Twisted "write each chunk to a file" sink, in the same
run; with the netsuite server's peak RSS.  Every server fsyncs the upload.
"""

from __future__ import annotations

import os
import shutil
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


def run(quick: bool = False) -> str:
    size = (64 << 20) if quick else (1 << 30)
    repetitions = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="netsuite-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        workdir = Path(tmp)
        source = workdir / "source.bin"
        block = os.urandom(1 << 20)
        with open(source, "wb") as f:
            for _ in range(size >> 20):
                f.write(block)
        c_binary = compile_c(HERE / "servers" / "filebench.c", workdir)
        sinks = workdir / "sinks"
        sinks.mkdir()
        storage = workdir / "storage"

        def upload_servers() -> list[Server]:
            servers = []
            if c_binary is not None:
                servers.append(Server("C sink", [str(c_binary), "sink", str(sinks)], r"listening on (\d+)"))
            servers.append(Server("twisted sink", [PYTHON, str(HERE / "servers" / "twisted_sink.py"), str(sinks)],
                                  r"listening on (\d+)"))
            servers.append(Server("asyncio sink", [PYTHON, str(HERE / "servers" / "asyncio_sink.py"), str(sinks)],
                                  r"listening on (\d+)"))
            servers.append(_netsuite(storage))
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

        for rep in range(repetitions):
            servers = upload_servers()
            # Rotate the order each repetition: on some machines writing a
            # new file is much faster right after another one was deleted.
            servers = servers[rep % len(servers):] + servers[: rep % len(servers)]
            for server in servers:
                netsuite = server.name == "netsuite upload"
                # Every server starts from an empty directory.
                shutil.rmtree(sinks, ignore_errors=True)
                sinks.mkdir()
                if netsuite:
                    shutil.rmtree(storage, ignore_errors=True)
                measure(server, "upload", str(source), up, rss["upload"])
            # The netsuite upload above left bench.bin (with its digest indexed) to download.
            for server in download_servers():
                measure(server, "download", str(size), down, rss["download"])

        label = f"{size >> 20} MiB"
        return "\n\n".join([
            table(f"Upload of {label} over loopback (fsynced)", "MB/s", list(up.values())),
            table(f"Download of {label} over loopback", "MB/s", list(down.values())),
            table("netsuite file server peak RSS", "MB", list(rss.values()), rss["upload"].name,
                  higher_is_better=False),
        ])
