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
    pin: bool = True  #: to CPU 0; off for servers with several processes



    def start(self, timeout: float = 20.0) -> int:
        self.process = subprocess.Popen(
            pinned(self.argv, 0) if self.pin else self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT
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


def table(
    title: str, metric: str, series: Sequence[Series], baseline: str | None = None, higher_is_better: bool = True
) -> str:
    """
    A markdown table: median, min-max and ratio per server.  Ratios are to
    ``baseline``, or by default to the best baseline (every server whose
    name does not start with "netsuite") measured in the same run.
    """
    if baseline is None:
        others = [s for s in series if not s.name.startswith("netsuite")] or list(series)
        best = (max if higher_is_better else min)(others, key=lambda s: s.median)
        baseline = best.name
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
    better = "higher" if higher_is_better else "lower"
    lines.append(f"{len(series[0].values)} repetitions, servers alternating; {better} is better; "
                 f"ratio > 1 means better than {baseline}.")
    CHARTS.append((title, metric, list(series)))
    return "\n".join(lines)


#: Tables made in this run, for charts: (title, metric, series).
CHARTS: list[tuple[str, str, list[Series]]] = []


def write_charts(name: str) -> list[Path]:
    """One PNG bar chart (median, min-max whiskers) per table of this scenario, if matplotlib is installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    RESULTS.mkdir(exist_ok=True)
    paths = []
    for number, (title, metric, series) in enumerate(CHARTS, 1):
        figure, axes = plt.subplots(figsize=(7, 0.6 + 0.5 * len(series)))
        medians = [s.median for s in series]
        low = [s.median - min(s.values) for s in series]
        high = [max(s.values) - s.median for s in series]
        colors = ["#c0392b" if s.name.startswith("netsuite") else "#7f8c8d" for s in series]
        axes.barh([s.name for s in series], medians, xerr=[low, high], color=colors, capsize=3)
        axes.invert_yaxis()
        axes.set_xlabel(metric)
        axes.set_title(title, fontsize=10)
        figure.tight_layout()
        path = RESULTS / f"{name}-{number}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        paths.append(path)
    CHARTS.clear()
    return paths


def compile_c(source: Path, workdir: Path) -> Path | None:
    """Compile a C program with the system compiler; None when there is none."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    binary = workdir / source.stem
    subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], check=True)
    return binary


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
