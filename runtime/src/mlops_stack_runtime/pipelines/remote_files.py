"""Files in and out of a task: a local path as it is, a remote URI (s3://, gs://, azure://, ...)
through fsspec with the filesystems the training set installs (DVC's remote's)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import PipelineError


def _is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def fetch_input(uri: str, folder: Path) -> Path:
    """The input as a local file: a path as it is, a remote URI (s3://, gs://, ...) downloaded
    into `folder` with fsspec (the protocols of the installed filesystems: dvc's remote's)."""
    if not _is_remote(uri):
        path = Path(uri.removeprefix("file://"))
        if not path.is_file():
            raise PipelineError(f"the input {uri} is not a file this task can read")
        return path
    fsspec = _fsspec(uri)
    folder.mkdir(parents=True, exist_ok=True)
    local = folder / uri.rstrip("/").rsplit("/", 1)[-1]
    try:
        with fsspec.open(uri, "rb") as source, local.open("wb") as target:
            shutil.copyfileobj(source, target, length=1024 * 1024)
    except (ImportError, OSError, ValueError) as error:
        raise PipelineError(f"cannot read {uri}: {error}") from None
    return local


def copy_out(files: Sequence[Path], uri: str) -> None:
    """Copy `files` under the folder `uri` (a path, or a remote URI through fsspec)."""
    if not _is_remote(uri):
        folder = Path(uri.removeprefix("file://"))
        folder.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy2(path, folder / path.name)
        return
    fsspec = _fsspec(uri)
    for path in files:
        destination = f"{uri.rstrip('/')}/{path.name}"
        try:
            with path.open("rb") as source, fsspec.open(destination, "wb") as target:
                shutil.copyfileobj(source, target, length=1024 * 1024)
        except (ImportError, OSError, ValueError) as error:
            raise PipelineError(f"cannot write {path.name} under {uri}: {error}") from None


def _fsspec(uri: str) -> Any:
    try:
        import fsspec
    except ImportError:  # dvc brings it into the training set
        raise PipelineError(f"reading {uri} needs fsspec (the train group installs it)") from None
    return fsspec
