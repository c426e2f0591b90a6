"""
Files over HTTP: a 1 GiB PUT and GET over loopback with the netsuite web
service, next to the netsuite line protocol (``--mode upload``), plain
Twisted static files (``twistd web --path``, downloads only) and the C
source and sink (raw TCP, no protocol at all), in the same run; with the
web server's peak RSS.  Files on disk, fsynced by every server that stores.
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


def _netsuite(mode: str, storage: Path) -> Server:
    return Server(
        f"netsuite {mode}",
        [TWISTD, "-n", "--pidfile=", "netsuite", "--mode", mode, "--listen", "tcp:0:interface=127.0.0.1",
         "--storage", str(storage), "--max-file-size", "0", "--min-free", "0"],
        rf"{mode} listening on tcp 127\.0\.0\.1:(\d+)",
    )


def _twisted_static(directory: Path) -> Server:
    return Server("twistd web --path", [TWISTD, "-n", "--pidfile=", "web", "--listen", "tcp:0:interface=127.0.0.1",
                                        "--path", str(directory)],
                  r"Site starting on (\d+)")


def _ratios(title: str, rows: list[tuple[str, list[float], list[float], float]]) -> str:
    """The median of the per-repetition ratios (each of two runs made back to back), with every ratio."""
    lines = [f"### {title}", "", "| ratio | median of ratios | min – max | each repetition | target |",
             "|---|---:|---:|---|---|"]
    for name, ours, theirs, target in rows:
        each = [a / b for a, b in zip(ours, theirs) if b]
        if not each:
            continue
        median = statistics.median(each)
        lines.append(f"| {name} | {median:.2f}× | {min(each):.2f} – {max(each):.2f} | "
                     f"{', '.join(f'{r:.2f}' for r in each)} | ≥ {target}×: {'✓' if median >= target else '✗'} |")
    lines += ["", "Each repetition runs the C server and netsuite web back to back (which first alternates); "
              "each ratio compares two runs made moments apart, so drift between repetitions (the disk's "
              "writeback, other users of the machine) cancels out of it; what is left is the spread shown."]
    return "\n".join(lines)


def run(quick: bool = False) -> str:
    size = (64 << 20) if quick else (1 << 30)
    repetitions = 1 if quick else 5
    with tempfile.TemporaryDirectory(prefix="netsuite-bench-") as build:
        c_binary = compile_c(HERE / "servers" / "filebench.c", Path(build))
        return transfers(size, repetitions, c_binary, os.environ.get("BENCH_DIR"))


def transfers(size: int, repetitions: int, c_binary: Path | None, directory: str | None) -> str:
    with tempfile.TemporaryDirectory(prefix="netsuite-bench-", dir=directory) as tmp:
        workdir = Path(tmp)
        source = workdir / "source.bin"
        block = os.urandom(1 << 20)
        with open(source, "wb") as f:
            for _ in range(size >> 20):
                f.write(block)
        sinks, storage, static = workdir / "sinks", workdir / "storage", workdir / "static"
        static.mkdir()
        os.link(source, static / "bench.bin")
        timeout = 120 + size / 20e6
        up: dict[str, Series] = {}
        down: dict[str, Series] = {}
        rss = {"PUT": Series("netsuite web (PUT)"), "GET": Series("netsuite web (GET)")}

        def measure(server: Server, argv: list[str], results: dict[str, Series], peak: Series | None) -> None:
            port = server.start()
            try:
                argv = [a.replace("{port}", str(port)) for a in argv]
                results.setdefault(server.name, Series(server.name)).values.append(run_load(argv, timeout)["mb_per_s"])
                if peak is not None:
                    peak.values.append(_peak_rss_mb(server))
            finally:
                server.stop()

        def paired(order: list, rep: int) -> list:
            # The C server and netsuite web run back to back, which one first
            # alternating; the others after them, so each repetition gives one
            # same-moment ratio however much the disk or the machine drifts.
            first, web_, rest = order[0], order[-1], order[1:-1]
            return ([first, web_] if rep % 2 == 0 else [web_, first]) + rest

        line_load = [PYTHON, "-m", "benchmarks.fileload"]
        web_load = [PYTHON, "-m", "benchmarks.webload"]
        for rep in range(repetitions):
            # Uploads: every server starts from an empty directory, nothing left to write back;
            # the order rotates each repetition, as a disk may favour whoever writes next.
            uploads = [
                *([(Server("C sink", [str(c_binary), "sink", str(sinks)], r"listening on (\d+)"),
                    [*line_load, "upload", "{port}", str(source)], None)] if c_binary else []),
                (_netsuite("upload", storage), [*line_load, "upload", "{port}", str(source), "--netsuite", "line.bin"],
                 None),
                (_netsuite("web", storage), [*web_load, "upload", "{port}", str(source), "/files/bench.bin"],
                 rss["PUT"]),
            ]
            for server, argv, peak in (paired(uploads, rep) if c_binary else uploads):
                shutil.rmtree(sinks, ignore_errors=True)
                sinks.mkdir()
                if server.name == "netsuite web":
                    (storage / "bench.bin").unlink(missing_ok=True)
                if server.name == "netsuite upload":
                    (storage / "line.bin").unlink(missing_ok=True)
                os.sync()
                measure(server, argv, up, peak)
            # Downloads of what the uploads above stored.
            downloads = [
                *([(Server("C source", [str(c_binary), "source", str(source)], r"listening on (\d+)"),
                    [*line_load, "download", "{port}", str(size)], None)] if c_binary else []),
                (_netsuite("upload", storage), [*line_load, "download", "{port}", str(size), "--netsuite", "line.bin"],
                 None),
                (_twisted_static(static), [*web_load, "download", "{port}", str(size), "/bench.bin"], None),
                (_netsuite("web", storage), [*web_load, "download", "{port}", str(size), "/files/bench.bin"],
                 rss["GET"]),
            ]
            for server, argv, peak in (paired(downloads, rep) if c_binary else downloads):
                measure(server, argv, down, peak)

        label = f"{size >> 20} MiB"
        where = "on disk" if directory is None else f"files in {directory}"
        ratios = []
        if c_binary:
            ratios.append(_ratios(f"netsuite web against the C servers, {label}, {where}: each repetition's ratio", [
                ("PUT / C sink", up["netsuite web"].values, up["C sink"].values, 0.7),
                ("GET / C source", down["netsuite web"].values, down["C source"].values, 0.8),
            ]))
        return "\n\n".join([*ratios,
            table(f"Upload of {label} over loopback, {where} (web: HTTP PUT)", "MB/s", list(up.values()),
                  baseline="C sink" if "C sink" in up else None),
            table(f"Download of {label} over loopback, {where} (web: HTTP GET)", "MB/s", list(down.values()),
                  baseline="C source" if "C source" in down else None),
            table(f"netsuite web server peak RSS, {label}, {where}", "MB", list(rss.values()), rss["PUT"].name,
                  higher_is_better=False),
        ])
