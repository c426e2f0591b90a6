"""
The previous release of netsuite, measured in the same run as today's.

"No scenario slower than before" is a claim about two versions of the
code, and ratios against a baseline taken on different days vary by more
than the change being judged (this machine is shared).  So the echo and
chat scenarios also run the release before the service descriptors
(:data:`PREVIOUS`, extracted from the git history into a temporary
directory) next to today's servers and the baselines.  Without the git
history (a shallow or exported checkout) that column is left out.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from benchmarks._harness import HERE, PYTHON, ROOT, Server

#: The last commit before the service descriptors, admission layer and
#: bounded line receiver (issue 10): the end of the second session.
PREVIOUS = "dae197d"

#: The name of the previous release's servers in the tables.
LABEL = f"previous netsuite ({PREVIOUS})"


def previous_tree(workdir: Path, commit: str = PREVIOUS) -> Path | None:
    """The source of ``commit`` extracted under ``workdir``, or ``None`` without git history."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", commit, "suite"],
            capture_output=True, check=True, timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    target = workdir / ("previous" if commit == PREVIOUS else f"previous-{commit}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def previous_server(tree: Path, mode: str, flags: list[str], kind: str = "tcp", name: str = "") -> Server:
    """The previous release's ``mode`` service on an ephemeral loopback port, with ``flags``."""
    argv = ["env", f"PYTHONPATH={tree}", PYTHON, str(HERE / "servers" / "netsuite_tree.py"),
            "--mode", mode, "--listen", f"{kind}:0:interface=127.0.0.1", *flags]
    return Server(name or f"{LABEL} {mode}", argv, rf"{mode} listening on {kind} 127\.0\.0\.1:(\d+)")
