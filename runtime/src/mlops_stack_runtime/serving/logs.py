"""Structured logs: one JSON object per line on stdout, ready for any log collector."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import orjson

# LogRecord attributes that are not user fields (everything else passed in `extra=` is kept).
# uvicorn adds `color_message`, the same text with terminal colours.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """``{"time": ..., "level": ..., "logger": ..., "event": <message>, **extra}``.

    A line is never lost: what orjson cannot write (a lone surrogate, an integer past 64 bits, a
    key that is not a string) goes through the standard library's escaping writer instead, and
    as a last resort each field is written as its escaped ``repr``.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        try:
            entry["event"] = record.getMessage()
        except Exception:  # a bad %-format in a third-party record must not drop the line
            entry["event"] = str(record.msg)
        for key, value in record.__dict__.items():
            if key not in _RESERVED:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except (TypeError, ValueError):
            pass
        try:
            return json.dumps(entry, default=str, ensure_ascii=True, allow_nan=True)
        except (TypeError, ValueError, RecursionError):
            return json.dumps({str(key): repr(value) for key, value in entry.items()})


def configure_logging(level: str = "info") -> None:
    """Send this package's, uvicorn's and the root logger's records to stdout as JSON lines."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # The app writes its own access line (with model version and latency) for every request.
    logging.getLogger("uvicorn.access").disabled = True


def log_config(level: str = "info") -> dict[str, Any]:
    """The same setup as a logging dictConfig, for uvicorn's worker processes."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "CRITICAL"},
        },
    }
