"""
The chat's Redis backplane: what joining nodes through Redis costs, measured
in the same run as one chat process without it.

Setups: one node without a backplane; one node with Redis; two nodes on one
Redis with the clients (and senders) split between them; ``--workers 2``
with Redis; and two nodes of the code before the latency work
(:data:`BEFORE`), so a change to the node is judged in the same run.

Throughput: 100 clients in one room, 10 of them sending 64-byte lines as
fast as TCP allows, lines delivered per second to the 90 others.

Latency: the same 100 clients, 10 senders each sending 100 lines/s (1,000
lines/s in all, 64 bytes each), so every node delivers 100,000 lines/s in
all; each line carries the time it was written and its sender's number, and
is timed by every one of the 90 receivers when the load generator's event
loop reads it from the socket (``chatload --stamp-on-arrival``).  p50 and
p99 over all deliveries; with two nodes also split into receivers on the
sender's node ("same") and on the other node ("cross": through Redis).
The same is measured with 20 clients (10 senders, 10 receivers), where the
load generator and the nodes do a fifth of the work: the difference between
the two shows how much of the tail is the machine being busy rather than
the path through Redis.

Each process's CPU (the nodes, Redis, the load generator) is reported as a
share of one core during each run.  Aims (issue 14): a node with the
backplane at least 0.5x the fan-out of one without; p99 under 10 ms at
1,000 lines/s across two nodes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._harness import PYTHON, TWISTD, Series, Server, cpu_seconds, run_load, table
from benchmarks._previous import previous_tree
from benchmarks.chat import NETSUITE_FLAGS

BASELINE = "netsuite chat, no backplane"
RATE = 1000
#: The node's code before the latency work (TCP_NODELAY to Redis, a frozen
#: heap after start): run beside today's.
BEFORE = "3889eb7"


@dataclass(frozen=True)
class Setup:
    name: str
    nodes: int
    redis: bool
    workers: int = 1
    #: Run the ``suite`` of this commit instead of today's.
    commit: str | None = None


SETUPS = [
    Setup(BASELINE, 1, False),
    Setup("netsuite chat + Redis, 1 node", 1, True),
    Setup("netsuite chat + Redis, 2 nodes", 2, True),
    Setup("netsuite chat + Redis, --workers 2", 1, True, workers=2),
    Setup(f"previous netsuite ({BEFORE}) + Redis, 2 nodes", 2, True, commit=BEFORE),
]


class Redis:
    """A private redis-server without persistence, stopped by PID."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if b"PONG" in s.recv(64):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(10)


def _nodes(setup: Setup, redis: Redis | None, workdir: Path) -> list[Server]:
    flags = [*NETSUITE_FLAGS]
    if redis is not None:
        flags += ["--chat-backplane", f"redis://127.0.0.1:{redis.port}"]
    if setup.workers > 1:
        flags += ["--workers", str(setup.workers)]
    command = [TWISTD, "-n", "--pidfile=", "netsuite"]
    if setup.commit is not None:
        tree = workdir / f"previous-{setup.commit}"
        if not tree.exists() and previous_tree(workdir, setup.commit) is None:
            raise RuntimeError(f"no git history to extract {setup.commit} from")
        # The same twistd, with that commit's suite first on the path: the
        # two versions differ in their code only, not in how they start.
        command = ["env", f"PYTHONPATH={tree}", *command]
    return [
        Server(f"{setup.name} #{i}",
               [*command, "--mode", "chat", "--listen", "tcp:0:interface=127.0.0.1", *flags],
               r"chat listening on tcp 127\.0\.0\.1:(\d+)", pin=False)
        for i in range(setup.nodes)
    ]


def _measure(setup: Setup, argv: list[str], timeout: float, workdir: Path) -> tuple[dict, list[float], float]:
    """One load run on fresh servers: its result, each node's CPU share, Redis's CPU share."""
    redis = Redis(workdir) if setup.redis else None
    nodes = _nodes(setup, redis, workdir)
    try:
        ports = [node.start() for node in nodes]
        if redis is not None:
            # Every node (each worker too) connected to Redis before the load.
            deadline = time.monotonic() + 20
            while sum(node.seen().count(b"backplane connected") for node in nodes) < setup.nodes * setup.workers:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{setup.name}: the nodes did not all connect to Redis")
                time.sleep(0.02)
        pids = [[int(p) for p in node.pids().split(",")] for node in nodes]
        before = [sum(cpu_seconds(p) for p in group) for group in pids]
        redis_before = cpu_seconds(redis.process.pid) if redis else 0.0
        started = time.monotonic()
        result = run_load([*argv[:1], *argv[1:], *[a for port in ports for a in ("--port", str(port))]], timeout)
        wall = time.monotonic() - started
        cpu = [(sum(cpu_seconds(p) for p in group) - b) / wall for group, b in zip(pids, before)]
        redis_cpu = (cpu_seconds(redis.process.pid) - redis_before) / wall if redis else 0.0
        return result, cpu, redis_cpu
    finally:
        for node in nodes:
            node.stop()
        if redis is not None:
            redis.stop()


def run(quick: bool = False, clients: int = 100, senders: int = 10, small: int = 20) -> str:
    repetitions = 1 if quick else 3
    duration, warmup = (1.0, 1.0) if quick else (4.0, 1.0)
    timeout = 60 + duration * 4

    def load(count: int) -> list[str]:
        return [PYTHON, "-m", "benchmarks.chatload", "--clients", str(count), "--senders", str(senders),
                "--duration", str(duration), "--warmup", str(warmup)]

    latency_flags = ["--rate", str(RATE), "--stamp-on-arrival"]
    names = [s.name for s in SETUPS]
    throughput = {n: Series(n) for n in names}
    p50, p99, p99_small = ({n: Series(n) for n in names} for _ in range(3))
    #: Two-node setups: p99 of receivers on the sender's node, and on the other.
    split: dict[str, tuple[Series, Series]] = {s.name: (Series("same"), Series("cross")) for s in SETUPS if s.nodes > 1}
    cpu: dict[str, list[tuple[list[float], float, list[float], float, float]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="netsuite-bench-redis-") as tmp:
        for _ in range(repetitions):
            for setup in SETUPS:
                result, nodes_cpu, redis_cpu = _measure(setup, load(clients), timeout, Path(tmp))
                throughput[setup.name].values.append(result["lines_per_s"])
                latency, lat_nodes_cpu, lat_redis_cpu = _measure(setup, [*load(clients), *latency_flags], timeout, Path(tmp))
                p50[setup.name].values.append(latency["p50_ms"])
                p99[setup.name].values.append(latency["p99_ms"])
                if setup.name in split:
                    split[setup.name][0].values.append(latency["p99_same_ms"])
                    split[setup.name][1].values.append(latency["p99_cross_ms"])
                few, _, _ = _measure(setup, [*load(small), *latency_flags], timeout, Path(tmp))
                p99_small[setup.name].values.append(few["p99_ms"])
                cpu[setup.name].append((nodes_cpu, redis_cpu, lat_nodes_cpu, lat_redis_cpu, latency["loadgen_cpu"]))
    latency_title = (f"Chat delivery latency across nodes: {clients} clients ({senders} senders, "
                     f"{clients - senders} receivers), 64-byte lines, {RATE} lines/s in all")
    tables = [
        table(f"Chat fan-out across nodes: {clients} clients, {senders} senders, as fast as possible",
              "lines delivered/s", list(throughput.values()), BASELINE),
        table(latency_title, "p99 ms", list(p99.values()), BASELINE, higher_is_better=False),
        table(latency_title, "p50 ms", list(p50.values()), BASELINE, higher_is_better=False),
        table(f"Chat delivery latency across nodes: {small} clients ({senders} senders, {small - senders} receivers), "
              f"{RATE} lines/s in all", "p99 ms", list(p99_small.values()), BASELINE, higher_is_better=False),
        _split_table(split, clients),
        _cpu_table(cpu),
    ]
    return "\n\n".join(tables)


def _split_table(split: dict[str, tuple[Series, Series]], clients: int) -> str:
    lines = [
        f"### p99 by where the receiver is, two nodes, {clients} clients, {RATE} lines/s (median of runs)",
        "",
        "| setup | receivers on the sender's node | receivers on the other node (through Redis) |",
        "|---|---:|---:|",
    ]
    for name, (same, cross) in split.items():
        lines.append(f"| {name} | {same.median:.1f} ms | {cross.median:.1f} ms |")
    return "\n".join(lines)


def _cpu_table(cpu: dict[str, list[tuple[list[float], float, list[float], float, float]]]) -> str:
    def pct(values: list[float]) -> str:
        return " + ".join(f"{v * 100:.0f}%" for v in values)

    lines = [
        "### CPU during each run (share of one core, the middle repetition)",
        "",
        "| setup | nodes, fan-out run | Redis, fan-out run | nodes, 1,000 lines/s | Redis, 1,000 lines/s "
        "| load generator, 1,000 lines/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in cpu.items():
        nodes, redis, lat_nodes, lat_redis, loadgen = runs[len(runs) // 2]
        lines.append(f"| {name} | {pct(nodes)} | {redis * 100:.0f}% | {pct(lat_nodes)} | {lat_redis * 100:.0f}% "
                     f"| {loadgen * 100:.0f}% |")
    lines.append("")
    lines.append("Nodes: each node process with its workers; --workers 2 is one entry for both processes.")
    return "\n".join(lines)
