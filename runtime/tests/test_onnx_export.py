"""The ONNX export at the end of training: parity gate, refusals, and the server's ONNX path."""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import shutil
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline

from mlops_stack_runtime import estimators, onnx_export
from mlops_stack_runtime import features as features_module
from mlops_stack_runtime.audit import load_verified_model, read_record, sha256_file
from mlops_stack_runtime.config import Config, ModelSettings
from mlops_stack_runtime.data.columns import FEATURES, LabelSpec
from mlops_stack_runtime.data.csv_files import read_frame
from mlops_stack_runtime.data.prepare import prepare
from mlops_stack_runtime.data.validate import validate
from mlops_stack_runtime.errors import ArtifactIntegrityError
from mlops_stack_runtime.estimators import FAMILIES, Family
from mlops_stack_runtime.features import split_features_label
from mlops_stack_runtime.serving.model import ServedModel
from mlops_stack_runtime.serving.onnx_model import OnnxModel
from mlops_stack_runtime.testing.fixtures import MakeProject
from mlops_stack_runtime.train import fit_pipeline, train

from credit_risk_model import features as model_definition

TOLERANCE = 1e-5


def held_out(config: Config) -> tuple[Any, np.ndarray]:
    features, label = split_features_label(read_frame(config.paths.test_data))
    return features, label.to_numpy()


def test_training_ships_an_onnx_model_that_matches_on_the_held_out_set(
    trained_project: Config,
) -> None:
    models = trained_project.paths.models_dir
    record = read_record(models)
    assert record.onnx_file == "model.onnx"
    assert record.onnx_sha256 == sha256_file(models / "model.onnx")
    assert record.inference is not None
    assert record.inference["runtime"] == "onnx", record.inference["reason"]
    assert record.inference["max_abs_diff"] <= TOLERANCE
    # Checked again here, independently of the gate: every held-out row.
    pipeline, _ = load_verified_model(models)
    features, _ = held_out(trained_project)
    expected = pipeline.predict_proba(features)[:, 1]
    actual = OnnxModel((models / "model.onnx").read_bytes()).predict_proba(features)[:, 1]
    assert np.abs(actual - expected).max() <= TOLERANCE
    threshold = trained_project.model.threshold
    assert ((actual >= threshold) == (expected >= threshold)).all()


def test_a_zero_tolerance_refuses_the_onnx_model_and_sklearn_serves(
    make_project: MakeProject, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_project({"serving.onnx_tolerance": 0.0})
    prepare(config)
    validate(config)
    with caplog.at_level(logging.WARNING):
        train(config)
    assert any("ONNX export refused" in message for message in caplog.messages)
    content = json.loads((config.paths.models_dir / "model.json").read_text())
    assert content["inference"]["runtime"] == "sklearn"
    assert "over serving.onnx_tolerance 0" in content["inference"]["reason"]
    assert content["inference"]["max_abs_diff"] > 0
    assert ServedModel.load(config.paths.models_dir, runtime=None).runtime == "sklearn"
    with pytest.raises(ArtifactIntegrityError, match="did not accept the ONNX model"):
        ServedModel.load(config.paths.models_dir, runtime="onnx")


def test_a_classifier_skl2onnx_cannot_convert_falls_back_to_sklearn(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # scikit-learn's own DummyClassifier: skl2onnx has no converter for it.
    dummy = Family("dummy", "sklearn.dummy:DummyClassifier", "sklearn.dummy:DummyRegressor")
    monkeypatch.setattr(estimators, "FAMILIES", MappingProxyType({**FAMILIES, "dummy": dummy}))
    config = make_project(
        {"model.estimator": "dummy", "model.hyperparameters.dummy": {"strategy": "prior"}}
    )
    prepare(config)
    validate(config)
    with caplog.at_level(logging.WARNING):
        result = train(config)  # never an error
    assert any("skl2onnx cannot convert" in message for message in caplog.messages)
    record = result.record
    assert record.inference is not None
    assert record.inference["runtime"] == "sklearn"
    assert "skl2onnx cannot convert" in record.inference["reason"]
    assert record.onnx_sha256 is None
    assert (config.paths.models_dir / "model.onnx").read_bytes() == b""  # DVC needs the out
    served = ServedModel.load(config.paths.models_dir)
    assert served.runtime == "sklearn"


def test_onnx_and_sklearn_predict_the_same_on_checked_columns(trained_project: Config) -> None:
    served_model = ServedModel.load(trained_project.paths.models_dir)
    assert served_model.runtime == "onnx"
    sklearn_served = ServedModel.load(trained_project.paths.models_dir, runtime="sklearn")
    assert sklearn_served.runtime == "sklearn"
    features, _ = held_out(trained_project)
    rows = json.loads(features.to_json(orient="records"))
    columns = served_model.schema.parse_v1({"instances": rows}).columns
    onnx_proba, onnx_class = served_model.predict(columns)
    sklearn_proba, sklearn_class = sklearn_served.predict(columns)
    assert np.abs(onnx_proba - sklearn_proba).max() <= TOLERANCE
    assert (onnx_class == sklearn_class).all()


def test_inference_runtime_setting(
    trained_project: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = trained_project.paths.models_dir
    monkeypatch.setenv("INFERENCE_RUNTIME", "sklearn")
    assert ServedModel.load(models).runtime == "sklearn"
    monkeypatch.setenv("INFERENCE_RUNTIME", "onnx")
    assert ServedModel.load(models).runtime == "onnx"
    monkeypatch.setenv("INFERENCE_RUNTIME", "tensorrt")
    with pytest.raises(ValueError, match="INFERENCE_RUNTIME must be one of"):
        ServedModel.load(models)


def copy_models(trained_project: Config, target: Path) -> Path:
    shutil.copytree(trained_project.paths.models_dir, target)
    return target


def test_a_tampered_onnx_model_is_refused_like_a_tampered_pickle(
    trained_project: Config, tmp_path: Path
) -> None:
    models = copy_models(trained_project, tmp_path / "models")
    with (models / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactIntegrityError, match="changed after training"):
        ServedModel.load(models)
    # The pickle path does not read the ONNX file.
    assert ServedModel.load(models, runtime="sklearn").runtime == "sklearn"


def test_pinned_hashes_decide_whether_onnx_serves(trained_project: Config, tmp_path: Path) -> None:
    models = copy_models(trained_project, tmp_path / "models")
    record = read_record(models)
    assert record.onnx_sha256 is not None
    # MODEL_SHA256 pins the pickle only: the ONNX file, vouched for by the record alone, waits.
    pinned = ServedModel.load(models, expected_sha256=record.model_sha256)
    assert pinned.runtime == "sklearn"
    both = ServedModel.load(
        models, expected_sha256=record.model_sha256, expected_onnx_sha256=record.onnx_sha256
    )
    assert both.runtime == "onnx"
    with pytest.raises(ArtifactIntegrityError, match="ONNX_SHA256"):
        ServedModel.load(models, expected_onnx_sha256="ab" * 32)


def test_columns_whose_names_are_not_identifiers_feed_the_graph(
    train_test_frames: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # skl2onnx renames such inputs ("mean radius" -> "mean_radius"); the graph records the columns.
    rename = {spec.name: f"{spec.name} (x)" for spec in FEATURES}
    specs = tuple(dataclasses.replace(spec, name=rename[spec.name]) for spec in FEATURES)
    monkeypatch.setattr(onnx_export, "FEATURES", specs)
    numeric = [rename[s.name] for s in FEATURES if s.kind != "category"]
    monkeypatch.setattr(model_definition, "NUMERIC_FEATURES", numeric)
    monkeypatch.setattr(
        model_definition, "CATEGORICAL_FEATURES", [s.name for s in specs if s.kind == "category"]
    )
    monkeypatch.setattr(features_module, "FEATURE_NAMES", [s.name for s in specs])
    train_frame, test_frame = (frame.rename(columns=rename) for frame in train_test_frames)
    settings = ModelSettings(
        classifier="gradient_boosting",
        random_state=3,
        hyperparameters={"gradient_boosting": {"n_estimators": 10}},
    )
    pipeline = fit_pipeline(train_frame, settings)
    test_features, _ = features_module.split_features_label(test_frame)
    result = onnx_export.export(pipeline, test_features, 0.5, TOLERANCE)
    assert result.accepted, result.inference["reason"]
    assert result.content is not None
    assert list(OnnxModel(result.content).feature_names_in_) == [s.name for s in specs]


class ScoredPipeline:
    """A fitted binary pipeline reduced to what the parity gate reads: its probabilities."""

    def __init__(self, positive: list[float]) -> None:
        self.positive = np.asarray(positive)

    def predict_proba(self, _features: Any) -> np.ndarray:
        return np.column_stack([1 - self.positive, self.positive])


def gate(
    monkeypatch: pytest.MonkeyPatch, sklearn_positive: list[float], onnx_positive: list[float]
) -> onnx_export.Export:
    """The gate's verdict when scikit-learn and the compiled graph give these probabilities."""
    monkeypatch.setattr(onnx_export, "convert", lambda *_args: b"graph")
    compiled = ScoredPipeline(onnx_positive)
    monkeypatch.setattr(onnx_export, "onnx_scores", lambda *_a: compiled.predict_proba(None))
    rows = np.zeros((len(sklearn_positive), 1))
    return onnx_export.export(ScoredPipeline(sklearn_positive), rows, 0.5, 0.05)


def test_a_row_that_changes_class_away_from_the_threshold_refuses_the_onnx_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Row 0: scikit-learn says 0.90 (clearly positive), ONNX 0.30 (negative).
    result = gate(monkeypatch, [0.90, 0.10, 0.70], [0.30, 0.10, 0.70])
    assert not result.accepted
    assert result.inference["runtime"] == "sklearn"
    assert result.inference["classes_differing"] == 1
    assert result.inference["rows_compared"] == 3
    assert result.content == b"graph"


def test_a_row_within_the_tolerance_of_the_threshold_may_change_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Row 0 sits 0.02 above the threshold in scikit-learn, 0.01 below it in ONNX: within 0.05.
    result = gate(monkeypatch, [0.52, 0.10, 0.80], [0.49, 0.10, 0.80])
    assert result.accepted, result.inference["reason"]
    assert result.inference["classes_differing"] == 0
    assert result.inference["max_abs_diff"] == pytest.approx(0.03)
    reason = result.inference["reason"]
    assert reason.startswith("matches scikit-learn on 3 held-out rows within 0.05")


# --- the multi-class gate -------------------------------------------------------------------------
KINDS = LabelSpec("kind", "a kind", ("p", "q", "r"), None, "multiclass")


class Probabilities:
    """A fitted multi-class pipeline reduced to what the parity gate reads."""

    def __init__(self, rows: list[list[float]]) -> None:
        # No rows: the three classes of KINDS.
        self.rows = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1 if rows else 3)

    def predict_proba(self, _features: Any) -> np.ndarray:
        return self.rows


def multiclass_gate(
    monkeypatch: pytest.MonkeyPatch,
    sklearn_rows: list[list[float]],
    onnx_rows: list[list[float]],
    tolerance: float,
) -> onnx_export.Export:
    """The gate's verdict on a multi-class model whose two runtimes give these probabilities."""
    monkeypatch.setattr(onnx_export, "convert", lambda *_args: b"graph")
    compiled = Probabilities(onnx_rows)
    monkeypatch.setattr(onnx_export, "onnx_scores", lambda *_a: compiled.predict_proba(None))
    rows = np.zeros((len(sklearn_rows), 1))
    return onnx_export.export(Probabilities(sklearn_rows), rows, 0.5, tolerance, label=KINDS)


# Binary fractions: differences of exactly the tolerance are exact in floating point.
SIXTEENTH = 0.0625


def test_multiclass_probabilities_exactly_at_the_tolerance_are_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # scikit-learn's two most probable classes are exactly the tolerance apart: ONNX may swap them.
    result = multiclass_gate(
        monkeypatch, [[0.5, 0.4375, 0.0625]], [[0.4375, 0.5, 0.0625]], SIXTEENTH
    )
    assert result.accepted, result.inference["reason"]
    assert result.inference == {
        "runtime": "onnx",
        "reason": "matches scikit-learn on 1 held-out rows within 0.0625 (max abs diff 0.0625)",
        "max_abs_diff": SIXTEENTH,
        "tolerance": SIXTEENTH,
        "rows_compared": 1,
        "classes_differing": 0,
    }


def test_multiclass_probabilities_just_over_the_tolerance_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = multiclass_gate(
        monkeypatch,
        [[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]],
        [[0.5, 0.25, 0.25], [0.4375 - 2**-10, 0.3125 + 2**-10, 0.25]],
        SIXTEENTH,
    )
    assert not result.accepted
    assert result.content == b"graph"
    assert result.inference == {
        "runtime": "sklearn",
        "reason": "ONNX class probabilities differ from scikit-learn's by up to 0.0635 on the "
        "held-out set, over serving.onnx_tolerance 0.0625",
        "max_abs_diff": SIXTEENTH + 2**-10,
        "tolerance": SIXTEENTH,
        "rows_compared": 2,
        "classes_differing": 0,
    }


def test_another_class_where_one_was_clearly_the_most_probable_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The two most probable classes are 0.09375 apart, over the tolerance: row 1 flips class
    # while every probability stays within the tolerance. Row 0 agrees.
    result = multiclass_gate(
        monkeypatch,
        [[0.25, 0.5, 0.25], [0.5, 0.40625, 0.09375]],
        [[0.25, 0.5, 0.25], [0.4375, 0.46875, 0.09375]],
        SIXTEENTH,
    )
    assert not result.accepted
    assert result.inference["reason"] == (
        "ONNX predicts another class than scikit-learn on 1 held-out row(s) where one class is "
        "clearly the most probable"
    )
    assert result.inference["classes_differing"] == 1
    assert result.inference["max_abs_diff"] == SIXTEENTH


def test_two_class_probabilities_are_compared_by_their_most_probable_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Class 0 clearly first in scikit-learn (listed first), class 1 in ONNX: one row differs.
    result = multiclass_gate(monkeypatch, [[0.9, 0.1], [0.2, 0.8]], [[0.1, 0.9], [0.2, 0.8]], 0.05)
    assert not result.accepted
    assert result.inference["classes_differing"] == 1
    assert result.inference["reason"].startswith(
        "ONNX class probabilities differ from scikit-learn's by up to 0.8 "
    )


def test_a_single_class_column_cannot_change_class(monkeypatch: pytest.MonkeyPatch) -> None:
    result = multiclass_gate(monkeypatch, [[1.0], [1.0]], [[1.0], [1.0]], 1e-5)
    assert result.accepted, result.inference["reason"]
    assert result.inference["classes_differing"] == 0
    assert result.inference["max_abs_diff"] == 0.0


def test_no_held_out_rows_differ_by_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    result = multiclass_gate(monkeypatch, [], [], 0.0)
    assert result.accepted, result.inference["reason"]
    assert result.inference["max_abs_diff"] == 0.0
    assert result.inference["rows_compared"] == 0
    assert result.inference["reason"] == (
        "matches scikit-learn on 0 held-out rows within 0 (max abs diff 0)"
    )


def test_another_number_of_classes_in_onnx_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    result = multiclass_gate(
        monkeypatch, [[0.5, 0.25, 0.25]] * 3, [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]], 0.05
    )
    assert not result.accepted
    assert result.inference == {
        "runtime": "sklearn",
        "reason": "ONNX gives 2 class probabilities per row, scikit-learn 3",
        "max_abs_diff": float("inf"),
        "tolerance": 0.05,
        "rows_compared": 3,
        "classes_differing": 3,
    }


# --- LightGBM and XGBoost -------------------------------------------------------------------------
BOOSTED = {
    "LGBMClassifier": ("lightgbm", "LightGbmLGBMClassifier"),
    "LGBMRegressor": ("lightgbm", "LightGbmLGBMRegressor"),
    "XGBClassifier": ("xgboost", "XGBoostXGBClassifier"),
    "XGBRegressor": ("xgboost", "XGBoostXGBRegressor"),
}
BINARY = LabelSpec("flag", "a flag", ("no", "yes"), "yes", "binary")
AMOUNT = LabelSpec("amount", "an amount", (), None, "regression")


def test_the_lightgbm_and_xgboost_converters_register_under_skl2onnx_s_names() -> None:
    """The aliases of skl2onnx's own LightGBM and XGBoost examples: a team registering them the
    documented way replaces these converters rather than adding others beside them."""
    import skl2onnx

    assert onnx_export.register_converters() == list(BOOSTED)
    aliases = [alias for _, alias in BOOSTED.values()]
    assert set(aliases) <= set(skl2onnx.supported_converters())


def boosted_data(label: LabelSpec) -> tuple[Any, np.ndarray]:
    """60 rows of 3 numeric columns and a label of the task (classes as indices)."""
    import pandas as pd

    rng = np.random.default_rng(7)
    features = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    if label.task == "regression":
        return features, 3 * features["a"].to_numpy() - features["b"].to_numpy()
    target = (features["a"] > 0).to_numpy(dtype=int)
    if label.task == "multiclass":
        target = target + (features["b"] > 0.3).to_numpy(dtype=int)
    return features, target


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
@pytest.mark.parametrize("label", [BINARY, KINDS, AMOUNT], ids=lambda label: label.task)
def test_lightgbm_and_xgboost_models_of_each_task_serve_from_onnx(
    library: str, label: LabelSpec
) -> None:
    import onnx

    kind = "Regressor" if label.task == "regression" else "Classifier"
    name = next(name for name in BOOSTED if name.endswith(kind) and BOOSTED[name][0] == library)
    quiet = {"verbose": -1} if library == "lightgbm" else {}
    model_class = getattr(importlib.import_module(library), name)
    features, target = boosted_data(label)
    model = model_class(n_estimators=5, random_state=0, **quiet)
    # As a team's features.py builds it: one graph input per column, joined for the model.
    pipeline = make_pipeline(
        ColumnTransformer([("numeric", SimpleImputer(), ["a", "b", "c"])]), model
    )
    pipeline.fit(features, target)

    result = onnx_export.export(
        pipeline, features, 0.5, 1e-5, 1e-4, label=label, text_columns=frozenset()
    )

    assert result.accepted, result.inference["reason"]
    assert result.content is not None
    graph = onnx.load_from_string(result.content).graph
    served = OnnxModel(result.content)
    if label.task == "regression":
        assert [output.name for output in graph.output] == ["value"]
        np.testing.assert_allclose(served.predict(features), pipeline.predict(features), atol=1e-4)
    else:
        # No ZipMap: the probabilities are a [rows, classes] tensor.
        assert "ZipMap" not in {node.op_type for node in graph.node}
        assert [output.name for output in graph.output] == ["label", "probabilities"]
        probabilities = served.predict_proba(features)
        assert probabilities.shape == (60, len(label.values))
        np.testing.assert_allclose(probabilities, pipeline.predict_proba(features), atol=1e-5)
    if library == "lightgbm":
        # onnxmltools names the tree node after the converter's alias.
        assert BOOSTED[name][1] in {node.name for node in graph.node}


def test_a_lightgbm_regressor_takes_the_split_option_skl2onnx_declares() -> None:
    """skl2onnx's LightGBM example registers the regressor with a `split` option: a team passing
    it to skl2onnx after register_converters gets a graph, not an unknown-option error."""
    from lightgbm import LGBMRegressor
    from skl2onnx import to_onnx

    features, target = boosted_data(AMOUNT)
    model = LGBMRegressor(n_estimators=5, random_state=0, verbose=-1).fit(features, target)
    onnx_export.register_converters()
    graph = to_onnx(
        model,
        features.to_numpy(np.float32)[:1],
        options={id(model): {"split": 2}},
        target_opset={"": 17, "ai.onnx.ml": onnx_export.ONNXMLTOOLS_ML_OPSET},
    )
    assert {node.op_type for node in graph.graph.node} >= {"TreeEnsembleRegressor"}
