"""KServe's v1 protocol: `POST /v1/models/<name>:predict` with `instances`, and the model list."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..http import json_response
from .common import Serving, route


async def v1_predict(serving: Serving, request: Request) -> Response:
    payload = await serving.read_json(request)
    parsed = serving.model.schema.parse_v1(payload, serving.max_rows)
    serving.note(request, parsed)
    scores, decision = await serving.batcher.predict(parsed.columns, parsed.n_rows)
    serving.note_outputs(request, scores, decision)
    return json_response({"predictions": serving.model.outputs.v1_predictions(scores, decision)})


async def v1_models(serving: Serving, request: Request) -> Response:
    return json_response({"models": [serving.model.name]})


async def v1_model(serving: Serving, request: Request) -> Response:
    return json_response({"name": serving.model.name, "ready": True})


def inference_routes(serving: Serving) -> list[Route]:
    return [route(serving, "/v1/models/{name}:predict", v1_predict, "POST")]


def metadata_routes(serving: Serving) -> list[Route]:
    return [
        route(serving, "/v1/models", v1_models, "GET"),
        route(serving, "/v1/models/{name}", v1_model, "GET"),
    ]
