"""The HTTP endpoints: KServe's v1 protocol and the Open Inference Protocol (v2), on Starlette.

Bad input never reaches the model and never gives a 5xx: malformed JSON, a missing or unknown
feature, a wrong type or shape, NaN or infinity where the schema does not allow it all answer 400
with a message naming the field; another model's name answers 404; a body over the size limit or
more rows than allowed answers 413. Every request writes one JSON log line (endpoint, status,
latency, model version).

Bodies are JSON in UTF-8 (RFC 8259), whatever the Content-Type says (``curl -d`` sends a form
type): a UTF-8 byte order mark is skipped; UTF-16 or UTF-32 bodies, or a declared charset other
than UTF-8, answer 415; bytes that are not UTF-8, and escapes of lone UTF-16 surrogates
(``"\\ud800"``, which no Unicode text can hold) answer 400. Client text quoted in a message is
escaped and cut short.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..project import current_project
from .batching import MicroBatcher
from .metrics import CONTENT_TYPE, Metrics
from .validation import (
    CLASS_OUTPUT,
    OUTPUTS,
    PROBABILITY_OUTPUT,
    ParsedRequest,
    RequestError,
    shown,
)

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

Handler = Callable[[Request], Awaitable[Response]]


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    try:
        body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # what orjson cannot write, the standard library escapes
        body = json.dumps(content, ensure_ascii=True, default=str).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


# A refused body may still be on its way: closing the connection stops the client sending it.
_CLOSE_AFTER = frozenset({408, 413})


def error_response(message: str, status: int) -> Response:
    headers = {"connection": "close"} if status in _CLOSE_AFTER else None
    return json_response({"error": message}, status, headers)


_UTF16_32_BOMS = (
    codecs.BOM_UTF32_LE,
    codecs.BOM_UTF32_BE,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
)
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)
_SURROGATE = re.compile("[\ud800-\udfff]")
# Where a surrogate escape may be in the text: without one, no string of the document holds one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_charset(content_type: str | None) -> None:
    match = _CHARSET.search(content_type or "")
    if match and match.group(1).lower() not in ("utf-8", "utf8"):
        raise RequestError(
            f"charset {shown(match.group(1))} is not supported: send JSON encoded as UTF-8", 415
        )


def _has_surrogate(value: Any) -> bool:
    """Whether a lone surrogate hides in any string of a parsed document (keys included)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if type(item) is str:
            if _SURROGATE.search(item):
                return True
        elif type(item) is list:
            pending.extend(item)
        elif type(item) is dict:
            pending.extend(item.keys())
            pending.extend(item.values())
    return False


def parse_body(body: bytes) -> Any:
    """A request body as JSON: UTF-8 only, no lone surrogates (see the module docstring)."""
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    # JSON text starts with an ASCII character, so a NUL among the first bytes means UTF-16/32.
    if body.startswith(_UTF16_32_BOMS) or b"\x00" in body[:4]:
        raise RequestError("the request body looks like UTF-16 or UTF-32: send UTF-8 JSON", 415)
    if not body.strip():
        raise RequestError("malformed JSON: the request body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RequestError(
            f"malformed JSON: the body is not UTF-8 (byte {error.start} is invalid)"
        ) from None
    try:
        # The standard parser also reads NaN and Infinity (which the validation then judges)
        # and integers too large for orjson.
        payload = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise RequestError(f"malformed JSON: {error}") from None
    # orjson refuses lone surrogates; the standard parser keeps them, and no response or log
    # line could then be written in UTF-8.
    if _SURROGATE_ESCAPE.search(text) and _has_surrogate(payload):
        raise RequestError("malformed JSON: a string holds a lone UTF-16 surrogate escape")
    return payload


async def read_json(request: Request, limit: int, timeout: float = DEFAULT_REQUEST_TIMEOUT) -> Any:
    """The request body as JSON; 413 past ``limit`` bytes, 415 or 400 when it is not JSON."""
    _check_charset(request.headers.get("content-type"))
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
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestError(f"request body is over the limit of {limit} bytes", 413)
                chunks.append(chunk)
    except ClientDisconnect:
        raise RequestError("the client disconnected before sending the whole body") from None
    except TimeoutError:
        raise RequestError(
            f"the request body did not arrive within {timeout:g} seconds (REQUEST_TIMEOUT)", 408
        ) from None
    return parse_body(b"".join(chunks))


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
                    f"model {shown(name)} not found; this server serves '{model.name}'", 404
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

    server_version = current_project().version

    async def v2_server_metadata(request: Request) -> Response:
        return json_response({"name": model.name, "version": server_version, "extensions": []})

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
        payload = await read_json(request, max_body_bytes, request_timeout)
        parsed = schema.parse_v1(payload, max_rows)
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
        payload = await read_json(request, max_body_bytes, request_timeout)
        parsed = schema.parse_v2(payload, max_rows)
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

    # Starlette tries routes in order: inference first, the rest of the traffic.
    routes = [
        Route("/v1/models/{name}:predict", endpoint(v1_predict), methods=["POST"]),
        Route("/v2/models/{name}/infer", endpoint(v2_infer), methods=["POST"]),
        Route("/", endpoint(root), methods=["GET"]),
        Route("/metrics", endpoint(metrics_endpoint), methods=["GET"]),
        Route("/v2", endpoint(v2_server_metadata), methods=["GET"]),
        Route("/v2/health/live", endpoint(v2_live), methods=["GET"]),
        Route("/v2/health/ready", endpoint(v2_ready), methods=["GET"]),
        Route("/v2/models/{name}", endpoint(v2_model_metadata), methods=["GET"]),
        Route("/v2/models/{name}/ready", endpoint(v2_model_ready), methods=["GET"]),
        Route("/v1/models", endpoint(v1_models), methods=["GET"]),
        Route("/v1/models/{name}", endpoint(v1_model), methods=["GET"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info(
            "model loaded",
            extra={"model": model.name, "model_version": model.version, "pid": os.getpid()},
        )
        yield
        await batcher.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        detail = "method not allowed" if status == 405 else "not found"
        return error_response(f"{detail}: {request.method} {shown(request.url.path)}", status)

    starlette_app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_found},
    )
    return AccessLog(starlette_app, model, metrics)
