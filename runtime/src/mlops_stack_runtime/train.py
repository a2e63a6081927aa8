"""The `train` stage: fit the pipeline, save it with its audit record, track and register it.

The estimator is the family params `model.estimator` names, for the declared label's task
(estimators.py); classification models learn class indices (data/columns.py `encode_label`).
"""

from __future__ import annotations

import platform
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sklearn
from sklearn.pipeline import Pipeline

from . import tasks, tracking
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
from .data.columns import FEATURE_NAMES, LABEL
from .data.csv_files import read_frame
from .errors import ConfigError
from .estimators import build_estimator, fit_errors, is_tree_model
from .evaluate import evaluate_model
from .features import build_preprocessor, split_features_label
from .onnx_export import export
from .registry import THRESHOLD_TAG
from .thresholds import choose_threshold

if TYPE_CHECKING:
    import pandas as pd

    from .config import Config, ModelSettings
    from .data.columns import LabelSpec

# Rows kept to infer the MLflow model signature.
SIGNATURE_SAMPLE_ROWS = 50


def estimator_step(label: LabelSpec = LABEL) -> str:
    """The pipeline's last step: `classifier` (as before tasks), or `regressor`."""
    return "classifier" if label.is_classification else "regressor"


def build_pipeline(settings: ModelSettings, label: LabelSpec = LABEL) -> Pipeline:
    """The project's preprocessing in front of the estimator params name, for the label's task."""
    estimator = build_estimator(settings, label.task)
    # Trees need no scaling (and float32 trees behind a float64 scaler would not compile exactly).
    preprocessor = build_preprocessor(scale_numeric=not is_tree_model(estimator))
    return Pipeline([("preprocessor", preprocessor), (estimator_step(label), estimator)])


def fit_pipeline(train: pd.DataFrame, settings: ModelSettings) -> Pipeline:
    """Fit on the training frame (the label as the model learns it: features.py); a fixed
    random_state makes refits give identical models."""
    features, label = split_features_label(train)
    pipeline = build_pipeline(settings)
    try:
        pipeline.fit(features, label)
    except fit_errors(pipeline.steps[-1][1]) as error:
        raise ConfigError(
            f"params.yaml: model.hyperparameters.{settings.estimator}: {error}"
        ) from error
    return pipeline


@dataclass(frozen=True)
class TrainingResult:
    pipeline: Pipeline
    record: ModelRecord


def train(config: Config) -> TrainingResult:
    """Fit, measure on the held-out set (with the Dummy baseline), save model.joblib and
    model.onnx, log to MLflow, write model.json."""
    paths = config.paths
    train_frame = read_frame(paths.train_data)
    test_frame = read_frame(paths.test_data)
    pipeline = fit_pipeline(train_frame, config.model)
    # params' threshold, or one chosen by its objective on out-of-fold training scores.
    train_features, train_truth = split_features_label(train_frame)
    choice = choose_threshold(
        config.model, train_features, train_truth, LABEL, lambda: build_pipeline(config.model)
    )
    threshold = choice.value
    # The numbers `evaluate` reports too (the Dummy baseline needs the training set, so it is
    # measured here and carried by the record).
    metrics = evaluate_model(pipeline, test_frame, threshold, train=train_frame).metrics
    primary = tasks.task_metrics(LABEL).primary
    test_features, _ = split_features_label(test_frame)
    # The compiled model, served only if it matches scikit-learn on the held-out set.
    onnx = export(
        pipeline,
        test_features,
        threshold,
        config.onnx_tolerance,
        config.onnx_relative_tolerance,
    )
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
                label=LABEL,
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
                    "task": LABEL.task,
                    "estimator": config.model.estimator,
                    # The name before regression existed, for older readers.
                    "classifier": config.model.estimator,
                    "primary_metric": primary,
                    THRESHOLD_TAG: str(threshold),
                    primary: str(metrics[primary]),
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
                task=LABEL.task,
                estimator=config.model.estimator,
                threshold=threshold,
                threshold_rule=choice.rule,
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
