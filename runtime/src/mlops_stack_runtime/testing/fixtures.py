"""Shared fixtures: small generated data, throwaway project folders, an isolated MLflow store.

A pytest plugin of the runtime: the runtime's own suite and every generated repository's tests
load it (`pytest_plugins = ["mlops_stack_runtime.testing.fixtures"]` in tests/conftest.py).

The data come from the column declaration (data/columns.yaml, the `sample` source), not from the
example's generator, so the suite follows whatever data the project adopted (`make use-data`).
Projects are copies of the repository's params.yaml in tmp folders (the repository is the folder
pytest runs in, or the one MLOPS_STACK_REPOSITORY names), and MLflow points to a temporary sqlite
store for the whole session, whatever MLFLOW_TRACKING_URI says outside: no test writes into the
repository.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
import yaml

from mlops_stack_runtime.config import (
    PARAMS_ENV_VAR,
    Config,
    load_config,
)
from mlops_stack_runtime.data.prepare import (
    prepare,
)
from mlops_stack_runtime.data.sample import (
    generate_sample,
)
from mlops_stack_runtime.data.split import (
    split_train_test,
)
from mlops_stack_runtime.data.validate import (
    validate,
)
from mlops_stack_runtime.tracking import (
    TRACKING_URI_ENV_VAR,
)
from mlops_stack_runtime.train import (
    train,
)

# The repository whose params.yaml the projects copy: this variable, else pytest's rootdir.
REPOSITORY_ENV_VAR = "MLOPS_STACK_REPOSITORY"
_rootdir: list[Path] = []
# Small enough for a fast suite, large enough for a stratified split and a meaningful metric.
SMALL_N_ROWS = 600
SEED = 7
SMALL_DATA_FAIRNESS_LIMIT = 1.0

MakeProject = Callable[..., Config]


def pytest_configure(config: pytest.Config) -> None:
    _rootdir[:] = [config.rootpath]
    # MLflow's own use of SQLAlchemy, not this project's code: keep the summary for our warnings.
    config.addinivalue_line(
        "filterwarnings", "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
    )


def repository_root() -> Path:
    """The repository under test (see the module's docstring)."""
    named = os.environ.get(REPOSITORY_ENV_VAR)
    return Path(named) if named else (_rootdir[0] if _rootdir else Path.cwd())


def repository_params() -> Path:
    """The repository's params.yaml."""
    return repository_root() / "params.yaml"


@pytest.fixture(scope="session", autouse=True)
def mlflow_tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Every test logs to a throwaway store; nothing reaches the repo's mlruns/ or a server."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TRACKING_URI_ENV_VAR, uri)
        patch.delenv(PARAMS_ENV_VAR, raising=False)
        yield uri


@pytest.fixture(scope="session", autouse=True)
def shared_bytecode_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The Python processes the tests start share one bytecode cache in a tmp folder.

    Where PYTHONDONTWRITEBYTECODE is set (CI runners often set it), every server or CLI process
    the suite starts would compile uvicorn, scikit-learn and pandas from source again, seconds
    each. Bytecode is only a cache of the same source, so the processes behave the same; nothing
    is written beside the sources (PYTHONPYCACHEPREFIX), and without the variable nothing changes.
    """
    if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTHONDONTWRITEBYTECODE")
        patch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path_factory.mktemp("pycache")))
        yield


@pytest.fixture
def mlflow_client(mlflow_tracking_uri: str) -> mlflow.MlflowClient:
    """A client of the test store; also points `models:/` URIs (a global of MLflow) at it."""
    mlflow.set_tracking_uri(mlflow_tracking_uri)
    return mlflow.MlflowClient(mlflow_tracking_uri)


@pytest.fixture(scope="session")
def raw_frame() -> pd.DataFrame:
    return generate_sample(n_rows=SMALL_N_ROWS, seed=SEED)


@pytest.fixture(scope="session")
def train_test_frames(raw_frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return split_train_test(raw_frame, test_size=0.2, seed=SEED)


def write_project(root: Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """A project folder holding the repo's params.yaml, small data and `overrides` (dotted keys).

    An override may add a section this tier's params.yaml lacks (e.g. `promotion.min_improvement`).
    """
    params = yaml.safe_load(repository_params().read_text(encoding="utf-8"))
    fairness = params["gates"].get("fairness")
    if fairness:
        # A small test set leaves ~15 defaults per group: rates that noisy fail a 0.1 fairness
        # gate by chance. test_fairness.py checks the gate on samples large enough to judge.
        params["gates"]["fairness"] = {
            key: SMALL_DATA_FAIRNESS_LIMIT if key.startswith("max_") else value
            for key, value in fairness.items()
        }
    settings = {
        "data.source": "sample",
        "data.n_rows": SMALL_N_ROWS,
        "data.seed": SEED,
        **(overrides or {}),
    }
    for dotted, value in settings.items():
        *parents, leaf = dotted.split(".")
        node = params
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    root.mkdir(parents=True, exist_ok=True)
    params_file = root / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return load_config(params_file)


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """Factory: `make_project({"gates.min_roc_auc": 0.9})` -> Config of a fresh tmp project."""

    def make(overrides: Mapping[str, Any] | None = None) -> Config:
        return write_project(tmp_path / "project", overrides)

    return make


def train_project(root: Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """A project at `root` taken through prepare, validate and train."""
    config = write_project(root, overrides)
    prepare(config)
    validate(config)
    train(config)
    return config


def copies_of(
    trained: Config, make_project: MakeProject, base: Mapping[str, Any] | None = None
) -> MakeProject:
    """Factory: a fresh project holding a copy of `trained`'s data and model, with `base` and
    then the call's overrides."""

    def make(overrides: Mapping[str, Any] | None = None) -> Config:
        config = make_project({**(base or {}), **(overrides or {})})
        for folder in ("data", "models"):
            shutil.copytree(trained.root / folder, config.root / folder)
        return config

    return make


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory: pytest.TempPathFactory, mlflow_tracking_uri: str) -> Config:
    """A project that went through prepare, validate and train once (shared: treat read-only)."""
    return train_project(tmp_path_factory.mktemp("trained") / "project")


@pytest.fixture
def copy_trained_project(trained_project: Config, make_project: MakeProject) -> MakeProject:
    """Factory: a fresh project holding a copy of the trained data and model, with overrides."""
    return copies_of(trained_project, make_project)
