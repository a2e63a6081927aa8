"""Batch scoring: good rows scored as the server would, bad rows rejected with row and reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mlops_stack_runtime.audit import (
    read_record,
)
from mlops_stack_runtime.cli import (
    ROWS_REJECTED_EXIT_CODE,
    app,
)
from mlops_stack_runtime.config import (
    Config,
)
from mlops_stack_runtime.data.columns import (
    FEATURE_NAMES,
    FEATURES,
    ColumnSpec,
)
from mlops_stack_runtime.data.csv_files import (
    read_frame,
)
from mlops_stack_runtime.errors import (
    ArtifactIntegrityError,
    BatchError,
    PipelineError,
)
from mlops_stack_runtime.exit_codes import (
    FAILED,
)
from mlops_stack_runtime.promotion import (
    promote,
)
from mlops_stack_runtime.scoring import (
    HASH_COLUMN,
    VERSION_COLUMN,
    check_paths,
    file_sha256,
    load_scorer,
    plain_values,
    read_chunks,
    score_file,
)
from mlops_stack_runtime.serving.model import (
    ServedModel,
)
from mlops_stack_runtime.serving.validation import (
    CLASS_OUTPUT,
    PROBABILITY_OUTPUT,
    InputSchema,
)
from mlops_stack_runtime.testing.declared import (
    is_category,
    is_int,
    is_numeric,
    is_required,
    unknown_category,
)
from mlops_stack_runtime.testing.fixtures import write_project
from mlops_stack_runtime.train import (
    train,
)

from tests.serving import task_models
from tests.serving.task_models import TaskData
from tests.tampering import plant_booby_trap

if TYPE_CHECKING:
    from mlops_stack_runtime.testing.fixtures import MakeProject

ROWS = 40
ID = "row_id"  # a column the declaration does not know: carried to the output unchanged


def bad_value(spec: ColumnSpec) -> object | None:
    """A value the column refuses, whatever the declaration: text in a number column, an
    undeclared category, or a missing value where one is required."""
    if is_numeric(spec):
        return "not-a-number"
    if is_category(spec) and spec.categories:
        return unknown_category(spec)
    return None if is_required(spec) else pytest.skip(f"{spec.name} accepts any value")


@pytest.fixture(scope="module")
def batch(trained_project: Config) -> pd.DataFrame:
    """Held-out rows with an ID column of leading zeros, and two broken rows (3 and 7)."""
    frame = read_frame(trained_project.paths.test_data).head(ROWS).reset_index(drop=True)
    frame.insert(0, ID, [f"{i:05d}" for i in range(len(frame))])
    frame = frame.astype({name: object for name in FEATURE_NAMES})
    frame.loc[2, FEATURES[0].name] = bad_value(FEATURES[0])
    frame.loc[6, FEATURES[-1].name] = bad_value(FEATURES[-1])
    return frame


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def expected_probabilities(trained_project: Config, frame: pd.DataFrame) -> np.ndarray:
    model = ServedModel.load(trained_project.paths.models_dir)
    good = read_frame_rows(frame.drop(index=[2, 6]))
    columns = model.schema.parse_v1({"instances": good}).columns
    return model.predict(columns)[0]


def read_frame_rows(frame: pd.DataFrame) -> list[dict[str, object]]:
    """The rows as the server receives them: plain JSON values, missing as null."""
    features = frame[list(FEATURE_NAMES)]
    records = features.astype(object).where(features.notna(), None).to_dict("records")
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in records
    ]


def test_good_rows_are_scored_as_the_server_scores_them_and_bad_rows_rejected(
    trained_project: Config, batch: pd.DataFrame, tmp_path: Path
) -> None:
    source = write_csv(batch, tmp_path / "batch.csv")
    model = ServedModel.load(trained_project.paths.models_dir)

    summary = score_file(model, source, tmp_path / "scored.csv")

    assert (summary.rows, summary.scored, summary.rejected) == (ROWS, ROWS - 2, 2)
    scored = pd.read_csv(summary.output, dtype={ID: str})
    kept = [f"{i:05d}" for i in range(ROWS) if i not in (2, 6)]
    assert scored[ID].tolist() == kept  # carried unchanged, leading zeros and order kept
    assert not set(FEATURE_NAMES) & set(scored.columns)
    np.testing.assert_allclose(
        scored[PROBABILITY_OUTPUT],
        expected_probabilities(trained_project, batch),
        rtol=0,
        atol=1e-12,
    )
    assert set(scored[CLASS_OUTPUT]) <= {0, 1}
    assert set(scored[VERSION_COLUMN].astype(str)) == {model.version}
    assert set(scored[HASH_COLUMN]) == {file_sha256(source)}

    assert summary.rejects == tmp_path / "scored.rejects.csv"
    rejected = pd.read_csv(summary.rejects, dtype={ID: str})
    assert rejected["row"].tolist() == [3, 7]  # data rows counted from 1
    assert rejected[ID].tolist() == ["00002", "00006"]
    assert rejected["reason"][0].startswith(f"{FEATURES[0].name}: ")
    assert rejected["reason"][1].startswith(f"{FEATURES[-1].name}: ")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_integer_coded_categories_written_as_floats_are_read_as_training_reads_them(
    suffix: str, tmp_path: Path
) -> None:
    """pandas writes the integer codes of a column with gaps as 15000.0: the category "15000",
    as data/columns.py `as_category` reads it in training, not a value to reject."""
    income = ColumnSpec("income", "category", "coded", True, categories=("2500", "15000"))
    age = ColumnSpec("age", "float", "years", True)
    frame = pd.DataFrame({"income": [15000.0, None, 2500.0], "age": [30.0, 41.5, None]})
    source = tmp_path / f"coded{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, index=False)
        assert "15000.0" in source.read_text()
    else:
        frame.to_parquet(source, index=False)
    (chunk,) = read_chunks(source, 100, (income, age))
    assert chunk["income"].tolist()[::2] == ["15000", "2500"]
    assert pd.isna(chunk["income"][1])
    assert chunk["age"].tolist()[:2] == [30.0, 41.5]


def test_parquet_in_small_chunks_gives_the_same_rows_as_one_chunk(
    trained_project: Config, batch: pd.DataFrame, tmp_path: Path
) -> None:
    model = ServedModel.load(trained_project.paths.models_dir)
    whole = score_file(model, write_csv(batch, tmp_path / "batch.csv"), tmp_path / "whole.csv")
    # Every column as text in Parquet (numbers too): scoring reads numbers back from text.
    source = tmp_path / "batch.parquet"
    text = pd.read_csv(tmp_path / "batch.csv", dtype=str, keep_default_na=False, na_values=[""])
    text.to_parquet(source, index=False)
    chunked = score_file(model, source, tmp_path / "chunked.parquet", chunk_rows=7)

    assert (chunked.scored, chunked.rejected) == (whole.scored, whole.rejected)
    one = pd.read_csv(whole.output, dtype={ID: str})
    many = pd.read_parquet(chunked.output)
    assert many[ID].tolist() == one[ID].tolist()
    np.testing.assert_allclose(many[PROBABILITY_OUTPUT], one[PROBABILITY_OUTPUT], atol=1e-12)
    assert pd.read_parquet(chunked.rejects)["row"].tolist() == [3, 7]


def test_the_cli_exits_5_on_rejected_rows_unless_allowed(
    trained_project: Config, batch: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(trained_project.root)
    source = write_csv(batch, tmp_path / "batch.csv")
    params = ["--params", str(trained_project.root / "params.yaml")]
    runner = CliRunner()
    refused = runner.invoke(app, [*params, "score", str(source), str(tmp_path / "out.csv")])
    assert refused.exit_code == ROWS_REJECTED_EXIT_CODE, refused.output
    assert "2 row(s) rejected" in refused.output
    allowed = runner.invoke(
        app, [*params, "score", str(source), str(tmp_path / "out.csv"), "--allow-rejects"]
    )
    assert allowed.exit_code == 0, allowed.output
    assert f"scored {ROWS - 2} of {ROWS} rows" in allowed.output

    clean = write_csv(batch.drop(index=[2, 6]), tmp_path / "clean.csv")
    (tmp_path / "clean-out.rejects.csv").write_text("stale\n")
    done = runner.invoke(app, [*params, "score", str(clean), str(tmp_path / "clean-out.csv")])
    assert done.exit_code == 0, done.output
    assert not (tmp_path / "clean-out.rejects.csv").exists(), "an older rejects file is removed"


def test_a_file_that_cannot_be_scored_exits_4_and_writes_nothing(
    trained_project: Config, batch: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(trained_project.root)
    params = ["--params", str(trained_project.root / "params.yaml")]
    lacking = write_csv(batch.drop(columns=[FEATURES[0].name]), tmp_path / "lacking.csv")
    clashing = write_csv(batch.assign(**{PROBABILITY_OUTPUT: 1.0}), tmp_path / "clashing.csv")
    cases = {
        lacking: f"lacks the model input(s) {FEATURES[0].name}",
        clashing: f"already has column(s) {PROBABILITY_OUTPUT}",
        tmp_path / "missing.csv": "no such file",
        write_csv(batch, tmp_path / "batch.txt"): "not '.txt'",
    }
    for source, message in cases.items():
        output = tmp_path / "out.csv"
        result = CliRunner().invoke(app, [*params, "score", str(source), str(output)])
        assert result.exit_code == 4, result.output
        assert message in result.output
        assert not output.exists() and not list(tmp_path.glob(".out.csv*"))


def test_a_registered_version_scores_like_the_model_folder(
    trained_project: Config, batch: pd.DataFrame, tmp_path: Path
) -> None:
    models = trained_project.paths.models_dir
    version = read_record(models).registered_model_version
    assert version is not None, "the trained project registers its model"
    source = write_csv(batch, tmp_path / "batch.csv")
    registered = score_file(
        load_scorer(trained_project, models, str(version)), source, tmp_path / "reg.csv"
    )
    local = score_file(load_scorer(trained_project, models, None), source, tmp_path / "local.csv")
    assert registered.model_version == str(version)
    # The registry holds the scikit-learn pipeline; the folder's model may run as ONNX, which
    # training accepted only within serving.onnx_tolerance of it.
    np.testing.assert_allclose(
        pd.read_csv(registered.output)[PROBABILITY_OUTPUT],
        pd.read_csv(local.output)[PROBABILITY_OUTPUT],
        atol=trained_project.onnx_tolerance,
    )
    with pytest.raises(PipelineError, match="'champion' or a version number"):
        load_scorer(trained_project, models, "latest")
    with pytest.raises(BatchError, match="at least 1 row"):
        score_file(
            load_scorer(trained_project, models, None), source, tmp_path / "x.csv", chunk_rows=0
        )


# --- a registered version is verified before it is loaded (finding 5) ----------------------------
def test_a_registered_version_tampered_with_in_the_store_is_refused_and_never_unpickled(
    copy_trained_project: MakeProject,
    mlflow_client: mlflow.MlflowClient,
    batch: pd.DataFrame,
    tmp_path: Path,
) -> None:
    name = "score-tampered"
    config = copy_trained_project({"mlflow.registered_model": name})
    train(config)
    assert promote(config).outcome == "promoted"
    tagged = mlflow_client.get_model_version(name, "1").tags["model_sha256"]
    marker = tmp_path / "unpickled"
    run_id, planted = plant_booby_trap(mlflow_client, name, 1, marker)
    source = write_csv(batch, tmp_path / "batch.csv")
    output = tmp_path / "scored.csv"

    result = CliRunner().invoke(
        app,
        [
            "--params",
            str(config.root / "params.yaml"),
            "score",
            str(source),
            str(output),
            "--version",
            "champion",
        ],
    )

    assert result.exit_code == FAILED, result.output
    message = result.output
    assert f"version 1 of '{name}'" in message
    assert f"runs:/{run_id}/model.joblib has sha256 {planted}" in message
    assert f"model_sha256 tag records {tagged}" in message
    assert "refusing to load it" in message
    assert "Traceback" not in message
    assert not marker.exists(), "the tampered file was unpickled"
    assert not output.exists() and not list(tmp_path.glob(".scored.csv*"))


def test_a_registered_version_without_a_recorded_sha256_is_refused_saying_how_to_fix_it(
    copy_trained_project: MakeProject, mlflow_client: mlflow.MlflowClient
) -> None:
    name = "score-untagged"
    config = copy_trained_project({"mlflow.registered_model": name})
    train(config)
    mlflow_client.delete_model_version_tag(name, "1", "model_sha256")

    with pytest.raises(ArtifactIntegrityError) as raised:
        load_scorer(config, config.paths.models_dir, "1")

    message = str(raised.value)
    assert f"version 1 of '{name}'" in message
    assert "records no sha256 of its model (no model_sha256 tag)" in message
    assert "retrain and register it the way `train` does" in message


@pytest.mark.parametrize(
    "make_task", [task_models.iris, task_models.diabetes], ids=["iris", "diabetes"]
)
@pytest.mark.parametrize("runtime", ["sklearn", "onnx"])
def test_every_task_writes_its_own_prediction_columns(
    make_task: Callable[[], TaskData], runtime: str, tmp_path: Path
) -> None:
    data = make_task()
    fitted = task_models.fit(data)
    folder = task_models.write_model_dir(
        tmp_path / "model", fitted, data, task_models.to_onnx_bytes(fitted, data)
    )
    model = ServedModel.load(
        folder, InputSchema(data.declaration.features), runtime=runtime, label=data.label
    )
    frame = data.test.head(ROWS).reset_index(drop=True)
    frame.insert(0, ID, [f"{i:05d}" for i in range(len(frame))])
    broken = data.feature_names[1]
    frame = frame.astype({broken: object})
    frame.loc[4, broken] = "not-a-number"
    source = write_csv(frame, tmp_path / "batch.csv")

    summary = score_file(model, source, tmp_path / "scored.parquet", chunk_rows=15)

    assert (summary.rows, summary.scored, summary.rejected) == (ROWS, ROWS - 1, 1)
    scored = pd.read_parquet(summary.output)
    label = data.label
    predicted = f"predicted_{label.name}"
    # The label (a column the model does not take) is carried unchanged beside the prediction.
    carried = [ID, label.name]
    good = frame.drop(index=[4]).reset_index(drop=True)
    wanted = task_models.expected(fitted, data, good.astype({broken: float}))
    atol = 1e-4 if runtime == "onnx" else 1e-9
    if label.task == "regression":
        assert scored.columns.tolist() == [*carried, predicted, VERSION_COLUMN, HASH_COLUMN]
        assert scored[predicted].dtype == np.float64
        np.testing.assert_allclose(scored[predicted], wanted, rtol=1e-5, atol=atol)
    else:
        per_class = [f"{label.name}_probability_{value}" for value in label.classes]
        assert scored.columns.tolist() == [
            *carried,
            predicted,
            *per_class,
            VERSION_COLUMN,
            HASH_COLUMN,
        ]
        np.testing.assert_allclose(scored[per_class].to_numpy(), wanted, atol=atol)
        assert scored[predicted].tolist() == [label.classes[i] for i in wanted.argmax(axis=1)]
        assert set(scored[predicted]) <= set(label.classes)
    # As text: a CSV's columns other than the numeric model inputs are read as written.
    assert scored[label.name].tolist() == good[label.name].astype(str).tolist()
    rejected = pd.read_parquet(summary.rejects)
    assert rejected["row"].tolist() == [5]  # data rows counted from 1
    assert rejected["reason"][0].startswith(f"{broken}: ")


def test_rejected_rows_are_numbered_as_in_the_file_whatever_the_chunk(tmp_path: Path) -> None:
    data = task_models.diabetes()
    folder = task_models.write_model_dir(tmp_path / "model", task_models.fit(data), data)
    model = ServedModel.load(
        folder, InputSchema(data.declaration.features), runtime="sklearn", label=data.label
    )
    frame = data.test.head(ROWS).reset_index(drop=True)
    frame.insert(0, ID, [f"{i:05d}" for i in range(len(frame))])
    broken = data.feature_names[0]
    frame = frame.astype({broken: object})
    bad = [1, 9, 10, 22, 39]  # in chunks 1, 3, 3, 6 and 10 of 4 rows; 10 starts its chunk
    frame.loc[bad, broken] = "not-a-number"
    source = write_csv(frame, tmp_path / "batch.csv")

    summary = score_file(model, source, tmp_path / "scored.csv", chunk_rows=4)

    assert (summary.rows, summary.scored, summary.rejected) == (ROWS, ROWS - len(bad), len(bad))
    rejected = pd.read_csv(summary.rejects, dtype={ID: str})
    assert rejected["row"].tolist() == [i + 1 for i in bad]  # the file's data rows, from 1
    assert rejected[ID].tolist() == [f"{i:05d}" for i in bad]
    scored = pd.read_csv(summary.output, dtype={ID: str})
    assert scored[ID].tolist() == [f"{i:05d}" for i in range(ROWS) if i not in bad]


def test_an_input_holding_a_column_scoring_writes_is_refused_for_every_task(
    tmp_path: Path,
) -> None:
    data = task_models.iris()
    folder = task_models.write_model_dir(tmp_path / "model", task_models.fit(data), data)
    model = ServedModel.load(folder, InputSchema(data.declaration.features), label=data.label)
    frame = data.test.head(5).assign(**{f"{data.label.name}_probability_setosa": 0.5})
    source = write_csv(frame, tmp_path / "batch.csv")
    with pytest.raises(BatchError, match="species_probability_setosa"):
        score_file(model, source, tmp_path / "scored.csv")


def test_a_registry_model_predicts_for_its_own_label() -> None:
    """RegistryModel's label and features decide what predict returns (here iris' three
    classes, not the example's binary label): each row's class probabilities and class."""
    from sklearn.linear_model import LogisticRegression

    from mlops_stack_runtime.scoring import RegistryModel

    from .data import task_declarations

    declaration = task_declarations.text_classes()
    frame = task_declarations.iris_frame()
    names = list(declaration.feature_names)
    classes = frame["target"].map({name: i for i, name in enumerate(declaration.label.classes)})
    pipeline = LogisticRegression(max_iter=500).fit(frame[names], classes)
    model = RegistryModel("1", pipeline, 0.5, declaration.label, declaration.features)
    columns = {name: frame[name].to_numpy()[[0, 60, 120]] for name in names}
    scores, decisions = model.predict(columns)
    assert np.asarray(scores).shape == (3, 3)
    assert list(decisions) == [0, 1, 2]


def test_parquet_rejects_hold_the_features_as_text(trained_project: Config, tmp_path: Path) -> None:
    """Chunks of 5 rows: a number feature holds text in a rejected row of the first chunk, and
    is a number in a row of the second rejected for its category. As text and numbers the two
    chunks' rejects fit no one Parquet schema; the rejects hold the features as text."""
    import pyarrow.parquet as pq

    whole = next(spec for spec in FEATURES if is_int(spec) and is_required(spec))
    category = next(spec for spec in FEATURES if is_category(spec) and spec.categories)
    frame = read_frame(trained_project.paths.test_data).head(ROWS).reset_index(drop=True)
    frame.insert(0, ID, [f"{i:05d}" for i in range(len(frame))])
    frame = frame.astype({whole.name: object, category.name: object})
    frame.loc[1, whole.name] = "unknown"  # chunk 1 (rows 0-4): the column reads as text
    frame.loc[6, category.name] = unknown_category(category)  # chunk 2: it reads as numbers
    source = write_csv(frame, tmp_path / "batch.csv")
    model = ServedModel.load(trained_project.paths.models_dir)

    summary = score_file(model, source, tmp_path / "scored.parquet", chunk_rows=5)

    assert (summary.scored, summary.rejected) == (ROWS - 2, 2)
    assert summary.rejects is not None
    rejected = pd.read_parquet(summary.rejects)
    assert rejected["row"].tolist() == [2, 7]
    assert rejected[ID].tolist() == ["00001", "00006"]
    assert "string" in str(pq.read_schema(summary.rejects).field(whole.name).type)
    assert rejected[whole.name].tolist() == ["unknown", str(frame[whole.name][6])]
    assert len(pd.read_parquet(summary.output)) == ROWS - 2


# --- the exact refusals and outputs (each pinned whole) -----------------------------------------


def test_refused_paths_are_named_whole(tmp_path: Path) -> None:
    source = write_csv(pd.DataFrame({"x": [1]}), tmp_path / "batch.csv")
    no_suffix = tmp_path / "scored"
    with pytest.raises(BatchError) as refused:
        check_paths(source, no_suffix, tmp_path / "r.csv")
    assert str(refused.value) == (
        f"{no_suffix}: scoring reads and writes .csv or .parquet, not a name without one"
    )
    with pytest.raises(BatchError) as refused:
        check_paths(source, tmp_path / "scored.csv", source)
    assert str(refused.value) == (
        "the input, the output and the rejects file must be three different files"
    )


def test_missing_and_clashing_columns_are_listed_whole(
    trained_project: Config, batch: pd.DataFrame, tmp_path: Path
) -> None:
    model = ServedModel.load(trained_project.paths.models_dir)
    first, second = FEATURES[0].name, FEATURES[1].name
    lacking = write_csv(batch.drop(columns=[first, second]), tmp_path / "lacking.csv")
    with pytest.raises(BatchError) as refused:
        score_file(model, lacking, tmp_path / "scored.csv")
    assert str(refused.value) == f"{lacking} lacks the model input(s) {first}, {second}"
    clashing = write_csv(
        batch.assign(**{PROBABILITY_OUTPUT: 1.0, VERSION_COLUMN: "x"}), tmp_path / "clashing.csv"
    )
    with pytest.raises(BatchError) as refused:
        score_file(model, clashing, tmp_path / "scored.csv")
    assert str(refused.value) == (
        f"{clashing} already has column(s) {PROBABILITY_OUTPUT}, {VERSION_COLUMN}, which scoring "
        "writes: rename them (or score the original input)"
    )


def test_an_unreadable_csv_is_named(tmp_path: Path) -> None:
    source = tmp_path / "batch.csv"
    source.write_bytes(b'a,b\n"1,2\n')
    with pytest.raises(BatchError) as refused:
        list(read_chunks(source, 10))
    assert str(refused.value).startswith(f"{source} cannot be read: ")


def test_text_that_pandas_would_call_missing_is_kept_as_text(
    trained_project: Config, batch: pd.DataFrame, tmp_path: Path
) -> None:
    """Only an empty field is missing: "NA", "N/A" and "null" in a column of the team's reach
    the output as they were (pandas' defaults would turn them into missing values)."""
    words = ["NA", "N/A", "null", "NaN"] * (ROWS // 4)
    source = write_csv(batch.assign(note=words), tmp_path / "batch.csv")
    model = ServedModel.load(trained_project.paths.models_dir)
    summary = score_file(model, source, tmp_path / "scored.csv")
    scored = pd.read_csv(summary.output, dtype=str, keep_default_na=False)
    kept = [i for i in range(ROWS) if i not in (2, 6)]
    assert scored["note"].tolist() == [words[i] for i in kept]


def test_a_csv_written_in_chunks_has_one_header_no_index_and_no_stale_rows(
    trained_project: Config, batch: pd.DataFrame, tmp_path: Path
) -> None:
    """Chunks of 7 rows into a CSV: the header once, the input's columns then scoring's, and no
    line left from an earlier run that stopped half way (its partial file is replaced)."""
    source = write_csv(batch, tmp_path / "batch.csv")
    output = tmp_path / "scored.csv"
    (tmp_path / ".scored.csv.partial").write_text("stale,line\n1,2\n")
    model = ServedModel.load(trained_project.paths.models_dir)
    summary = score_file(model, source, output, chunk_rows=7)
    lines = output.read_text().splitlines()
    assert len(lines) == 1 + summary.scored
    assert "stale" not in output.read_text()
    header = lines[0].split(",")
    assert header[: len(batch.columns) - len(FEATURE_NAMES)] == [
        column for column in batch.columns if column not in FEATURE_NAMES
    ]
    assert header[-2:] == [VERSION_COLUMN, HASH_COLUMN]


def test_a_parquet_output_carries_no_index_column(
    trained_project: Config, batch: pd.DataFrame, tmp_path: Path
) -> None:
    source = write_csv(batch, tmp_path / "batch.csv")
    model = ServedModel.load(trained_project.paths.models_dir)
    summary = score_file(model, source, tmp_path / "scored.parquet", chunk_rows=7)
    names = pq_names(summary.output)
    assert not [name for name in names if name.startswith("__index")]
    assert names[0] == ID and names[-1] == HASH_COLUMN
    assert summary.rejects is not None
    assert pq_names(summary.rejects)[:2] == ["row", "reason"]


def pq_names(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def test_the_input_hash_is_the_file_s_sha256(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "batch.csv"
    path.write_bytes(b"x\n" + b"1\n" * 700_000)  # over one block of 1 MiB
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_values_reach_the_checks_as_the_server_sees_them() -> None:
    """Numbers read as text become int or float (Python's, not numpy's), missing becomes None,
    and a category keeps its text, zero-padded codes included."""
    number = ColumnSpec("age", "int", "years")
    assert plain_values(number, pd.Series(["7", "2.5", None, "x"], dtype=object)) == [
        7,
        2.5,
        None,
        "x",
    ]
    values = plain_values(number, pd.Series([3, 4], dtype="int64"))
    assert values == [3, 4] and [type(v) for v in values] == [int, int]
    code = ColumnSpec("branch", "category", "a code", categories=("01", "2"))
    assert plain_values(code, pd.Series(["01", "2", None], dtype=object)) == ["01", "2", None]


def test_version_zero_and_a_missing_champion_are_refused_whole(
    trained_project: Config, tmp_path: Path
) -> None:
    with pytest.raises(PipelineError) as refused:
        load_scorer(trained_project, trained_project.paths.models_dir, "0")
    assert str(refused.value) == "the model version is 'champion' or a version number, not '0'"
    mlflow.MlflowClient().create_registered_model("never-promoted")
    config = write_project(tmp_path / "empty", {"mlflow.registered_model": "never-promoted"})
    with pytest.raises(PipelineError) as refused:
        load_scorer(config, config.paths.models_dir, "champion")
    message = str(refused.value)
    assert message.startswith("'never-promoted' has no champion in ")
    assert message.endswith(" yet: `make promote`")


def test_a_parquet_input_s_whole_numbers_keep_their_type_across_chunks(
    trained_project: Config, batch: pd.DataFrame, tmp_path: Path
) -> None:
    """A column of the team's holding whole numbers, with a gap only in a later chunk: pandas
    reads that chunk as floats, and the output still takes it as the first chunk's int64."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = batch.drop(index=[2, 6]).reset_index(drop=True)
    frame = read_frame(trained_project.paths.test_data).head(len(good)).reset_index(drop=True)
    frame.insert(0, "visits", pd.array(list(range(len(frame))), dtype="Int64"))
    frame.loc[9, "visits"] = None  # chunk 2 of rows 7-13
    source = tmp_path / "batch.parquet"
    # As a tool other than pandas writes it: no pandas metadata to restore Int64 from.
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, source)
    model = ServedModel.load(trained_project.paths.models_dir)
    summary = score_file(model, source, tmp_path / "scored.parquet", chunk_rows=7)
    assert str(pq.read_schema(summary.output).field("visits").type) == "int64"
    visits = pd.read_parquet(summary.output)["visits"]
    assert pd.isna(visits[9]) and visits[10] == 10 and visits[3] == 3
