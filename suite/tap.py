"""
``twistd netsuite``: command-line options and the service tree.

Each mode is one :class:`Mode`: a name, a default address and a function that
builds its factory (or datagram protocol) from the options.  ``--mode all``
runs every mode in one process.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.python import usage

from suite._reactor import or_global_reactor
from suite.chat import ChatFactory, ChatServer
from suite.echo import EchoFactory, UDPEchoProtocol
from suite.files import FileFactory, Storage
from suite.endpoints import (
    CannotListen,
    EndpointError,
    ListeningService,
    ReusePortEndpoint,
    is_datagram,
    parse_udp_description,
    stream_server_endpoint,
)

log = Logger()

Target = IProtocolFactory | DatagramProtocol


@dataclass(frozen=True)
class Mode:
    """One service the plugin can run."""

    name: str
    default_listen: str
    build: Callable[[Options, Any], Target]
    summary: str
    datagram: bool = False


def _build_echo(options: Options, reactor: Any) -> EchoFactory:
    return EchoFactory(
        max_connections=options["echo-max-connections"] or None,
        idle_timeout=options["echo-idle-timeout"] or None,
        max_buffer=options["echo-max-buffer"],
        reactor=reactor,
    )


def _build_udp_echo(options: Options, reactor: Any) -> UDPEchoProtocol:
    return UDPEchoProtocol(
        rate=options["udp-rate"] or None,
        burst=options["udp-burst"],
        global_rate=options["udp-global-rate"] or None,
        deny_ports=options["udp-deny-port"],
        reactor=reactor,
    )


def _build_chat(options: Options, reactor: Any) -> ChatFactory:
    return ChatFactory(
        history=options["history"],
        max_line=options["chat-max-line"] or None,
        flood_rate=options["chat-flood-rate"] or None,
        flood_burst=options["chat-flood-burst"],
        max_pending=options["chat-max-pending"] or None,
        max_connections=options["chat-max-connections"] or None,
        max_per_ip=options["chat-max-per-ip"] or None,
        per_ip_exempt=options["chat-per-ip-exempt"],
        idle_timeout=options["chat-idle-timeout"] or None,
        reactor=reactor,
    )


def _build_upload(options: Options, reactor: Any) -> FileFactory:
    storage = Storage(
        options["storage"],
        max_file_size=options["max-file-size"] or None,
        quota=options["quota"] or None,
        min_free=options["min-free"],
        resume_ttl=options["resume-ttl"],
        clock=reactor,
    )
    return FileFactory(
        storage,
        token=options["token"],
        max_connections=options["upload-max-connections"] or None,
        max_transfers=options["max-transfers"] or None,
        idle_timeout=options["upload-idle-timeout"] or None,
        transfer_timeout=options["transfer-timeout"] or None,
        reactor=reactor,
    )


#: Modes whose state lives in each connection only: they can run in several processes.
STATELESS = {"echo", "udp-echo"}

MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in [
        Mode("echo", "tcp:8007:interface=127.0.0.1", _build_echo, "TCP echo (RFC 862)"),
        Mode("udp-echo", "udp:8007:interface=127.0.0.1", _build_udp_echo, "UDP echo", datagram=True),
        Mode("chat", "tcp:8023:interface=127.0.0.1", _build_chat, "line-based chat"),
        Mode("upload", "tcp:8021:interface=127.0.0.1", _build_upload, "file upload and download"),
    ]
}


def _mode(value: str) -> str:
    if value != "all" and value not in MODES:
        raise usage.UsageError(f"unknown mode {value!r}; choose one of: {', '.join([*MODES, 'all'])}")
    return value


def _non_negative(kind: type) -> Callable[[str], Any]:
    def coerce(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise usage.UsageError(f"expected a {kind.__name__}, got {value!r}") from None
        if number < 0:
            raise usage.UsageError(f"expected zero or more, got {value!r}")
        return number

    return coerce


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(value: str) -> int:
    """Bytes, with an optional binary unit: 512K, 64M, 4G, 1T (or KiB, MiB...)."""
    text = value.strip().upper().removesuffix("IB").removesuffix("B")
    unit = text[-1:] if text[-1:] in _UNITS else ""
    number = text[: len(text) - len(unit)]
    if not number.isdigit():
        raise usage.UsageError(f"expected a size such as 1048576, 512K, 64M or 4G; got {value!r}")
    return int(number) * _UNITS[unit]


_size.coerceDoc = "Units: K, M, G, T (powers of 1024)."  # type: ignore[attr-defined]


def _positive_size(value: str) -> int:
    size = _size(value)
    if size < 1:
        raise usage.UsageError(f"expected a size of at least 1 byte, got {value!r}")
    return size


_positive_size.coerceDoc = _size.coerceDoc  # type: ignore[attr-defined]


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise usage.UsageError(f"expected a whole number of at least 1, got {value!r}")
    return int(value)


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise usage.UsageError(f"expected a port number 1-65535, got {value!r}")
    return int(value)


class Options(usage.Options):
    """Options of ``twistd netsuite``; see docs/running.md."""

    synopsis = "[--mode MODE] [--listen DESCRIPTION] [options]"
    longdesc = (
        "Runs netsuite services. Modes: "
        + ", ".join(f"{m.name} ({m.summary}, default {m.default_listen})" for m in MODES.values())
        + ", all (every mode). Addresses are Twisted endpoint strings; UDP services take "
        "udp:PORT[:interface=ADDR]. Defaults listen on loopback only."
    )

    optFlags = [
        ["reuse-port", None, "Listen with SO_REUSEPORT (set for the processes --workers starts)."],
    ]

    optParameters = [
        ["mode", "m", "all", "Service to run: " + ", ".join([*MODES, "all"]) + ".", _mode],
        ["workers", None, 1, "Processes sharing the port (SO_REUSEPORT), for echo and udp-echo.", _positive_int],
        ["listen", "l", None, "Address of the selected service (not with --mode all)."],
        *[
            [f"{name}-listen", None, mode.default_listen, f"Address of the {name} service."]
            for name, mode in MODES.items()
        ],
        ["echo-max-connections", None, EchoFactory.DEFAULT_MAX_CONNECTIONS,
         "Concurrent TCP echo connections; 0 = no cap.", _non_negative(int)],
        ["echo-idle-timeout", None, EchoFactory.DEFAULT_IDLE_TIMEOUT,
         "Seconds without input before an echo connection is aborted; 0 = never.", _non_negative(float)],
        ["echo-max-buffer", None, EchoFactory.DEFAULT_MAX_BUFFER,
         "Unsent echo output held per connection before it stops reading.", _positive_size],
        ["udp-rate", None, UDPEchoProtocol.DEFAULT_RATE,
         "Datagrams/s answered per source host; 0 = unlimited.", _non_negative(float)],
        ["udp-burst", None, UDPEchoProtocol.DEFAULT_BURST,
         "Datagrams a source host may send at once above --udp-rate.", _non_negative(int)],
        ["udp-global-rate", None, UDPEchoProtocol.DEFAULT_GLOBAL_RATE,
         "Datagrams/s answered in total; 0 = unlimited.", _non_negative(float)],
        ["history", None, ChatServer.DEFAULT_HISTORY,
         "Chat messages each room replays to newcomers; 0 = none.", _non_negative(int)],
        ["chat-max-line", None, ChatFactory.DEFAULT_MAX_LINE,
         "Longest chat line in bytes; longer lines are rejected; 0 = no limit.", _non_negative(int)],
        ["chat-flood-rate", None, ChatFactory.DEFAULT_FLOOD_RATE,
         "Chat lines/s per connection; 0 = no flood control.", _non_negative(float)],
        ["chat-flood-burst", None, ChatFactory.DEFAULT_FLOOD_BURST,
         "Chat lines a connection may send at once above --chat-flood-rate.", _non_negative(int)],
        ["chat-max-pending", None, ChatFactory.DEFAULT_MAX_PENDING,
         "Bytes of chat output a client may leave unread; 0 = no cap.", _non_negative(int)],
        ["chat-max-connections", None, ChatFactory.DEFAULT_MAX_CONNECTIONS,
         "Concurrent chat connections; 0 = no cap.", _non_negative(int)],
        ["chat-max-per-ip", None, ChatFactory.DEFAULT_MAX_PER_IP,
         "Concurrent chat connections per client IP; 0 = no cap.", _non_negative(int)],
        ["chat-idle-timeout", None, 0.0,
         "Seconds without input before a chat client is disconnected; 0 = never.", _non_negative(float)],
        ["storage", None, "netsuite-files", "Directory the upload service stores files in (created if missing)."],
        ["max-file-size", None, Storage.DEFAULT_MAX_FILE_SIZE, "Largest upload; 0 = no limit.", _size],
        ["quota", None, 0, "Most bytes stored in total; 0 = no quota.", _size],
        ["min-free", None, Storage.DEFAULT_MIN_FREE, "Free disk space every upload must leave.", _size],
        ["resume-ttl", None, Storage.DEFAULT_RESUME_TTL,
         "Seconds an interrupted upload's data is kept for resuming.", _non_negative(float)],
        ["token-file", None, None, "File holding the shared token clients must present (AUTH)."],
        ["upload-max-connections", None, FileFactory.DEFAULT_MAX_CONNECTIONS,
         "Concurrent upload-service connections; 0 = no cap.", _non_negative(int)],
        ["max-transfers", None, FileFactory.DEFAULT_MAX_TRANSFERS,
         "Concurrent uploads and downloads; 0 = no cap.", _non_negative(int)],
        ["upload-idle-timeout", None, FileFactory.DEFAULT_IDLE_TIMEOUT,
         "Seconds an upload-service connection may wait between commands; 0 = never.", _non_negative(float)],
        ["transfer-timeout", None, FileFactory.DEFAULT_TRANSFER_TIMEOUT,
         "Seconds a transfer may make no progress; 0 = never.", _non_negative(float)],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["udp-deny-port"] = []
        self["chat-per-ip-exempt"] = []

    def opt_udp_deny_port(self, value: str) -> None:
        """Never answer this source port (repeatable, comma-separated; own port and <1024 always denied)."""
        self["udp-deny-port"].extend(_port(p.strip()) for p in value.split(",") if p.strip())

    def opt_chat_per_ip_exempt(self, value: str) -> None:
        """IP address the per-IP chat cap does not apply to (repeatable, comma-separated)."""
        for host in (h.strip() for h in value.split(",")):
            if host:
                try:
                    self["chat-per-ip-exempt"].append(str(ipaddress.ip_address(host)))
                except ValueError:
                    raise usage.UsageError(f"--chat-per-ip-exempt: {host!r} is not an IP address") from None

    def postOptions(self) -> None:
        for flag in ("udp-burst", "chat-flood-burst"):
            if self[flag] < 1:
                raise usage.UsageError(f"--{flag} must be at least 1")
        if self["listen"] is not None:
            if self["mode"] == "all":
                raise usage.UsageError(
                    "--listen needs a single --mode; with --mode all use "
                    + ", ".join(f"--{name}-listen" for name in MODES)
                )
            self[f"{self['mode']}-listen"] = self["listen"]
        self["token"] = None
        if self["token-file"] is not None:
            try:
                with open(self["token-file"], "rb") as f:
                    self["token"] = f.read().strip()
            except OSError as e:
                raise usage.UsageError(f"--token-file: {e.strerror}: {self['token-file']}") from None
            if not self["token"]:
                raise usage.UsageError(f"--token-file: {self['token-file']} is empty")
        if self["workers"] > 1 or self["reuse-port"]:
            stateful = [m.name for m in self.selected_modes() if m.name not in STATELESS]
            if stateful:
                raise usage.UsageError(
                    f"--workers shares a port between processes, which only suits the stateless "
                    f"echo and udp-echo; {', '.join(stateful)} keeps its state in one process"
                )
            for mode in self.selected_modes():
                try:
                    ReusePortEndpoint.from_description(None, self[f"{mode.name}-listen"])
                except EndpointError as e:
                    raise usage.UsageError(f"--workers: {e}") from None
        # Reject malformed addresses now, as usage errors, not at start-up.
        for mode in self.selected_modes():
            try:
                _check_address(mode, self[f"{mode.name}-listen"])
            except EndpointError as e:
                raise usage.UsageError(str(e)) from None

    def arguments(self) -> list[str]:
        """These options as command-line arguments (what differs from the defaults)."""
        defaults = Options()
        args = []
        for name, *_ in self.optParameters:
            if self[name] != defaults[name] and name != "listen":
                args.append(f"--{name}={self[name]}")
        args += [f"--udp-deny-port={port}" for port in self["udp-deny-port"]]
        args += [f"--chat-per-ip-exempt={host}" for host in self["chat-per-ip-exempt"]]
        args += ["--reuse-port"] if self["reuse-port"] else []
        return args

    def selected_modes(self) -> list[Mode]:
        """The modes this configuration runs."""
        if self["mode"] == "all":
            return list(MODES.values())
        return [MODES[self["mode"]]]


def _check_address(mode: Mode, description: str) -> None:
    """Raise EndpointError unless ``description`` suits ``mode``."""
    if mode.datagram != is_datagram(description):
        if mode.datagram:
            raise EndpointError(f"{mode.name} is a UDP service; give it a udp:PORT[:interface=ADDR] address, not {description!r}")
        raise EndpointError(f"{mode.name} is a stream service; {description!r} is a UDP address")
    if mode.datagram:
        parse_udp_description(description)
    else:
        stream_server_endpoint(or_global_reactor(None), description)


class NetsuiteService(MultiService):
    """
    The plugin's top service.  A service that cannot listen ends the process
    with one error line and a non-zero status instead of a traceback.
    """

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except CannotListen as e:
            # twistd routes stderr into its log, so the log line is the message.
            log.critical("netsuite: {error}", error=str(e))
            raise SystemExit(1) from None


def makeService(options: Options, reactor: Any = None) -> MultiService:
    """Build the service tree for ``options``: one ListeningService per mode (and workers)."""
    reactor = or_global_reactor(reactor)
    top = NetsuiteService()
    shared = options["workers"] > 1 or options["reuse-port"]
    listening = []
    for mode in options.selected_modes():
        target = mode.build(options, reactor)
        service = ListeningService(mode.name, options[f"{mode.name}-listen"], target, reactor, reuse_port=shared)
        service.setServiceParent(top)
        listening.append(service)
    if options["workers"] > 1:
        WorkerPool(options, listening, reactor).setServiceParent(top)
    return top


class WorkerPool(Service):
    """
    The other ``--workers`` processes: ``twistd netsuite`` again, with the
    same options, on the ports this process got, supervised (restarted if
    they die, stopped with us) by Twisted's ``ProcessMonitor``.
    """

    def __init__(self, options: Options, listening: list[ListeningService], reactor: Any) -> None:
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
        args += [a for a in self.options.arguments() if not a.startswith(("--workers=", "--reuse-port"))]
        args += ["--workers=1", "--reuse-port"]
        for service in self.listening:
            assert service.port is not None
            address = service.port.getHost()
            kind = "udp" if service.name == "udp-echo" else ("tcp6" if ":" in address.host else "tcp")
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

    def stopService(self) -> Any:
        super().stopService()
        return self.monitor.stopService()
