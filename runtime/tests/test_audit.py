from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mlops_stack_runtime.audit import (
    SOURCE_COMMIT_ENV_VAR,
    git_commit,
    load_verified_model,
    load_verified_onnx,
    read_record,
    save_model,
    sha256_file,
    verify_artifact,
    write_record,
)
from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.data.csv_files import (
    read_frame,
)
from mlops_stack_runtime.errors import (
    ArtifactIntegrityError,
)


@pytest.fixture
def model_dir(trained_project: Config, tmp_path: Path) -> Path:
    """A private copy of the trained model folder, safe to tamper with."""
    return Path(shutil.copytree(trained_project.paths.models_dir, tmp_path / "models"))


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"credit" * 100_000)
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_record_round_trips(model_dir: Path, tmp_path: Path) -> None:
    record = read_record(model_dir)
    write_record(record, tmp_path / "copy")
    assert read_record(tmp_path / "copy") == record


def test_verified_model_loads_and_predicts(model_dir: Path, trained_project: Config) -> None:
    pipeline, record = load_verified_model(model_dir)
    assert record == verify_artifact(model_dir)
    assert list(pipeline.feature_names_in_) == record.feature_names
    rows = read_frame(trained_project.paths.test_data)[record.feature_names].head(5)
    assert pipeline.predict_proba(rows).shape == (5, 2)


def test_modified_model_file_is_refused(model_dir: Path) -> None:
    with (model_dir / "model.joblib").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactIntegrityError, match=r"model\.joblib has sha256 .* records"):
        verify_artifact(model_dir)
    with pytest.raises(ArtifactIntegrityError, match="refusing to load"):
        load_verified_model(model_dir)


def test_replaced_model_file_is_refused(model_dir: Path) -> None:
    save_model({"not": "the trained model"}, model_dir)
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        load_verified_model(model_dir)


def test_missing_files_are_reported(model_dir: Path) -> None:
    (model_dir / "model.joblib").unlink()
    with pytest.raises(ArtifactIntegrityError, match=r"model\.joblib not found"):
        verify_artifact(model_dir)
    (model_dir / "model.json").unlink()
    with pytest.raises(ArtifactIntegrityError, match=r"model\.json not found"):
        verify_artifact(model_dir)


def test_incomplete_record_is_reported(model_dir: Path) -> None:
    content = json.loads((model_dir / "model.json").read_text())
    del content["model_sha256"]
    (model_dir / "model.json").write_text(json.dumps(content))
    with pytest.raises(ArtifactIntegrityError, match="lacks model_sha256"):
        read_record(model_dir)


def test_unknown_record_keys_are_ignored(model_dir: Path) -> None:
    content = json.loads((model_dir / "model.json").read_text())
    (model_dir / "model.json").write_text(json.dumps({**content, "approved_by": "risk team"}))
    assert dataclasses.asdict(read_record(model_dir)) == content


def vouch_for(model_dir: Path) -> str:
    """Rewrite model.json to record the current model file's sha256, as an intruder could."""
    sha256 = sha256_file(model_dir / "model.joblib")
    content = json.loads((model_dir / "model.json").read_text())
    (model_dir / "model.json").write_text(json.dumps({**content, "model_sha256": sha256}))
    return sha256


class RunsCode:
    """Unpickling this writes a file: what a malicious model would do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_an_expected_sha256_from_outside_refuses_a_file_its_record_vouches_for(
    model_dir: Path, tmp_path: Path
) -> None:
    trained = sha256_file(model_dir / "model.joblib")
    assert verify_artifact(model_dir, trained).model_sha256 == trained
    assert verify_artifact(model_dir, f"sha256:{trained.upper()}").model_sha256 == trained

    marker = tmp_path / "the-model-ran-code"
    save_model(RunsCode(marker), model_dir)  # type: ignore[arg-type]
    vouch_for(model_dir)  # the folder's own record now matches the malicious file
    with pytest.raises(ArtifactIntegrityError, match="the deployment expects"):
        load_verified_model(model_dir, trained)
    assert not marker.exists(), "refused before a byte was unpickled"


@pytest.mark.parametrize("expected", ["", "latest", "ab" * 31, "xy" * 32])
def test_an_expected_sha256_that_is_not_one_is_refused(model_dir: Path, expected: str) -> None:
    with pytest.raises(ArtifactIntegrityError, match="must be a sha256 hex digest"):
        verify_artifact(model_dir, expected)


def test_a_matching_file_that_cannot_be_unpickled_is_refused_cleanly(model_dir: Path) -> None:
    path = model_dir / "model.joblib"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a half-copied file
    vouch_for(model_dir)
    with pytest.raises(ArtifactIntegrityError, match="matches its sha256 but cannot be loaded"):
        load_verified_model(model_dir)


# Pickles of a class that no longer exists: a module gone (ModuleNotFoundError), a class gone
# from its module (AttributeError), as after a scikit-learn upgrade. Protocol 0: GLOBAL, then an
# empty tuple, NEWOBJ, STOP.
@pytest.mark.parametrize(
    "pickled",
    [b"cno_such_module_anywhere\nModel\n)\x81.", b"csklearn.base\nNoSuchEstimator\n)\x81."],
    ids=["module-gone", "class-gone"],
)
def test_a_pickle_of_a_vanished_class_is_refused_cleanly(model_dir: Path, pickled: bytes) -> None:
    (model_dir / "model.joblib").write_bytes(pickled)
    vouch_for(model_dir)
    with pytest.raises(ArtifactIntegrityError, match="matches its sha256 but cannot be loaded"):
        load_verified_model(model_dir)


def test_unreadable_files_are_refused_cleanly(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(ArtifactIntegrityError, match=r"model\.joblib cannot be read"):
        verify_artifact(model_dir)


@pytest.mark.parametrize("content", [b"null", b"[]", b'"model"', b"\xff\xfe not utf-8"])
def test_a_record_that_is_not_an_object_is_refused(model_dir: Path, content: bytes) -> None:
    (model_dir / "model.json").write_bytes(content)
    with pytest.raises(ArtifactIntegrityError, match=r"model\.json (must hold|cannot be read)"):
        read_record(model_dir)


def test_git_commit_outside_a_repository_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.delenv(SOURCE_COMMIT_ENV_VAR, raising=False)
    folder = tmp_path / "not-a-repo"
    folder.mkdir()
    assert git_commit(folder) is None


def test_git_commit_outside_a_repository_is_the_source_commit_when_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pipeline task in a container: the package without its repository.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setenv(SOURCE_COMMIT_ENV_VAR, "0123abc")
    assert git_commit(tmp_path) == "0123abc"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_commit_inside_a_repository(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
        return subprocess.run(
            command, cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "--quiet")
    (tmp_path / "file.txt").write_text("x")
    git("add", "file.txt")
    git("commit", "--quiet", "-m", "first")
    assert git_commit(tmp_path) == git("rev-parse", "HEAD")


def test_a_record_without_an_onnx_model_says_so(model_dir: Path) -> None:
    record = dataclasses.replace(read_record(model_dir), onnx_sha256=None)
    with pytest.raises(ArtifactIntegrityError) as refused:
        load_verified_onnx(model_dir, record)
    assert str(refused.value) == (
        f"{model_dir / 'model.json'} records no ONNX model (the pipeline did not convert)"
    )


def test_the_deployment_s_onnx_sha256_is_checked_and_named(model_dir: Path) -> None:
    record = read_record(model_dir)
    assert record.onnx_sha256 is not None
    assert (
        load_verified_onnx(model_dir, record, record.onnx_sha256)
        == (model_dir / "model.onnx").read_bytes()
    )
    with pytest.raises(ArtifactIntegrityError) as malformed:
        load_verified_onnx(model_dir, record, "not-a-digest")
    assert str(malformed.value) == (
        "the expected ONNX model sha256 must be a sha256 hex digest (64 hex digits), "
        "got 'not-a-digest'"
    )
    other = "ab" * 32
    with pytest.raises(ArtifactIntegrityError) as mismatch:
        load_verified_onnx(model_dir, record, other)
    assert str(mismatch.value) == (
        f"{model_dir / 'model.onnx'} has sha256 {record.onnx_sha256}, but the deployment "
        f"expects {other} (ONNX_SHA256): refusing to load it"
    )
