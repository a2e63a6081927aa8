"""The server's settings, read and checked before anything listens (serving/settings.py)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from mlops_stack_runtime.errors import (
    ArtifactIntegrityError,
    ServerSettingError,
)
from mlops_stack_runtime.serving.app import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_ROWS,
    DEFAULT_REQUEST_TIMEOUT,
)
from mlops_stack_runtime.serving.model import (
    ServedModel,
)
from mlops_stack_runtime.serving.protocol import (
    DEFAULT_MAX_HEADER_BYTES,
)
from mlops_stack_runtime.serving.server import serving_app
from mlops_stack_runtime.serving.settings import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_METRICS_PORT,
    ServerSettings,
)

from .conftest import SERVER_SETTINGS


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No server setting from the shell reaches these tests; whatever they export is undone."""
    for name in (*SERVER_SETTINGS, "LOG_FEATURES"):
        monkeypatch.setenv(name, "")


def test_without_settings_the_defaults_apply() -> None:
    assert ServerSettings.from_env() == ServerSettings(
        workers=1,
        max_body_bytes=DEFAULT_MAX_BODY_BYTES,
        max_rows=DEFAULT_MAX_ROWS,
        max_header_bytes=DEFAULT_MAX_HEADER_BYTES,
        request_timeout=DEFAULT_REQUEST_TIMEOUT,
        max_connections=DEFAULT_MAX_CONNECTIONS,
        log_level="info",
        log_features=False,
        model_sha256=None,
        require_model_sha256=False,
        auth_token_file=None,
        metrics_port=DEFAULT_METRICS_PORT,
    )
    assert ServerSettings.from_env().auth_token is None
    assert DEFAULT_METRICS_PORT == 8082


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("WEB_CONCURRENCY", "two", "must be a whole number"),
        ("MAX_BODY_BYTES", "0", "must be at least 1"),
        ("MAX_ROWS", "many", "must be a whole number"),
        ("MAX_HEADER_BYTES", "-5", "must be at least 1"),
        ("REQUEST_TIMEOUT", "0", "more than 0 and at most 3600"),
        ("REQUEST_TIMEOUT", "soon", "must be a number of seconds"),
        ("MAX_CONNECTIONS", "1.5", "must be a whole number"),
        ("LOG_LEVEL", "loud", "must be one of"),
        ("METRICS_PORT", "off", "must be a port number"),
        ("METRICS_PORT", "0", "must be from 1 to 65535"),
        ("METRICS_PORT", "65536", "must be from 1 to 65535"),
        ("AUTH_TOKEN_FILE", "/nonexistent/token", "which does not exist: mount the secret"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ServerSettingError, match=message) as refused:
        ServerSettings.from_env()
    assert str(refused.value).startswith(variable)


def test_settings_are_read_and_options_take_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_ROWS", "50")
    monkeypatch.setenv("REQUEST_TIMEOUT", "2.5")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("LOG_FEATURES", "true")
    settings = ServerSettings.from_env(workers=2, log_level="debug")
    assert (settings.max_rows, settings.request_timeout) == (50, 2.5)
    assert (settings.workers, settings.log_level, settings.log_features) == (2, "debug", True)
    assert ServerSettings.from_env().log_level == "warning"


def test_exported_settings_reach_a_worker_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_HEADER_BYTES", "4096")
    monkeypatch.setenv("REQUEST_TIMEOUT", "7")
    settings = ServerSettings.from_env(max_body_bytes=1000, log_features=True)
    settings.export()  # what run_server does before starting workers
    assert ServerSettings.from_env() == settings


def test_the_expected_model_sha256_is_checked_and_can_be_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODEL_SHA256", "sha256:" + "AB" * 32)
    assert ServerSettings.from_env().model_sha256 == "ab" * 32
    monkeypatch.setenv("MODEL_SHA256", "ab" * 31)
    with pytest.raises(ArtifactIntegrityError, match="MODEL_SHA256 must be a sha256 hex digest"):
        ServerSettings.from_env()
    monkeypatch.setenv("MODEL_SHA256", "")
    monkeypatch.setenv("REQUIRE_MODEL_SHA256", "1")
    with pytest.raises(ArtifactIntegrityError, match="MODEL_SHA256 is not set"):
        ServerSettings.from_env()


def test_the_loaded_model_is_moved_out_of_the_garbage_collectors_reach(
    served_model: ServedModel,
) -> None:
    # Full collections while serving then walk only what requests allocate: a shorter tail.
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        serving_app(served_model, ServerSettings.from_env())
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


SECRET = "4f1c0a9e-token-value"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "which is empty: it must hold the bearer token"),
        (b" \n\n", "which is empty: it must hold the bearer token"),
        (SECRET.encode() + b" other\n", "is not one word of printable ASCII"),
        (SECRET.encode() + b"\xc3\xa9", "is not one word of printable ASCII"),
    ],
    ids=["empty", "blank", "two-words", "not-ascii"],
)
def test_a_token_file_without_one_token_is_refused_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "token"
    path.write_bytes(content)
    monkeypatch.setenv("AUTH_TOKEN_FILE", str(path))
    with pytest.raises(ServerSettingError, match=message) as refused:
        ServerSettings.from_env()
    assert str(refused.value).startswith(f"AUTH_TOKEN_FILE names {path}, ")
    assert SECRET not in str(refused.value)


def test_a_folder_as_token_file_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AUTH_TOKEN_FILE", str(tmp_path))
    with pytest.raises(ServerSettingError, match="cannot be read") as refused:
        ServerSettings.from_env()
    assert str(refused.value).startswith("AUTH_TOKEN_FILE")


def test_the_token_is_read_without_its_newline_and_kept_out_of_the_settings_repr(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "token"
    path.write_text(SECRET + "\r\n")
    monkeypatch.setenv("AUTH_TOKEN_FILE", str(path))
    monkeypatch.setenv("METRICS_PORT", " 9100 ")
    settings = ServerSettings.from_env()
    assert settings.auth_token == SECRET
    assert settings.auth_token_file == path
    assert settings.metrics_port == 9100
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
    assert ServerSettings.from_env(metrics_port=9200).metrics_port == 9200
