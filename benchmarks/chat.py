"""
Chat fan-out: netsuite's chat next to the Twisted documentation's chat
server, measured in the same run.

Throughput: 100 clients in one room, 10 of them sending as fast as TCP
allows; reported as lines delivered per second to the 90 listeners.
Latency: the same clients, 200 lines/s in total; p99 delivery latency.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks._harness import HERE, PYTHON, TWISTD, Series, Server, compile_c, run_load, table
from benchmarks._previous import LABEL, previous_server, previous_tree

NETSUITE_FLAGS = [
    # Benchmarks measure raw fan-out: flood control and caps off.
    "--chat-flood-rate", "0", "--chat-max-pending", "0", "--chat-max-per-ip", "0",
    "--chat-max-connections", "0", "--history", "0",
]


def servers(cchat: Path | None = None, previous: Path | None = None) -> list[Server]:
    ready = r"listening on (\d+)"
    listed = []
    if cchat is not None:
        listed.append(Server("C epoll chat", [str(cchat)], ready))
    listed += [
        Server("twisted-docs-chat", [PYTHON, str(HERE / "servers" / "twisted_chat.py"), "0"], ready),
        Server("twisted-docs-chat+nodelay", [PYTHON, str(HERE / "servers" / "twisted_chat.py"), "0", "--nodelay"],
               ready),
        Server("asyncio chat", [PYTHON, str(HERE / "servers" / "asyncio_chat.py")], ready),
    ]
    try:
        import uvloop  # noqa: F401

        listed.append(Server("uvloop chat", [PYTHON, str(HERE / "servers" / "asyncio_chat.py"), "--uvloop"], ready))
    except ImportError:
        pass
    if previous is not None:
        listed.append(previous_server(previous, "chat", NETSUITE_FLAGS))
    listed.append(Server(
        "netsuite chat",
        [TWISTD, "-n", "--pidfile=", "netsuite", "--mode", "chat", "--listen", "tcp:0:interface=127.0.0.1",
         *NETSUITE_FLAGS],
        r"chat listening on tcp 127\.0\.0\.1:(\d+)",
    ))
    return listed


def run(quick: bool = False, clients: int = 100, senders: int = 10) -> str:
    with tempfile.TemporaryDirectory(prefix="netsuite-bench-") as tmp:
        cchat = compile_c(HERE / "servers" / "cchat.c", Path(tmp))
        previous = previous_tree(Path(tmp))
        report = _run(quick, clients, senders, cchat, previous, latency=True)
        if not quick:
            # Longer: the documentation server spends seconds on each read here.
            report += "\n\n" + _run(quick, 1000, senders, cchat, previous, latency=False, repetitions=3,
                                     duration=10.0, warmup=3.0)
    return report


def _run(
    quick: bool, clients: int, senders: int, cchat: Path | None, previous: Path | None, latency: bool,
    repetitions: int = 5,
    duration: float = 4.0, warmup: float = 1.0,
) -> str:
    repetitions = 1 if quick else repetitions
    if quick:
        duration, warmup = 0.5, 0.25
    throughput = {s.name: Series(s.name) for s in servers(cchat, previous)}
    p99 = {s.name: Series(s.name) for s in servers(cchat, previous)}
    p50 = {s.name: Series(s.name) for s in servers(cchat, previous)}
    def load(port: int, *extra: str) -> dict:
        argv = [PYTHON, "-m", "benchmarks.chatload", "--port", str(port),
                "--clients", str(clients), "--senders", str(senders),
                "--duration", str(duration), "--warmup", str(warmup), *extra]
        return run_load(argv, timeout=60 + duration * 4)

    for _ in range(repetitions):
        for server in servers(cchat, previous):
            # A fresh server for each measurement: no state carried over.
            try:
                throughput[server.name].values.append(load(server.start())["lines_per_s"])
            finally:
                server.stop()
            if not latency:
                continue
            try:
                result = load(server.start(), "--rate", "200")
                p99[server.name].values.append(result["p99_ms"])
                p50[server.name].values.append(result["p50_ms"])
            finally:
                server.stop()
    tables = [
        table(f"Chat fan-out: {clients} clients, {senders} senders, as fast as possible",
              "lines delivered/s", list(throughput.values()), ("twisted-docs-chat", f"{LABEL} chat")),
    ]
    if latency:
        tables += [
            table(f"Chat delivery latency: {clients} clients, {senders} senders, 200 lines/s",
                  "p99 ms", list(p99.values()), ("twisted-docs-chat", f"{LABEL} chat"), higher_is_better=False),
            table(f"Chat delivery latency: {clients} clients, {senders} senders, 200 lines/s",
                  "p50 ms", list(p50.values()), ("twisted-docs-chat", f"{LABEL} chat"), higher_is_better=False),
        ]
    return "\n\n".join(tables)
