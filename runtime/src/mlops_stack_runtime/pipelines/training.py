"""The training pipeline on Kubeflow Pipelines v2: dvc.yaml's stages, promote, and on enterprise
the model card.

Each component is a lightweight `@dsl.component` whose body only imports the project's stage
(pipelines/workspace.py) and runs it: the stage logic stays in the package. On a cluster every
task runs in the trainer image (the Dockerfile's `trainer` stage: the package, its training set
and kfp), so `install_kfp_package=False`; `kfp.local`'s SubprocessRunner runs the same
functions in the current environment. Data moves between tasks as artifacts (Dataset, Model,
Metrics): workspace.py says why each one is a folder laid out like the repository. An expected
failure ends a task with one line and the status of the same stage run by `make pipeline`
(task_errors.py), not a traceback.

MLflow logging (train, model card) and the registry (promote) read
MLFLOW_TRACKING_URI; on a cluster it comes from the Kubernetes secret MLFLOW_SECRET (key
MLFLOW_SECRET_KEY) through kfp-kubernetes.
"""

# No `from __future__ import annotations`: KFP reads the components' annotations as types.
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from ..tracking import TRACKING_URI_ENV_VAR

MLFLOW_SECRET_KEY = "tracking-uri"
# The tasks, in dvc.yaml's order (promote: `make promote`, as `make retrain` runs it); enterprise
# adds model-card (`make model-card`) after promote.
STAGES = ("prepare", "validate", "train", "evaluate", "promote")
ENTERPRISE_STAGES = (*STAGES, "model-card")


@dataclass(frozen=True)
class PipelineProject:
    """What the pipelines are named after: params.yaml `project` and the project's name."""

    slug: str
    name: str
    tier: str

    @property
    def stages(self) -> tuple[str, ...]:
        return ENTERPRISE_STAGES if self.tier == "enterprise" else STAGES

    @property
    def mlflow_secret(self) -> str:
        """The Kubernetes secret (in the KFP namespace) holding the tracking server's URI."""
        return f"{self.slug}-mlflow"


def prepare(params_yaml: str, data_uri: str, data_md5: str, raw: Output[Dataset]) -> None:
    """Load the raw data from params `data.source` (data/raw/credit.csv); an adopted file
    (`data.source: file`) is read from `data_uri` and checked against `data_md5` first."""
    from mlops_stack_runtime.pipelines.data_file import DataFile
    from mlops_stack_runtime.pipelines.task_errors import reported_task_errors
    from mlops_stack_runtime.pipelines.workspace import run_stage

    with reported_task_errors():
        run_stage("prepare", params_yaml, [], {"raw": raw.path}, data=DataFile(data_uri, data_md5))


def validate(
    params_yaml: str,
    raw: Input[Dataset],
    train_set: Output[Dataset],
    test_set: Output[Dataset],
    validation: Output[Artifact],
) -> None:
    """Check the raw data against the schema and split it (data/validated/)."""
    from mlops_stack_runtime.pipelines.task_errors import reported_task_errors
    from mlops_stack_runtime.pipelines.workspace import run_stage

    with reported_task_errors():
        run_stage(
            "validate",
            params_yaml,
            [raw.path],
            {"train_set": train_set.path, "test_set": test_set.path, "validation": validation.path},
        )


def train(
    params_yaml: str,
    git_commit: str,
    kfp_run_id: str,
    train_set: Input[Dataset],
    test_set: Input[Dataset],
    model: Output[Model],
) -> None:
    """Fit the model, log and register it in MLflow (models/); its record names `git_commit`,
    the registry version is tagged with the run's id (`make fetch-model KFP_RUN=` finds it)."""
    from mlops_stack_runtime.pipelines.task_errors import reported_task_errors
    from mlops_stack_runtime.pipelines.workspace import run_stage

    with reported_task_errors():
        run_stage(
            "train",
            params_yaml,
            [train_set.path, test_set.path],
            {"model": model.path},
            source_commit=git_commit,
            kfp_run_id=kfp_run_id,
        )


def evaluate(
    params_yaml: str,
    test_set: Input[Dataset],
    model: Input[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
) -> None:
    """Held-out metrics, plots, the fairness report (enterprise) and the quality gates
    (reports/)."""
    from mlops_stack_runtime.pipelines.task_errors import reported_task_errors
    from mlops_stack_runtime.pipelines.workspace import read_metrics, run_stage

    with reported_task_errors():
        run_stage("evaluate", params_yaml, [test_set.path, model.path], {"reports": reports.path})
    for name, value in read_metrics(reports.path).items():
        if isinstance(value, int | float):
            metrics.log_metric(name, value)


def promote(
    params_yaml: str,
    test_set: Input[Dataset],
    model: Input[Model],
    reports: Input[Artifact],
    promotion: Output[Artifact],
) -> None:
    """Alias the new version `challenger`; `champion` only if it beats the current one."""
    from mlops_stack_runtime.pipelines.task_errors import reported_task_errors
    from mlops_stack_runtime.pipelines.workspace import run_stage

    with reported_task_errors():
        run_stage(
            "promote",
            params_yaml,
            [test_set.path, model.path, reports.path],
            {"promotion": promotion.path},
        )


def model_card(
    params_yaml: str,
    model: Input[Model],
    reports: Input[Artifact],
    promotion: Input[Artifact],
    card: Output[Artifact],
) -> None:
    """docs/model_card.md from the audit record, metrics, fairness and promotion reports; also
    logged with the version's MLflow run, where `fetch-model` finds it."""
    from mlops_stack_runtime.pipelines.task_errors import reported_task_errors
    from mlops_stack_runtime.pipelines.workspace import run_stage

    with reported_task_errors():
        run_stage(
            "model-card",
            params_yaml,
            [model.path, reports.path, promotion.path],
            {"card": card.path},
        )


def build_pipeline(
    image: str,
    params_yaml: str,
    project: PipelineProject,
    *,
    git_commit: str = "unknown",
    template_release: str = "unknown",
    on_cluster: bool = True,
    data_uri: str = "",
    data_md5: str = "",
) -> Callable[..., Any]:
    """The pipeline function, its components running in `image`.

    `params_yaml` (the repository's params.yaml, as one line of JSON), `git_commit` and
    `template_release` become the defaults of the pipeline's parameters, so a compiled pipeline
    carries what it was built from; a run may override `params_yaml`. `mlflow_secret` None
    leaves the tracking URI to the environment (kfp.local). `data_uri` and `data_md5` name the
    adopted data file (pipelines/data_file.py; empty for the other sources).
    """

    def component(function: Callable[..., None]) -> Any:
        return dsl.component(function, base_image=image, install_kfp_package=False)

    enterprise = project.tier == "enterprise"
    # Annotated: mypy joins these functions' differing signatures into `function`, not a Callable.
    functions: list[Callable[..., None]] = [prepare, validate, train, evaluate, promote]
    if enterprise:
        functions.append(model_card)
    components = {function.__name__: component(function) for function in functions}
    mlflow_secret = project.mlflow_secret if on_cluster else None

    def tracked(task: Any) -> Any:
        if mlflow_secret is not None:
            from kfp import kubernetes

            kubernetes.use_secret_as_env(
                task,
                secret_name=mlflow_secret,
                secret_key_to_env={MLFLOW_SECRET_KEY: TRACKING_URI_ENV_VAR},
            )
        return task

    @dsl.pipeline(
        name=f"{project.slug}-training",
        description=(
            f"{project.name}: {', '.join(project.stages)} "
            f"(commit {git_commit}, template {template_release})"
        ),
    )
    def training(
        params_yaml: str = params_yaml,
        git_commit: str = git_commit,
        template_release: str = template_release,
        data_uri: str = data_uri,
        data_md5: str = data_md5,
    ) -> Artifact:
        prepared = components["prepare"](
            params_yaml=params_yaml, data_uri=data_uri, data_md5=data_md5
        )
        validated = components["validate"](params_yaml=params_yaml, raw=prepared.outputs["raw"])
        trained = tracked(
            components["train"](
                params_yaml=params_yaml,
                git_commit=git_commit,
                # The run's own id, filled in by KFP (and by kfp.local) when the task starts.
                kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                train_set=validated.outputs["train_set"],
                test_set=validated.outputs["test_set"],
            )
        )
        evaluated = components["evaluate"](
            params_yaml=params_yaml,
            test_set=validated.outputs["test_set"],
            model=trained.outputs["model"],
        )
        promoted = tracked(
            components["promote"](
                params_yaml=params_yaml,
                test_set=validated.outputs["test_set"],
                model=trained.outputs["model"],
                reports=evaluated.outputs["reports"],
            )
        )
        if enterprise:
            tracked(
                components["model_card"](
                    params_yaml=params_yaml,
                    model=trained.outputs["model"],
                    reports=evaluated.outputs["reports"],
                    promotion=promoted.outputs["promotion"],
                )
            )
        return evaluated.outputs["reports"]

    return training
