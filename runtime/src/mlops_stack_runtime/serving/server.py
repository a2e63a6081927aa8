"""Run the model server with uvicorn: ``run_server(host, port, model_dir)``.

The artifact is verified before anything listens: a missing, tampered or half-copied model raises
ArtifactIntegrityError and the server does not start.

One worker process is the default: requests are micro-batched (batching.py), so one process keeps
a CPU busy. More workers (WEB_CONCURRENCY) each load the model and share the listening socket;
give them one CPU each. On Kubernetes prefer more replicas of one worker.

The Prometheus metrics have a port of their own (METRICS_PORT, on the same host), served once by
the process ``run_server`` runs in, from a thread: with one worker the app's metrics, with more
every worker's, added up through PROMETHEUS_MULTIPROC_DIR (metrics.py).

Settings: serving/settings.py (`ServerSettings`, from the environment; the keyword arguments of
``run_server`` take precedence), plus INFERENCE_RUNTIME and ONNX_SHA256, which pick and check the
model runtime (serving/model.py). A setting that is not a valid value stops the server before it
listens, naming the variable; so does a port another process holds, naming the port.
"""

from __future__ import annotations

import errno
import gc
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import uvicorn

from ..audit import verify_artifact
from ..errors import ServerSettingError
from .app import create_app
from .logs import configure_logging, log_config
from .metrics import MULTIPROC_ENV, Metrics, MetricsServer, exposed, serve_metrics
from .protocol import GuardedHttpToolsProtocol
from .settings import METRICS_PORT_ENV, ServerSettings

MODEL_DIR_ENV = "MODEL_DIR"


def _uvicorn_options(host: str, port: int, settings: ServerSettings) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "log_level": settings.log_level,
        "access_log": False,  # the app logs every request itself, as JSON
        "server_header": False,
        "timeout_graceful_shutdown": 10,
        "timeout_keep_alive": 5,  # idle keep-alive connections close after 5 seconds
        "limit_concurrency": settings.max_connections,
        "http": GuardedHttpToolsProtocol,  # header size limit and header deadline
    }


def serving_app(model: Any, settings: ServerSettings, metrics: Metrics | None = None) -> Any:
    """The ASGI app serving ``model`` with these settings (each worker builds its own)."""
    # The model and the libraries behind it are loaded for good: freezing them moves their
    # objects out of the garbage collector's reach, so a full collection while serving walks
    # only what requests allocate (shorter pauses, so a shorter latency tail).
    gc.collect()
    gc.freeze()
    return create_app(
        model,
        max_body_bytes=settings.max_body_bytes,
        max_rows=settings.max_rows,
        request_timeout=settings.request_timeout,
        log_features=settings.log_features,
        auth_token=settings.auth_token,
        metrics=metrics,
    )


def check_port(host: str, port: int) -> None:
    """ServerSettingError naming the port when uvicorn could not listen on host:port: the port
    is bound the way uvicorn binds it (IPv6 for an IPv6 address, SO_REUSEADDR), then released.
    Without it uvicorn would log the reason inside a JSON line and end with "Application
    shutdown complete."."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except (OSError, OverflowError) as error:
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
            raise ServerSettingError(
                f"port {port} on {host} is already in use: another process holds it (stop it, "
                "or choose another port: PORT, --port)"
            ) from None
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ServerSettingError(f"port {port} on {host} cannot be listened on: {reason}") from None


def start_metrics_port(
    host: str, port: int, settings: ServerSettings, metrics: Metrics | None
) -> MetricsServer:
    """The metrics port's server, listening; ServerSettingError when it cannot listen."""
    if settings.metrics_port == port:
        raise ServerSettingError(
            f"{METRICS_PORT_ENV} must differ from the server's port, both are {port}"
        )
    try:
        return serve_metrics(host, settings.metrics_port, exposed(metrics))
    except OSError as error:
        raise ServerSettingError(
            f"{METRICS_PORT_ENV} {settings.metrics_port} cannot be bound on {host}: "
            f"{error.strerror or error} (another server's metrics port? set {METRICS_PORT_ENV})"
        ) from None


def run_server(
    host: str,
    port: int,
    model_dir: str | Path,
    *,
    workers: int | None = None,
    max_body_bytes: int | None = None,
    log_level: str | None = None,
    log_features: bool | None = None,
    metrics_port: int | None = None,
) -> None:
    """Verify the model in ``model_dir``, then serve it on host:port, and its metrics on
    host:METRICS_PORT, until interrupted."""
    settings = ServerSettings.from_env(
        workers=workers,
        max_body_bytes=max_body_bytes,
        log_level=log_level,
        log_features=log_features,
        metrics_port=metrics_port,
    )
    settings.export()  # the protocol of every worker reads its limits from the environment
    options = _uvicorn_options(host, port, settings)
    configure_logging(settings.log_level)
    # A sha256 check first (cheap): a bad artifact stops the server before any heavy import.
    verify_artifact(Path(model_dir), settings.model_sha256)
    # A port another process holds stops the server before the model loads.
    check_port(host, port)

    if settings.workers == 1:
        from .model import ServedModel  # scikit-learn and pandas: imported only where needed

        metrics = Metrics()
        # Listening before the model loads: a port already taken stops the server at once.
        metrics_server = start_metrics_port(host, port, settings, metrics)
        try:
            model = ServedModel.load(model_dir, expected_sha256=settings.model_sha256)
            uvicorn.run(serving_app(model, settings, metrics), log_config=None, **options)
        finally:
            metrics_server.close()
        return

    # Each worker loads the model in a fresh process and reads its settings from the environment.
    os.environ[MODEL_DIR_ENV] = str(Path(model_dir).resolve())
    metrics_dir = tempfile.mkdtemp(prefix="prometheus-")
    os.environ[MULTIPROC_ENV] = metrics_dir  # workers add up their metrics through this folder
    try:
        # Started once, here: it reads every worker's values from the folder.
        metrics_server = start_metrics_port(host, port, settings, None)
        try:
            uvicorn.run(
                f"{__name__}:app_from_env",
                factory=True,
                workers=settings.workers,
                log_config=log_config(settings.log_level),
                **options,
            )
        finally:
            metrics_server.close()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def app_from_env() -> Any:
    """App factory of each worker process (see run_server)."""
    from .model import ServedModel

    settings = ServerSettings.from_env()
    model = ServedModel.load(os.environ[MODEL_DIR_ENV], expected_sha256=settings.model_sha256)
    return serving_app(model, settings)
