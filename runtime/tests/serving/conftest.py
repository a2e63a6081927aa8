"""A real model server on an ephemeral 127.0.0.1 port, serving the model the suite trained.

The server runs uvicorn in a thread of the test process (real sockets, real HTTP), its metrics
on a port of their own (as the server process serves them); requests go through http.client, so
status codes, headers and bodies are exactly what a client sees.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import uvicorn

from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.data.columns import (
    FEATURE_NAMES,
)
from mlops_stack_runtime.data.csv_files import (
    read_frame,
)
from mlops_stack_runtime.serving.app import (
    create_app,
)
from mlops_stack_runtime.serving.metrics import (
    Metrics,
    exposed,
    serve_metrics,
)
from mlops_stack_runtime.serving.model import (
    ServedModel,
)

# Small, so the 413 tests need small bodies; the real default is 1 MiB.
TEST_MAX_BODY_BYTES = 64 * 1024
START_TIMEOUT = 120  # seconds; worker processes import scikit-learn on a possibly busy machine
# Server settings of the environment the tests run in; each test sets what it needs.
SERVER_SETTINGS = (
    "WEB_CONCURRENCY",
    "MAX_BODY_BYTES",
    "MAX_ROWS",
    "MAX_HEADER_BYTES",
    "REQUEST_TIMEOUT",
    "MAX_CONNECTIONS",
    "LOG_LEVEL",
    "MODEL_SHA256",
    "REQUIRE_MODEL_SHA256",
    "AUTH_TOKEN_FILE",
    "METRICS_PORT",
)
# Module names for `python -m` and loggers, without spelling the package name in code.
SERVING_PACKAGE = ServedModel.__module__.rpartition(".")[0]
PACKAGE = SERVING_PACKAGE.rpartition(".")[0]


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RunningServer:
    host: str
    port: int
    model: ServedModel
    metrics_port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        *,
        chunked: bool = False,
        timeout: float = 30,
    ) -> Reply:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            data = body.encode() if isinstance(body, str) else body
            all_headers = {"Content-Type": "application/json", **(headers or {})}
            if chunked and data is not None:
                connection.request(
                    method, path, body=iter([data]), headers=all_headers, encode_chunked=True
                )
            else:
                connection.request(method, path, body=data, headers=all_headers)
            response = connection.getresponse()
            return Reply(response.status, response.read(), dict(response.getheaders()))
        finally:
            connection.close()

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def scrape(self) -> str:
        """The metrics port's ``GET /metrics``."""
        assert self.metrics_port is not None, "this server was started without its metrics port"
        return scrape(self.host, self.metrics_port)

    def post_json(self, path: str, payload: Any) -> Reply:
        # allow_nan: the standard library writes NaN/Infinity, as a careless client would.
        return self.request("POST", path, json.dumps(payload, allow_nan=True))


def command_line(*args: str) -> list[str]:
    return [sys.executable, *args, "--host", "127.0.0.1"]


def run_server_once(
    command: list[str], port: int, model_dir: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """A server process that is to stop on its own (a refusal at start): its status and output.
    `command` is what follows the interpreter (`-m <module> [serve]`); `env` extends server_env."""
    return subprocess.run(
        [*command_line(*command, "--port", str(port)), "--model-dir", str(model_dir)],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        env=server_env(**env),
        check=False,
    )


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a server process: a free metrics port unless `extra` names one (the
    default 8082 would collide between servers of parallel tests)."""
    env = {k: v for k, v in os.environ.items() if k not in SERVER_SETTINGS}
    return {**env, "PYTHONUNBUFFERED": "1", "METRICS_PORT": str(free_port()), **extra}


def scrape(host: str, port: int) -> str:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 200, body
        return body
    finally:
        connection.close()


def metric_value(exposition: str, sample: str) -> float:
    """The value of one sample (`name{labels}`) in a Prometheus exposition; 0 when absent."""
    for line in exposition.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


def wait_ready(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/v2/health/ready")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.1)
    raise AssertionError("server did not become ready")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def served_model(trained_project: Config) -> ServedModel:
    return ServedModel.load(trained_project.paths.models_dir)


@contextmanager
def running(
    app: Any, served: ServedModel, metrics: Metrics | None = None
) -> Iterator[RunningServer]:
    """`app` in uvicorn, in a background thread, on a port the OS picked on 127.0.0.1; with
    `metrics` (the app's), its metrics port too, as the server process serves it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(
        target=uvicorn_server.run, kwargs={"sockets": [sock]}, name="model-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not uvicorn_server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the model server did not start")
        time.sleep(0.02)
    metrics_server = None if metrics is None else serve_metrics("127.0.0.1", 0, exposed(metrics))
    try:
        yield RunningServer(
            "127.0.0.1",
            sock.getsockname()[1],
            served,
            None if metrics_server is None else metrics_server.port,
        )
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        if metrics_server is not None:
            metrics_server.close()


@pytest.fixture(scope="session")
def server(served_model: ServedModel) -> Iterator[RunningServer]:
    """The server with test settings, shared by the tests (they only read from it)."""
    metrics = Metrics()
    app = create_app(served_model, max_body_bytes=TEST_MAX_BODY_BYTES, metrics=metrics)
    with running(app, served_model, metrics) as running_server:
        yield running_server


@pytest.fixture(scope="session")
def test_rows(trained_project: Config) -> pd.DataFrame:
    """Held-out applicants, with their missing values, as the pipeline read them."""
    frame = read_frame(trained_project.paths.test_data)
    return frame[list(FEATURE_NAMES)].head(40).reset_index(drop=True)


def plain(value: Any) -> Any:
    """A JSON-ready value: NaN becomes None, numpy scalars become Python numbers (exactly)."""
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """v1 instances: one object per applicant."""
    return [{k: plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def v2_inputs(frame: pd.DataFrame, served: ServedModel) -> list[dict[str, Any]]:
    """v2 inputs: one tensor per feature, with the datatypes the model metadata declares."""
    datatypes = {item["name"]: item["datatype"] for item in served.schema.v2_metadata()}
    return [
        {
            "name": name,
            "datatype": datatypes[name],
            "shape": [len(frame)],
            "data": [plain(v) for v in frame[name].tolist()],
        }
        for name in FEATURE_NAMES
    ]


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> Callable[[str, int], list[logging.LogRecord]]:
    """`access_log(path, count)`: the last `count` access records for `path`, once written.

    The server writes the line after the response is sent, so the test waits for it briefly.
    """
    caplog.set_level(logging.INFO, logger=f"{SERVING_PACKAGE}.access")

    def wait_for(path: str, count: int) -> list[logging.LogRecord]:
        deadline = time.monotonic() + 5
        while True:
            found = [r for r in caplog.records if getattr(r, "path", None) == path]
            if len(found) >= count or time.monotonic() > deadline:
                return found[-count:]
            time.sleep(0.01)

    return wait_for


def model_dir_copy(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for name in ("model.joblib", "model.onnx", "model.json"):
        (target / name).write_bytes((source / name).read_bytes())
    return target
