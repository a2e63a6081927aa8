"""The HTTP endpoints: KServe's v1 protocol and the Open Inference Protocol (v2), on Starlette.

Bad input never reaches the model and never gives a 5xx: malformed JSON, a missing or unknown
feature, a wrong type or shape, NaN or infinity where the schema does not allow it all answer 400
with a message naming the field; another model's name answers 404; a body over the size limit
answers 413. Every request writes one JSON log line (endpoint, status, latency, model version).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from .batching import MicroBatcher
from .metrics import CONTENT_TYPE, Metrics
from .validation import CLASS_OUTPUT, OUTPUTS, PROBABILITY_OUTPUT, ParsedRequest, RequestError

if TYPE_CHECKING:
    from .model import ServedModel

DEFAULT_MAX_BODY_BYTES = 1024 * 1024

access_log = logging.getLogger(f"{__package__}.access")
log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


def json_response(content: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )


def error_response(message: str, status: int) -> Response:
    return json_response({"error": message}, status)


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON; 413 past ``limit`` bytes, 400 when it is not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(f"request body of {declared} bytes is over the limit of {limit}", 413)
    if request.headers.get("inference-header-content-length"):
        raise RequestError(
            "binary tensor data is not supported; send the values as JSON in each input's 'data'"
        )
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(f"request body is over the limit of {limit} bytes", 413)
            chunks.append(chunk)
    except ClientDisconnect:
        raise RequestError("the client disconnected before sending the whole body") from None
    body = b"".join(chunks)
    if not body:
        raise RequestError("malformed JSON: the request body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        # The standard parser also reads NaN and Infinity (which the validation then judges)
        # and integers too large for orjson.
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise RequestError(f"malformed JSON: {error}") from None


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
    max_batch_rows: int = 1024,
    log_features: bool = False,
) -> ASGIApp:
    """The server's ASGI application for one verified model.

    ``log_features`` adds each prediction's inputs to its log line (``features``: one list per
    feature), the data that drift monitoring collects from the logs. Off by default: the inputs
    may be personal data, so log them only where the logs may hold them.
    """
    schema = model.schema
    batcher = MicroBatcher(model.predict, max_rows=max_batch_rows)
    metrics = Metrics()
    inputs_metadata = schema.v2_metadata()
    outputs_metadata = [{"name": n, "datatype": t, "shape": [-1]} for n, t in OUTPUTS.items()]

    def endpoint(handler: Handler) -> Handler:
        """Turn RequestError into its status and anything unexpected into a logged 500."""

        async def wrapped(request: Request) -> Response:
            name = request.path_params.get("name")
            if name is not None and name != model.name:
                return error_response(
                    f"model '{name}' not found; this server serves '{model.name}'", 404
                )
            try:
                return await handler(request)
            except RequestError as error:
                request.scope["log_fields"]["error"] = error.message
                return error_response(error.message, error.status)
            except Exception:
                log.exception("request failed", extra={"path": request.url.path})
                return error_response("internal error while handling the request", 500)

        wrapped.__name__ = handler.__name__
        return wrapped

    # --- liveness, readiness and metadata -------------------------------------------------------
    async def root(request: Request) -> Response:
        return json_response({"status": "alive"})

    async def v2_server_metadata(request: Request) -> Response:
        return json_response({"name": model.name, "version": __version__, "extensions": []})

    async def v2_live(request: Request) -> Response:
        return json_response({"live": True})

    async def v2_ready(request: Request) -> Response:
        return json_response({"ready": True})

    async def v2_model_metadata(request: Request) -> Response:
        return json_response(
            {
                "name": model.name,
                "versions": [model.version],
                "platform": "sklearn",
                "inputs": inputs_metadata,
                "outputs": outputs_metadata,
            }
        )

    async def v2_model_ready(request: Request) -> Response:
        return json_response({"name": model.name, "ready": True})

    async def v1_models(request: Request) -> Response:
        return json_response({"models": [model.name]})

    async def v1_model(request: Request) -> Response:
        return json_response({"name": model.name, "ready": True})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    # --- inference ------------------------------------------------------------------------------
    def note(request: Request, parsed: ParsedRequest) -> None:
        fields = request.scope["log_fields"]
        fields["rows"] = parsed.n_rows
        if log_features:
            fields["features"] = {name: column.tolist() for name, column in parsed.columns.items()}

    async def v1_predict(request: Request) -> Response:
        parsed = schema.parse_v1(await read_json(request, max_body_bytes))
        note(request, parsed)
        probability, predicted = await batcher.predict(parsed.columns, parsed.n_rows)
        return json_response(
            {
                "predictions": [
                    {PROBABILITY_OUTPUT: p, CLASS_OUTPUT: c}
                    for p, c in zip(probability.tolist(), predicted.tolist(), strict=True)
                ]
            }
        )

    async def v2_infer(request: Request) -> Response:
        parsed = schema.parse_v2(await read_json(request, max_body_bytes))
        note(request, parsed)
        probability, predicted = await batcher.predict(parsed.columns, parsed.n_rows)
        values = {PROBABILITY_OUTPUT: probability, CLASS_OUTPUT: predicted}
        return json_response(
            {
                "model_name": model.name,
                "model_version": model.version,
                "id": parsed.request_id or str(uuid.uuid4()),
                "outputs": [
                    {
                        "name": name,
                        "datatype": OUTPUTS[name],
                        "shape": [parsed.n_rows],
                        "data": values[name],
                    }
                    for name in parsed.outputs
                ],
            }
        )

    routes = [
        Route("/", endpoint(root), methods=["GET"]),
        Route("/metrics", endpoint(metrics_endpoint), methods=["GET"]),
        Route("/v2", endpoint(v2_server_metadata), methods=["GET"]),
        Route("/v2/health/live", endpoint(v2_live), methods=["GET"]),
        Route("/v2/health/ready", endpoint(v2_ready), methods=["GET"]),
        Route("/v2/models/{name}", endpoint(v2_model_metadata), methods=["GET"]),
        Route("/v2/models/{name}/ready", endpoint(v2_model_ready), methods=["GET"]),
        Route("/v2/models/{name}/infer", endpoint(v2_infer), methods=["POST"]),
        Route("/v1/models", endpoint(v1_models), methods=["GET"]),
        Route("/v1/models/{name}:predict", endpoint(v1_predict), methods=["POST"]),
        Route("/v1/models/{name}", endpoint(v1_model), methods=["GET"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        log.info(
            "model loaded",
            extra={"model": model.name, "model_version": model.version, "pid": os.getpid()},
        )
        yield
        await batcher.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        detail = "method not allowed" if status == 405 else "not found"
        return error_response(f"{detail}: {request.method} {request.url.path}", status)

    starlette_app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_found},
    )
    return AccessLog(starlette_app, model, metrics)
