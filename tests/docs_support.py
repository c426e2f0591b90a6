"""Helpers for the tests that run the tutorial's examples (docs/examples) as a learner would."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.helpers import ROOT, ProcessRun, spawn

EXAMPLES = ROOT / "docs" / "examples"


def example(name: str, *args: str, stdin: bytes | None = b"", cwd: Path | None = None) -> ProcessRun:
    """Run ``docs/examples/NAME ARGS`` with the project's Python."""
    return spawn(["python", str(EXAMPLES / name), *args], stdin=stdin, cwd=cwd)


async def port_of(run: ProcessRun) -> int:
    """The port an example printed as ``listening on PORT``."""
    return int((await run.wait_for(rb"listening on (\d+)")).group(1))


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody listens on right now (for the re-run and refusal cases)."""
    probe = socket.socket(socket.AF_INET, kind)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


async def refused(run: ProcessRun, line: str) -> None:
    """The example ended non-zero with exactly one line on stderr: ``line`` (no traceback)."""
    code = await run.ended
    assert code != 0, f"exit 0; stdout: {run.out.decode()}"
    assert run.err.decode() == line + "\n", run.err.decode()


async def finished(run: ProcessRun) -> str:
    """The example ended with status 0 and nothing on stderr; its stdout."""
    code = await run.ended
    assert (code, run.err.decode()) == (0, ""), run.out.decode()
    return run.out.decode()
