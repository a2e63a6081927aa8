"""Run the model server with uvicorn: ``run_server(host, port, model_dir)``.

The artifact is verified before anything listens: a missing, tampered or half-copied model raises
ArtifactIntegrityError and the server does not start.

One worker process is the default: requests are micro-batched (batching.py), so one process keeps
a CPU busy. More workers (WEB_CONCURRENCY) each load the model and share the listening socket;
give them one CPU each. On Kubernetes prefer more replicas of one worker.

Settings from the environment (each also a keyword argument of ``run_server``):
- WEB_CONCURRENCY: worker processes (default 1);
- MAX_BODY_BYTES: largest request body accepted, larger ones get 413 (default 1 MiB);
- MAX_ROWS: most rows in one request, more get 413 (default 10000);
- MAX_HEADER_BYTES: largest request line plus headers, larger get 431 (default 64 KiB);
- REQUEST_TIMEOUT: seconds for a request's headers to arrive, and again for its body, else 408
  and the connection closes (default 30);
- MAX_CONNECTIONS: open connections per worker; past it new requests get 503 at once instead
  of piling up (default 256);
- LOG_LEVEL: debug, info (default), warning or error;
- LOG_FEATURES: 1 (or true) adds each prediction's inputs to its log line, for drift monitoring
  (off by default: inputs may be personal data);
- MODEL_SHA256: the sha256 the model file must have, from outside the model folder (the deploy
  step sets it from the registry's record); checked before anything is unpickled;
- REQUIRE_MODEL_SHA256: 1 (the KServe manifest) refuses to start without MODEL_SHA256.
- INFERENCE_RUNTIME: onnx or sklearn; unset (or auto): models/model.json `inference.runtime`,
  ONNX Runtime when training accepted the ONNX model (serving/model.py);
- ONNX_SHA256: the sha256 model.onnx must have, like MODEL_SHA256 for the pickle; with
  MODEL_SHA256 set and ONNX_SHA256 not, scikit-learn serves.
A setting that is not a valid value stops the server before it listens, naming the variable.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from ..audit import MODEL_SHA256_ENV, check_sha256, verify_artifact
from ..errors import ArtifactIntegrityError, ServerSettingError
from .app import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS, DEFAULT_REQUEST_TIMEOUT, create_app
from .logs import configure_logging, log_config
from .metrics import MULTIPROC_ENV
from .protocol import (
    DEFAULT_MAX_HEADER_BYTES,
    MAX_HEADER_ENV,
    REQUEST_TIMEOUT_ENV,
    GuardedHttpToolsProtocol,
)

WORKERS_ENV = "WEB_CONCURRENCY"
MAX_BODY_ENV = "MAX_BODY_BYTES"
MODEL_DIR_ENV = "MODEL_DIR"
LOG_LEVEL_ENV = "LOG_LEVEL"
LOG_FEATURES_ENV = "LOG_FEATURES"
MAX_ROWS_ENV = "MAX_ROWS"
REQUIRE_MODEL_SHA256_ENV = "REQUIRE_MODEL_SHA256"
MAX_CONNECTIONS_ENV = "MAX_CONNECTIONS"
DEFAULT_MAX_CONNECTIONS = 256
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _flag_from_env(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _positive_int_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServerSettingError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ServerSettingError(f"{name} must be at least 1, got {value}")
    return value


def _positive_seconds_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ServerSettingError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 3600:
        raise ServerSettingError(f"{name} must be more than 0 and at most 3600 seconds, got {raw}")
    return value


def expected_model_sha256() -> str | None:
    """MODEL_SHA256, checked; None when not set and not required."""
    value = os.environ.get(MODEL_SHA256_ENV, "").strip()
    if value:
        return check_sha256(value, MODEL_SHA256_ENV)
    if _flag_from_env(REQUIRE_MODEL_SHA256_ENV):
        raise ArtifactIntegrityError(
            f"{MODEL_SHA256_ENV} is not set, and {REQUIRE_MODEL_SHA256_ENV}=1 requires it: the "
            "deploy step (`pin-image --model-sha256`) sets it from the registry's record; "
            "refusing to load a model nothing outside its folder vouches for"
        )
    return None


def _log_level(raw: str) -> str:
    level = raw.strip().lower()
    if level not in LOG_LEVELS:
        choices = ", ".join(LOG_LEVELS)
        raise ServerSettingError(f"{LOG_LEVEL_ENV} must be one of {choices}, got {raw!r}")
    return level


@dataclass(frozen=True)
class ServerSettings:
    """Every setting of the server, checked: a wrong value raises before anything listens."""

    workers: int
    max_body_bytes: int
    max_rows: int
    max_header_bytes: int
    request_timeout: float
    max_connections: int
    log_level: str
    log_features: bool
    model_sha256: str | None

    @classmethod
    def from_env(
        cls,
        *,
        workers: int | None = None,
        max_body_bytes: int | None = None,
        log_level: str | None = None,
        log_features: bool | None = None,
    ) -> ServerSettings:
        """The settings from the environment; keyword arguments (CLI options) take precedence."""
        return cls(
            workers=workers or _positive_int_from_env(WORKERS_ENV, 1),
            max_body_bytes=max_body_bytes
            or _positive_int_from_env(MAX_BODY_ENV, DEFAULT_MAX_BODY_BYTES),
            max_rows=_positive_int_from_env(MAX_ROWS_ENV, DEFAULT_MAX_ROWS),
            max_header_bytes=_positive_int_from_env(MAX_HEADER_ENV, DEFAULT_MAX_HEADER_BYTES),
            request_timeout=_positive_seconds_from_env(
                REQUEST_TIMEOUT_ENV, DEFAULT_REQUEST_TIMEOUT
            ),
            max_connections=_positive_int_from_env(MAX_CONNECTIONS_ENV, DEFAULT_MAX_CONNECTIONS),
            log_level=_log_level(log_level or os.environ.get(LOG_LEVEL_ENV) or "info"),
            log_features=_flag_from_env(LOG_FEATURES_ENV) if log_features is None else log_features,
            model_sha256=expected_model_sha256(),
        )

    def export(self) -> None:
        """Write the settings back to the environment, where worker processes read them."""
        os.environ[MAX_BODY_ENV] = str(self.max_body_bytes)
        os.environ[MAX_ROWS_ENV] = str(self.max_rows)
        os.environ[MAX_HEADER_ENV] = str(self.max_header_bytes)
        os.environ[REQUEST_TIMEOUT_ENV] = repr(self.request_timeout)
        os.environ[LOG_FEATURES_ENV] = "1" if self.log_features else "0"


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


def serving_app(model: Any, settings: ServerSettings) -> Any:
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
    )


def run_server(
    host: str,
    port: int,
    model_dir: str | Path,
    *,
    workers: int | None = None,
    max_body_bytes: int | None = None,
    log_level: str | None = None,
    log_features: bool | None = None,
) -> None:
    """Verify the model in ``model_dir``, then serve it on host:port until interrupted."""
    settings = ServerSettings.from_env(
        workers=workers,
        max_body_bytes=max_body_bytes,
        log_level=log_level,
        log_features=log_features,
    )
    settings.export()  # the protocol of every worker reads its limits from the environment
    options = _uvicorn_options(host, port, settings)
    configure_logging(settings.log_level)
    # A sha256 check first (cheap): a bad artifact stops the server before any heavy import.
    verify_artifact(Path(model_dir), settings.model_sha256)

    if settings.workers == 1:
        from .model import ServedModel  # scikit-learn and pandas: imported only where needed

        model = ServedModel.load(model_dir, expected_sha256=settings.model_sha256)
        uvicorn.run(serving_app(model, settings), log_config=None, **options)
        return

    # Each worker loads the model in a fresh process and reads its settings from the environment.
    os.environ[MODEL_DIR_ENV] = str(Path(model_dir).resolve())
    metrics_dir = tempfile.mkdtemp(prefix="prometheus-")
    os.environ[MULTIPROC_ENV] = metrics_dir  # workers add up their metrics through this folder
    try:
        uvicorn.run(
            f"{__name__}:app_from_env",
            factory=True,
            workers=settings.workers,
            log_config=log_config(settings.log_level),
            **options,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def app_from_env() -> Any:
    """App factory of each worker process (see run_server)."""
    from .model import ServedModel

    settings = ServerSettings.from_env()
    model = ServedModel.load(os.environ[MODEL_DIR_ENV], expected_sha256=settings.model_sha256)
    return serving_app(model, settings)
