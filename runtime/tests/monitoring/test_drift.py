"""The drift check on seeded data: the statistics, the decision, the reports and the CLI's exit
codes, with the reference found through a real MLflow registry (the session's sqlite store)."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from mlops_stack_runtime import (
    cli,
)
from mlops_stack_runtime.audit import (
    load_verified_model,
)
from mlops_stack_runtime.config import (
    Config,
    load_config,
)
from mlops_stack_runtime.data.columns import (
    FEATURE_NAMES,
    FEATURES,
    LABEL,
    ColumnSpec,
)
from mlops_stack_runtime.data.csv_files import (
    read_frame,
)
from mlops_stack_runtime.data.sample import (
    generate_sample,
)
from mlops_stack_runtime.monitoring.batch import (
    quality_problems,
    usable_features,
)
from mlops_stack_runtime.monitoring.drift import (
    compare,
    drift_settings,
)
from mlops_stack_runtime.monitoring.reference import (
    Reference,
)
from mlops_stack_runtime.monitoring.report import (
    DriftReport,
)
from mlops_stack_runtime.promotion import (
    promote,
)
from mlops_stack_runtime.testing.declared import (
    case,
    first_feature,
    is_bounded,
    is_category,
    is_numeric,
    out_of_range,
    unknown_category,
)
from mlops_stack_runtime.testing.fixtures import copies_of, train_project, write_project
from mlops_stack_runtime.train import (
    train,
)

if TYPE_CHECKING:
    from mlops_stack_runtime.testing.fixtures import MakeProject

# Prediction drift compares the batch's scores with the held-out set's. The suite's 600-row
# sample holds out 120 rows, too few for PSI alone to tell noise from drift: a batch of the same
# population then drifts whenever the chi-square test errs (1 dataset in 100 at p 0.01). With 600
# rows held out, a PSI above the threshold by chance is about 2e-5 likely.
DRIFT_N_ROWS = 3000


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory: pytest.TempPathFactory, mlflow_tracking_uri: str) -> Config:
    """This module's trained project: the suite's, on DRIFT_N_ROWS rows (shared: read-only)."""
    root = tmp_path_factory.mktemp("drift-trained") / "project"
    # Its own registered model: the suite's shared project keeps version 1 of the default name.
    overrides = {"data.n_rows": DRIFT_N_ROWS, "mlflow.registered_model": "drift-reference"}
    return train_project(root, overrides)


@pytest.fixture
def copy_trained_project(trained_project: Config, make_project: MakeProject) -> MakeProject:
    return copies_of(trained_project, make_project, {"data.n_rows": DRIFT_N_ROWS})


# The sample population moved strongly: every number up, the first category of each common.
SHIFT = 1.0
SHIFTED = set(FEATURE_NAMES)
N_FEATURES = len(FEATURE_NAMES)


def batch(shift: float, n_rows: int = 1000, seed: int = 11) -> pd.DataFrame:
    return generate_sample(n_rows=n_rows, seed=seed, shift=shift)


def local_reference(config: Config) -> Reference:
    model, record = load_verified_model(config.paths.models_dir)
    return Reference(
        model=model,
        model_description="models/model.json",
        model_version=record.registered_model_version,
        training_data=read_frame(config.paths.train_data),
        training_data_sha256=record.training_data_sha256,
        data_location="data/validated/train.csv",
        test_data=read_frame(config.paths.test_data),
    )


def check(config: Config, frame: pd.DataFrame) -> DriftReport:
    settings = drift_settings(config)
    features = usable_features(frame, settings.min_rows, "batch")
    return compare(local_reference(config), features, quality_problems(features), settings, "batch")


def test_a_batch_of_the_same_population_does_not_drift(trained_project: Config) -> None:
    report = check(trained_project, batch(shift=0.0))
    assert not report.drifted
    assert report.drifted_features == []
    assert not report.prediction.drifted
    assert report.reasons == []
    assert "no drift beyond the thresholds" in report.to_text()


def test_a_shifted_batch_drifts_and_names_the_features_and_how_much(
    trained_project: Config,
) -> None:
    report = check(trained_project, batch(shift=SHIFT))
    assert report.drifted
    assert {column.name for column in report.drifted_features} == SHIFTED
    spec = first_feature(is_numeric) or FEATURES[0]
    moved = next(c for c in report.features if c.name == spec.name)
    assert moved.psi > drift_settings(trained_project).psi_threshold
    assert moved.p_value < 0.01
    if spec.kind == "category":
        assert moved.change.split(" ")[0] in spec.categories
    else:
        assert moved.change.startswith("median ")
    # Every input moved: the model scores the batch differently.
    assert report.prediction.drifted
    text = report.to_text()
    assert f"{spec.name}: PSI {moved.psi:.3f}" in text
    drifted = f"DRIFT: {N_FEATURES} of {N_FEATURES} features drifted"
    assert text.splitlines()[-1].startswith(drifted)


def test_the_share_of_drifted_features_is_a_threshold(trained_project: Config) -> None:
    # Only the first feature moved: 1 of the features drifted.
    frame = batch(shift=0.0)
    first = FEATURE_NAMES[0]
    frame[first] = batch(shift=SHIFT)[first]
    report = check(trained_project, frame)
    assert [column.name for column in report.drifted_features] == [first]
    share = 1 / N_FEATURES
    assert report.drifted_share == pytest.approx(share)

    def share_reasons(limit: float) -> list[str]:
        settings = {**report.settings, "max_drifted_share": limit}
        reasons = DriftReport(**{**report.__dict__, "settings": settings}).reasons
        return [reason for reason in reasons if "features drifted" in reason]

    assert share_reasons(share / 2) == [
        f"1 of {N_FEATURES} features drifted ({share:.0%} > drift.max_drifted_share "
        f"{share / 2:.0%}): {first}"
    ]
    assert share_reasons(share) == []  # drifted only when the share is above the limit


@pytest.mark.parametrize(
    ("spec", "check_name"),
    [
        case(is_category, "category feature", "isin", id="new-category"),
        case(is_bounded, "numeric feature with a min or a max", "", id="out-of-range"),
    ],
)
def test_data_quality_problems_count_as_drift(
    trained_project: Config, spec: ColumnSpec, check_name: str
) -> None:
    frame = batch(shift=0.0)
    bad = unknown_category(spec) if spec.kind == "category" else out_of_range(spec)
    frame.loc[:4, spec.name] = bad
    report = check(trained_project, frame)
    assert report.drifted
    assert report.reasons == [f"data-quality problems in {spec.name}"]
    (problem,) = report.quality_problems
    assert (problem.column, problem.count) == (spec.name, 5)
    assert problem.check.startswith(check_name)
    assert f"{spec.name}: {problem.check} failed for 5 value(s)" in report.to_text()


# --- the CLI: reference lookup, reports, exit codes ---------------------------------------------


def invoke(config: Config, *args: str) -> Result:
    return CliRunner().invoke(cli.app, ["--params", str(config.params_file), *args])


def write_batch(config: Config, frame: pd.DataFrame, name: str = "batch.csv") -> Path:
    path = config.root / "data" / "current" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def test_without_a_champion_the_local_model_is_the_reference_and_drift_exits_3(
    copy_trained_project: MakeProject,
) -> None:
    config = copy_trained_project({"mlflow.registered_model": "drift-no-champion"})
    stable = invoke(config, "drift", str(write_batch(config, batch(shift=0.0))))
    assert stable.exit_code == 0, stable.output
    assert "no champion of 'drift-no-champion'" in stable.output
    assert "data/validated/train.csv of this checkout" in stable.output

    shifted = invoke(config, "drift", str(write_batch(config, batch(shift=SHIFT))))
    assert shifted.exit_code == cli.DRIFT_EXIT_CODE == 3
    assert f"DRIFT: {N_FEATURES} of {N_FEATURES} features drifted" in shifted.output
    report = json.loads(config.paths.drift_report.read_text())
    assert report["drifted"] is True
    assert set(report["drifted_features"]) == SHIFTED
    page = config.paths.drift_html.read_text()
    assert page.count("data:image/png;base64,") == N_FEATURES + 1  # the features and the scores
    assert all(name in page for name in FEATURE_NAMES)


def test_the_champion_and_its_training_data_are_the_reference(
    copy_trained_project: MakeProject, mlflow_client: mlflow.MlflowClient
) -> None:
    config = copy_trained_project({"mlflow.registered_model": "drift-champion"})
    train(config)
    promote(config)
    result = invoke(config, "drift", str(write_batch(config, batch(shift=SHIFT))))
    assert result.exit_code == 3, result.output
    assert "reference: champion version 1 of 'drift-champion'" in result.output
    assert "sha256 verified" in result.output

    # Without the file in the checkout, the seeded source reproduces the same bytes.
    config.paths.train_data.unlink()
    again = invoke(config, "drift", str(write_batch(config, batch(shift=0.0))))
    assert again.exit_code == 0, again.output
    assert "the data source 'sample', loaded and split again" in again.output


def test_training_data_that_cannot_be_found_is_an_error_naming_where_it_looked(
    copy_trained_project: MakeProject,
) -> None:
    config = copy_trained_project({"mlflow.registered_model": "drift-lost-data", "data.seed": 99})
    config.paths.train_data.write_text(f"{FEATURE_NAMES[0]}\n1\n")
    result = invoke(config, "drift", str(write_batch(config, batch(shift=0.0))))
    assert result.exit_code == 1
    assert "was not found; looked in: data/validated/train.csv of this checkout" in result.output
    assert "(another sha256)" in result.output


@pytest.fixture(scope="module")
def bad_batch_project(trained_project: Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose model is champion of 'drift-bad-batch': trained and promoted once."""
    config = write_project(
        tmp_path_factory.mktemp("bad-batch") / "project",
        {"mlflow.registered_model": "drift-bad-batch"},
    )
    for folder in ("data", "models"):
        shutil.copytree(trained_project.root / folder, config.root / folder)
    train(config)
    promote(config)
    return config.root


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "cannot be read"),
        # Every column but the last feature.
        (",".join([*FEATURE_NAMES[:-1], LABEL.name]) + "\n", "model input column(s) missing"),
        (None, "the batch is empty"),
    ],
)
def test_a_malformed_or_empty_batch_exits_4_before_the_registry_is_contacted(
    bad_batch_project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str | None,
    message: str,
) -> None:
    # A fresh copy of the promoted project per case: nothing one case writes meets another.
    root = shutil.copytree(bad_batch_project, tmp_path / "project")
    config = load_config(root / "params.yaml")
    path = write_batch(config, batch(shift=0.0).head(0))
    if content is not None:
        path.write_text(content)
    # A tracking server that cannot answer: reaching for the registry before checking the
    # batch would end in MLflow's error (exit 1), not in the batch's (exit 4).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    result = invoke(config, "drift", str(path))
    assert result.exit_code == cli.BATCH_ERROR_EXIT_CODE == 4, result.output
    assert result.output.startswith("error: ")
    assert message in result.output
    assert "MLflow" not in result.output
    assert not config.paths.drift_report.exists()


def test_drift_needs_its_params_section(copy_trained_project: MakeProject) -> None:
    config = copy_trained_project()
    params = config.params_file.read_text()
    config.params_file.write_text(params.replace("\ndrift:", "\nnot_drift:"))
    result = invoke(config, "drift", str(write_batch(config, batch(shift=0.0))))
    assert result.exit_code == 1
    assert "no 'drift' section" in result.output
