"""The bearer token (AUTH_TOKEN_FILE, serving/auth.py) over real HTTP: every route but the health
checks needs it; a missing or wrong one is a logged, counted 401 that never shows the token."""

from __future__ import annotations

import http.client
import json
import logging
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.serving.app import (
    create_app,
)
from mlops_stack_runtime.serving.logs import (
    JsonFormatter,
)
from mlops_stack_runtime.serving.metrics import (
    Metrics,
)
from mlops_stack_runtime.serving.model import (
    ServedModel,
)

from .conftest import (
    SERVING_PACKAGE,
    RunningServer,
    command_line,
    free_port,
    metric_value,
    model_dir_copy,
    running,
    scrape,
    server_env,
    wait_ready,
)

TOKEN = "s3cr3t-Token_0123456789abcdef"
UNAUTHORIZED = 'inference_requests_rejected_total{reason="unauthorized"}'
OPEN = ("/", "/v2/health/live", "/v2/health/ready")


@pytest.fixture(scope="module")
def guarded(served_model: ServedModel) -> Iterator[RunningServer]:
    metrics = Metrics()
    app = create_app(served_model, auth_token=TOKEN, metrics=metrics)
    with running(app, served_model, metrics) as server:
        yield server


def protected(server: RunningServer) -> list[tuple[str, str, str | None]]:
    """(method, path, body) of every route that needs the token, and of an unknown path."""
    name = server.model.name
    v1 = json.dumps({"instances": [server.model.schema.example_record()]})
    return [
        ("POST", f"/v1/models/{name}:predict", v1),
        ("POST", f"/v2/models/{name}/infer", "{}"),
        ("GET", "/v2", None),
        ("GET", f"/v2/models/{name}", None),
        ("GET", f"/v2/models/{name}/ready", None),
        ("GET", "/v1/models", None),
        ("GET", f"/v1/models/{name}", None),
        ("GET", "/no/such/path", None),
    ]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_health_checks_answer_without_a_token(guarded: RunningServer) -> None:
    for path in OPEN:
        assert guarded.get(path).status == 200, path


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "no bearer token"),
        (bearer("wrong-token"), "wrong bearer token"),
        (bearer(TOKEN[:-1]), "wrong bearer token"),
        (bearer(TOKEN + "x"), "wrong bearer token"),
        ({"Authorization": f"Basic {TOKEN}"}, "the Authorization header is not a bearer token"),
        ({"Authorization": TOKEN}, "the Authorization header is not a bearer token"),
        ({"Authorization": "Bearer "}, "no bearer token"),
        # Bytes that are not ASCII (http.client sends latin-1): still a 401, never a 5xx.
        ({"Authorization": "Bearer \xe9\xff"}, "wrong bearer token"),
    ],
    ids=["none", "wrong", "prefix", "longer", "basic", "no-scheme", "empty", "latin-1"],
)
def test_every_other_route_answers_401_without_the_token(
    guarded: RunningServer,
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str],
    reason: str,
) -> None:
    caplog.set_level(logging.INFO)
    before = metric_value(guarded.scrape(), UNAUTHORIZED)
    routes = protected(guarded)
    for method, path, body in routes:
        reply = guarded.request(method, path, body, headers)
        assert reply.status == 401, (method, path, reply.body)
        headers_sent = {name.lower(): value for name, value in reply.headers.items()}
        assert headers_sent["www-authenticate"] == "Bearer"
        assert headers_sent["content-type"] == "application/json"
        assert reply.json() == {
            "error": f"unauthorized: {reason}; send the header 'Authorization: Bearer <token>'"
        }
    assert metric_value(guarded.scrape(), UNAUTHORIZED) == before + len(routes)
    assert 'inference_requests_total{endpoint="unauthorized",status="401"}' in guarded.scrape()
    logged = [r for r in caplog.records if getattr(r, "endpoint", None) == "unauthorized"]
    assert [tuple(getattr(r, key) for key in ("path", "status", "error")) for r in logged] == [
        (path, 401, reason) for _, path, _ in routes
    ]
    assert all(getattr(r, "client", None) == "127.0.0.1" for r in logged)
    assert TOKEN not in caplog.text
    assert all(TOKEN not in JsonFormatter().format(record) for record in caplog.records)


def test_the_token_opens_every_route(guarded: RunningServer) -> None:
    expected = {"/no/such/path": 404, f"/v2/models/{guarded.model.name}/infer": 400}
    for method, path, body in protected(guarded):
        reply = guarded.request(method, path, body, bearer(TOKEN))
        assert reply.status == expected.get(path, 200), (method, path, reply.body)
    # The scheme is case-insensitive (RFC 7235); the token is not.
    lower = {"Authorization": f"bearer {TOKEN}"}
    assert guarded.get("/v1/models", lower).status == 200
    assert guarded.get("/v1/models", bearer(TOKEN.upper())).status == 401


def test_without_a_token_nothing_is_asked_for(server: RunningServer) -> None:
    assert server.get("/v1/models").status == 200


# --- as deployed: the token in a mounted secret's file -------------------------------------------
@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "token"
    path.write_text(TOKEN + "\n")  # as `kubectl create secret --from-file` often leaves it
    return path


@pytest.mark.separate_process
def test_the_server_process_reads_the_token_file_and_never_logs_the_token(
    trained_project: Config, tmp_path: Path, token_file: Path
) -> None:
    model_dir = model_dir_copy(trained_project.paths.models_dir, tmp_path / "models")
    port, metrics_port = free_port(), free_port()
    env = server_env(
        AUTH_TOKEN_FILE=str(token_file), METRICS_PORT=str(metrics_port), LOG_LEVEL="debug"
    )
    process = subprocess.Popen(
        [*command_line("-m", SERVING_PACKAGE, "--port", str(port)), "--model-dir", str(model_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        wait_ready(process, port)  # readiness needs no token
        served = ServedModel.load(model_dir)
        body = json.dumps({"instances": [served.schema.example_record()]})
        path = f"/v1/models/{served.name}:predict"
        statuses = []
        for headers in ({}, bearer("guess"), bearer(TOKEN)):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", path, body, headers)
            statuses.append(connection.getresponse().status)
            connection.close()
        assert statuses == [401, 401, 200]
        # The container's HEALTHCHECK asks for readiness without a token.
        healthcheck = subprocess.run(
            [sys.executable, "-m", f"{SERVING_PACKAGE}.healthcheck"],
            env={**env, "PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert healthcheck.returncode == 0, healthcheck.stderr
        assert metric_value(scrape("127.0.0.1", metrics_port), UNAUTHORIZED) == 2
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert TOKEN not in output
    refused = [json.loads(line) for line in output.splitlines() if '"unauthorized"' in line]
    assert [(entry["path"], entry["status"]) for entry in refused] == [(path, 401)] * 2
