"""The batch-scoring pipeline on Kubeflow Pipelines v2: `make score` as one task, on the cluster.

One lightweight component runs the project's own scoring (scoring.py, through
pipelines/workspace.py) in the trainer image: the same row checks as the model server, rejects
with their row number and reason, carried columns, the model version and the input's sha256.
The input is a URI the task reads itself (s3://, gs://, azure://, or a path on a volume the pod
mounts); the predictions and rejects are the task's output artifact, and, when `output_uri` is
given, are also copied there. The model is a registered version (`champion` by default) from
MLflow, whose URI comes from the project's Kubernetes secret, as in the training pipeline.
"""

# No `from __future__ import annotations`: KFP reads the components' annotations as types.
from collections.abc import Callable
from typing import Any

from kfp import dsl
from kfp.dsl import Dataset, Output

from ..tracking import TRACKING_URI_ENV_VAR
from .training import MLFLOW_SECRET_KEY, PipelineProject


def score(
    params_yaml: str,
    input_uri: str,
    model_version: str,
    allow_rejects: bool,
    output_uri: str,
    scored: Output[Dataset],
) -> None:
    """Score the file at `input_uri` with `model_version`; fails when rows were rejected
    unless `allow_rejects` (the rejects file is in the output either way)."""
    from mlops_stack_runtime.pipelines.task_errors import reported_task_errors
    from mlops_stack_runtime.pipelines.workspace import run_scoring

    # The statuses of `make score`: 4 an unusable file, 5 rejected rows.
    with reported_task_errors(scoring=True):
        run_scoring(params_yaml, input_uri, model_version, allow_rejects, scored.path, output_uri)


def build_scoring_pipeline(
    image: str,
    params_yaml: str,
    project: PipelineProject,
    *,
    git_commit: str = "unknown",
    template_release: str = "unknown",
    on_cluster: bool = True,
) -> Callable[..., Any]:
    """The scoring pipeline function, its task running in `image` (see build_pipeline)."""
    component = dsl.component(score, base_image=image, install_kfp_package=False)
    mlflow_secret = project.mlflow_secret if on_cluster else None

    @dsl.pipeline(
        name=f"{project.slug}-scoring",
        description=(
            f"{project.name}: batch scoring with a registered model version "
            f"(commit {git_commit}, template {template_release})"
        ),
    )
    def scoring(
        input_uri: str,
        model_version: str = "champion",
        allow_rejects: bool = False,
        output_uri: str = "",
        params_yaml: str = params_yaml,
        git_commit: str = git_commit,
        template_release: str = template_release,
    ) -> Dataset:
        task = component(
            params_yaml=params_yaml,
            input_uri=input_uri,
            model_version=model_version,
            allow_rejects=allow_rejects,
            output_uri=output_uri,
        )
        if mlflow_secret is not None:
            from kfp import kubernetes

            kubernetes.use_secret_as_env(
                task,
                secret_name=mlflow_secret,
                secret_key_to_env={MLFLOW_SECRET_KEY: TRACKING_URI_ENV_VAR},
            )
        return task.outputs["scored"]

    return scoring
