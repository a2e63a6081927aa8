"""The server as users start it: a process that refuses a tampered model and serves a good one."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.errors import (
    ArtifactIntegrityError,
)
from mlops_stack_runtime.serving.model import (
    ServedModel,
)

from .conftest import (
    PACKAGE,
    SERVING_PACKAGE,
    command_line,
    free_port,
    model_dir_copy,
    run_server_once,
    scrape,
    server_env,
    wait_ready,
)


@pytest.fixture
def model_dir(trained_project: Config, tmp_path: Path) -> Path:
    return model_dir_copy(trained_project.paths.models_dir, tmp_path / "models")


def tamper(model_dir: Path) -> None:
    """Flip one byte in the middle of the model file: same size, different content."""
    path = model_dir / "model.joblib"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


def test_tampered_model_is_refused_before_loading(model_dir: Path) -> None:
    tamper(model_dir)
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        ServedModel.load(model_dir)


def test_missing_record_is_refused(model_dir: Path) -> None:
    (model_dir / "model.json").unlink()
    with pytest.raises(ArtifactIntegrityError, match=r"model\.json"):
        ServedModel.load(model_dir)


@pytest.mark.separate_process
@pytest.mark.parametrize(
    ("command", "workers"),
    [(["-m", SERVING_PACKAGE], "1"), (["-m", PACKAGE, "serve"], "2")],
    ids=["server-module-1-worker", "cli-2-workers"],
)
def test_server_process_refuses_a_tampered_model(
    model_dir: Path, command: list[str], workers: str
) -> None:
    tamper(model_dir)
    result = run_server_once(command, free_port(), model_dir, WEB_CONCURRENCY=workers)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "sha256" in result.stderr
    assert "refusing to load" in result.stderr


@pytest.mark.separate_process
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEB_CONCURRENCY", "two"),
        ("MAX_BODY_BYTES", "0"),
        ("LOG_LEVEL", "loud"),
        ("AUTH_TOKEN_FILE", "/nonexistent/token"),
        ("METRICS_PORT", "70000"),
    ],
)
def test_server_process_refuses_a_bad_setting_naming_it(
    model_dir: Path, variable: str, value: str
) -> None:
    # As `make serve` starts it: exit 1 and one line naming the variable, never a traceback.
    result = run_server_once(["-m", PACKAGE, "serve"], free_port(), model_dir, **{variable: value})
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"error: {variable}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.separate_process
def test_server_process_refuses_a_model_other_than_the_expected_sha256(model_dir: Path) -> None:
    # The settings' checks are in test_server_settings.py; this is the refusal as deployed.
    result = run_server_once(
        ["-m", SERVING_PACKAGE],
        free_port(),
        model_dir,
        MODEL_SHA256="ab" * 32,
        REQUIRE_MODEL_SHA256="1",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the deployment expects" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.separate_process
@pytest.mark.parametrize(
    ("command", "workers", "metrics_option"),
    [(["-m", SERVING_PACKAGE], "1", False), (["-m", PACKAGE, "serve"], "2", True)],
    ids=["server-module-1-worker", "cli-2-workers-metrics-port-option"],
)
def test_server_process_serves_and_stops_cleanly(
    model_dir: Path, trained_project: Config, command: list[str], workers: str, metrics_option: bool
) -> None:
    port, metrics_port = free_port(), free_port()
    # The option (`--metrics-port`) takes precedence over the variable (METRICS_PORT).
    option = ["--metrics-port", str(metrics_port)] if metrics_option else []
    process = subprocess.Popen(
        [
            *command_line(*command, "--port", str(port)),
            "--model-dir",
            str(model_dir),
            *option,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As deployed: the expected sha256 comes from outside the model folder, and is required.
        env=server_env(
            WEB_CONCURRENCY=workers,
            MODEL_SHA256=ServedModel.load(model_dir).record.model_sha256,
            REQUIRE_MODEL_SHA256="1",
            **({} if metrics_option else {"METRICS_PORT": str(metrics_port)}),
        ),
    )
    try:
        wait_ready(process, port)
        served = ServedModel.load(model_dir)
        body = json.dumps({"instances": [served.schema.example_record()] * 3})
        statuses = []
        for _ in range(4):  # with two workers, both get a chance to answer
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", f"/v1/models/{served.name}:predict", body)
            response = connection.getresponse()
            statuses.append(response.status)
            assert len(json.loads(response.read())["predictions"]) == 3
            connection.close()
        assert statuses == [200] * 4
        # A request is counted once its response is sent: the last one may still be on its way
        # into the metrics when the client has its answer, so read them until it arrives. With
        # two workers, the metrics port (one, in the parent process) adds up both.
        expected = 'inference_requests_total{endpoint="v1_predict",status="200"} 4.0'
        deadline = time.monotonic() + 10
        while True:
            metrics = scrape("127.0.0.1", metrics_port)
            if expected in metrics or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert expected in metrics
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/metrics")
        assert connection.getresponse().status == 404, "the model's port has no /metrics"
        connection.close()
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    # Readiness polls are logged too: count the predictions themselves.
    predictions = [line for line in requests if line["endpoint"] == "v1_predict"]
    assert [line["status"] for line in predictions] == [200] * 4
    assert {line["model_version"] for line in requests} == {served.version}
