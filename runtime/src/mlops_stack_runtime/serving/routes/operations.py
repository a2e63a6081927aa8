"""What operators call on the model's port: liveness at `/` (KServe v1's server liveness).

The Prometheus metrics are on a port of their own (serving/metrics.py), not among these routes.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..http import json_response
from .common import Serving, route


async def root(serving: Serving, request: Request) -> Response:
    return json_response({"status": "alive"})


def routes(serving: Serving) -> list[Route]:
    return [route(serving, "/", root, "GET")]
