"""
``--workers N``: more processes serving the same ports.

The first process listens, then starts ``N - 1`` more ``twistd netsuite``
processes with the same options on the ports it got, all with
``SO_REUSEPORT``, so the kernel spreads connections (or datagrams) over
them.  Twisted's ``ProcessMonitor`` restarts a worker that dies and stops
them all with the first process; a reload (SIGHUP) is passed on to each.

With ``--config FILE``, workers do not read ``FILE`` itself but a private
copy of the version the first process accepted (at start and at each
reload it accepted): a worker restarted after someone saved a broken or
half-edited file still starts, with the configuration every other process
runs, instead of failing again and again.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger

from suite.config import apply_config_file
from suite.endpoints import ListeningService

__all__ = ["WorkerPool"]

log = Logger()


class WorkerPool(Service):
    """The other ``--workers`` processes, supervised by Twisted's ``ProcessMonitor``."""

    def __init__(self, options: Any, listening: list[ListeningService], reactor: Any) -> None:
        self.setName("workers")
        self.options = options
        self.listening = listening
        # Imported here: procmon imports the reactor, which a plugin module must not.
        from twisted.runner.procmon import ProcessMonitor

        self.monitor = ProcessMonitor(reactor=reactor)
        #: the workers' copy of the accepted config file (``None`` without ``--config``)
        self.config_copy: Path | None = None

    def snapshot_config(self) -> bool:
        """
        Copy the config file for the workers, if it still parses (the first
        process has just accepted it); otherwise keep the last copy, log one
        line and return ``False``.
        """
        if self.config_copy is None:
            return True
        from suite.tap import OPTIONS  # here: suite.tap imports this module

        candidate = self.config_copy.with_suffix(".new")
        try:
            shutil.copyfile(self.options["config"], candidate)
            apply_config_file({}, str(candidate), OPTIONS, given=())
        except Exception as e:  # noqa: BLE001 - any failure keeps the last good copy
            candidate.unlink(missing_ok=True)
            log.error("workers keep the configuration they run: {error}", error=str(e))
            return False
        os.replace(candidate, self.config_copy)
        return True

    def worker_arguments(self) -> list[str]:
        """The command line of one worker."""
        args = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                "--nodaemon", "--pidfile=", "netsuite"]
        args += self.options.arguments(
            drop=lambda name: name in ("workers", "reuse-port", "listen", "config") or name.endswith("-listen")
        )
        args += ["--workers=1", "--reuse-port"]
        if self.config_copy is not None:
            args.append(f"--config={self.config_copy}")
            # Values fixed at start stay those this process runs, even when
            # a reload it accepted changed them in the file (it kept its own):
            # on the command line, they win over the copy.
            from suite.tap import OPTIONS

            for name, pinned in self.options.from_file.items():
                if not OPTIONS[name].reloadable and name not in ("workers", "reuse-port") \
                        and not name.endswith("-listen"):
                    args += pinned
        for service in self.listening:
            assert service.port is not None
            address = service.port.getHost()
            kind = "udp" if service.datagram else ("tcp6" if ":" in address.host else "tcp")
            host = address.host.replace(":", "\\:")
            args.append(f"--{service.name}-listen={kind}:{address.port}:interface={host}")
        return args

    def startService(self) -> None:
        super().startService()
        if self.options["config"]:
            # A private directory: the file may hold secrets (a backplane password).
            self.config_copy = Path(tempfile.mkdtemp(prefix="netsuite-workers-")) / "config.toml"
            self.snapshot_config()
        args = self.worker_arguments()
        for number in range(1, self.options["workers"]):
            self.monitor.addProcess(f"worker-{number}", args, env=dict(os.environ))
        log.info("starting {count} more worker process(es)", count=self.options["workers"] - 1)
        self.monitor.startService()

    def reload(self) -> None:
        """Pass an accepted reload on: refresh the workers' config copy, then SIGHUP to every running worker."""
        self.snapshot_config()
        for protocol in self.monitor.protocols.values():
            transport = getattr(protocol, "transport", None)
            if transport is not None and transport.pid is not None:
                transport.signalProcess(signal.SIGHUP)

    def stopService(self) -> None:
        super().stopService()
        self.monitor.stopService()  # SIGTERM to each worker
        if self.config_copy is not None:
            shutil.rmtree(self.config_copy.parent, ignore_errors=True)
            self.config_copy = None
