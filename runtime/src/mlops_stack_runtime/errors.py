"""Errors the pipeline reports to the user: the CLI prints their message and exits non-zero."""

from __future__ import annotations


class PipelineError(Exception):
    """An expected failure with a message meant for the user (no traceback needed)."""


class ConfigError(PipelineError):
    """params.yaml is missing, unreadable or holds a wrong value."""


class ServerSettingError(ConfigError, ValueError):
    """A model server setting (an environment variable or option) holds a wrong value."""


class DataSourceError(PipelineError):
    """The raw data could not be loaded from the configured source."""


class DataValidationError(PipelineError):
    """The data broke the schema; the message is the readable validation report."""


class GateFailedError(PipelineError):
    """The model missed a quality gate (metric or fairness threshold)."""


class ArtifactIntegrityError(PipelineError):
    """A model file is missing, unreadable or differs from its audit record."""


class StageInputError(PipelineError):
    """A file a stage reads is empty, unreadable, or lacks columns of data/columns.yaml."""


class BatchError(PipelineError):
    """A batch of current data (drift, collect) is unreadable, empty or lacks model inputs."""


class RowsRejectedError(BatchError):
    """Batch scoring rejected rows (the batch scoring task, unless allowed): `score` exits 5."""
