"""
Running servers and load generators side by side, and reporting ratios.

Each scenario alternates its servers within one run, several repetitions,
so that a noisy shared machine affects all of them alike; the report gives
medians, min-max and each server's ratio to the baseline measured in the
same run.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PYTHON = sys.executable
TWISTD = str(Path(sys.executable).parent / "twistd")


def pinned(argv: list[str], cpu: int) -> list[str]:
    """``argv`` pinned to one CPU with taskset, when there is more than one and taskset exists."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu % (os.cpu_count() or 1)), *argv]
    return argv


@dataclass
class Server:
    """A server process started for a measurement; stopped by its PID."""

    name: str
    argv: list[str]
    ready: str  #: regex with one group: the port, in the server's output
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    def start(self, timeout: float = 20.0) -> int:
        self.process = subprocess.Popen(
            pinned(self.argv, 0), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT
        )
        deadline = time.monotonic() + timeout
        seen = b""
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            seen += line
            match = re.search(self.ready.encode(), line)
            if match:
                self.port = int(match.group(1))
                return self.port
        self.stop()
        raise RuntimeError(f"{self.name} did not start:\n{seen.decode(errors='replace')}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)  # by PID, never a shell's $!
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None


def run_load(argv: list[str], timeout: float) -> dict:
    """Run a load generator (pinned to the second CPU) and return its JSON result."""
    done = subprocess.run(pinned(argv, 1), capture_output=True, timeout=timeout, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.decode(errors='replace')}")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


@dataclass
class Series:
    """Repeated measurements of one metric for one server."""

    name: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def table(title: str, metric: str, series: Sequence[Series], baseline: str, higher_is_better: bool = True) -> str:
    """A markdown table: median, min-max and ratio to ``baseline`` per server."""
    base = next(s for s in series if s.name == baseline).median
    lines = [
        f"### {title}",
        "",
        f"| server | {metric} (median) | min – max | ratio to {baseline} |",
        "|---|---:|---:|---:|",
    ]
    for s in series:
        if base and s.median:
            ratio = f"{(s.median / base) if higher_is_better else (base / s.median):.2f}×"
        else:
            ratio = "n/a"
        lines.append(
            f"| {s.name} | {s.median:,.1f} | {min(s.values):,.1f} – {max(s.values):,.1f} | {ratio} |"
        )
    lines.append("")
    lines.append(f"{len(series[0].values)} repetitions, servers alternating; "
                 f"ratio > 1 means better than {baseline}.")
    return "\n".join(lines)


def machine_line() -> str:
    """CPU, kernel, Python and Twisted versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import twisted

    return (
        f"{cpu}, {os.cpu_count()} CPUs; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; Twisted {twisted.__version__}"
    )


def write_result(name: str, text: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text + "\n")
    return path
