"""What every route shares: the server's settings and model, and the wrapper of its handler."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..batching import MicroBatcher
from ..http import error_response, read_json
from ..metrics import Metrics
from ..validation import ParsedRequest, RequestError, shown

if TYPE_CHECKING:
    from ..model import ServedModel

# The application's logger: handlers' unexpected failures are its records.
log = logging.getLogger(__name__.rsplit(".", 2)[0] + ".app")


@dataclass(frozen=True)
class Serving:
    """One server: its verified model, the batcher in front of it, and the request limits."""

    model: ServedModel
    batcher: MicroBatcher
    metrics: Metrics
    max_body_bytes: int
    max_rows: int
    request_timeout: float
    log_features: bool
    server_version: str
    # The v2 model metadata's tensors, worked out once.
    inputs_metadata: list[dict[str, Any]]
    outputs_metadata: list[dict[str, Any]]

    async def read_json(self, request: Request) -> Any:
        return await read_json(request, self.max_body_bytes, self.request_timeout)

    def note(self, request: Request, parsed: ParsedRequest) -> None:
        """What the access log line of a prediction request adds: rows, and the inputs when
        LOG_FEATURES is on."""
        fields = request.scope["log_fields"]
        fields["rows"] = parsed.n_rows
        if self.log_features:
            fields["features"] = {name: column.tolist() for name, column in parsed.columns.items()}

    def note_outputs(self, request: Request, scores: np.ndarray, decision: np.ndarray) -> None:
        """With LOG_FEATURES on, the line also holds what the model answered (`outputs`: one
        list per output of the task, as v2 names them), beside its inputs."""
        if self.log_features:
            columns = self.model.outputs.columns(scores, decision)
            request.scope["log_fields"]["outputs"] = {
                name: values.tolist() for name, values in columns.items()
            }


Handler = Callable[[Serving, Request], Awaitable[Response]]


def route(serving: Serving, path: str, handler: Handler, method: str) -> Route:
    """`handler` at `path`: another model's name answers 404, RequestError its status, anything
    unexpected a logged 500. The endpoint takes the handler's name (the access log's and the
    metrics' `endpoint`)."""
    model = serving.model

    async def endpoint(request: Request) -> Response:
        name = request.path_params.get("name")
        if name is not None and name != model.name:
            return error_response(
                f"model {shown(name)} not found; this server serves '{model.name}'", 404
            )
        try:
            return await handler(serving, request)
        except RequestError as error:
            request.scope["log_fields"]["error"] = error.message
            return error_response(error.message, error.status)
        except Exception:
            log.exception("request failed", extra={"path": request.url.path})
            return error_response("internal error while handling the request", 500)

    endpoint.__name__ = handler.__name__
    return Route(path, endpoint, methods=[method])
