"""The optional bearer token in front of the routes (AUTH_TOKEN_FILE, serving/settings.py).

With a token set, every request needs ``Authorization: Bearer <token>``, except the health checks
that probes and the container's HEALTHCHECK call without one (``OPEN_PATHS``). A missing,
malformed or wrong token answers 401 with the server's JSON error body and
``WWW-Authenticate: Bearer``, before any route (so an unknown path answers 401 too, and nothing
about the model leaks); the access log line says why (never the token) and the refusal counts in
``inference_requests_rejected_total{reason="unauthorized"}``. Tokens are compared in constant
time (hmac.compare_digest).
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from .http import error_response
from .metrics import UNAUTHORIZED, count_rejected

# Liveness and readiness: the server's, not the model's (those answer metadata, and need a token).
OPEN_PATHS = frozenset({"/", "/v2/health/live", "/v2/health/ready"})
_SCHEME = b"bearer"


def unauthorized() -> None:
    """The access log's and the metrics' `endpoint` of a request refused for its token."""


class BearerAuth:
    """ASGI wrapper: 401 for a request without the token, outside OPEN_PATHS."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("the bearer token is empty")
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        count_rejected(UNAUTHORIZED)
        scope["endpoint"] = unauthorized
        fields = scope.get("log_fields")
        if fields is not None:
            fields["error"] = problem
            client = scope.get("client")
            if client:
                fields["client"] = client[0]
        response = error_response(
            f"unauthorized: {problem}; send the header 'Authorization: Bearer <token>'", 401
        )
        response.headers["WWW-Authenticate"] = "Bearer"
        await response(scope, receive, send)

    def _problem(self, scope: Scope) -> str | None:
        """Why the request's credentials are refused; None when they carry the token."""
        values = [value for name, value in scope["headers"] if name == b"authorization"]
        if not values:
            return "no bearer token"
        if len(values) > 1:
            return "more than one Authorization header"
        scheme, _, credentials = values[0].strip().partition(b" ")
        if scheme.lower() != _SCHEME:
            return "the Authorization header is not a bearer token"
        if not credentials.strip():
            return "no bearer token"
        if not hmac.compare_digest(credentials.strip(), self._token):
            return "wrong bearer token"
        return None
