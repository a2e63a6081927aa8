"""The Open Inference Protocol (KServe v2): `POST /v2/models/<name>/infer` with `inputs`, server
and model metadata, liveness and readiness."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..http import json_response
from .common import Serving, route


async def v2_infer(serving: Serving, request: Request) -> Response:
    model = serving.model
    payload = await serving.read_json(request)
    parsed = model.schema.parse_v2(payload, serving.max_rows, model.outputs.names)
    serving.note(request, parsed)
    scores, decision = await serving.batcher.predict(parsed.columns, parsed.n_rows)
    serving.note_outputs(request, scores, decision)
    return json_response(
        {
            "model_name": model.name,
            "model_version": model.version,
            "id": parsed.request_id or str(uuid.uuid4()),
            "outputs": model.outputs.v2_outputs(scores, decision, parsed.outputs),
        }
    )


async def v2_server_metadata(serving: Serving, request: Request) -> Response:
    return json_response(
        {"name": serving.model.name, "version": serving.server_version, "extensions": []}
    )


async def v2_live(serving: Serving, request: Request) -> Response:
    return json_response({"live": True})


async def v2_ready(serving: Serving, request: Request) -> Response:
    return json_response({"ready": True})


async def v2_model_metadata(serving: Serving, request: Request) -> Response:
    model = serving.model
    return json_response(
        {
            "name": model.name,
            "versions": [model.version],
            "platform": "sklearn",
            "inputs": serving.inputs_metadata,
            "outputs": serving.outputs_metadata,
        }
    )


async def v2_model_ready(serving: Serving, request: Request) -> Response:
    return json_response({"name": serving.model.name, "ready": True})


def inference_routes(serving: Serving) -> list[Route]:
    return [route(serving, "/v2/models/{name}/infer", v2_infer, "POST")]


def metadata_routes(serving: Serving) -> list[Route]:
    return [
        route(serving, "/v2", v2_server_metadata, "GET"),
        route(serving, "/v2/health/live", v2_live, "GET"),
        route(serving, "/v2/health/ready", v2_ready, "GET"),
        route(serving, "/v2/models/{name}", v2_model_metadata, "GET"),
        route(serving, "/v2/models/{name}/ready", v2_model_ready, "GET"),
    ]
