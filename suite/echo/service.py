"""The echo services' descriptors: ``echo`` (TCP) and ``udp-echo``."""

from __future__ import annotations

from typing import Any

from suite.admission import admission_options, admission_settings
from suite.echo.tcp import EchoFactory
from suite.echo.udp import UDPEchoProtocol
from suite.service import (
    Config,
    Option,
    ServiceContext,
    ServiceDescriptor,
    non_negative,
    port_number,
    positive_int,
    positive_size,
)

__all__ = ["ECHO_SERVICE", "UDP_ECHO_SERVICE"]


def _build_echo(config: Config, context: ServiceContext) -> EchoFactory:
    factory = EchoFactory(reactor=context.reactor, **_echo_limits(config))
    factory.admission.configure(**admission_settings("echo", config))
    return factory


def _echo_limits(config: Config) -> dict[str, Any]:
    return {"idle_timeout": config["echo-idle-timeout"] or None, "max_buffer": config["echo-max-buffer"]}


def _reconfigure_echo(factory: EchoFactory, config: Config) -> None:
    factory.admission.configure(**admission_settings("echo", config))
    factory.configure(**_echo_limits(config))


def _udp_limits(config: Config) -> dict[str, Any]:
    return {
        "rate": config["udp-rate"] or None,
        "burst": config["udp-burst"],
        "global_rate": config["udp-global-rate"] or None,
        "deny_ports": config["udp-deny-port"],
    }


ECHO_SERVICE = ServiceDescriptor(
    name="echo",
    summary="TCP echo (RFC 862)",
    default_listen="tcp:8007:interface=127.0.0.1",
    build=_build_echo,
    reconfigure=_reconfigure_echo,
    multiprocess=True,
    docs="docs/protocols/echo.md",
    options=(
        *admission_options("echo", max_connections=EchoFactory.DEFAULT_MAX_CONNECTIONS, max_per_ip=0),
        Option("echo-idle-timeout", EchoFactory.DEFAULT_IDLE_TIMEOUT,
               "Seconds without input before an echo connection is aborted; 0 = never.", non_negative(float)),
        Option("echo-max-buffer", EchoFactory.DEFAULT_MAX_BUFFER,
               "Unsent echo output held per connection before it stops reading.", positive_size),
    ),
)

UDP_ECHO_SERVICE = ServiceDescriptor(
    name="udp-echo",
    summary="UDP echo",
    default_listen="udp:8007:interface=127.0.0.1",
    build=lambda config, context: UDPEchoProtocol(reactor=context.reactor, **_udp_limits(config)),
    reconfigure=lambda protocol, config: protocol.configure(**_udp_limits(config)),
    datagram=True,
    multiprocess=True,
    docs="docs/protocols/echo.md",
    options=(
        Option("udp-rate", UDPEchoProtocol.DEFAULT_RATE,
               "Datagrams/s answered per source host; 0 = unlimited.", non_negative(float)),
        Option("udp-burst", UDPEchoProtocol.DEFAULT_BURST,
               "Datagrams a source host may send at once above --udp-rate.", positive_int),
        Option("udp-global-rate", UDPEchoProtocol.DEFAULT_GLOBAL_RATE,
               "Datagrams/s answered in total; 0 = unlimited.", non_negative(float)),
        Option("udp-deny-port", [],
               "Never answer this source port (repeatable, comma-separated; own port and <1024 always denied).",
               port_number, multiple=True),
    ),
)
