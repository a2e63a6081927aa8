"""`make serve` (and the container's server module) on a port another process holds: one line
naming the port and the reason, exit 1, before the model loads; never uvicorn's "Application
shutdown complete." with the reason inside a JSON log line."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.errors import (
    ServerSettingError,
)
from mlops_stack_runtime.exit_codes import (
    FAILED,
)
from mlops_stack_runtime.serving.server import (
    check_port,
)

from .conftest import (
    PACKAGE,
    SERVING_PACKAGE,
    model_dir_copy,
    run_server_once,
)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that a real listening socket holds for the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.separate_process
@pytest.mark.parametrize(
    ("command", "workers"),
    [
        (["-m", PACKAGE, "serve"], "1"),
        (["-m", PACKAGE, "serve"], "2"),
        (["-m", SERVING_PACKAGE], "1"),
    ],
    ids=["cli-1-worker", "cli-2-workers", "server-module"],
)
def test_a_busy_port_stops_the_server_in_one_line(
    trained_project: Config, tmp_path: Path, busy_port: int, command: list[str], workers: str
) -> None:
    model_dir = model_dir_copy(trained_project.paths.models_dir, tmp_path / "models")
    result = run_server_once(command, busy_port, model_dir, WEB_CONCURRENCY=workers)
    output = result.stdout + result.stderr
    assert result.returncode == FAILED, output
    assert result.stderr.splitlines() == [
        f"error: port {busy_port} on 127.0.0.1 is already in use: another process holds it "
        "(stop it, or choose another port: PORT, --port)"
    ], output
    assert "Traceback" not in output
    assert "Application shutdown complete" not in output
    assert result.stdout == ""


def test_a_free_port_passes_and_stays_free(busy_port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        free = int(probe.getsockname()[1])
    check_port("127.0.0.1", free)
    # Released at once: uvicorn binds it next.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", free))
    with pytest.raises(
        ServerSettingError, match=rf"port {busy_port} on 127\.0\.0\.1 is already in use"
    ):
        check_port("127.0.0.1", busy_port)
    with pytest.raises(
        ServerSettingError, match=r"port 70000 on 127\.0\.0\.1 cannot be listened on"
    ):
        check_port("127.0.0.1", 70000)
