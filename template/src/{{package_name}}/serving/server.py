"""Run the model server with uvicorn: ``run_server(host, port, model_dir)``.

The artifact is verified before anything listens: a missing, tampered or half-copied model raises
ArtifactIntegrityError and the server does not start.

One worker process is the default: requests are micro-batched (batching.py), so one process keeps
a CPU busy. More workers (WEB_CONCURRENCY) each load the model and share the listening socket;
give them one CPU each. On Kubernetes prefer more replicas of one worker.

Settings from the environment (each also a keyword argument of ``run_server``):
- WEB_CONCURRENCY: worker processes (default 1);
- MAX_BODY_BYTES: largest request body accepted, larger ones get 413 (default 1 MiB);
- LOG_LEVEL: debug, info (default), warning or error;
- LOG_FEATURES: 1 (or true) adds each prediction's inputs to its log line, for drift monitoring
  (off by default: inputs may be personal data).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import uvicorn

from ..audit import verify_artifact
from .app import DEFAULT_MAX_BODY_BYTES, create_app
from .logs import configure_logging, log_config
from .metrics import MULTIPROC_ENV

WORKERS_ENV = "WEB_CONCURRENCY"
MAX_BODY_ENV = "MAX_BODY_BYTES"
MODEL_DIR_ENV = "MODEL_DIR"
LOG_LEVEL_ENV = "LOG_LEVEL"
LOG_FEATURES_ENV = "LOG_FEATURES"


def _flag_from_env(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _positive_int_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


def _uvicorn_options(host: str, port: int, log_level: str) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,  # the app logs every request itself, as JSON
        "server_header": False,
        "timeout_graceful_shutdown": 10,
    }


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
    level = (log_level or os.environ.get(LOG_LEVEL_ENV) or "info").lower()
    if log_features is None:
        log_features = _flag_from_env(LOG_FEATURES_ENV)
    workers = workers or _positive_int_from_env(WORKERS_ENV, 1)
    limit = max_body_bytes or _positive_int_from_env(MAX_BODY_ENV, DEFAULT_MAX_BODY_BYTES)
    configure_logging(level)
    # A sha256 check first (cheap): a bad artifact stops the server before any heavy import.
    verify_artifact(Path(model_dir))

    if workers == 1:
        from .model import ServedModel  # scikit-learn and pandas: imported only where needed

        model = ServedModel.load(model_dir)  # raises before anything listens
        app = create_app(model, max_body_bytes=limit, log_features=log_features)
        uvicorn.run(app, log_config=None, **_uvicorn_options(host, port, level))
        return

    # Each worker loads the model in a fresh process and reads its settings from the environment.
    os.environ[MODEL_DIR_ENV] = str(Path(model_dir).resolve())
    os.environ[MAX_BODY_ENV] = str(limit)
    os.environ[LOG_FEATURES_ENV] = "1" if log_features else "0"
    metrics_dir = tempfile.mkdtemp(prefix="prometheus-")
    os.environ[MULTIPROC_ENV] = metrics_dir  # workers add up their metrics through this folder
    try:
        uvicorn.run(
            f"{__name__}:app_from_env",
            factory=True,
            workers=workers,
            log_config=log_config(level),
            **_uvicorn_options(host, port, level),
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def app_from_env() -> Any:
    """App factory of each worker process (see run_server)."""
    from .model import ServedModel

    model = ServedModel.load(os.environ[MODEL_DIR_ENV])
    limit = _positive_int_from_env(MAX_BODY_ENV, DEFAULT_MAX_BODY_BYTES)
    return create_app(model, max_body_bytes=limit, log_features=_flag_from_env(LOG_FEATURES_ENV))
