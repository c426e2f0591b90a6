"""
TCP and UDP echo: netsuite's echo services (every limit and guard on) next
to the echo servers of Twisted's documentation, the same in asyncio, and a
C epoll server, driven by the C load generator (benchmarks/loadgen.c),
which verifies every echoed byte.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks._harness import (
    CHARTS,
    HERE,
    PYTHON,
    TWISTD,
    Series,
    Server,
    compile_c,
    cpu_seconds,
    head_to_head,
    run_load,
    table,
)
from benchmarks._previous import LABEL, previous_server, previous_tree

# netsuite's UDP limits stay on (each datagram goes through the guard and
# both token buckets) with rates far above what the load generator sends and
# the default --udp-burst: a rate above burst/refill-interval must still be
# honoured (it once capped one host at ~10,000 datagrams/s).
UDP_LIMITS = ["--udp-rate", "10000000", "--udp-global-rate", "100000000"]


def servers(kind: str, cecho: Path | None, previous: Path | None = None) -> list[Server]:
    ready = r"listening on (\d+)"
    listed = []
    if cecho is not None:
        listed.append(Server("C epoll", [str(cecho), kind], ready))
    listed += [
        Server("twisted docs", [PYTHON, str(HERE / "servers" / "twisted_echo.py"), kind], ready),
        Server("asyncio", [PYTHON, str(HERE / "servers" / "asyncio_echo.py"), kind], ready),
    ]
    try:
        import uvloop  # noqa: F401

        listed.append(Server("uvloop", [PYTHON, str(HERE / "servers" / "asyncio_echo.py"), kind, "--uvloop"], ready))
    except ImportError:
        pass
    mode = "echo" if kind == "tcp" else "udp-echo"
    argv = [TWISTD, "-n", "--pidfile=", "netsuite", "--mode", mode, "--listen", f"{kind}:0:interface=127.0.0.1"]
    if kind == "udp":
        argv += UDP_LIMITS
    if previous is not None:
        listed.append(previous_server(previous, mode, UDP_LIMITS if kind == "udp" else [], kind, f"{LABEL} {mode}"))
    # The worker announces itself too: wait for it before measuring.
    worker_ready = rf"\[worker-1\] .* {mode} listening on {kind} 127\.0\.0\.1:(\d+)"
    listed += [
        Server(f"netsuite {mode}", argv, rf"{mode} listening on {kind} 127\.0\.0\.1:(\d+)"),
        Server(f"netsuite {mode} --workers 2", [*argv, "--workers", "2"], worker_ready, pin=False),
    ]
    return listed


def head_to_head_table(
    loadgen: Path, repetitions: int, warmup: str, seconds: str, quick: bool = False, previous: Path | None = None
) -> str:
    """
    TCP echo with two servers sharing CPU 0 at the same time: the ratio of
    their rates is the ratio of their costs per message (or per byte).  The
    documentation server against itself shows the method's own error.
    """
    def docs() -> Server:
        return Server("twisted docs", [PYTHON, str(HERE / "servers" / "twisted_echo.py"), "tcp"], r"listening on (\d+)")

    def netsuite() -> Server:
        argv = [TWISTD, "-n", "--pidfile=", "netsuite", "--mode", "echo", "--listen", "tcp:0:interface=127.0.0.1"]
        return Server("netsuite echo", argv, r"echo listening on tcp 127\.0\.0\.1:(\d+)")

    def asyncio_() -> Server:
        return Server("asyncio", [PYTHON, str(HERE / "servers" / "asyncio_echo.py"), "tcp"], r"listening on (\d+)")

    small = (("100", "16", "64"), "messages_per_s")
    bulk = (("10", "4", "65536"), "mb_per_s")
    pairs = {
        "twisted docs vs twisted docs (the method's error), 64 B": (docs, docs, small),
        "netsuite echo vs twisted docs, 64 B": (docs, netsuite, small),
        "netsuite echo vs asyncio, 64 B": (asyncio_, netsuite, small),
        "netsuite echo vs twisted docs, 64 KiB": (docs, netsuite, bulk),
    }
    if previous is not None:
        pairs[f"netsuite echo vs {LABEL}, 64 B"] = (lambda: previous_server(previous, "echo", []), netsuite, small)
    if quick:
        del pairs["netsuite echo vs asyncio, 64 B"]
    ratios = {name: Series(name) for name in pairs}
    for _ in range(repetitions):
        for name, (first, second, ((conns, inflight, size), metric)) in pairs.items():

            def load(port: int, conns: str = conns, inflight: str = inflight, size: str = size) -> list[str]:
                return [str(loadgen), "tcp", str(port), conns, inflight, size, warmup, seconds]

            ratios[name].values.append(head_to_head(first(), second(), load, metric))
    lines = [
        "### TCP echo head to head, two servers sharing one CPU: 100 connections × 16 messages of 64 B, "
        "or 10 connections × 4 messages of 64 KiB, in flight",
        "",
        "| pair | ratio of messages/s (64 B) or MB/s (64 KiB), median | min – max |",
        "|---|---:|---:|",
    ]
    lines += [f"| {s.name} | {s.median:.3f}× | {min(s.values):.3f} – {max(s.values):.3f} |" for s in ratios.values()]
    lines += [
        "",
        (f"{repetitions} repetitions. Both servers of a pair run at once, pinned to CPU 0, each with its own "
         "load generator on CPU 1; the scheduler gives each busy server half the CPU, so the ratio of their "
         "rates is the inverse ratio of their CPU cost per message, and the machine's noise hits both alike."),
    ]
    CHARTS.append(("TCP echo head to head (ratio)", "ratio", list(ratios.values())))
    return "\n".join(lines)


def run(quick: bool = False) -> str:
    repetitions = 1 if quick else 3
    warmup, seconds = ("0.2", "0.5") if quick else ("0.5", "2")
    with tempfile.TemporaryDirectory(prefix="netsuite-bench-") as tmp:
        loadgen = compile_c(HERE / "loadgen.c", Path(tmp))
        if loadgen is None:
            return "(echo scenarios need a C compiler for the load generator: skipped)"
        cecho = compile_c(HERE / "servers" / "cecho.c", Path(tmp))
        previous = previous_tree(Path(tmp))
        tcp_cases = {
            "latency": ("1", "1", "64"),
            "pipelined": ("100", "16", "64"),
            "bulk": ("10", "4", "65536"),
        }
        results: dict[str, dict[str, Series]] = {}
        worker_shares: list[list[float]] = []  # per worker, % of a core, in the 100 × 16 runs of --workers 2
        for case in [*tcp_cases, "latency-p99", "pipelined-cpu", "udp", "udp-loss"]:
            kind = "udp" if case.startswith("udp") else "tcp"
            results[case] = {s.name: Series(s.name) for s in servers(kind, cecho, previous)}
        for _ in range(repetitions):
            for server in servers("tcp", cecho, previous):
                for case, (conns, inflight, size) in tcp_cases.items():
                    port = server.start()  # a fresh server per measurement
                    try:
                        # --workers: the first process serves too, beside the ones it starts.
                        workers = [] if server.pin else [int(p) for p in server.pids().split(",")]
                        before, started = [cpu_seconds(p) for p in workers], time.monotonic()
                        result = run_load(
                            [str(loadgen), "tcp", str(port), conns, inflight, size, warmup, seconds, server.pids()], 60
                        )
                        elapsed = time.monotonic() - started
                        if workers and case == "pipelined":
                            worker_shares.append(
                                [100 * (cpu_seconds(p) - b) / elapsed for p, b in zip(workers, before)]
                            )
                    finally:
                        server.stop()
                    if result["errors"]:
                        raise RuntimeError(f"{server.name} echoed wrong bytes: {result}")
                    if case == "latency":
                        results["latency"][server.name].values.append(result["p50_us"])
                        results["latency-p99"][server.name].values.append(result["p99_us"])
                    elif case == "pipelined":
                        results[case][server.name].values.append(result["messages_per_s"])
                        busy = 100 * result["server_cpu_s"] / float(seconds)
                        results["pipelined-cpu"][server.name].values.append(busy)
                    else:
                        results[case][server.name].values.append(result["mb_per_s"])
            for server in servers("udp", cecho, previous):
                port = server.start()
                try:
                    result = run_load([str(loadgen), "udp", str(port), "16", "4", "64", warmup, seconds], 60)
                finally:
                    server.stop()
                results["udp"][server.name].values.append(result["replies_per_s"])
                results["udp-loss"][server.name].values.append(result["loss_ratio"] * 100)
        report = [
            table("TCP echo, 1 connection × 1 message of 64 B in flight: round trip", "p50 µs",
                  list(results["latency"].values()), ("twisted docs", f"{LABEL} echo"), higher_is_better=False),
            table("TCP echo, 1 connection × 1 message of 64 B in flight: round trip", "p99 µs",
                  list(results["latency-p99"].values()), ("twisted docs", f"{LABEL} echo"), higher_is_better=False),
            table("TCP echo, 100 connections × 16 messages of 64 B in flight", "messages/s",
                  list(results["pipelined"].values()), ("twisted docs", f"{LABEL} echo")),
            table("TCP echo, 10 connections × 4 messages of 64 KiB in flight", "MB/s",
                  list(results["bulk"].values()), ("twisted docs", f"{LABEL} echo")),
            table("UDP echo, 16 sockets × 4 datagrams of 64 B in flight", "replies/s",
                  list(results["udp"].values()), ("twisted docs", f"{LABEL} udp-echo")),
        ]
        loss = ", ".join(f"{s.name} {s.median:.3f}%" for s in results["udp-loss"].values())
        report.append(f"UDP loss (median): {loss}.")
        report.append(head_to_head_table(loadgen, repetitions, warmup, seconds, quick, previous))
        if worker_shares:
            shares = "; ".join(" + ".join(f"{share:.0f} %" for share in run) for run in worker_shares)
            report.append(f"`--workers 2`, CPU of each worker process during the 100 × 16 runs: {shares} "
                          "(the kernel spreads connections over the processes sharing the port).")
        busy = ", ".join(f"{s.name} {s.median:.0f} %" for s in results["pipelined-cpu"].values())
        report.append(
            "Server CPU busy during the 100 × 16 runs (median; 100 % is one core): "
            f"{busy}. A server busy all the time was measured at its own limit, not the load generator's."
        )
        if cecho is not None:
            pipelined = results["pipelined"]
            fastest = max((s for name, s in pipelined.items() if name in ("C epoll", "uvloop")), key=lambda s: s.median)
            docs = pipelined["twisted docs"].median
            report.append(
                f"Load generator headroom: it drives {fastest.name} at {fastest.median:,.0f} messages/s, "
                f"{fastest.median / docs:.1f}× the Twisted documentation server, with the C server partly idle "
                "(see its CPU above): that ceiling is the load generator and the kernel on this machine."
            )
        return "\n\n".join(report)
