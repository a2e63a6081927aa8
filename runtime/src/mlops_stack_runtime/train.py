"""The `train` stage: fit the pipeline, save it with its audit record, track and register it."""

from __future__ import annotations

import platform
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sklearn
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.tree import BaseDecisionTree

# Public class, private module: the error sklearn raises for a hyperparameter value out of range.
from sklearn.utils._param_validation import InvalidParameterError

from . import tracking
from .audit import (
    PIPELINE_RUN_ID_TAG,
    ModelRecord,
    git_commit,
    model_path,
    onnx_path,
    pipeline_run_id,
    record_path,
    save_model,
    sha256_file,
    write_record,
)
from .data.columns import FEATURE_NAMES
from .data.csv_files import read_frame
from .errors import ConfigError
from .evaluate import compute_metrics
from .features import build_preprocessor, split_features_label
from .onnx_export import export

if TYPE_CHECKING:
    import pandas as pd

    from .config import Config, ModelSettings

CLASSIFIERS: dict[str, type] = {
    "gradient_boosting": GradientBoostingClassifier,
    "random_forest": RandomForestClassifier,
    "logistic_regression": LogisticRegression,
}
# Classifiers that split on feature values: their numbers are imputed but not scaled.
TREE_MODELS: tuple[type, ...] = (
    BaseDecisionTree,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
# Rows kept to infer the MLflow model signature.
SIGNATURE_SAMPLE_ROWS = 50


def build_classifier(settings: ModelSettings) -> Any:
    """The classifier named by params `model.classifier` with its hyperparameters."""
    if settings.classifier not in CLASSIFIERS:
        raise ConfigError(
            f"params.yaml: unknown model.classifier '{settings.classifier}'; "
            f"choose one of {', '.join(CLASSIFIERS)}"
        )
    hyperparameters = settings.classifier_hyperparameters()
    try:
        return CLASSIFIERS[settings.classifier](
            **hyperparameters, random_state=settings.random_state
        )
    except TypeError as error:
        raise ConfigError(
            f"params.yaml: model.hyperparameters.{settings.classifier}: {error}"
        ) from error


def build_pipeline(settings: ModelSettings) -> Pipeline:
    classifier = build_classifier(settings)
    # Trees need no scaling (and float32 trees behind a float64 scaler would not compile exactly).
    preprocessor = build_preprocessor(scale_numeric=not is_tree_model(classifier))
    return Pipeline([("preprocessor", preprocessor), ("classifier", classifier)])


def is_tree_model(classifier: Any) -> bool:
    """Whether ``classifier`` splits on feature values (so scaling changes nothing it learns)."""
    return isinstance(classifier, TREE_MODELS)


def fit_pipeline(train: pd.DataFrame, settings: ModelSettings) -> Pipeline:
    """Fit on the training frame; a fixed random_state makes refits give identical models."""
    features, label = split_features_label(train)
    pipeline = build_pipeline(settings)
    try:
        pipeline.fit(features, label)
    except InvalidParameterError as error:
        raise ConfigError(
            f"params.yaml: model.hyperparameters.{settings.classifier}: {error}"
        ) from error
    return pipeline


@dataclass(frozen=True)
class TrainingResult:
    pipeline: Pipeline
    record: ModelRecord


def train(config: Config) -> TrainingResult:
    """Fit, measure on the held-out set, save model.joblib and model.onnx, log to MLflow,
    write model.json."""
    paths = config.paths
    train_frame = read_frame(paths.train_data)
    test_frame = read_frame(paths.test_data)
    pipeline = fit_pipeline(train_frame, config.model)
    test_features, test_label = split_features_label(test_frame)
    metrics = compute_metrics(
        test_label, pipeline.predict_proba(test_features)[:, 1], config.model.threshold
    )
    # The compiled model, served only if it matches scikit-learn on the held-out set.
    onnx = export(pipeline, test_features, config.model.threshold, config.onnx_tolerance)
    # The model and its record are made in a staging folder and moved into models/ only once
    # MLflow has them: a failed run leaves the previous pair as it was, never a new model file
    # beside a stale record.
    paths.models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.models_dir, prefix=".train-") as staging:
        staged_model = save_model(pipeline, Path(staging))
        model_sha256 = sha256_file(staged_model)
        # Written even when refused (the record says which runtime serves); empty when the
        # pipeline did not convert, since DVC needs every output of the stage to exist.
        staged_onnx = onnx_path(Path(staging))
        staged_onnx.write_bytes(onnx.content or b"")
        onnx_sha256 = sha256_file(staged_onnx) if onnx.content is not None else None
        training_data_sha256 = sha256_file(paths.train_data)
        test_data_sha256 = sha256_file(paths.test_data)
        commit = git_commit(config.root)

        with tracking.training_run(config) as run_id:
            tracking.log_params_and_metrics(config.params, metrics)
            version = tracking.log_and_register_model(
                pipeline,
                input_sample=train_frame[list(FEATURE_NAMES)].head(SIGNATURE_SAMPLE_ROWS),
                registered_model=config.mlflow.registered_model,
                # Ties the registry version to the DVC-versioned file, the data and the code
                # that made it (the whole audit record is an artifact of the run).
                version_tags={
                    "model_sha256": model_sha256,
                    # What a deployment pins as ONNX_SHA256 ("none": scikit-learn serves it).
                    "onnx_sha256": onnx_sha256 if onnx.accepted and onnx_sha256 else "none",
                    "training_data_sha256": training_data_sha256,
                    "test_data_sha256": test_data_sha256,
                    "git_commit": commit or "unknown",
                    "classifier": config.model.classifier,
                    "roc_auc": str(metrics["roc_auc"]),
                    **({PIPELINE_RUN_ID_TAG: run} if (run := pipeline_run_id()) else {}),
                },
            )
            record = ModelRecord(
                model_file=staged_model.name,
                model_sha256=model_sha256,
                training_data_sha256=training_data_sha256,
                test_data_sha256=test_data_sha256,
                git_commit=commit,
                params=dict(config.params),
                metrics=metrics,
                mlflow_run_id=run_id,
                registered_model_name=config.mlflow.registered_model,
                registered_model_version=version,
                sklearn_version=sklearn.__version__,
                python_version=platform.python_version(),
                feature_names=list(FEATURE_NAMES),
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                onnx_file=staged_onnx.name if onnx.content is not None else None,
                onnx_sha256=onnx_sha256,
                inference=onnx.inference,
            )
            staged_record = write_record(record, Path(staging))
            # The deployable files themselves, byte for byte (the registered skops model is
            # another serialization): `fetch-model` takes them from here when the pipeline ran
            # elsewhere (an orchestrator's cluster), checked against the version's sha256 tags.
            for staged in (staged_model, staged_onnx, staged_record):
                tracking.log_file(staged)
        # Same filesystem: each replace is atomic; the record goes last, as the pair's seal.
        staged_model.replace(model_path(paths.models_dir))
        staged_onnx.replace(onnx_path(paths.models_dir))
        staged_record.replace(record_path(paths.models_dir))
    return TrainingResult(pipeline=pipeline, record=record)
