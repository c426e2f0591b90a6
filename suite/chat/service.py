"""The chat service's descriptor: ``--mode chat`` and its options."""

from __future__ import annotations

from typing import Any

from suite.admission import admission_options, admission_settings
from suite.chat.backplane.running import BACKPLANE_OPTIONS, backplane_server, uses_backplane
from suite.chat.factory import ChatFactory
from suite.chat.rooms import ChatServer
from suite.service import Config, Option, ServiceContext, ServiceDescriptor, non_negative, positive_int

__all__ = ["CHAT_OPTIONS", "CHAT_SERVICE", "chat_server"]


def chat_server(config: Config, context: ServiceContext) -> ChatServer:
    """The process's one :class:`ChatServer`, shared by every chat front (line, IRC, WebSocket)."""
    options = {"history": config["history"], "quiet_joins": config["chat-quiet-joins"] or None}
    if uses_backplane(config):  # one node of a chat spanning processes (docs/scaling.md)
        return context.shared("chat-server", lambda: backplane_server(config, context.reactor, **options))
    return context.shared(
        "chat-server", lambda: ChatServer(clock=context.reactor.seconds, **options)
    )


def _limits(config: Config) -> dict[str, Any]:
    return {
        "max_line": config["chat-max-line"] or None,
        "flood_rate": config["chat-flood-rate"] or None,
        "flood_burst": config["chat-flood-burst"],
        "max_pending": config["chat-max-pending"] or None,
        "idle_timeout": config["chat-idle-timeout"] or None,
        "partial_line_notice": config["chat-partial-line-notice"] or None,
    }


def _build(config: Config, context: ServiceContext) -> ChatFactory:
    factory = ChatFactory(chat_server(config, context), reactor=context.reactor, **_limits(config))
    factory.admission.configure(**admission_settings("chat", config))
    return factory


def _reconfigure(factory: ChatFactory, config: Config) -> None:
    factory.admission.configure(**admission_settings("chat", config))
    factory.configure(**_limits(config))


#: The options every chat front shares: the rooms and each connection's limits.
CHAT_OPTIONS: tuple[Option, ...] = (
    Option("history", ChatServer.DEFAULT_HISTORY,
           "Chat messages each room replays to newcomers; 0 = none.", non_negative(int), reloadable=False),
    Option("chat-quiet-joins", 0,
           "Rooms with more members than this announce joins and leaves only to member-list clients "
           "(IRC, the chat page); 0 = always announce.", non_negative(int), reloadable=False),
    Option("chat-max-line", ChatFactory.DEFAULT_MAX_LINE,
           "Longest chat line in bytes; longer lines are rejected; 0 = no limit.", non_negative(int)),
    Option("chat-flood-rate", ChatFactory.DEFAULT_FLOOD_RATE,
           "Chat lines/s per connection; 0 = no flood control.", non_negative(float)),
    Option("chat-flood-burst", ChatFactory.DEFAULT_FLOOD_BURST,
           "Chat lines a connection may send at once above --chat-flood-rate.", positive_int),
    Option("chat-max-pending", ChatFactory.DEFAULT_MAX_PENDING,
           "Bytes of chat output a client may leave unread; 0 = no cap.", non_negative(int)),
    Option("chat-idle-timeout", 0.0,
           "Seconds without input before a chat client is disconnected; 0 = never.", non_negative(float)),
    Option("chat-partial-line-notice", ChatFactory.DEFAULT_PARTIAL_LINE_NOTICE,
           "Seconds text may wait without a newline before the client is told; 0 = never.",
           non_negative(float)),
    *BACKPLANE_OPTIONS,
)

CHAT_SERVICE = ServiceDescriptor(
    name="chat",
    summary="line-based chat for nc and telnet",
    default_listen="tcp:8023:interface=127.0.0.1",
    build=_build,
    reconfigure=_reconfigure,
    multiprocess=uses_backplane,
    docs="docs/protocols/chat.md",
    options=(
        *CHAT_OPTIONS,
        *admission_options(
            "chat", max_connections=ChatFactory.DEFAULT_MAX_CONNECTIONS, max_per_ip=ChatFactory.DEFAULT_MAX_PER_IP
        ),
    ),
)
