"""
Fairness: echo round-trip latency (p50, p99) in a ``--mode all`` process,
quiet and while hostile clients pipeline file-service commands at the same
process without reading any reply (the attack of the file-service issue:
unread replies piling up, one client holding the reactor).  Same run,
alternating.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._harness import PYTHON, ROOT, TWISTD, Series, Server, pinned, run_load, table


def _all_mode(storage: Path) -> Server:
    """``twistd netsuite --mode all`` with every service on a free loopback port."""
    help_text = subprocess.run([TWISTD, "netsuite", "--help"], capture_output=True, text=True, cwd=ROOT).stdout
    argv = [TWISTD, "-n", "--pidfile=", "netsuite", "--mode", "all", "--storage", str(storage)]
    for name in sorted(set(re.findall(r"--([a-z-]+)-listen", help_text))):
        scheme = "udp" if name.startswith("udp") else "tcp"
        argv += [f"--{name}-listen", f"{scheme}:0:interface=127.0.0.1"]
    return Server("netsuite --mode all", argv, r"\becho listening on tcp 127\.0\.0\.1:(\d+)")


def _upload_port(server: Server, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(rb"\bupload listening on tcp 127\.0\.0\.1:(\d+)", server.seen())
        if match:
            return int(match.group(1))
        time.sleep(0.05)
    raise RuntimeError("the upload service did not start")


def run(quick: bool = False) -> str:
    count = 2000 if quick else 20000
    repetitions = 1 if quick else 5
    hostility = 5.0 if quick else 30.0
    # The quiet run is the baseline: its name does not start with "netsuite".
    quiet = {k: Series(f"echo, file service quiet ({k})") for k in ("p50", "p99")}
    attacked = {k: Series(f"netsuite echo, file service attacked ({k})") for k in ("p50", "p99")}
    sent = Series("hostile bytes sent")
    with tempfile.TemporaryDirectory(prefix="netsuite-bench-") as tmp:
        server = _all_mode(Path(tmp) / "storage")
        echo_port = server.start()
        try:
            upload_port = _upload_port(server)
            echo = [PYTHON, "-m", "benchmarks.filefair", "echo", str(echo_port), str(count)]
            for _ in range(repetitions):
                result = run_load(echo, 600)
                quiet["p50"].values.append(result["p50_ms"])
                quiet["p99"].values.append(result["p99_ms"])
                hostile = subprocess.Popen(
                    pinned([PYTHON, "-m", "benchmarks.filefair", "hostile", str(upload_port), str(hostility)], 1),
                    stdout=subprocess.PIPE, cwd=ROOT,
                )
                try:
                    time.sleep(1.0)  # the attack in full swing before measuring
                    result = run_load(echo, 600)
                    attacked["p50"].values.append(result["p50_ms"])
                    attacked["p99"].values.append(result["p99_ms"])
                finally:
                    out, _ = hostile.communicate(timeout=hostility + 60)
                sent.values.append(json.loads(out.decode().strip().splitlines()[-1])["bytes_sent"])
        finally:
            server.stop()
    lines = [
        table(f"Echo round trip (64 bytes), {count} sequential, median of the run's p50", "ms",
              [quiet["p50"], attacked["p50"]], higher_is_better=False),
        table(f"Echo round trip (64 bytes), {count} sequential, p99", "ms",
              [quiet["p99"], attacked["p99"]], higher_is_better=False),
        f"The attack: 4 connections to the file service of the same process pipelining "
        f"STAT, GET, LIST and unknown commands for {hostility:g} s without reading; "
        f"median bytes the server let them send: {int(sent.median):,}.",
    ]
    return "\n\n".join(lines)
