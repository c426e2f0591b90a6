"""
``--workers N``: more processes serving the same ports.

The first process listens, then starts ``N - 1`` more ``twistd netsuite``
processes with the same options on the ports it got, all with
``SO_REUSEPORT``, so the kernel spreads connections (or datagrams) over
them.  Twisted's ``ProcessMonitor`` restarts a worker that dies and stops
them all with the first process; a reload (SIGHUP) is passed on to each.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger

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

    def worker_arguments(self) -> list[str]:
        """The command line of one worker."""
        args = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                "--nodaemon", "--pidfile=", "netsuite"]
        args += self.options.arguments(
            drop=lambda name: name in ("workers", "reuse-port", "listen") or name.endswith("-listen")
        )
        args += ["--workers=1", "--reuse-port"]
        for service in self.listening:
            assert service.port is not None
            address = service.port.getHost()
            kind = "udp" if service.datagram else ("tcp6" if ":" in address.host else "tcp")
            host = address.host.replace(":", "\\:")
            args.append(f"--{service.name}-listen={kind}:{address.port}:interface={host}")
        return args

    def startService(self) -> None:
        super().startService()
        args = self.worker_arguments()
        for number in range(1, self.options["workers"]):
            self.monitor.addProcess(f"worker-{number}", args, env=dict(os.environ))
        log.info("starting {count} more worker process(es)", count=self.options["workers"] - 1)
        self.monitor.startService()

    def reload(self) -> None:
        """Pass a reload on: SIGHUP to every running worker."""
        for protocol in self.monitor.protocols.values():
            transport = getattr(protocol, "transport", None)
            if transport is not None and transport.pid is not None:
                transport.signalProcess(signal.SIGHUP)

    def stopService(self) -> Any:
        super().stopService()
        return self.monitor.stopService()
