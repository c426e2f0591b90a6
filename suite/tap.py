"""
``twistd netsuite``: the services of :mod:`suite.registry`, assembled.

Every service declares itself (:class:`suite.service.ServiceDescriptor`);
this module only turns the descriptors into command-line options (and
config-file keys) and a service tree.  ``--mode`` takes one service, a
comma-separated list, or ``all``.
"""

from __future__ import annotations

import getopt
import sys
from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService
from twisted.logger import Logger
from twisted.python import usage

from suite._reactor import or_global_reactor
from suite.admission import raise_file_limit
from suite.config import ConfigReloader, apply_config_file
from suite.endpoints import (
    CannotListen,
    EndpointError,
    ListeningService,
    ReusePortEndpoint,
    is_datagram,
    parse_udp_description,
    stream_server_endpoint,
)
from suite.files.service import read_token
from suite.metrics import SuiteMetrics, metrics_root
from suite.registry import SERVICES
from suite.service import Option, ServiceContext, ServiceDescriptor, positive_int
from suite.web.service import shared_metrics
from suite.workers import WorkerPool

__all__ = ["MODES", "NetsuiteService", "OPTIONS", "Options", "makeService"]

log = Logger()

#: The services by name, in ``--mode all`` order.
MODES: dict[str, ServiceDescriptor] = {service.name: service for service in SERVICES}


def _modes(value: str) -> str:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise usage.UsageError("--mode needs at least one service")
    for name in names:
        if name != "all" and name not in MODES:
            raise usage.UsageError(f"unknown mode {name!r}; choose one of: {', '.join([*MODES, 'all'])}")
    if "all" in names:
        return "all"
    return ",".join(dict.fromkeys(names))  # each once, in the order given


_modes.coerceDoc = "Comma-separated list, or all."  # type: ignore[attr-defined]

#: Options of the process rather than of one service.
GLOBAL_OPTIONS: tuple[Option, ...] = (
    Option("mode", "all", "Services to run: " + ", ".join([*MODES, "all"]) + " (comma-separated for several).",
           _modes, reloadable=False),
    Option("workers", 1, "Processes sharing the ports (SO_REUSEPORT), for services that allow it.",
           positive_int, reloadable=False),
    Option("config", None, "TOML file of options (keys are the long option names); SIGHUP re-reads it.",
           reloadable=False),
    Option("reuse-port", False, "Listen with SO_REUSEPORT (set for the processes --workers starts).",
           flag=True, reloadable=False),
    Option("metrics-listen", None, "Address serving just /metrics and /healthz, next to any mode (none by default).",
           reloadable=False),
)


def _collect_options() -> dict[str, Option]:
    options: dict[str, Option] = {}
    for option in [*GLOBAL_OPTIONS, *(o for s in SERVICES for o in (s.listen_option, *s.options))]:
        known = options.setdefault(option.name, option)
        if known != option:
            raise RuntimeError(f"two services declare --{option.name} differently")
    return options


#: Every option by name: command-line flags and config-file keys alike.
OPTIONS: dict[str, Option] = _collect_options()


class Options(usage.Options):
    """Options of ``twistd netsuite``; see docs/running.md."""

    synopsis = "[--mode MODE[,MODE...]] [--listen ADDRESS] [--config FILE] [options]"
    longdesc = (
        "Runs netsuite services. Modes: "
        + "; ".join(f"{s.name} ({s.summary}, default {s.default_listen})" for s in SERVICES)
        + "; all (every mode). Addresses are Twisted endpoint strings; UDP services take "
        "udp:PORT[:interface=ADDR]. Defaults listen on loopback only. Every option can be a key "
        "of the --config file; flags on the command line win."
    )

    optFlags = [[o.name, None, o.help] for o in OPTIONS.values() if o.flag]
    optParameters = [
        ["listen", "l", None, "Address of the selected service (with a single --mode)."],
        *[
            [o.name, "m" if o.name == "mode" else None, o.default, o.help, o.parse]
            for o in OPTIONS.values()
            if not (o.flag or o.multiple)
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        for option in OPTIONS.values():
            if option.multiple:
                self[option.name] = list(option.default)
        #: The command line as given, and the long names of the options on it.
        self.argv: list[str] = []
        self.given: list[tuple[str, str]] = []
        #: The options set from the --config file, as command-line arguments.
        self.from_file: dict[str, list[str]] = {}

    def parseOptions(self, options: list[str] | None = None) -> None:
        self.argv = list(sys.argv[1:] if options is None else options)
        try:
            pairs, _ = getopt.getopt(self.argv, self.shortOpt, self.longOpt)
        except getopt.error:
            pairs = []  # the parser below reports it
        self.given = [(self._long_name(opt), value) for opt, value in pairs]
        super().parseOptions(self.argv)

    def _long_name(self, opt: str) -> str:
        name = opt.lstrip("-")
        name = self.synonyms.get(name, self.synonyms.get(name.replace("-", "_"), name))
        return name.replace("_", "-")

    def postOptions(self) -> None:
        if self["config"] is not None:
            self.from_file = apply_config_file(self, self["config"], OPTIONS, {name for name, _ in self.given})
        if self["listen"] is not None:
            selected = self.selected_modes()
            if len(selected) != 1:
                raise usage.UsageError(
                    "--listen needs a single --mode; with several use "
                    + ", ".join(f"--{s.name}-listen" for s in selected)
                )
            self[f"{selected[0].name}-listen"] = self["listen"]
        if self["workers"] > 1 or self["reuse-port"]:
            single = [s.name for s in self.selected_modes() if not s.runs_in_workers(self)]
            if single:
                raise usage.UsageError(
                    f"--workers shares a port between processes, which {', '.join(single)} does not allow: "
                    "it keeps its state in one process"
                )
            for service in self.selected_modes():
                try:
                    ReusePortEndpoint.from_description(None, self[service.listen_option.name])
                except EndpointError as e:
                    raise usage.UsageError(f"--workers: {e}") from None
        # Reject malformed addresses now, as usage errors, not at start-up.
        for service in self.selected_modes():
            try:
                check_address(service, self[service.listen_option.name])
            except EndpointError as e:
                raise usage.UsageError(str(e)) from None
        if self["metrics-listen"] is not None:
            try:
                if is_datagram(self["metrics-listen"]):
                    raise EndpointError(f"--metrics-listen serves HTTP; {self['metrics-listen']!r} is a UDP address")
                stream_server_endpoint(or_global_reactor(None), self["metrics-listen"])
            except EndpointError as e:
                raise usage.UsageError(str(e)) from None

    def selected_modes(self) -> list[ServiceDescriptor]:
        """The services this configuration runs."""
        if self["mode"] == "all":
            return list(SERVICES)
        return [MODES[name] for name in self["mode"].split(",")]

    def arguments(self, drop: Callable[[str], bool] = lambda name: False) -> list[str]:
        """The options given on the command line (not those ``drop`` names), as arguments again."""
        return [
            f"--{name}" if OPTIONS.get(name, Option(name, None, "")).flag else f"--{name}={value}"
            for name, value in self.given
            if not drop(name)
        ]


def check_address(service: ServiceDescriptor, description: str) -> None:
    """Raise EndpointError unless ``description`` suits ``service``."""
    if service.datagram != is_datagram(description):
        if service.datagram:
            raise EndpointError(
                f"{service.name} is a UDP service; give it a udp:PORT[:interface=ADDR] address, not {description!r}"
            )
        raise EndpointError(f"{service.name} is a stream service; {description!r} is a UDP address")
    if service.datagram:
        parse_udp_description(description)
    else:
        stream_server_endpoint(or_global_reactor(None), description)


def metrics_site(options: Options, metrics: SuiteMetrics, reactor: Any) -> ListeningService:
    """``--metrics-listen``: a small site with just ``/metrics`` (behind ``--token-file``) and ``/healthz``."""
    from twisted.web.server import Site

    site = Site(metrics_root(metrics, read_token(options["token-file"])), reactor=reactor)
    site.noisy = False
    return ListeningService("metrics", options["metrics-listen"], site, reactor)


def _check_file_limit(options: Options) -> None:
    """Raise the open-file limit to fit the connection caps, or say it cannot (see raise_file_limit)."""
    caps = [options.get(f"{s.name}-max-connections") for s in options.selected_modes() if not s.datagram]
    caps = [cap for cap in caps if cap is not None]
    total = None if any(cap == 0 for cap in caps) else sum(caps)
    warning = raise_file_limit(total)
    if warning is not None:
        log.warn("netsuite: {warning}", warning=warning)


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
    """Build the service tree for ``options``: one ListeningService per service (and workers)."""
    reactor = or_global_reactor(reactor)
    top = NetsuiteService()
    context = ServiceContext(reactor)
    shared = options["workers"] > 1 or options["reuse-port"]
    running = []
    # Every service's counters, read by /metrics (the web service's and --metrics-listen's).
    metrics = shared_metrics(context)
    for descriptor in options.selected_modes():
        target = descriptor.build(options, context)
        service = ListeningService(
            descriptor.name, options[descriptor.listen_option.name], target, reactor, reuse_port=shared
        )
        service.setServiceParent(top)
        running.append((descriptor, service))
        metrics.watch(descriptor.name, target, service)
    if options["metrics-listen"] is not None:
        metrics_site(options, metrics, reactor).setServiceParent(top)
    _check_file_limit(options)
    workers = None
    if options["workers"] > 1:
        workers = WorkerPool(options, [service for _, service in running], reactor)
        workers.setServiceParent(top)
    ConfigReloader(options, running, reactor, workers).setServiceParent(top)
    return top


def _repeatable(option: Option) -> Callable[[Options, str], None]:
    def handler(self: Options, value: str) -> None:
        self[option.name].extend(option.parse_items(value))

    handler.__doc__ = option.help
    return handler


# Repeatable options (each value may list several, comma-separated) are
# opt_ methods, which usage.Options calls once per occurrence.
for _option in OPTIONS.values():
    if _option.multiple:
        setattr(Options, "opt_" + _option.name.replace("-", "_"), _repeatable(_option))
