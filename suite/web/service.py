"""The web service's descriptor: ``--mode web`` and its options."""

from __future__ import annotations

from typing import Any

from twisted.python import usage

from suite.admission import admission_options, admission_settings
from suite.files.service import STORAGE_OPTIONS, read_token, shared_storage
from suite.metrics import HealthResource, SuiteMetrics, metrics_resource
from suite.service import Config, Option, ServiceContext, ServiceDescriptor, non_negative, positive_int, positive_size
from suite.web.site import WebSite

__all__ = ["WEB_SERVICE", "shared_metrics"]


def shared_metrics(context: ServiceContext) -> SuiteMetrics:
    """The process's one metrics registry (``/metrics`` of the web service and of ``--metrics-listen``)."""
    return context.shared("metrics", SuiteMetrics)


def _origin(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
        raise usage.UsageError(f"expected an origin such as https://app.example:8443, got {value!r}")
    return value


def _limits(config: Config) -> dict[str, Any]:
    return {
        "idle_timeout": config["web-idle-timeout"] or None,
        "header_timeout": config["web-header-timeout"],
        "send_timeout": config["web-send-timeout"] or None,
        "max_headers": config["web-max-headers"],
        "max_header_bytes": config["web-max-header-bytes"],
        "disk_buffer": config["web-disk-buffer"],
        "max_transfers": config["web-max-transfers"] or None,
        "cors_origin": config["web-cors-origin"],
        "auth_delay": config["auth-delay"],
    }


def _build(config: Config, context: ServiceContext) -> WebSite:
    site = WebSite(
        shared_storage(config, context),
        token=read_token(config["token-file"]),
        reactor=context.reactor,
        **_limits(config),
    )
    site.admission.configure(**admission_settings("web", config))
    metrics = shared_metrics(context)
    site.mount(b"metrics", site.protect(metrics_resource(metrics)))
    site.mount(b"healthz", HealthResource(metrics))
    _mount_chat(site, config, context)
    return site


def _mount_chat(site: WebSite, config: Config, context: ServiceContext) -> None:
    """``/chat`` and ``/chat.html``: the chat's WebSocket front and page, on the process's one ChatServer."""
    from suite.chat.service import chat_server
    from suite.chat.websocket import chat_page_resource, chat_websocket_resource

    websocket = chat_websocket_resource(
        chat_server(config, context),
        max_message=config["chat-max-line"] or 4096,
        flood_rate=config["chat-flood-rate"] or None,
        flood_burst=config["chat-flood-burst"],
        max_pending=config["chat-max-pending"] or None,
        reactor=context.reactor,
    )
    site.mount_chat(websocket, chat_page_resource())
    # Its lines and disconnects, as a service of its own (no listener: it lives on the web service's).
    shared_metrics(context).watch("chat-websocket", websocket.factory)


def _reconfigure(site: WebSite, config: Config) -> None:
    site.admission.configure(**admission_settings("web", config))
    limits = _limits(config)
    site.timeOut = limits.pop("idle_timeout")
    cors = limits.pop("cors_origin")
    site.cors_origin = cors.encode() if cors else None
    for name, value in limits.items():
        setattr(site, name, value)
    site.token = read_token(config["token-file"])


WEB_SERVICE = ServiceDescriptor(
    name="web",
    summary="files over HTTP for curl, wget, browsers and tus",
    default_listen="tcp:8080:interface=127.0.0.1",
    build=_build,
    reconfigure=_reconfigure,
    docs="docs/protocols/http.md",
    options=(
        *STORAGE_OPTIONS,
        Option("web-idle-timeout", WebSite.DEFAULT_IDLE_TIMEOUT,
               "Seconds a web connection may stay silent (also in a request body); 0 = never.", non_negative(float)),
        Option("web-header-timeout", WebSite.DEFAULT_HEADER_TIMEOUT,
               "Seconds a request's headers may take from its first byte.", non_negative(float)),
        Option("web-send-timeout", WebSite.DEFAULT_SEND_TIMEOUT,
               "Seconds a download may wait for the client to read; 0 = never.", non_negative(float)),
        Option("web-max-headers", WebSite.DEFAULT_MAX_HEADERS, "Most headers in one request.", positive_int),
        Option("web-max-header-bytes", WebSite.DEFAULT_MAX_HEADER_BYTES,
               "Longest request line or header, and most header bytes in one request.", positive_size),
        Option("web-disk-buffer", WebSite.DEFAULT_DISK_BUFFER,
               "Bytes of an upload waiting for the disk before reading pauses.", positive_size),
        Option("web-max-transfers", WebSite.DEFAULT_MAX_TRANSFERS,
               "Concurrent downloads over HTTP; 0 = no cap.", non_negative(int)),
        Option("web-cors-origin", None,
               "The one other origin (https://host:port) whose pages may read and write; none by default.", _origin),
        *admission_options("web", max_connections=WebSite.DEFAULT_MAX_CONNECTIONS,
                           max_per_ip=WebSite.DEFAULT_MAX_PER_IP),
    ),
)
