"""The reference a batch is compared with: the champion model and the very data it was trained on.

The champion is the registry version holding the alias `champion`; the tags `train` wrote on it
give the sha256 of its training and held-out test data and the git commit it was trained at.
Without a champion (the startup tier does not promote; a new project has none yet) the model of
models/model.json and that audit record stand in, and the report says so.

Features are compared with the training data. Predictions (scores, values or classes, per task)
are compared with the model's predictions on its held-out test data: on the rows it was fitted
to, a model predicts more confidently than on any new rows, which would look like prediction
drift where there is none.

Each file (data/validated/train.csv, test.csv) is looked for, in this order,
1. in this checkout;
2. through DVC: the file as dvc.lock records it at the training commit and at each later commit
   of the current branch (dvc.lock is committed after the run that wrote it), read from the DVC
   cache or remote;
3. in the data source itself, loaded and split again as the validate stage does (a source that
   gives the same rows, such as the seeded synthetic one, gives the same bytes).
A candidate is used only when its sha256 is the recorded one: the reference is exactly the
champion's data, or the command fails saying where it looked.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from ..audit import load_verified_model
from ..data.columns import FEATURE_NAMES
from ..data.csv_files import parse_frame, read_frame, write_frame
from ..errors import PipelineError
from ..registry import CHAMPION, RegisteredVersion, Registry

if TYPE_CHECKING:
    from ..config import Config

# Commits after the training commit searched for its dvc.lock entry.
MAX_REVISIONS = 100
UNKNOWN_COMMIT = "unknown"


@dataclass(frozen=True)
class Reference:
    model: Any
    # Which model, e.g. "champion version 3 of 'credit-risk' (http://...)".
    model_description: str
    model_version: int | None
    training_data: pd.DataFrame
    training_data_sha256: str
    # Where the verified training data was read from.
    data_location: str
    # The held-out test data the model's reference predictions come from.
    test_data: pd.DataFrame


def find_reference(config: Config) -> Reference:
    """The champion and its data, else the local model and its data."""
    registry = Registry(config)
    name = config.mlflow.registered_model
    champion = _champion(registry, name)
    if champion is not None:
        tags = champion.tags
        hashes = tags.get("training_data_sha256"), tags.get("test_data_sha256")
        if not all(hashes):
            raise PipelineError(
                f"champion version {champion.version} of '{name}' lacks the tags "
                "training_data_sha256 and test_data_sha256: it was not registered by `train`, "
                "so its data is unknown"
            )
        train_sha256, test_sha256 = str(hashes[0]), str(hashes[1])
        commit = tags.get("git_commit")
        # Verified like every load: the champion's file must match its model_sha256 tag.
        model = registry.load_verified_model(champion)
        description = f"champion version {champion.version} of '{name}' ({registry.location})"
        version: int | None = champion.version
    else:
        model, record = load_verified_model(config.paths.models_dir)
        train_sha256, test_sha256 = record.training_data_sha256, record.test_data_sha256
        commit = record.git_commit
        description = (
            f"models/model.json, version {record.registered_model_version} (no champion of "
            f"'{name}' in the registry at {registry.location})"
        )
        version = record.registered_model_version
    source = _SourceSplit(config)
    paths = config.paths
    training_data, location = find_data(config, paths.train_data, train_sha256, commit, source)
    test_data, _ = find_data(config, paths.test_data, test_sha256, commit, source)
    return Reference(model, description, version, training_data, train_sha256, location, test_data)


def find_data(
    config: Config, path: Path, sha256: str, commit: str | None, source: _SourceSplit
) -> tuple[pd.DataFrame, str]:
    """The version of `path` whose sha256 is `sha256`, and where it was found."""
    tried: list[str] = []
    for location, read in _candidates(config, path, commit, source):
        content = read()
        if content is not None and hashlib.sha256(content).hexdigest() == sha256:
            return _declared_features(parse_frame(io.BytesIO(content)), location), location
        tried.append(f"{location} ({'another sha256' if content is not None else 'not found'})")
    raise PipelineError(
        f"{path.name} with sha256 {sha256} was not found; looked in: {'; '.join(tried)}. "
        "Commit dvc.lock after training and `make push`, or `dvc pull` the champion's data"
    )


def _declared_features(frame: pd.DataFrame, location: str) -> pd.DataFrame:
    """`frame` if it holds every declared feature; the champion may predate the declaration."""
    missing = [name for name in FEATURE_NAMES if name not in frame.columns]
    if missing:
        raise PipelineError(
            f"the champion's data ({location}) lacks feature(s) {', '.join(missing)} of "
            "data/columns.yaml: the declaration changed after the champion was trained. "
            "Train and promote a model on the new declaration (`make retrain`) before drift"
        )
    return frame


def _champion(registry: Registry, name: str) -> RegisteredVersion | None:
    try:
        return registry.aliased(name, CHAMPION)
    except PipelineError as error:
        # A store where the model was never registered (the startup tier's fresh store) has no
        # champion; any other registry failure is an error.
        if getattr(error.__cause__, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


Candidate = tuple[str, Callable[[], bytes | None]]


def _candidates(
    config: Config, path: Path, commit: str | None, source: _SourceSplit
) -> Iterator[Candidate]:
    """(where, read) pairs in the order of the module docstring; read() gives None if absent."""
    root = config.root
    relative = path.relative_to(root).as_posix()
    yield f"{relative} of this checkout", lambda: path.read_bytes() if path.is_file() else None
    seen: set[str] = set()
    for revision in _revisions(root, commit):
        md5 = _locked_md5(root, revision, relative)
        if md5 is not None and md5 not in seen:
            seen.add(md5)
            yield (
                f"{relative} of dvc.lock at commit {revision[:12]}",
                _dvc_reader(root, relative, revision),
            )
    if not seen:
        yield f"{relative} of dvc.lock at commit {str(commit)[:12]} and later", lambda: None
    part = "train" if path == config.paths.train_data else "test"
    yield (
        f"the data source '{config.data.source}', loaded and split again",
        lambda: source.csv_bytes(part),
    )


def _git(root: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def _revisions(root: Path, commit: str | None) -> list[str]:
    """The training commit, then its descendants up to HEAD, oldest first."""
    if commit is None or commit == UNKNOWN_COMMIT:
        return []
    if _git(root, "cat-file", "-e", commit + "^{commit}") is None:  # not in this clone
        return []
    later = _git(root, "rev-list", "--reverse", "--ancestry-path", f"{commit}..HEAD") or ""
    return [commit, *later.split()[:MAX_REVISIONS]]


def _locked_md5(root: Path, revision: str, relative: str) -> str | None:
    text = _git(root, "show", f"{revision}:dvc.lock")
    if text is None:
        return None
    try:
        lock = yaml.safe_load(text) or {}
        for stage in (lock.get("stages") or {}).values():
            for out in stage.get("outs") or []:
                if out.get("path") == relative:
                    md5 = out.get("md5")
                    return md5 if isinstance(md5, str) else None
    # A malformed lock at one commit records nothing usable; the search goes on without it.
    except (yaml.YAMLError, AttributeError, TypeError):
        return None
    return None


def _dvc_reader(root: Path, relative: str, revision: str) -> Callable[[], bytes | None]:
    """A read() of the candidate at `revision`: the file as dvc.lock there names it."""
    return lambda: _dvc_read(root, relative, revision)


def _dvc_read(root: Path, relative: str, revision: str) -> bytes | None:
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        with dvc.api.open(relative, repo=str(root), rev=revision, mode="rb") as handle:
            return handle.read()
    except (DvcException, OSError):
        return None


class _SourceSplit:
    """The bytes the validate stage would write for the source's current data, loaded once."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._parts: dict[str, bytes] | None = None

    def csv_bytes(self, part: str) -> bytes | None:
        if self._parts is None:
            self._parts = self._split()
        return self._parts.get(part)

    def _split(self) -> dict[str, bytes]:
        from ..data.sources import load_data
        from ..data.split import split_train_test

        config = self._config
        with tempfile.TemporaryDirectory() as folder:
            try:
                # As prepare and validate do it: the raw CSV, read back typed, then split.
                raw = read_frame(write_frame(load_data(config), Path(folder) / "raw.csv"))
                train, test = split_train_test(
                    raw,
                    test_size=config.data.test_size,
                    seed=config.data.seed,
                    split=config.data.split,
                )
            except (PipelineError, ValueError, KeyError):
                return {}
            return {
                name: write_frame(frame, Path(folder) / f"{name}.csv").read_bytes()
                for name, frame in (("train", train), ("test", test))
            }
