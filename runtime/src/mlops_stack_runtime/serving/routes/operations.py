"""What operators call: liveness at `/` and the Prometheus exposition at `/metrics`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..http import json_response
from ..metrics import CONTENT_TYPE
from .common import Serving, route


async def root(serving: Serving, request: Request) -> Response:
    return json_response({"status": "alive"})


async def metrics_endpoint(serving: Serving, request: Request) -> Response:
    return Response(serving.metrics.exposition(), media_type=CONTENT_TYPE)


def routes(serving: Serving) -> list[Route]:
    return [
        route(serving, "/", root, "GET"),
        route(serving, "/metrics", metrics_endpoint, "GET"),
    ]
