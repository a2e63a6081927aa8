"""uvicorn's httptools protocol with the limits it lacks: header size and a header deadline.

uvicorn parses headers of any size (a 64 MiB header takes seconds of the event loop and its
memory) and holds connections that never finish their headers. This subclass counts the bytes of
each request's head (request line and headers, up to the blank line that ends them) as they
arrive, before the parser buffers them, and times each request from its first byte:
- headers over ``MAX_HEADER_BYTES`` answer 431 and the connection closes;
- headers not complete within ``REQUEST_TIMEOUT`` seconds answer 408 and the connection closes;
  a connection that sends nothing at all for that long is closed.
The body has the same deadline, enforced by the app once the headers are in (app.py), so the
408 is logged like any other answer. Past ``MAX_CONNECTIONS`` open connections (uvicorn's
``limit_concurrency``) a request is answered 503 at once, as uvicorn does, but with a JSON error,
a log line and a count: uvicorn's own 503 reaches neither the app nor the logs. Each refusal here
writes one access line (``endpoint: "refused"``, its status and ``reason``) and counts in
``inference_requests_rejected_total{reason=...}`` (metrics.py). Only parser callbacks, the
asyncio Protocol interface and the app run past the connection limit are overridden; everything
else is uvicorn's own. Pipelined requests that share one read with the
request before them are counted from the next read on, so a head may pass the limit by at most
one read (256 KiB) before it is refused.
"""

from __future__ import annotations

import asyncio
import logging
import os

import orjson
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .app import DEFAULT_REQUEST_TIMEOUT
from .metrics import CONNECTION_LIMIT, HEADER_TIMEOUT, HEADER_TOO_LARGE, count_rejected

MAX_HEADER_ENV = "MAX_HEADER_BYTES"
REQUEST_TIMEOUT_ENV = "REQUEST_TIMEOUT"
DEFAULT_MAX_HEADER_BYTES = 64 * 1024

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
MAX_CONNECTIONS_ENV = "MAX_CONNECTIONS"

access_log = logging.getLogger(f"{__package__}.access")


def settings_from_env() -> tuple[int, float]:
    """(header limit in bytes, request deadline in seconds); run_server validated them."""
    header = os.environ.get(MAX_HEADER_ENV, "").strip()
    timeout = os.environ.get(REQUEST_TIMEOUT_ENV, "").strip()
    return (
        int(header) if header else DEFAULT_MAX_HEADER_BYTES,
        float(timeout) if timeout else DEFAULT_REQUEST_TIMEOUT,
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus a header size limit and a deadline for the headers."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.max_header_bytes, self.request_timeout = settings_from_env()
        self._header_bytes = 0
        self._in_head = True  # reading a request line and headers (not a body)
        self._tail = b""  # the last bytes of the head so far: its end may span two reads
        self._deadline: asyncio.TimerHandle | None = None
        self._refused = False
        self._received_any = False
        # uvicorn's own check of limit_concurrency answers a 503 nothing logs or counts: this
        # class makes the same check (on_headers_complete) and answers it itself.
        self.max_connections: int | None = self.limit_concurrency
        self.limit_concurrency = None

    # --- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()  # a connection that never sends a request is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered and closing: the rest of what the client sends is dropped
        if self._in_head and self._count_head(data) > self.max_header_bytes:
            self._refuse(
                431,
                f"the request line and headers are over the limit of {self.max_header_bytes} "
                f"bytes ({MAX_HEADER_ENV})",
                HEADER_TOO_LARGE,
            )
            return
        super().data_received(data)

    def _count_head(self, data: bytes) -> int:
        """Add the bytes of ``data`` that belong to the current head; return the total."""
        window = self._tail + data
        end = window.find(b"\r\n\r\n")
        if end == -1:
            self._header_bytes += len(data)
            self._tail = window[-3:]
        else:
            self._header_bytes += max(0, end + 4 - len(self._tail))
            self._tail = b""
        return self._header_bytes

    # --- parser callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._received_any = True
        self._arm()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()  # the app's own deadline covers the body
        if not self._over_connection_limit():
            super().on_headers_complete()
            return
        # uvicorn runs the app it finds in self.app for this request: ours answers the 503.
        app, self.app = self.app, self._refuse_over_connection_limit
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def _over_connection_limit(self) -> bool:
        """uvicorn's test of limit_concurrency, made where uvicorn makes it, without its
        off-by-one: the open connections include this request's own, so up to MAX_CONNECTIONS
        of them are served (uvicorn served one fewer); the running requests do not."""
        limit = self.max_connections
        return limit is not None and (len(self.connections) > limit or len(self.tasks) >= limit)

    async def _refuse_over_connection_limit(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """The 503 past MAX_CONNECTIONS (an ASGI app): a JSON error, then the connection
        closes; logged and counted like the other refusals."""
        message = (
            f"the server is at its limit of {self.max_connections} open connections "
            f"({MAX_CONNECTIONS_ENV}): retry shortly"
        )
        body = orjson.dumps({"error": message})
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"1"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})
        method, path = (scope.get(key) for key in ("method", "path"))
        self._record(503, message, CONNECTION_LIMIT, str(method), str(path))

    def on_message_complete(self) -> None:
        self._in_head, self._header_bytes, self._tail = True, 0, b""
        super().on_message_complete()

    # --- the deadline -------------------------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        if not self._received_any:
            self.transport.close()  # nothing was asked: nothing to answer
            return
        self._refuse(
            408,
            f"the request headers did not arrive within {self.request_timeout:g} seconds "
            f"({REQUEST_TIMEOUT_ENV})",
            HEADER_TIMEOUT,
        )

    def _refuse(self, status: int, message: str, reason: str) -> None:
        """Answer ``status`` with a JSON error, log it like every request, close."""
        self._refused = True
        self._disarm()
        body = orjson.dumps({"error": message})
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, _REASONS[status], len(body))
        )
        self.transport.write(head + body)
        self.transport.close()
        self._record(status, message, reason)

    @staticmethod
    def _record(
        status: int,
        message: str,
        reason: str,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """The refusal's access line and count (the request's method and path when known)."""
        count_rejected(reason)
        known = {"method": method, "path": path}
        access_log.warning(
            "request",
            extra={
                **{key: value for key, value in known.items() if value is not None},
                "endpoint": "refused",
                "status": status,
                "reason": reason,
                "error": message,
            },
        )
