"""The server process's HTTP limits, over raw sockets: header size, deadlines, connections.

One server with short limits (REQUEST_TIMEOUT=1, MAX_CONNECTIONS=8) serves the module; the
clients speak bytes, so the test controls how slowly and how much they send. Every refusal is
logged and counted on the metrics port.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.serving.model import (
    ServedModel,
)

from .conftest import (
    SERVING_PACKAGE,
    command_line,
    free_port,
    metric_value,
    model_dir_copy,
    scrape,
    server_env,
    wait_ready,
)

pytestmark = pytest.mark.separate_process  # the server runs as a process of its own

TIMEOUT = 1.0  # REQUEST_TIMEOUT of the server under test, in seconds
MAX_CONNECTIONS = 8
MAX_HEADER_BYTES = 64 * 1024  # the default


REFUSALS = (408, 431, 503)


class Server:
    def __init__(self, port: int, model: ServedModel, metrics_port: int) -> None:
        self.port = port
        self.model = model
        self.metrics_port = metrics_port
        # Every refusal a test of this module received from this server, in order: what its log
        # and metrics must show at the end (the module's tests may be spread over processes,
        # each with a server of its own, so which refusals a server gives depends on which
        # tests it served).
        self.refusals: list[int] = []

    def answer(self, connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
        """`read_response`, noting a refusal."""
        status, headers, body = read_response(connection)
        if status in REFUSALS:
            self.refusals.append(status)
        return status, headers, body

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)

    def predict_head(self, length: int) -> bytes:
        return (
            f"POST /v1/models/{self.model.name}:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        ).encode()

    def body(self) -> bytes:
        return json.dumps({"instances": [self.model.schema.example_record()]}).encode()


def read_response(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response with a content-length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(status_line.split()[1]), headers, rest[:length]


def closed_by_server(connection: socket.socket) -> bool:
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.fixture(scope="module")
def server(trained_project: Config, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    model_dir = model_dir_copy(
        trained_project.paths.models_dir, tmp_path_factory.mktemp("limits") / "models"
    )
    port, metrics_port = free_port(), free_port()
    process = subprocess.Popen(
        [*command_line("-m", SERVING_PACKAGE, "--port", str(port)), "--model-dir", str(model_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=server_env(
            REQUEST_TIMEOUT=str(TIMEOUT),
            MAX_CONNECTIONS=str(MAX_CONNECTIONS),
            METRICS_PORT=str(metrics_port),
        ),
    )
    try:
        wait_ready(process, port)
        yielded = Server(port, ServedModel.load(model_dir), metrics_port)
        yield yielded
        metrics = scrape("127.0.0.1", metrics_port)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    refused = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and '"refused"' in line
    ]
    # Every refusal the tests received wrote its access line, with the status it answered and
    # why, and counted; no other refusal was logged.
    reasons = {408: "header_timeout", 431: "header_too_large", 503: "connection_limit"}
    received = yielded.refusals
    assert sorted(entry["status"] for entry in refused) == sorted(received), output[-3000:]
    assert all(entry["reason"] == reasons[entry["status"]] for entry in refused), refused
    for status, reason in reasons.items():
        sample = f'inference_requests_rejected_total{{reason="{reason}"}}'
        assert metric_value(metrics, sample) == sum(e["status"] == status for e in refused)


def test_a_huge_header_is_refused_with_431_long_before_it_ends(server: Server) -> None:
    with server.connect() as connection:
        connection.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        sent = 0
        try:
            # A 16 MiB header; the server answers after 64 KiB and stops reading.
            while sent < 16 * 1024 * 1024:
                connection.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, headers, body = server.answer(connection)
    assert status == 431
    assert headers["connection"] == "close"
    assert "MAX_HEADER_BYTES" in json.loads(body)["error"]


def test_headers_within_the_limit_are_served(server: Server) -> None:
    with server.connect() as connection:
        padding = "a" * (MAX_HEADER_BYTES // 2)
        connection.sendall(
            f"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {padding}\r\n\r\n".encode()
        )
        status, _, _ = server.answer(connection)
    assert status == 200


def test_headers_trickled_slowly_get_408_at_the_deadline(server: Server) -> None:
    with server.connect() as connection:
        start = time.monotonic()
        connection.sendall(b"GET /v2/health/live HTTP/1.1\r\n")
        try:
            for _ in range(int(TIMEOUT * 10)):
                connection.sendall(b"X-Slow: 1\r\n")
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, headers, body = server.answer(connection)
        elapsed = time.monotonic() - start
        assert closed_by_server(connection)
    assert status == 408
    assert "REQUEST_TIMEOUT" in json.loads(body)["error"]
    assert headers["connection"] == "close"
    assert elapsed < TIMEOUT * 5, "closed by the deadline, not by the client giving up"


def test_a_body_trickled_slowly_gets_408_and_the_connection_closes(server: Server) -> None:
    body = server.body()
    with server.connect() as connection:
        connection.sendall(server.predict_head(len(body)) + body[:5])
        start = time.monotonic()
        try:
            for byte in body[5:]:
                connection.sendall(bytes([byte]))
                time.sleep(0.5)
                if time.monotonic() - start > TIMEOUT * 5:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, headers, reply = read_response(connection)
        assert closed_by_server(connection)
    assert status == 408
    assert headers["connection"] == "close"
    assert "body did not arrive" in json.loads(reply)["error"]


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with server.connect() as connection:
        start = time.monotonic()
        assert closed_by_server(connection)
        assert time.monotonic() - start < TIMEOUT * 5


def test_past_max_connections_new_requests_get_503_at_once(server: Server) -> None:
    idle = [server.connect() for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)  # the server has accepted them
        with server.connect() as connection:
            connection.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, headers, body = server.answer(connection)
            assert closed_by_server(connection)
        assert status == 503
        assert headers["content-type"] == "application/json"
        assert json.loads(body) == {
            "error": f"the server is at its limit of {MAX_CONNECTIONS} open connections "
            "(MAX_CONNECTIONS): retry shortly"
        }
    finally:
        for connection in idle:
            connection.close()
    # Once they are gone, the server takes requests again.
    deadline = time.monotonic() + 10
    while True:
        with server.connect() as connection:
            connection.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, _, _ = server.answer(connection)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200


def request_on(connection: socket.socket, path: str = "/v2/health/live") -> int:
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return read_response(connection)[0]


def test_with_max_connections_1_a_second_connection_gets_a_logged_counted_503(
    trained_project: Config, tmp_path: Path
) -> None:
    model_dir = model_dir_copy(trained_project.paths.models_dir, tmp_path / "models")
    port, metrics_port = free_port(), free_port()
    process = subprocess.Popen(
        [*command_line("-m", SERVING_PACKAGE, "--port", str(port)), "--model-dir", str(model_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=server_env(MAX_CONNECTIONS="1", METRICS_PORT=str(metrics_port)),
    )
    rejected = 0
    try:
        wait_ready(process, port)
        # One connection held open, served: MAX_CONNECTIONS=1 serves one. (Until the server has
        # seen the readiness probe's connection close, it is the second one and gets a 503.)
        deadline = time.monotonic() + 10
        while True:
            held = socket.create_connection(("127.0.0.1", port), timeout=30)
            status = request_on(held)
            if status == 200 or time.monotonic() > deadline:
                break
            rejected += 1
            held.close()
            time.sleep(0.1)
        assert status == 200
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as second:
                assert request_on(second, "/v2/health/ready?probe=second") == 503
                rejected += 1
                assert closed_by_server(second)
        finally:
            held.close()
        # The metrics port answers while the model's port is full, and counted every 503.
        sample = 'inference_requests_rejected_total{reason="connection_limit"}'
        assert metric_value(scrape("127.0.0.1", metrics_port), sample) == rejected
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    refusals = [line for line in lines if line.get("status") == 503]
    assert len(refusals) == rejected, output[-3000:]
    last = refusals[-1]
    assert (last["event"], last["endpoint"], last["reason"]) == (
        "request",
        "refused",
        "connection_limit",
    )
    assert (last["method"], last["path"], last["level"]) == ("GET", "/v2/health/ready", "warning")
    assert "MAX_CONNECTIONS" in last["error"]


def test_a_complete_request_on_a_kept_alive_connection_is_served(server: Server) -> None:
    body = server.body()
    with server.connect() as connection:
        for _ in range(3):
            connection.sendall(server.predict_head(len(body)) + body)
            status, _, reply = server.answer(connection)
            assert status == 200
            assert len(json.loads(reply)["predictions"]) == 1


def test_a_bad_setting_stops_the_server_process_without_a_traceback(
    trained_project: Config, tmp_path: Path
) -> None:
    # Every setting's check is in test_server_settings.py; this is the process around them.
    model_dir = model_dir_copy(trained_project.paths.models_dir, tmp_path / "models")
    result = subprocess.run(
        [
            *command_line("-m", SERVING_PACKAGE, "--port", str(free_port())),
            "--model-dir",
            str(model_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_env(REQUEST_TIMEOUT="soon"),
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "REQUEST_TIMEOUT must be a number of seconds" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
