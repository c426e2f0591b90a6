"""
Memory per idle connection: server RSS with COUNT idle connections open,
minus its RSS before, divided by COUNT, for netsuite's echo and chat and
the Twisted documentation's servers.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._harness import HERE, PYTHON, ROOT, TWISTD, Series, Server, pinned, table
from benchmarks._previous import LABEL, previous_server, previous_tree

CHAT_FLAGS = ["--chat-max-connections", "0", "--chat-max-per-ip", "0", "--chat-flood-rate", "0"]


def rss_kb(server: Server) -> int:
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_fds(server: Server) -> int:
    assert server.process is not None
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


def wait_for_fds(server: Server, wanted: int, timeout: float = 60.0) -> None:
    """Until the server has accepted every connection (it holds that many descriptors)."""
    deadline = time.monotonic() + timeout
    while open_fds(server) < wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} accepted only {open_fds(server)} of {wanted} descriptors")
        time.sleep(0.05)


def servers(previous: Path | None = None) -> list[tuple[Server, int]]:
    """(server, chat rooms to spread clients over; 0 for none)."""
    ready = r"listening on (\d+)"
    earlier = [] if previous is None else [
        (previous_server(previous, "echo", ["--echo-max-connections", "0"]), 0),
        (previous_server(previous, "chat", CHAT_FLAGS), 100),
    ]
    return [
        *earlier,
        (Server("twisted docs echo", [PYTHON, str(HERE / "servers" / "twisted_echo.py"), "tcp"], ready), 0),
        (Server("netsuite echo", [TWISTD, "-n", "--pidfile=", "netsuite", "--mode", "echo", "--listen",
                                  "tcp:0:interface=127.0.0.1", "--echo-max-connections", "0"],
                r"echo listening on tcp 127\.0\.0\.1:(\d+)"), 0),
        (Server("twisted docs chat", [PYTHON, str(HERE / "servers" / "twisted_chat.py"), "0"], ready), 0),
        (Server("netsuite chat", [TWISTD, "-n", "--pidfile=", "netsuite", "--mode", "chat", "--listen",
                                  "tcp:0:interface=127.0.0.1", *CHAT_FLAGS],
                r"chat listening on tcp 127\.0\.0\.1:(\d+)"), 100),
    ]


def run(quick: bool = False) -> str:
    with tempfile.TemporaryDirectory(prefix="netsuite-bench-") as tmp:
        return _run(quick, previous_tree(Path(tmp)))


def _run(quick: bool, previous: Path | None) -> str:
    count = 1000 if quick else 10_000
    repetitions = 1 if quick else 2
    per_connection = {server.name: Series(server.name) for server, _ in servers(previous)}
    for _ in range(repetitions):
        for server, rooms in servers(previous):
            port = server.start()
            try:
                before, fds = rss_kb(server), open_fds(server)
                argv = [PYTHON, "-m", "benchmarks.idleload", str(port), str(count)]
                if rooms:
                    argv += ["--chat-rooms", str(rooms)]
                loader = subprocess.Popen(pinned(argv, 1), stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
                try:
                    assert loader.stdout is not None
                    if loader.stdout.readline().strip() != b"ready":
                        raise RuntimeError(f"idle load generator failed against {server.name}")
                    wait_for_fds(server, fds + count)
                    after = rss_kb(server)
                finally:
                    assert loader.stdin is not None
                    loader.stdin.close()
                    loader.wait(60)
            finally:
                server.stop()
            per_connection[server.name].values.append((after - before) / count)
    return table(f"Server memory per idle connection, {count:,} connections", "KB",
                 list(per_connection.values()), (f"{LABEL} echo", f"{LABEL} chat"), higher_is_better=False)
