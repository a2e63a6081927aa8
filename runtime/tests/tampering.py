"""Tampering with a registered version the way an attacker with write access to the MLflow
artifact store would: the run's model.joblib replaced, after registration, by a pickle that
leaves a mark on the machine when it is unpickled.

A test asserts both the refusal and that the mark is absent: nothing of the file was unpickled.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import mlflow


class BoobyTrap:
    """Unpickled, it creates the folder `marker` (os.mkdir runs during loading)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def run_file(client: mlflow.MlflowClient, name: str, version: int, file_name: str) -> Path:
    """Where the local artifact store keeps `file_name` of the run that registered the version."""
    run_id = client.get_model_version(name, str(version)).run_id
    assert run_id, f"version {version} of {name} names its run"
    artifact_uri = client.get_run(run_id).info.artifact_uri
    parts = urlsplit(artifact_uri)
    assert parts.scheme == "file", f"the test store keeps artifacts on disk, not at {artifact_uri}"
    path = Path(url2pathname(parts.path)) / file_name
    assert path.is_file(), f"{path} is logged with the run"
    return path


def plant_booby_trap(
    client: mlflow.MlflowClient, name: str, version: int, marker: Path
) -> tuple[str, str]:
    """Replace the version's model.joblib in the store; (run id, the new file's sha256)."""
    path = run_file(client, name, version, "model.joblib")
    content = pickle.dumps(BoobyTrap(marker))
    path.write_bytes(content)
    run_id = client.get_model_version(name, str(version)).run_id
    return str(run_id), hashlib.sha256(content).hexdigest()
