"""The model server's settings: one pydantic-settings class read from the environment.

Each setting is an environment variable (the container's interface, and what every worker
process reads); CLI options (`serve --workers ...`) take precedence. A value that is not valid
stops the server before it listens, with a message that starts with the variable's name.

- WEB_CONCURRENCY: worker processes (default 1);
- MAX_BODY_BYTES: largest request body accepted, larger ones get 413 (default 1 MiB);
- MAX_ROWS: most rows in one request, more get 413 (default 10000);
- MAX_HEADER_BYTES: largest request line plus headers, larger get 431 (default 64 KiB);
- REQUEST_TIMEOUT: seconds for a request's headers to arrive, and again for its body, else 408
  and the connection closes (default 30);
- MAX_CONNECTIONS: open connections per worker; past it new requests get 503 at once instead
  of piling up, each logged and counted (`inference_requests_rejected_total{reason=
  "connection_limit"}`) (default 256);
- LOG_LEVEL: debug, info (default), warning or error;
- LOG_FEATURES: 1 (or true) adds each prediction's inputs and answers to its log line, for drift
  monitoring (off by default: inputs may be personal data);
- MODEL_SHA256: the sha256 the model file must have, from outside the model folder (the deploy
  step sets it from the registry's record); checked before anything is unpickled;
- REQUIRE_MODEL_SHA256: 1 (the KServe manifest) refuses to start without MODEL_SHA256;
- AUTH_TOKEN_FILE: the path of a file holding the bearer token (a mounted Kubernetes secret; a
  trailing newline is dropped). When set, the file must exist and hold a token (one word of
  printable ASCII), read once at start; every request then needs `Authorization: Bearer
  <token>` except GET /, /v2/health/live and /v2/health/ready, else 401 (serving/auth.py).
  Unset (the default): no token is asked for;
- METRICS_PORT: the port of the Prometheus metrics, `GET /metrics` on the server's host (HOST,
  `serve --host`) and nothing else, without a token (default 8082; the model's port has no
  /metrics). One per server, whatever WEB_CONCURRENCY: it adds up every worker's metrics.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..audit import MODEL_SHA256_ENV, check_sha256
from ..errors import ArtifactIntegrityError, ServerSettingError
from .app import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS, DEFAULT_REQUEST_TIMEOUT
from .protocol import (
    DEFAULT_MAX_HEADER_BYTES,
    MAX_CONNECTIONS_ENV,
    MAX_HEADER_ENV,
    REQUEST_TIMEOUT_ENV,
)

WORKERS_ENV = "WEB_CONCURRENCY"
MAX_BODY_ENV = "MAX_BODY_BYTES"
MAX_ROWS_ENV = "MAX_ROWS"
LOG_LEVEL_ENV = "LOG_LEVEL"
LOG_FEATURES_ENV = "LOG_FEATURES"
REQUIRE_MODEL_SHA256_ENV = "REQUIRE_MODEL_SHA256"
AUTH_TOKEN_FILE_ENV = "AUTH_TOKEN_FILE"
METRICS_PORT_ENV = "METRICS_PORT"
DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_METRICS_PORT = 8082
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
TRUE_WORDS = ("1", "true", "yes", "on")


def _flag(value: Any) -> bool:
    """A switch as shells write it: 1, true, yes or on (any case) is on, anything else off."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUE_WORDS


class ServerSettings(BaseSettings):
    """Every setting of the server, checked: a wrong value raises before anything listens."""

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,
        env_ignore_empty=True,  # an empty variable is an unset one, as the shell's `VAR=` means
        extra="ignore",  # the rest of the environment is not the server's
        populate_by_name=True,
        validate_default=True,
    )

    workers: int = Field(1, validation_alias=WORKERS_ENV)
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, validation_alias=MAX_BODY_ENV)
    max_rows: int = Field(DEFAULT_MAX_ROWS, validation_alias=MAX_ROWS_ENV)
    max_header_bytes: int = Field(DEFAULT_MAX_HEADER_BYTES, validation_alias=MAX_HEADER_ENV)
    request_timeout: float = Field(DEFAULT_REQUEST_TIMEOUT, validation_alias=REQUEST_TIMEOUT_ENV)
    max_connections: int = Field(DEFAULT_MAX_CONNECTIONS, validation_alias=MAX_CONNECTIONS_ENV)
    log_level: str = Field("info", validation_alias=LOG_LEVEL_ENV)
    log_features: bool = Field(False, validation_alias=LOG_FEATURES_ENV)
    model_sha256: str | None = Field(None, validation_alias=MODEL_SHA256_ENV)
    require_model_sha256: bool = Field(False, validation_alias=REQUIRE_MODEL_SHA256_ENV)
    auth_token_file: Path | None = Field(None, validation_alias=AUTH_TOKEN_FILE_ENV)
    metrics_port: int = Field(DEFAULT_METRICS_PORT, validation_alias=METRICS_PORT_ENV)
    # The token itself, read from auth_token_file once the settings are valid (never a field:
    # it stays out of the settings' repr and of anything that prints them).
    _auth_token: str | None = PrivateAttr(None)

    @field_validator(
        "workers",
        "max_body_bytes",
        "max_rows",
        "max_header_bytes",
        "max_connections",
        mode="before",
    )
    @classmethod
    def _positive_count(cls, value: Any, info: Any) -> int:
        name = cls.model_fields[info.field_name].validation_alias  # the variable, for the message
        if isinstance(value, bool):
            raise ServerSettingError(f"{name} must be a whole number, got {value!r}")
        if isinstance(value, str):
            raw = value.strip()
            try:
                value = int(raw)
            except ValueError:
                raise ServerSettingError(f"{name} must be a whole number, got {raw!r}") from None
        if not isinstance(value, int):
            raise ServerSettingError(f"{name} must be a whole number, got {value!r}")
        if value < 1:
            raise ServerSettingError(f"{name} must be at least 1, got {value}")
        return value

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> int:
        raw = value.strip() if isinstance(value, str) else value
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise ServerSettingError(f"{METRICS_PORT_ENV} must be a port number, got {raw!r}")
        try:
            port = int(raw)
        except ValueError:
            raise ServerSettingError(
                f"{METRICS_PORT_ENV} must be a port number, got {raw!r}"
            ) from None
        if not 1 <= port <= 65535:
            raise ServerSettingError(f"{METRICS_PORT_ENV} must be from 1 to 65535, got {port}")
        return port

    @field_validator("auth_token_file", mode="before")
    @classmethod
    def _token_file(cls, value: Any) -> Path | None:
        if value is None or not str(value).strip():
            return None
        return Path(str(value).strip())

    @field_validator("request_timeout", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> float:
        raw = value.strip() if isinstance(value, str) else value
        try:
            seconds = float(raw)
        except (TypeError, ValueError):
            message = f"{REQUEST_TIMEOUT_ENV} must be a number of seconds, got {raw!r}"
            raise ServerSettingError(message) from None
        if not 0 < seconds <= 3600:
            raise ServerSettingError(
                f"{REQUEST_TIMEOUT_ENV} must be more than 0 and at most 3600 seconds, got {raw}"
            )
        return seconds

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> str:
        level = str(value).strip().lower()
        if level not in LOG_LEVELS:
            choices = ", ".join(LOG_LEVELS)
            raise ServerSettingError(f"{LOG_LEVEL_ENV} must be one of {choices}, got {value!r}")
        return level

    @field_validator("log_features", "require_model_sha256", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> bool:
        return _flag(value)

    @field_validator("model_sha256", mode="before")
    @classmethod
    def _digest(cls, value: Any) -> str | None:
        if value is None or not str(value).strip():
            return None
        return check_sha256(str(value), MODEL_SHA256_ENV)  # ArtifactIntegrityError: not wrapped

    @model_validator(mode="after")
    def _vouched_for(self) -> ServerSettings:
        if self.model_sha256 is None and self.require_model_sha256:
            raise ArtifactIntegrityError(
                f"{MODEL_SHA256_ENV} is not set, and {REQUIRE_MODEL_SHA256_ENV}=1 requires it: "
                "the deploy step (`pin-image --model-sha256`) sets it from the registry's "
                "record; refusing to load a model nothing outside its folder vouches for"
            )
        return self

    @model_validator(mode="after")
    def _read_token(self) -> ServerSettings:
        if self.auth_token_file is not None:
            self._auth_token = read_token(self.auth_token_file)
        return self

    @property
    def auth_token(self) -> str | None:
        """The bearer token of AUTH_TOKEN_FILE, None when no token is asked for."""
        return self._auth_token

    @classmethod
    def from_env(
        cls,
        *,
        workers: int | None = None,
        max_body_bytes: int | None = None,
        log_level: str | None = None,
        log_features: bool | None = None,
        metrics_port: int | None = None,
    ) -> ServerSettings:
        """The settings from the environment; keyword arguments (CLI options) take precedence."""
        options: dict[str, Any] = {
            "workers": workers or None,
            "max_body_bytes": max_body_bytes or None,
            "log_level": log_level or None,
            "log_features": log_features,
            "metrics_port": metrics_port,
        }
        try:
            return cls(**{name: value for name, value in options.items() if value is not None})
        except ValidationError as error:
            raise _first_refusal(error) from None

    def export(self) -> None:
        """Write the settings back to the environment, where worker processes read them."""
        os.environ[MAX_BODY_ENV] = str(self.max_body_bytes)
        os.environ[MAX_ROWS_ENV] = str(self.max_rows)
        os.environ[MAX_HEADER_ENV] = str(self.max_header_bytes)
        os.environ[REQUEST_TIMEOUT_ENV] = repr(self.request_timeout)
        os.environ[LOG_FEATURES_ENV] = "1" if self.log_features else "0"


def read_token(path: Path) -> str:
    """The bearer token in ``path``: one word of printable ASCII, without the trailing newline
    a secret's file often ends with. The messages never quote the file's content."""
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise ServerSettingError(
            f"{AUTH_TOKEN_FILE_ENV} names {path}, which does not exist: mount the secret "
            "holding the server's bearer token there, or unset the variable to serve without one"
        ) from None
    except OSError as error:
        raise ServerSettingError(
            f"{AUTH_TOKEN_FILE_ENV} names {path}, which cannot be read: {error.strerror}"
        ) from None
    token = content.strip()
    if not token:
        raise ServerSettingError(
            f"{AUTH_TOKEN_FILE_ENV} names {path}, which is empty: it must hold the bearer token"
        )
    if not all(0x21 <= byte <= 0x7E for byte in token):
        raise ServerSettingError(
            f"{AUTH_TOKEN_FILE_ENV} names {path}, whose token is not one word of printable ASCII "
            "(spaces, line breaks or other characters inside it): a bearer token cannot hold them"
        )
    return token.decode("ascii")


def _first_refusal(error: ValidationError) -> ServerSettingError:
    """The message of the first refused setting (ours when a validator wrote it)."""
    first = error.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, ServerSettingError):
        return cause
    where = ".".join(str(part) for part in first["loc"])
    return ServerSettingError(f"{where}: {first['msg']}")
