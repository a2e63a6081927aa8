"""The model server's ASGI application: KServe's v1 protocol and the Open Inference Protocol (v2),
on Starlette.

Bad input never reaches the model and never gives a 5xx: malformed JSON, a missing or unknown
feature, a wrong type or shape, NaN or infinity where the schema does not allow it all answer 400
with a message naming the field; another model's name answers 404; a body over the size limit or
more rows than allowed answers 413 (http.py says how bodies are read). Every request writes one
JSON log line (endpoint, status, latency, model version) and counts in the metrics, which the
server shows on a port of its own (metrics.py), not here. With a bearer token (AUTH_TOKEN_FILE),
every route but the health checks needs it, else 401 (auth.py).

The routes live one module per protocol (routes/v1.py, routes/v2.py, routes/operations.py); this
module assembles them with the server's settings and wraps them in the token check and the
access log.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..project import current_project
from .auth import BearerAuth
from .batching import MicroBatcher
from .http import error_response
from .metrics import Metrics
from .routes import operations, v1, v2
from .routes.common import Serving
from .validation import shown

if TYPE_CHECKING:
    from .model import ServedModel

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# Rows per request: about what 1 MiB of v1 JSON holds for a dozen features; scoring them takes
# well under a second. Larger jobs belong to batch scoring, not to one HTTP request.
DEFAULT_MAX_ROWS = 10_000
# Seconds a client has to send a request's body once its headers are in (408 after that).
DEFAULT_REQUEST_TIMEOUT = 30.0

access_log = logging.getLogger(f"{__package__}.access")
log = logging.getLogger(__name__)


class AccessLog:
    """ASGI wrapper: one JSON log line and the metrics for every HTTP request."""

    def __init__(self, app: ASGIApp, model: ServedModel, metrics: Metrics) -> None:
        self.app = app
        self.model = model
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        fields: dict[str, Any] = {}
        scope["log_fields"] = fields

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            seconds = time.perf_counter() - start
            endpoint = scope.get("endpoint")
            name = getattr(endpoint, "__name__", "not_found")
            rows = fields.get("rows", 0)
            self.metrics.observe(name, status, seconds, rows)
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "endpoint": name,
                    "status": status,
                    "latency_ms": round(seconds * 1000, 3),
                    "model": self.model.name,
                    "model_version": self.model.version,
                    **fields,
                },
            )


def create_app(
    model: ServedModel,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    max_batch_rows: int = 1024,
    log_features: bool = False,
    auth_token: str | None = None,
    metrics: Metrics | None = None,
) -> ASGIApp:
    """The server's ASGI application for one verified model.

    ``log_features`` adds each prediction's inputs to its log line (``features``: one list per
    feature) and the model's answers (``outputs``: one list per output of the task), the data
    that drift monitoring collects from the logs. Off by default: the inputs
    may be personal data, so log them only where the logs may hold them.
    ``auth_token``: the bearer token every route but the health checks requires (auth.py);
    None serves without one. ``metrics``: where the app counts (the metrics port shows them);
    a registry of its own by default.
    """
    serving = Serving(
        model=model,
        batcher=MicroBatcher(model.predict, max_rows=max_batch_rows),
        metrics=metrics or Metrics(),
        max_body_bytes=max_body_bytes,
        max_rows=max_rows,
        request_timeout=request_timeout,
        log_features=log_features,
        server_version=current_project().version,
        inputs_metadata=model.schema.v2_metadata(),
        outputs_metadata=model.outputs.metadata(),
    )
    # Starlette tries routes in order: inference first, the rest of the traffic.
    routes = [
        *v1.inference_routes(serving),
        *v2.inference_routes(serving),
        *operations.routes(serving),
        *v2.metadata_routes(serving),
        *v1.metadata_routes(serving),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info(
            "model loaded",
            extra={"model": model.name, "model_version": model.version, "pid": os.getpid()},
        )
        yield
        await serving.batcher.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        detail = "method not allowed" if status == 405 else "not found"
        return error_response(f"{detail}: {request.method} {shown(request.url.path)}", status)

    starlette_app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_found},
    )
    guarded: ASGIApp = BearerAuth(starlette_app, auth_token) if auth_token else starlette_app
    return AccessLog(guarded, model, serving.metrics)
