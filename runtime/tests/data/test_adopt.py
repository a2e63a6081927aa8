"""`use-data` (adopt.py) for every task: what it writes, and a refusal that writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sklearn.datasets import load_diabetes, load_wine

from mlops_stack_runtime.config import Config, load_config
from mlops_stack_runtime.data import adopt
from mlops_stack_runtime.data.adopt import use_data
from mlops_stack_runtime.data.columns import load_declaration
from mlops_stack_runtime.data.report import format_adoption
from mlops_stack_runtime.data.sources import read_data_file
from mlops_stack_runtime.errors import DataSourceError

from . import task_declarations
from .adoptable import adoptable_project, snapshot


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    return adoptable_project(tmp_path / "repo", monkeypatch)


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, Path]]:
    """One repository for the refusals (each checks that it was left as it was) and the file."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        config = adoptable_project(tmp_path_factory.mktemp("refusing") / "repo", monkeypatch)
        path = config.root.parent / "wine.csv"
        frame = load_wine(as_frame=True).frame
        frame["grade"] = frame["target"].map({0: "first", 1: "second", 2: "third"})
        frame.loc[0, "grade"] = "reserve"
        frame.to_csv(path, index=False)
        yield config, path


def declaration_file(config: Config) -> Path:
    return adopt.current_project().declaration_file


def test_a_regression_file_is_adopted_with_its_task_and_range(
    project: Config, tmp_path: Path
) -> None:
    path = tmp_path / "diabetes.parquet"
    load_diabetes(as_frame=True).frame.to_parquet(path, index=False)
    adoption = use_data(project, path, label="target")
    declared = yaml.safe_load(declaration_file(project).read_text())
    assert declared["label"] == {
        "name": "target",
        "task": "regression",
        "description": "a number (25 to 346 in the adopted data)",
        "min": 25,
        "max": 346,
    }
    label = load_declaration(declaration_file(project)).label
    assert (label.task, label.min_value, label.max_value) == ("regression", 25, 346)
    params = yaml.safe_load((project.root / "params.yaml").read_text())
    assert (params["data"]["source"], params["data"]["path"]) == ("file", "data/diabetes.parquet")
    text = format_adoption(adoption)
    assert "adopted data/diabetes.parquet (442 labelled rows): 10 features, label 'target' " in text
    assert "(regression, 25 .. 346)" in text
    assert "task regression: label 'target' holds whole numbers with 214 distinct values" in text
    label_row = next(line for line in text.splitlines() if line.strip().startswith("target"))
    assert label_row.split()[:3] == ["target", "label", "regression"]


def test_integer_classes_are_adopted_as_classes_given_the_task(
    project: Config, tmp_path: Path
) -> None:
    path = tmp_path / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(path, index=False)
    adoption = use_data(project, path, label="target", task="multiclass")
    declared = yaml.safe_load(declaration_file(project).read_text())
    assert declared["label"]["task"] == "multiclass"
    assert declared["label"]["values"] == ["0", "1", "2"]
    assert "positive" not in declared["label"]
    text = format_adoption(adoption)
    assert "label 'target' (multi-class, 3 classes; balance 0 33.1%, 1 39.9%, 2 27.0%)" in text
    assert "task multiclass: given by TASK=multiclass (3 classes)" in text


def test_a_text_multiclass_file_reads_back_as_the_file_source_reads_it(
    project: Config, tmp_path: Path
) -> None:
    path = tmp_path / "iris.csv"
    task_declarations.iris_frame().to_csv(path, index=False)
    use_data(project, path, label="target")
    label = load_declaration(declaration_file(project)).label
    assert (label.task, label.classes) == ("multiclass", ("setosa", "versicolor", "virginica"))


def test_zero_padded_class_codes_keep_their_text(project: Config, tmp_path: Path) -> None:
    """The file source reads a class column as text: "01" stays "01", and so is declared."""
    path = tmp_path / "wine.csv"
    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "01", 1: "02", 2: "03"})
    frame.to_csv(path, index=False)
    use_data(project, path, label="target", task="multiclass")
    label = load_declaration(declaration_file(project)).label
    assert label.classes == ("01", "02", "03")
    rows = read_data_file(path, load_declaration(declaration_file(project)))
    assert set(rows["target"]) == set(label.classes)


REFUSALS = {
    "ambiguous": ({}, "label 'target' holds whole numbers with 3 distinct values"),
    # Given a positive class, three values would otherwise be read as two.
    "three-values-for-binary": (
        {"task": "binary", "positive": "1"},
        "TASK=binary needs a label with exactly two distinct values; label 'target' has 3",
    ),
    "positive-with-classes": (
        {"task": "multiclass", "positive": "1"},
        "POSITIVE=1 names the positive class of a binary label, but label 'target' is multiclass",
    ),
    "too-many-classes": (
        {"label": "magnesium", "task": "multiclass"},
        "label 'magnesium' has 53 distinct values: too many classes",
    ),
    "class-with-one-row": (
        {"label": "grade"},
        "label 'grade' has too few rows of reserve (1 rows)",
    ),
    "text-for-regression": (
        {"label": "grade", "task": "regression"},
        "TASK=regression needs a numeric label; label 'grade' holds text",
    ),
    "missing-column": ({"label": "quality"}, "label (LABEL) 'quality' is not a column"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_label_leaves_the_repository_as_it_was(
    refusing: tuple[Config, Path], case: str
) -> None:
    project, path = refusing
    options, expected = REFUSALS[case]
    before = snapshot(project.root)
    with pytest.raises(DataSourceError) as refused:
        use_data(project, path, **{"label": "target", **options})  # type: ignore[arg-type]
    assert expected in str(refused.value)
    assert snapshot(project.root) == before


def test_a_failure_while_writing_puts_every_file_back(
    project: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(path, index=False)
    before = snapshot(project.root)

    def broken(*args: object) -> None:
        raise DataSourceError("dvc.yaml could not be written")

    # The last step: the data file, its DVC pointer, columns.yaml and params.yaml are written.
    monkeypatch.setattr(adopt, "_set_prepare_deps", broken)
    with pytest.raises(DataSourceError, match=r"dvc\.yaml could not be written"):
        use_data(project, path, label="target", task="multiclass")
    assert snapshot(project.root) == before


def test_a_second_file_replaces_the_first_and_a_failed_replacement_keeps_the_first(
    project: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tmp_path / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(first, index=False)
    assert use_data(project, first, label="target", task="multiclass").replaced is None
    adopted = load_config(project.root / "params.yaml")  # params.yaml now names data/wine.csv
    second = tmp_path / "diabetes.parquet"
    load_diabetes(as_frame=True).frame.to_parquet(second, index=False)

    # A failure at the last step: the first file, its pointer and every edit come back.
    before = snapshot(project.root)
    with monkeypatch.context() as broken:
        broken.setattr(adopt, "_set_prepare_deps", lambda *args: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            use_data(adopted, second, label="target")
    assert snapshot(project.root) == before

    adoption = use_data(adopted, second, label="target")
    assert adoption.replaced == "data/wine.csv"
    assert "replaced the previous adoption of data/wine.csv" in format_adoption(adoption)
    data = project.root / "data"
    assert not (data / "wine.csv").exists() and not (data / "wine.csv.dvc").exists()
    assert (data / "diabetes.parquet.dvc").is_file()
    ignored = (data / ".gitignore").read_text().split()
    assert "/diabetes.parquet" in ignored and "/wine.csv" not in ignored
    prepare = yaml.safe_load((project.root / "dvc.yaml").read_text())["stages"]["prepare"]
    assert "data/diabetes.parquet" in prepare["deps"] and "data/wine.csv" not in prepare["deps"]
    assert "data.path" in prepare["params"]
