"""
Observability for every netsuite service: one Prometheus registry per
process, ``/metrics`` (``prometheus_client``'s Twisted ``MetricsResource``)
and ``/healthz``.

Collectors read the counters the services already keep when Prometheus
scrapes; nothing is added to any service's hot path.  A service's target
(its factory or datagram protocol) is read through these attributes, each
optional (see docs/operations.md, "Metrics"):

- ``admission``: the shared admission policy (``open``, ``accepted``,
  ``refused`` by reason); older factories: ``connections.total`` and
  ``refused``.
- the target itself, its ``counters`` (the web service), its ``server``
  (the chat fronts' shared ``ChatServer``, reported under the first service
  that has it), its ``sockets`` (a :class:`suite.sockbytes.SocketBytes`:
  bytes from the kernel), or its ``stats`` (UDP echo): ``bytes_in``, ``bytes_out``,
  ``lines_received``, ``lines_delivered``, ``disconnects`` (by reason),
  ``files_stored``, ``files_failed`` (by code), ``bytes_stored``,
  ``bytes_served``, and UDP's ``received``, ``echoed``, ``refused``,
  ``rate_limited``, ``dropped``.

``/healthz`` answers ``200`` when every configured listener is listening,
``503`` (with the ones that are not) otherwise.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from twisted.web.resource import Resource

__all__ = ["HealthResource", "SuiteMetrics", "guarded", "metrics_resource", "metrics_root", "reason_label"]

#: Counter attributes and the metric each feeds: (attribute, metric, help).
_TOTALS = (
    ("bytes_in", "netsuite_bytes_received_total", "Bytes received from clients."),
    ("bytes_out", "netsuite_bytes_sent_total", "Bytes sent to clients."),
    ("lines_received", "netsuite_chat_lines_received_total", "Chat lines received from clients."),
    ("lines_delivered", "netsuite_chat_lines_delivered_total", "Chat lines delivered to clients."),
    ("files_stored", "netsuite_files_stored_total", "Files stored (uploads committed)."),
    ("bytes_stored", "netsuite_file_bytes_stored_total", "Bytes of files stored."),
    ("bytes_served", "netsuite_file_bytes_served_total", "Bytes of files sent to clients."),
)
#: Counters kept by reason or code: (attribute, metric, label, help).
_BY_LABEL = (
    ("disconnects", "netsuite_clients_disconnected_total", "reason", "Chat clients disconnected, by reason."),
    ("files_failed", "netsuite_files_failed_total", "code", "Uploads that failed, by error code."),
)
#: UDP echo statistics: attribute -> (metric, reason label or None).
_UDP = {
    "received": ("netsuite_udp_datagrams_received_total", None),
    "echoed": ("netsuite_udp_datagrams_answered_total", None),
    "refused": ("netsuite_udp_datagrams_dropped_total", "denied-port"),
    "rate_limited": ("netsuite_udp_datagrams_dropped_total", "rate-limited"),
    "dropped": ("netsuite_udp_datagrams_dropped_total", "send-failed"),
}


def reason_label(reason: str) -> str:
    """A disconnect reason as a label value: ``"Quit: bye"`` -> ``quit``, ``"idle timeout"`` -> ``idle-timeout``."""
    return reason.split(":", 1)[0].strip().lower().replace(" ", "-") or "unknown"


def _items(counter: Any) -> list[tuple[str, int]]:
    # Scrapes run in a WSGI thread: list() copies a dict in one step under
    # the GIL, so a key added meanwhile on the reactor thread cannot break it.
    return list(counter.items()) if hasattr(counter, "items") else []


class SuiteMetrics:
    """
    The Prometheus registry of one process and the services it reads.

    ``watch`` each service once it is built; ``registry`` is what
    ``/metrics`` exposes.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        #: Service name -> (target, listening service or None).
        self.services: dict[str, tuple[Any, Any]] = {}
        self.registry.register(self)

    def watch(self, name: str, target: Any, listener: Any = None) -> None:
        """Read ``target``'s counters as service ``name``; ``listener`` (with ``.port``) for health."""
        self.services[name] = (target, listener)

    def listeners(self) -> dict[str, bool]:
        """Whether each watched service with a listener is listening now."""
        return {
            name: getattr(listener, "port", None) is not None and bool(getattr(listener, "running", True))
            for name, (_, listener) in self.services.items()
            if listener is not None
        }

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        """Read every watched service's counters (called by ``prometheus_client``)."""
        families: dict[str, Metric] = {}

        def family(kind: type, metric: str, help: str, labels: list[str]) -> Any:
            if metric not in families:
                name = metric.removesuffix("_total") if kind is CounterMetricFamily else metric
                families[metric] = kind(name, help, labels=labels)
            return families[metric]

        # A source shared by several services (the chat fronts' one
        # ChatServer) is reported once, under the first of them.
        seen: set[int] = set()
        for service, (target, _) in list(self.services.items()):
            self._connections(service, target, family)
            for source in self._sources(target):
                if id(source) in seen:
                    continue
                seen.add(id(source))
                for attribute, metric, help in _TOTALS:
                    value = getattr(source, attribute, None)
                    if isinstance(value, int):
                        family(CounterMetricFamily, metric, help, ["service"]).add_metric([service], value)
                for attribute, metric, label, help in _BY_LABEL:
                    for key, value in _items(getattr(source, attribute, None)):
                        family(CounterMetricFamily, metric, help, ["service", label]).add_metric([service, key], value)
            stats = getattr(target, "stats", None)
            if stats is not None and not callable(stats):
                for attribute, (metric, reason) in _UDP.items():
                    value = getattr(stats, attribute, None)
                    if not isinstance(value, int):
                        continue
                    if reason is None:
                        family(CounterMetricFamily, metric, "UDP datagrams.", ["service"]).add_metric([service], value)
                    else:
                        family(CounterMetricFamily, metric, "UDP datagrams dropped, by reason.",
                               ["service", "reason"]).add_metric([service, reason], value)
        up = family(GaugeMetricFamily, "netsuite_listener_up", "Whether the service is listening (1) or not (0).",
                    ["service"])
        for service, listening in self.listeners().items():
            up.add_metric([service], 1 if listening else 0)
        yield from families.values()

    @staticmethod
    def _sources(target: Any) -> list[Any]:
        sources = (target, getattr(target, "counters", None), getattr(target, "server", None),
                   getattr(target, "sockets", None))
        return [s for s in sources if s is not None]

    @staticmethod
    def _connections(service: str, target: Any, family: Any) -> None:
        policy = getattr(target, "admission", None)
        counters = getattr(target, "counters", None)
        open_ = accepted = None
        refused: list[tuple[str, int]] = []
        if policy is not None:
            open_, accepted, refused = policy.open, policy.accepted, _items(policy.refused)
        elif counters is not None and hasattr(counters, "open"):
            open_, accepted = counters.open, counters.accepted
        elif hasattr(getattr(target, "connections", None), "total"):
            open_ = target.connections.total
            if isinstance(getattr(target, "refused", None), int):
                refused = [("max-connections", target.refused)]
        if open_ is not None:
            family(GaugeMetricFamily, "netsuite_connections_open", "Connections open now.",
                   ["service"]).add_metric([service], open_)
        if accepted is not None:
            family(CounterMetricFamily, "netsuite_connections_accepted_total", "Connections accepted.",
                   ["service"]).add_metric([service], accepted)
        for reason, count in refused:
            family(CounterMetricFamily, "netsuite_connections_refused_total", "Connections refused, by reason.",
                   ["service", "reason"]).add_metric([service, reason], count)


class HealthResource(Resource):
    """``/healthz``: ``200`` when every listener is up, else ``503``; JSON either way."""

    isLeaf = True

    def __init__(self, metrics: SuiteMetrics) -> None:
        super().__init__()
        self.metrics = metrics

    def render_GET(self, request: Any) -> bytes:
        listeners = self.metrics.listeners()
        healthy = all(listeners.values())
        request.setResponseCode(200 if healthy else 503)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        return json.dumps({"status": "ok" if healthy else "unavailable", "listeners": listeners}).encode() + b"\n"

    render_HEAD = render_GET


class _Guarded(Resource):
    """A resource that needs ``Authorization: Bearer TOKEN``."""

    isLeaf = True

    def __init__(self, inner: Resource, token: bytes) -> None:
        super().__init__()
        self.inner = inner
        self.token = token

    def render(self, request: Any) -> Any:
        scheme, _, presented = (request.getHeader(b"Authorization") or b"").partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(presented.strip(), self.token):
            request.setResponseCode(401)
            request.setHeader(b"WWW-Authenticate", b'Bearer realm="netsuite"')
            request.setHeader(b"Content-Type", b"application/json")
            return b'{"error": "auth-required", "message": "send Authorization: Bearer TOKEN"}\n'
        return self.inner.render(request)


def metrics_resource(metrics: SuiteMetrics) -> Resource:
    """``prometheus_client``'s Twisted ``MetricsResource`` for ``metrics`` (scrapes run in a thread)."""
    # Imported here: prometheus_client.twisted imports the global reactor,
    # which importing suite (or the twistd plugin) must not do.
    from prometheus_client.twisted import MetricsResource

    return MetricsResource(metrics.registry)


def guarded(resource: Resource, token: bytes | None) -> Resource:
    """``resource``, behind the bearer token when there is one."""
    return resource if token is None else _Guarded(resource, token)


def metrics_root(metrics: SuiteMetrics, token: bytes | None = None) -> Resource:
    """A root serving just ``/metrics`` (behind the token) and ``/healthz`` (open): ``--metrics-listen``."""
    root = Resource()
    root.putChild(b"metrics", guarded(metrics_resource(metrics), token))
    root.putChild(b"healthz", HealthResource(metrics))
    return root
