"""``--workers``: what the worker processes are given (suite/workers.py)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest_twisted
from twisted.internet.task import Clock

from suite import tap
from suite.workers import WorkerPool
from tests.helpers import listening_port, spawn, twistd
from tests.test_twistd import runs  # noqa: F401 - the fixture


def parse(*args: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(args))
    return options


def pool(options: tap.Options) -> WorkerPool:
    """A pool that has made its config copy but started no process."""
    workers = WorkerPool(options, [], Clock())
    workers.monitor.addProcess = lambda *args, **kwargs: None  # type: ignore[method-assign]
    workers.monitor.startService = lambda: None  # type: ignore[method-assign]
    workers.startService()
    return workers


def config_argument(args: list[str]) -> Path:
    [config] = [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
    return Path(config)


def test_workers_read_a_private_copy_of_the_accepted_file(tmp_path: Path) -> None:
    config = tmp_path / "netsuite.toml"
    config.write_text("echo-idle-timeout = 30\n")
    workers = pool(parse("--mode", "echo", "--workers", "2", "--config", str(config)))
    copy = config_argument(workers.worker_arguments())
    assert copy != config and copy.read_text() == "echo-idle-timeout = 30\n"
    assert copy.parent.stat().st_mode & 0o077 == 0  # nobody else can read it
    workers.stopService()
    assert not copy.parent.exists()


def test_a_broken_file_never_reaches_the_workers(tmp_path: Path, caplog_events: list[dict]) -> None:
    """Saved half-edited: a worker restarted now still gets the version every process runs."""
    config = tmp_path / "netsuite.toml"
    config.write_text("echo-idle-timeout = 30\n")
    workers = pool(parse("--mode", "echo", "--workers", "2", "--config", str(config)))
    copy = config_argument(workers.worker_arguments())
    for broken in ("echo-idle-timeout = [\n", "echo-idle-timeout = -1\n", "no-such-key = 1\n"):
        config.write_text(broken)
        assert not workers.snapshot_config()
        assert copy.read_text() == "echo-idle-timeout = 30\n"
    assert sum("workers keep the configuration" in e.get("log_format", "") for e in caplog_events) == 3
    config.write_text("echo-idle-timeout = 5\n")
    workers.reload()  # what an accepted reload does
    assert copy.read_text() == "echo-idle-timeout = 5\n"
    assert not list(copy.parent.glob("*.new"))
    workers.stopService()


def test_values_fixed_at_start_stay_on_the_workers_command_line(tmp_path: Path) -> None:
    """The first process keeps them on reload; a restarted worker must too, whatever the file says now."""
    config = tmp_path / "netsuite.toml"
    config.write_text('mode = "echo,udp-echo"\nudp-rate = 50\n')
    workers = pool(parse("--workers", "2", "--config", str(config)))
    args = workers.worker_arguments()
    assert "--mode=echo,udp-echo" in args  # fixed at start: pinned
    assert not any(a.startswith("--udp-rate") for a in args)  # reloadable: from the copy
    workers.stopService()


@pytest_twisted.ensureDeferred
async def test_a_worker_restarted_after_a_bad_edit_still_serves(runs, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "netsuite.toml"
    config.write_text("echo-idle-timeout = 30\n")
    server = twistd("--mode", "echo", "--workers", "2", "--listen", "tcp:0:interface=127.0.0.1",
                    "--config", str(config), cwd=tmp_path)
    runs.append(server)
    port = await listening_port(server, "echo")
    ready = rf"\[worker-1\] .* echo listening on tcp 127\.0\.0\.1:{port}".encode()
    await server.wait_for(ready)
    config.write_text("echo-idle-timeout = [\n")  # saved half-edited
    [worker] = Path(f"/proc/{server.transport.pid}/task/{server.transport.pid}/children").read_text().split()
    os.kill(int(worker), signal.SIGKILL)
    # ProcessMonitor restarts it; it must come up serving, not fail on the file.
    await server.wait_for(rb"(?s)" + ready + rb".*" + ready)
    assert b"Usage:" not in server.out + server.err
    client = spawn(["netsuite", "echo", f"127.0.0.1:{port}", "still here"])
    assert await client.ended == 0 and client.out == b"still here\n"
    server.terminate()
    assert await server.ended in (0, -signal.SIGTERM)
