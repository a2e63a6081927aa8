"""The metrics port (serving/metrics.py, METRICS_PORT): `GET /metrics` and nothing else, on the
server's host; a port it cannot have stops the server naming the variable."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from mlops_stack_runtime.errors import (
    ServerSettingError,
)
from mlops_stack_runtime.serving.metrics import (
    CONTENT_TYPE,
    REJECT_REASONS,
    Metrics,
    MetricsServer,
    exposed,
)
from mlops_stack_runtime.serving.server import (
    start_metrics_port,
)
from mlops_stack_runtime.serving.settings import (
    ServerSettings,
)

from .conftest import SERVER_SETTINGS, free_port, metric_value, scrape


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*SERVER_SETTINGS, "LOG_FEATURES", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def metrics_port() -> Iterator[tuple[Metrics, MetricsServer]]:
    metrics = Metrics()
    settings = ServerSettings.from_env(metrics_port=free_port())
    served = start_metrics_port("127.0.0.1", free_port(), settings, metrics)
    try:
        yield metrics, served
    finally:
        served.close()


def ask(port: int, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


def test_the_metrics_port_shows_the_apps_and_the_processs_metrics(
    metrics_port: tuple[Metrics, MetricsServer],
) -> None:
    metrics, served = metrics_port
    assert served.server_address[0] == "127.0.0.1", "bound to the server's host only"
    metrics.observe("v1_predict", 200, 0.01, rows=3)

    status, headers, body = ask(served.port, "GET", "/metrics")

    assert status == 200
    assert headers["content-type"] == CONTENT_TYPE
    text = body.decode()
    assert metric_value(text, 'inference_requests_total{endpoint="v1_predict",status="200"}') == 1
    assert metric_value(text, "inference_rows_total") == 3
    # Every refusal reason is a series from the start, so an alert sees a rate, not a gap.
    for reason in REJECT_REASONS:
        assert f'inference_requests_rejected_total{{reason="{reason}"}}' in text
    head_status, head_headers, head_body = ask(served.port, "HEAD", "/metrics")
    assert (head_status, head_body, head_headers["content-type"]) == (200, b"", CONTENT_TYPE)


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/", 404, 'not found: GET "/"; this port serves /metrics'),
        ("GET", "/metrics/more", 404, 'not found: GET "/metrics/more"; this port serves /metrics'),
        ("GET", "/v2/health/ready", 404, 'not found: GET "/v2/health/ready"'),
        ("POST", "/metrics", 405, 'method not allowed: "POST"; /metrics answers GET'),
        ("DELETE", "/metrics", 405, 'method not allowed: "DELETE"; /metrics answers GET'),
    ],
)
def test_the_metrics_port_serves_nothing_else(
    metrics_port: tuple[Metrics, MetricsServer],
    method: str,
    path: str,
    status: int,
    message: str,
) -> None:
    _, served = metrics_port
    answered, headers, body = ask(served.port, method, path)
    assert answered == status
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"].startswith(message)


def test_the_query_string_does_not_matter(metrics_port: tuple[Metrics, MetricsServer]) -> None:
    _, served = metrics_port
    assert ask(served.port, "GET", "/metrics?name[]=inference_rows_total")[0] == 200


def test_a_metrics_port_already_taken_stops_the_server_naming_the_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = ServerSettings.from_env(metrics_port=port)
        with pytest.raises(ServerSettingError) as refused:
            start_metrics_port("127.0.0.1", free_port(), settings, Metrics())
    assert str(refused.value).startswith(f"METRICS_PORT {port} cannot be bound on 127.0.0.1: ")


def test_the_metrics_port_must_differ_from_the_servers() -> None:
    port = free_port()
    settings = ServerSettings.from_env(metrics_port=port)
    with pytest.raises(ServerSettingError, match="METRICS_PORT must differ from the server's"):
        start_metrics_port("127.0.0.1", port, settings, Metrics())


def test_without_an_app_the_process_metrics_are_shown() -> None:
    served = MetricsServer("127.0.0.1", 0, exposed(None)).start()
    try:
        text = scrape("127.0.0.1", served.port)
    finally:
        served.close()
    assert 'inference_requests_rejected_total{reason="connection_limit"}' in text
    assert "inference_requests_total" not in text
