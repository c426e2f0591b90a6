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
import tempfile
import time
from collections.abc import Callable, Sequence
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
    output: Path | None = None  #: the file the server's output goes to
    port: int = 0
    pin: bool = True  #: to CPU 0; off for servers with several processes

    def start(self, timeout: float = 20.0) -> int:
        # Output goes to a file, not a pipe: a pipe nobody reads after the
        # ready line would block a server that logs more than 64 KiB.  The
        # server appends; this process reads through its own descriptor, so
        # the two never share a file offset.
        fd, path = tempfile.mkstemp(prefix="netsuite-bench-server-", suffix=".log")
        os.close(fd)
        self.output = Path(path)
        with open(path, "ab") as log:
            self.process = subprocess.Popen(
                pinned(self.argv, 0) if self.pin else self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )
        deadline = time.monotonic() + timeout
        ready = re.compile(self.ready.encode())
        while time.monotonic() < deadline:
            match = ready.search(self.seen())
            if match:
                self.port = int(match.group(1))
                return self.port
            if self.process.poll() is not None and not ready.search(self.seen()):
                break
            time.sleep(0.02)
        seen = self.seen()
        self.stop()
        raise RuntimeError(f"{self.name} did not start:\n{seen.decode(errors='replace')}")

    def seen(self) -> bytes:
        """Everything the server has printed so far."""
        if self.output is None:
            return b""
        try:
            return self.output.read_bytes()
        except OSError:
            return b""

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
        if self.output is not None:
            self.output.unlink(missing_ok=True)
            self.output = None
        self.process = None

    def pids(self) -> str:
        """The server's process and its children (``--workers``), comma-separated, for the load generator."""
        assert self.process is not None
        family = [self.process.pid]
        for parent in family:  # grows while it is walked: breadth-first
            try:
                children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            except OSError:
                children = []
            family += [int(child) for child in children]
        return ",".join(map(str, family))


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(argv: list[str], timeout: float) -> dict:
    """Run a load generator (pinned to the second CPU) and return its JSON result."""
    done = subprocess.run(pinned(argv, 1), capture_output=True, timeout=timeout, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.decode(errors='replace')}")
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def run_loads(argvs: list[list[str]], timeout: float) -> list[dict]:
    """Run several load generators at once (all pinned to the second CPU); their JSON results."""
    processes = [
        subprocess.Popen(pinned(argv, 1), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        for argv in argvs
    ]
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=timeout)
            if process.returncode != 0:
                raise RuntimeError(f"load generator failed: {err.decode(errors='replace')}")
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def head_to_head(first: Server, second: Server, load: Callable[[int], list[str]], metric: str,
                 timeout: float = 60) -> float:
    """
    ``second``'s ``metric`` divided by ``first``'s, both servers running at
    once on the same CPU, each driven by its own load generator.  The
    scheduler shares the CPU between the two busy servers, so the ratio is
    that of their costs per unit of work, and whatever else the machine is
    doing at that moment slows both alike: far steadier than comparing runs
    made one after the other.
    """
    ports = [first.start(), second.start()]
    try:
        a, b = run_loads([load(port) for port in ports], timeout)
    finally:
        first.stop()
        second.stop()
    return b[metric] / a[metric]


@dataclass
class Series:
    """Repeated measurements of one metric for one server."""

    name: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def table(
    title: str, metric: str, series: Sequence[Series], baseline: str | Sequence[str] | None = None,
    higher_is_better: bool = True,
) -> str:
    """
    A markdown table: median, min-max and each server's ratio to the best
    baseline (every server whose name does not start with "netsuite")
    measured in the same run; with ``baseline`` (one name or several), also
    the ratio to each of those (the one a target names, the previous
    release) that is in the run and is not the best.
    """
    others = [s for s in series if not s.name.startswith("netsuite")] or list(series)
    best = (max if higher_is_better else min)(others, key=lambda s: s.median)
    columns = [best.name]
    present = {s.name for s in series}
    for name in [baseline] if isinstance(baseline, str) else list(baseline or ()):
        if name in present and name not in columns:
            columns.append(name)

    def ratio(s: Series, name: str) -> str:
        base = next(b for b in series if b.name == name).median
        if not (base and s.median):
            return "n/a"
        return f"{(s.median / base) if higher_is_better else (base / s.median):.2f}×"

    lines = [
        f"### {title}",
        "",
        f"| server | {metric} (median) | min – max | " + " | ".join(f"ratio to {c}" for c in columns) + " |",
        "|---|---:|---:|" + "---:|" * len(columns),
    ]
    for s in series:
        ratios = " | ".join(ratio(s, c) for c in columns)
        lines.append(f"| {s.name} | {s.median:,.1f} | {min(s.values):,.1f} – {max(s.values):,.1f} | {ratios} |")
    lines.append("")
    better = "higher" if higher_is_better else "lower"
    lines.append(f"{len(series[0].values)} repetitions, servers alternating; {better} is better; "
                 "a ratio above 1 means better than that server.")
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
