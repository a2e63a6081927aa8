"""Prometheus metrics: request counts, latency, predicted rows and refused requests, served on a
port of their own (METRICS_PORT), never on the model's port.

The metrics port answers ``GET /metrics`` only (anything else 404), with no token: keep it off
the public network (a NetworkPolicy admitting only the scraper). It is served once per server,
by the process that starts it (server.py), from a thread, so a scrape never waits on the event
loop. With several worker processes, server.py sets PROMETHEUS_MULTIPROC_DIR before the workers
start, and every worker's values are added up at scrape time (prometheus_client's multiprocess
mode).

Requests refused before they reach the app (past MAX_CONNECTIONS, headers too large or too slow:
protocol.py) and requests without the bearer token (auth.py) count in
``inference_requests_rejected_total{reason=...}``, a counter of the process rather than of one
app: the connection limit is the process's.
"""

from __future__ import annotations

import http.server
import os
import socket
import socketserver
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from .validation import shown

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
METRICS_PATH = "/metrics"
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# Why a request was refused before any route handled it (the `reason` label).
CONNECTION_LIMIT = "connection_limit"  # MAX_CONNECTIONS reached: 503
HEADER_TIMEOUT = "header_timeout"  # headers not in within REQUEST_TIMEOUT: 408
HEADER_TOO_LARGE = "header_too_large"  # headers over MAX_HEADER_BYTES: 431
UNAUTHORIZED = "unauthorized"  # no or a wrong bearer token (AUTH_TOKEN_FILE): 401
REJECT_REASONS = (CONNECTION_LIMIT, HEADER_TIMEOUT, HEADER_TOO_LARGE, UNAUTHORIZED)

# The process's own metrics (see the module docstring).
PROCESS_REGISTRY = CollectorRegistry()
REJECTED = Counter(
    "inference_requests_rejected",
    "HTTP requests refused before a route handled them, by reason",
    ["reason"],
    registry=PROCESS_REGISTRY,
)
for _reason in REJECT_REASONS:
    REJECTED.labels(_reason)  # every series exists from the start, at 0: alerts see a rate


def count_rejected(reason: str) -> None:
    REJECTED.labels(reason).inc()


class Metrics:
    """The server's metrics, in a registry of their own (several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "inference_requests",
            "HTTP requests by endpoint and status code",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "inference_request_duration_seconds",
            "Time from request to response, by endpoint",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "inference_rows",
            "Rows scored",
            registry=self.registry,
        )

    def observe(self, endpoint: str, status: int, seconds: float, rows: int = 0) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if rows:
            self.rows.inc(rows)


class _Together:
    """The metrics of several registries as one collector."""

    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def exposed(metrics: Metrics | None) -> Collector:
    """What the metrics port shows: every worker's values when PROMETHEUS_MULTIPROC_DIR is set
    (`metrics` is then ignored: the workers' apps are in other processes), else the app's
    metrics and the process's."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
        return registry
    if metrics is None:
        return PROCESS_REGISTRY
    return _Together(metrics.registry, PROCESS_REGISTRY)


class _MetricsHandler(http.server.BaseHTTPRequestHandler):
    """``GET /metrics`` (and HEAD); any other path 404, any other method 405, both as JSON."""

    server: MetricsServer
    server_version = "metrics"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 10  # seconds a scrape connection may stay silent

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler answers a method without a do_<METHOD> with an HTML 501.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    def _answer(self, *, send_body: bool) -> None:
        path = urlsplit(self.path).path
        if path != METRICS_PATH:
            self._error(404, f"not found: {self.command} {shown(path)}; this port serves /metrics")
            return
        body = generate_latest(self.server.collector)
        self._send(200, body, CONTENT_TYPE, send_body=send_body)

    def _method_not_allowed(self) -> None:
        self._error(405, f"method not allowed: {shown(self.command)}; /metrics answers GET")

    def _error(self, status: int, message: str) -> None:
        self._send(status, orjson.dumps({"error": message}), "application/json")

    def _send(self, status: int, body: bytes, content_type: str, *, send_body: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (one every few seconds would drown the request log)."""


class MetricsServer(http.server.ThreadingHTTPServer):
    """The metrics port: a small threaded HTTP server, started by ``serve_metrics``."""

    daemon_threads = True

    def __init__(self, host: str, port: int, collector: Collector) -> None:
        self.collector = collector
        # The family of the host (an IPv6 host such as "::" needs AF_INET6).
        self.address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        super().__init__((host, port), _MetricsHandler)
        self._thread = threading.Thread(target=self.serve_forever, name="metrics-port", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def server_bind(self) -> None:
        # HTTPServer.server_bind also looks the host's name up (socket.getfqdn), which can hang
        # on a host without DNS; nothing here needs it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.port

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self.shutdown()  # waits for serve_forever: only once it runs
        self.server_close()
        self._thread.join(timeout=5)


def serve_metrics(host: str, port: int, collector: Collector) -> MetricsServer:
    """Serve ``collector`` at http://host:port/metrics from a thread; OSError when the port
    cannot be bound (port 0: the OS picks one, ``.port`` says which)."""
    return MetricsServer(host, port, collector).start()
