"""JSON over HTTP for the routes: reading a request's body, writing a response.

Bodies are JSON in UTF-8 (RFC 8259), whatever the Content-Type says (``curl -d`` sends a form
type): a UTF-8 byte order mark is skipped; UTF-16 or UTF-32 bodies, or a declared charset other
than UTF-8, answer 415; bytes that are not UTF-8, and escapes of lone UTF-16 surrogates
(``"\\ud800"``, which no Unicode text can hold) answer 400; a body over the size limit answers
413, one that does not arrive in time 408. Client text quoted in a message is escaped and cut
short.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .validation import RequestError, shown


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


async def read_json(request: Request, limit: int, timeout: float) -> Any:
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
