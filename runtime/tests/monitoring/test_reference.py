from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import mlflow
import pytest

from mlops_stack_runtime.data.columns import (
    FEATURE_NAMES,
)
from mlops_stack_runtime.data.sample import (
    generate_sample,
)
from mlops_stack_runtime.errors import (
    ArtifactIntegrityError,
    PipelineError,
)
from mlops_stack_runtime.monitoring.reference import (
    _declared_features,
    _locked_md5,
    find_reference,
)
from mlops_stack_runtime.promotion import (
    promote,
)
from mlops_stack_runtime.train import (
    train,
)

from tests.tampering import plant_booby_trap

if TYPE_CHECKING:
    from pathlib import Path

    from mlops_stack_runtime.testing.fixtures import MakeProject

TRAIN_DATA = "data/validated/train.csv"


def commit_lock(root: Path, text: str) -> None:
    """A git repository whose HEAD holds `text` as dvc.lock."""
    (root / "dvc.lock").write_text(text, encoding="utf-8")
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    for args in (["init", "-q"], ["add", "dvc.lock"], [*identity, "commit", "-q", "-m", "lock"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_the_lock_of_a_commit_gives_the_md5_of_a_file(tmp_path: Path) -> None:
    commit_lock(
        tmp_path,
        f"schema: '2.0'\nstages:\n  validate:\n    outs:\n    - path: {TRAIN_DATA}\n"
        "      md5: 0123abcd\n",
    )
    assert _locked_md5(tmp_path, "HEAD", TRAIN_DATA) == "0123abcd"
    assert _locked_md5(tmp_path, "HEAD", "data/validated/other.csv") is None


@pytest.mark.parametrize(
    "lock",
    [
        "stages: [\n",  # not YAML
        "- a list\n- of things\n",  # not a mapping
        "stages:\n  validate: 3\n",  # a stage that is not a mapping
        "stages:\n  validate:\n    outs: [7]\n",  # an out that is not a mapping
        f"stages:\n  validate:\n    outs:\n    - path: {TRAIN_DATA}\n      md5: [1]\n",
    ],
    ids=["not-yaml", "list", "stage-scalar", "out-scalar", "md5-list"],
)
def test_a_malformed_lock_records_no_version_instead_of_failing(tmp_path: Path, lock: str) -> None:
    commit_lock(tmp_path, lock)
    assert _locked_md5(tmp_path, "HEAD", TRAIN_DATA) is None


def test_data_of_a_champion_older_than_the_declaration_is_named() -> None:
    frame = generate_sample(n_rows=20, seed=1)
    assert _declared_features(frame, "train.csv of this checkout") is frame
    with pytest.raises(PipelineError) as refused:
        _declared_features(frame.drop(columns=[FEATURE_NAMES[0]]), "train.csv of this checkout")
    assert f"lacks feature(s) {FEATURE_NAMES[0]} of data/columns.yaml" in str(refused.value)
    assert "`make retrain`" in str(refused.value)


def test_a_champion_tampered_with_in_the_store_is_refused_and_never_unpickled(
    copy_trained_project: MakeProject, mlflow_client: mlflow.MlflowClient, tmp_path: Path
) -> None:
    name = "reference-tampered-champion"
    config = copy_trained_project({"mlflow.registered_model": name})
    train(config)
    promote(config)
    marker = tmp_path / "unpickled"
    run_id, planted = plant_booby_trap(mlflow_client, name, 1, marker)

    with pytest.raises(ArtifactIntegrityError) as raised:
        find_reference(config)

    message = str(raised.value)
    assert f"version 1 of '{name}'" in message
    assert f"runs:/{run_id}/model.joblib has sha256 {planted}" in message
    assert not marker.exists(), "the champion's tampered file was unpickled"
