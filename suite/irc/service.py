"""The IRC service's descriptor: ``--mode irc`` (part of ``--mode all``) and its options."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from suite.admission import admission_options, admission_settings
from suite.chat.service import chat_server
from suite.irc import defaults
from suite.service import Config, Option, ServiceContext, ServiceDescriptor, non_negative, positive_int

if TYPE_CHECKING:
    from suite.irc.factory import IRCFactory

__all__ = ["IRC_SERVICE"]


def _motd(config: Config) -> str | None:
    path = config["irc-motd"]
    if not path:
        return defaults.MOTD
    try:
        return Path(path).read_text("utf-8", "replace")
    except OSError as e:
        raise ValueError(f"--irc-motd: cannot read {path}: {e.strerror}") from None


def _limits(config: Config) -> dict[str, Any]:
    return {
        "max_line": config["irc-max-line"] or None,
        "flood_rate": config["irc-flood-rate"] or None,
        "flood_burst": config["irc-flood-burst"],
        "max_pending": config["irc-max-pending"] or None,
        "ping_interval": config["irc-ping-interval"],
        "ping_timeout": config["irc-ping-timeout"],
        "register_timeout": config["irc-register-timeout"],
    }


def _build(config: Config, context: ServiceContext) -> IRCFactory:
    from suite.irc.factory import IRCFactory  # here: Twisted's IRC module imports the reactor

    factory = IRCFactory(
        chat_server(config, context),
        server_name=config["irc-server-name"],
        network=config["irc-network"],
        motd=_motd(config),
        password=config["irc-password"] or None,
        reactor=context.reactor,
        **_limits(config),
    )
    factory.admission.configure(**admission_settings("irc", config))
    return factory


def _reconfigure(factory: IRCFactory, config: Config) -> None:
    factory.admission.configure(**admission_settings("irc", config))
    factory.configure(**_limits(config))


def _name(value: str) -> str:
    if not value or any(c in value for c in " :!@,*?\r\n\x00"):
        raise ValueError(f"expected a name without spaces or : ! @ , * ?, got {value!r}")
    return value


IRC_SERVICE = ServiceDescriptor(
    name="irc",
    summary="the chat's rooms for IRC clients (irssi, WeeChat, HexChat)",
    default_listen="tcp:6667:interface=127.0.0.1",
    build=_build,
    reconfigure=_reconfigure,
    docs="docs/protocols/irc.md",
    options=(
        Option("irc-server-name", "netsuite", "The IRC server's name (prefixes, numerics).", _name, reloadable=False),
        Option("irc-network", "netsuite", "The NETWORK the 005 reply advertises.", _name, reloadable=False),
        Option("irc-motd", None, "File with the message of the day; none: a built-in one.", reloadable=False),
        Option("irc-password", None, "Password IRC clients must give with PASS; none: no PASS needed.", reloadable=False),
        Option("irc-max-line", defaults.MAX_LINE,
               "Longest IRC line in bytes; longer ones get 417; 0 = no limit.", non_negative(int)),
        Option("irc-flood-rate", defaults.FLOOD_RATE,
               "IRC lines/s per connection; 0 = no flood control.", non_negative(float)),
        Option("irc-flood-burst", defaults.FLOOD_BURST,
               "IRC lines a connection may send at once; as many more dropped end it (Excess Flood).", positive_int),
        Option("irc-max-pending", defaults.MAX_PENDING,
               "Bytes of IRC output a client may leave unread (SendQ exceeded); 0 = no cap.", non_negative(int)),
        Option("irc-ping-interval", defaults.PING_INTERVAL,
               "Seconds of silence before the server sends PING.", non_negative(float)),
        Option("irc-ping-timeout", defaults.PING_TIMEOUT,
               "Seconds a client has to answer PING (Ping timeout).", non_negative(float)),
        Option("irc-register-timeout", defaults.REGISTER_TIMEOUT,
               "Seconds a new connection has to register (NICK and USER).", non_negative(float)),
        *admission_options("irc", max_connections=defaults.MAX_CONNECTIONS,
                           max_per_ip=defaults.MAX_PER_IP),
    ),
)
