"""MLflow: where runs and registered models go, and how a training run is logged.

The tracking URI is $MLFLOW_TRACKING_URI when set (a tracking server, or a temporary store in
tests), else params `mlflow.tracking_uri`. A relative sqlite path resolves from the repo root, and
a local sqlite store keeps its artifacts beside the database (mlruns/artifacts/ by default), so
the embedded store never writes outside mlruns/ whatever the working directory.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from .config import Config
    from .data.columns import LabelSpec

TRACKING_URI_ENV_VAR = "MLFLOW_TRACKING_URI"
SQLITE_PREFIX = "sqlite:///"
MODEL_ARTIFACT_NAME = "model"
# Types the registry copy (skops format, safer than pickle) may load: this code produced them
# (the model families of estimators.py). Another estimator may need more; MLflow's error names
# them.
SKOPS_TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
]


def resolve_tracking_uri(
    configured: str, root: Path, environ: Mapping[str, str] = os.environ
) -> str:
    """$MLFLOW_TRACKING_URI or the configured URI, with a relative sqlite path made absolute."""
    uri = environ.get(TRACKING_URI_ENV_VAR) or configured
    if uri.startswith(SQLITE_PREFIX):
        database = uri.removeprefix(SQLITE_PREFIX)
        # sqlite:///relative.db has three slashes, sqlite:////absolute.db four.
        if database and database != ":memory:" and not Path(database).is_absolute():
            return SQLITE_PREFIX + str((root / database).resolve())
    return uri


def sqlite_database(uri: str) -> Path | None:
    """The database file of a local sqlite URI, None for any other store."""
    database = uri.removeprefix(SQLITE_PREFIX) if uri.startswith(SQLITE_PREFIX) else ""
    return Path(database) if database and database != ":memory:" else None


def artifact_location(uri: str) -> str | None:
    """Artifacts of a local sqlite store go beside it; a tracking server picks its own (None)."""
    database = sqlite_database(uri)
    return (database.parent / "artifacts").as_uri() if database else None


def redacted(uri: str) -> str:
    """The URI without user and password, fit for messages and logs."""
    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


# user:password@ in any URL of a message (MLflow's errors name the URL they called).
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
# Enough of MLflow's message to say what failed; its retries' history can run to pages.
MAX_DETAIL_CHARS = 400


def error_detail(error: BaseException, uri: str) -> str:
    """MLflow's message without credentials: the URI as `redacted`, no user:password@ left."""
    detail = _USERINFO.sub("", str(error).replace(uri, redacted(uri)))
    return detail if len(detail) <= MAX_DETAIL_CHARS else detail[:MAX_DETAIL_CHARS] + "..."


def connect(config: Config) -> str:
    """Point MLflow (runs, the registry, `models:/` URIs) at the store of `config`; its URI."""
    import mlflow

    _quiet_mlflow()
    uri = resolve_tracking_uri(config.mlflow.tracking_uri, config.root)
    database = sqlite_database(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


@contextmanager
def training_run(config: Config) -> Iterator[str]:
    """Point MLflow at the store and experiment of `config` and yield an active run's id."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from requests import RequestException

    uri = connect(config)
    try:
        name = config.mlflow.experiment
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            experiment_id = mlflow.create_experiment(name, artifact_location=artifact_location(uri))
        elif experiment.lifecycle_stage == "deleted":
            raise PipelineError(
                f"MLflow experiment '{name}' is deleted: restore it "
                f"(`mlflow experiments restore --experiment-id {experiment.experiment_id}`) "
                "or change params mlflow.experiment"
            )
        else:
            experiment_id = experiment.experiment_id
        with mlflow.start_run(experiment_id=experiment_id) as run:
            yield run.info.run_id
    # An unreachable server, refused credentials, a store that cannot be written: MLflow's
    # error after its retries, without a traceback or secrets.
    except (MlflowException, RequestException) as error:
        raise PipelineError(
            f"MLflow tracking at {redacted(uri)} failed: {error_detail(error, uri)}. "
            f"Check {TRACKING_URI_ENV_VAR} (else params mlflow.tracking_uri), that the server "
            "answers, and its credentials (MLFLOW_TRACKING_USERNAME and _PASSWORD, or _TOKEN)"
        ) from error


def log_params_and_metrics(params: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """Log nested params as dotted keys (`model.hyperparameters.gradient_boosting.max_depth`)."""
    import mlflow

    mlflow.log_params(_flatten(params))
    mlflow.log_metrics(dict(metrics))


def log_and_register_model(
    pipeline: Pipeline,
    input_sample: pd.DataFrame,
    registered_model: str,
    version_tags: Mapping[str, str],
    label: LabelSpec | None = None,
) -> int:
    """Log the pipeline to the active run, register it, tag the version; return the version.

    The signature's output is what the model gives for the label's task (tasks.model_scores:
    binary the positive class's probability, multi-class one probability per class, regression
    the value); `label`: the declared one unless given."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from .data.columns import LABEL
    from .tasks import model_scores

    with warnings.catch_warnings():
        # The integer columns (age, term, late payments) are never missing: the hint about
        # integers with missing values does not apply.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        outputs = model_scores(pipeline, input_sample, label or LABEL)
        signature = infer_signature(input_sample, outputs)
    info = mlflow.sklearn.log_model(
        sk_model=pipeline,
        name=MODEL_ARTIFACT_NAME,
        signature=signature,
        registered_model_name=registered_model,
        serialization_format="skops",
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
        # Explicit requirements: MLflow would otherwise infer them by inspecting the
        # environment, which is slow and needs pip.
        pip_requirements=_pip_requirements(pipeline),
    )
    version = int(info.registered_model_version)
    client = mlflow.MlflowClient()
    for key, value in version_tags.items():
        client.set_model_version_tag(registered_model, str(version), key, value)
    return version


def log_file(path: Path) -> None:
    import mlflow

    mlflow.log_artifact(str(path))


def log_file_to_run(config: Config, run_id: str, path: Path) -> bool:
    """Add `path` to the artifacts of a finished run (the one that trained the model); True once
    logged. The file is a copy of a report the stage wrote: a store that does not hold the run (a
    model fetched from another store) or cannot be reached is told in one line on stderr, and
    the stage goes on (False)."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from requests import RequestException

    uri = connect(config)
    client = mlflow.MlflowClient(uri)
    try:
        client.get_run(run_id)
        client.log_artifact(run_id, str(path))
    except (MlflowException, RequestException, OSError) as error:
        print(
            f"note: {path.name} is written but not logged to MLflow run {run_id} at "
            f"{redacted(uri)}: {error_detail(error, uri)}",
            file=sys.stderr,
        )
        return False
    return True


def _pip_requirements(pipeline: Any) -> list[str]:
    """scikit-learn and what loading the skops copy needs, with the estimator's own package
    (LightGBM, XGBoost: the distribution installed, e.g. xgboost-cpu)."""
    from importlib.metadata import packages_distributions, version

    packages = ["scikit-learn", "numpy", "pandas", "skops"]
    steps = getattr(pipeline, "steps", None)
    estimator = steps[-1][1] if steps else pipeline
    module = type(estimator).__module__.split(".")[0]
    if module in ("lightgbm", "xgboost"):
        packages += [
            name for name in packages_distributions().get(module, []) if name not in packages
        ]
    return [f"{package}=={version(package)}" for package in packages]


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def _quiet_mlflow() -> None:
    """Silence start-up chatter (database migrations, pip probing) that hides real warnings."""
    loggers = (
        "alembic",
        "mlflow.store.db.utils",
        "mlflow.utils.environment",
        "mlflow.utils.uv_utils",
    )
    for logger in loggers:
        logging.getLogger(logger).setLevel(logging.ERROR)
