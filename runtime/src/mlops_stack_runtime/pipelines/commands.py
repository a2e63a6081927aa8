"""`kfp` commands: compile the training and scoring pipelines, run them locally, submit them,
schedule training.

`make kfp-compile`, `kfp-local`, `kfp-run`, `kfp-schedule`, `kfp-score` and `kfp-score-local`
call these. kfp is imported inside
the commands: the CLI (and the serving image, which has no kfp) imports this module.
Exit codes: 0 success, 1 an expected failure (message on stderr, no traceback); a local run
whose task failed exits with the task's status, that of the same command run without Kubeflow
(`make score`: 4 an unusable file, 5 rejected rows; task_errors.py).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from .. import exit_codes
from ..command_errors import reported_errors
from ..config import PARAMS_FILE_NAME, Config, load_config
from ..errors import PipelineError

if TYPE_CHECKING:
    from .training import PipelineProject

# The CLI's name for this group: `<cli> kfp compile|local|run|schedule`.
GROUP_NAME = "kfp"
HOST_ENV_VAR = "KFP_HOST"
DEFAULT_PACKAGE = Path("build/pipeline.yaml")
DEFAULT_SCORING_PACKAGE = Path("build/scoring-pipeline.yaml")
# Where `run` writes the id of the training run it submitted: `make kfp-train` fetches the
# version that run trained (`fetch-model --pipeline-run`).
DEFAULT_RUN_ID_FILE = Path("build/kfp-run-id")
# KFP's cron has a seconds field: Mondays 03:17 UTC, like the CI's scheduled retraining.
WEEKLY_CRON = "0 17 3 * * 1"
# A local run's output (the runner's log and every task's), in its pipeline root.
LOCAL_LOG_NAME = "local-run.log"

app = typer.Typer(
    help="Kubeflow Pipelines v2: the training pipeline (compile, local, run, schedule) and the "
    "batch-scoring pipeline (score, local-score).",
    no_args_is_help=True,
)


class KfpError(PipelineError):
    """A pipeline that cannot be compiled, reached, or that failed."""


class TaskFailedError(KfpError):
    """A task of a local run failed as expected: its own message, and its exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@contextmanager
def task_failures() -> Iterator[None]:
    """A local run's failed task: its one line on stderr, and its status (not always 1)."""
    try:
        yield
    except TaskFailedError as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=error.status) from None


def template_release(root: Path) -> str:
    """The template release the repository was rendered from (.copier-answers.yml `_commit`)."""
    answers = root / ".copier-answers.yml"
    if not answers.is_file():
        return "unknown"
    recorded = yaml.safe_load(answers.read_text(encoding="utf-8")) or {}
    return str(recorded.get("_commit") or "unknown")


def _commit(root: Path) -> str:
    from ..audit import git_commit

    return git_commit(root) or "unknown"


def pipeline_project(config: Config) -> PipelineProject:
    """The names the pipelines carry: params.yaml `project` and the project package's name."""
    from ..project import current_project
    from .training import PipelineProject

    return PipelineProject(
        slug=config.project.slug, name=current_project().name, tier=config.project.tier
    )


def check_image(image: str) -> str:
    """An OCI image reference, as the tasks' pods pull it: registry/name[:tag][@sha256:digest]
    (the grammar tools/pin_images.py reads the pinned images with)."""
    from ..tools.pin_images import IMAGE_REFERENCE

    if not image.strip():
        raise KfpError(
            "TRAINER_IMAGE (--image) is empty: it names the image the tasks run in, e.g. "
            "registry.example.com/team/model-trainer:1.0"
        )
    if not IMAGE_REFERENCE.fullmatch(image):
        raise KfpError(
            f"TRAINER_IMAGE (--image) {image!r} is not an image reference: "
            "registry/name[:tag][@sha256:<64 hex digits>], the name in lower case"
        )
    return image


def check_estimator(config: Config) -> None:
    """params.yaml model.estimator names a family for the declared label's task, with its
    hyperparameters (estimators.py): refused here, before a pipeline is written or runs."""
    from ..data.columns import LABEL
    from ..estimators import family_of

    family_of(config.model.estimator, LABEL.task)
    config.model.estimator_hyperparameters()


def pipeline_function(
    config: Config, image: str, *, on_cluster: bool = True, scoring: bool = False
) -> Any:
    """The training pipeline (or, with `scoring`, the batch-scoring one) for this commit;
    KfpError or ConfigError first when the image or the estimator cannot work."""
    check_image(image)
    check_estimator(config)
    if scoring:
        from .scoring import build_scoring_pipeline as build
    else:
        from .training import build_pipeline as build

    # One line of JSON (valid YAML): the compiler copies parameter defaults into the header
    # comment of its YAML, where a multi-line default breaks the file.
    params = yaml.safe_load((config.root / PARAMS_FILE_NAME).read_text(encoding="utf-8"))
    extra: dict[str, Any] = {"on_cluster": on_cluster}
    if not scoring:
        from .data_file import data_file

        data = data_file(config, on_cluster=on_cluster)
        extra.update(data_uri=data.uri, data_md5=data.md5)
    return build(
        image,
        json.dumps(params, sort_keys=True),
        pipeline_project(config),
        git_commit=_commit(config.root),
        template_release=template_release(config.root),
        **extra,
    )


def compile_pipeline(config: Config, image: str, output: Path, *, scoring: bool = False) -> Path:
    """Write the pipeline's IR YAML to `output` (nothing when the pipeline is refused)."""
    from kfp import compiler

    pipeline = pipeline_function(config, image, scoring=scoring)
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline, str(output))
    return output


def local_log(pipeline_root: Path) -> Path:
    """Where a local run's output goes: the runner's log and every task's own output."""
    return pipeline_root / LOCAL_LOG_NAME


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _run_locally(
    config: Config, image: str, pipeline_root: Path, *, scoring: bool = False, **arguments: Any
) -> Any:
    """Run the training (or scoring) pipeline with kfp.local's SubprocessRunner in this
    environment, MLflow at the repository's store; the finished run.

    The runner's log and the tasks' output go to local_log(pipeline_root), not the terminal. A
    task that failed as expected wrote its message and status (task_errors.py): TaskFailedError
    carries them; any other failure is a KfpError naming the log.
    """
    from kfp import local

    from ..tracking import TRACKING_URI_ENV_VAR, resolve_tracking_uri
    from .task_errors import TASK_ERROR_FILE_ENV_VAR, read_task_failure

    pipeline = pipeline_function(config, image, on_cluster=False, scoring=scoring)
    os.environ[TRACKING_URI_ENV_VAR] = resolve_tracking_uri(config.mlflow.tracking_uri, config.root)
    pipeline_root.mkdir(parents=True, exist_ok=True)
    log = local_log(pipeline_root)
    local.init(
        runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root.resolve())
    )
    with tempfile.TemporaryDirectory(prefix="kfp-task-") as scratch:
        failure_file = Path(scratch) / "failure.json"
        try:
            with (
                _environment(TASK_ERROR_FILE_ENV_VAR, str(failure_file)),
                log.open("w", encoding="utf-8") as stream,
                redirect_stdout(stream),
                redirect_stderr(stream),
                warnings.catch_warnings(),
            ):
                # The runner warns that a task's image is not plain Python: here every task
                # runs in this environment on purpose, the image is for the cluster.
                warnings.filterwarnings("ignore", category=RuntimeWarning, module="kfp.local")
                return pipeline(**arguments)
        except RuntimeError as error:
            failure = read_task_failure(failure_file)
            if failure is not None:
                raise TaskFailedError(failure.message, failure.status) from None
            what = "scoring" if scoring else "pipeline"
            raise KfpError(f"the local {what} run failed: {error} (its log: {log})") from None


def score_local(
    config: Config,
    image: str,
    pipeline_root: Path,
    input_path: Path,
    model_version: str,
    allow_rejects: bool,
) -> Path:
    """Run the scoring pipeline with kfp.local on a local file; the folder holding its output
    (predictions and, when rows were rejected, the rejects file)."""
    if not input_path.is_file():  # as `make score` says it, with its status
        raise TaskFailedError(f"{input_path}: no such file", exit_codes.BATCH_ERROR)
    check_model_version(model_version)
    run = _run_locally(
        config,
        image,
        pipeline_root,
        scoring=True,
        input_uri=str(input_path.resolve()),
        model_version=model_version,
        allow_rejects=allow_rejects,
    )
    return Path(run.outputs["Output"].path)


def run_local(config: Config, image: str, pipeline_root: Path) -> dict[str, Any]:
    """Run the pipeline with kfp.local's SubprocessRunner in this environment (no Docker).

    MLflow goes to the repository's own store (params.yaml, else $MLFLOW_TRACKING_URI), as with
    `make pipeline`. Returns the held-out metrics; writes them to <pipeline_root>/metrics.json.
    """
    from .workspace import read_metrics

    run = _run_locally(config, image, pipeline_root)
    # The pipeline's return value: evaluate's reports artifact.
    metrics = read_metrics(run.outputs["Output"].path)
    (pipeline_root / "metrics.json").write_text(
        json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return metrics


def check_model_version(version: str) -> str:
    """`champion` or a version number, refused before anything is submitted."""
    if version != "champion" and not (version.isdigit() and int(version) > 0):
        raise KfpError(f"the model version is 'champion' or a version number, not {version!r}")
    return version


def _client(host: str | None) -> Any:
    if not host:
        raise KfpError(
            f"{HOST_ENV_VAR} is not set: export the Kubeflow Pipelines API endpoint, e.g. "
            f"{HOST_ENV_VAR}=https://kubeflow.example.com/pipeline"
        )
    import kfp

    # The client logs its connection errors with tracebacks; the error below says it once.
    for name in ("kfp", "urllib3"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            # Said on every connection, whatever the server: the commands need KFP v2 anyway.
            warnings.filterwarnings(
                "ignore",
                message="This client only works with Kubeflow Pipeline",
                category=FutureWarning,
            )
            return kfp.Client(host=host)
    except Exception as error:
        raise KfpError(f"cannot reach Kubeflow Pipelines at {host}: {_reason(error)}") from None


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return str(reason or error).splitlines()[0][:300]


def _failed_tasks(run: Any) -> list[str]:
    details = getattr(run, "run_details", None)
    tasks = getattr(details, "task_details", None) or []
    return sorted(
        {
            str(task.display_name)
            for task in tasks
            if str(task.state).upper() == "FAILED" and task.display_name
        }
    )


def submit(
    host: str | None,
    package: Path,
    experiment: str,
    timeout: int,
    arguments: dict[str, Any] | None = None,
    run_id_file: Path | None = None,
) -> tuple[str, str]:
    """Submit the compiled pipeline with `arguments`, wait for it; (run id, final state).
    Raises on failure. `run_id_file` gets the run's id as soon as it exists, so a run that
    fails or times out can still be looked up."""
    if not package.is_file():
        raise KfpError(f"{package} not found: make kfp-compile first")
    client = _client(host)
    try:
        result = client.create_run_from_pipeline_package(
            str(package),
            arguments=arguments or {},
            run_name=f"{experiment}-{time.strftime('%Y%m%d-%H%M%S')}",
            experiment_name=experiment,
        )
        if run_id_file is not None:
            run_id_file.parent.mkdir(parents=True, exist_ok=True)
            run_id_file.write_text(f"{result.run_id}\n", encoding="utf-8")
        run = client.wait_for_run_completion(result.run_id, timeout=timeout)
    except Exception as error:
        raise KfpError(f"Kubeflow Pipelines at {host}: {_reason(error)}") from None
    state = str(run.state).upper()
    if state != "SUCCEEDED":
        failed = _failed_tasks(run)
        where = f"task(s) {', '.join(failed)} failed" if failed else "no task reported"
        raise KfpError(f"run {result.run_id} ended {state}: {where}")
    return result.run_id, state


def schedule(host: str | None, package: Path, experiment: str, cron: str) -> str:
    """Create the weekly recurring run, replacing the one of the same name; its id."""
    if not package.is_file():
        raise KfpError(f"{package} not found: make kfp-compile first")
    client = _client(host)
    name = f"{experiment}-weekly"
    try:
        experiment_id = client.create_experiment(experiment).experiment_id
        existing = client.list_recurring_runs(experiment_id=experiment_id, page_size=100)
        for recurring in existing.recurring_runs or []:
            if recurring.display_name == name:
                client.delete_recurring_run(recurring.recurring_run_id)
        created = client.create_recurring_run(
            experiment_id,
            name,
            cron_expression=cron,
            pipeline_package_path=str(package),
            no_catchup=True,
        )
    except Exception as error:
        raise KfpError(f"Kubeflow Pipelines at {host}: {_reason(error)}") from None
    return str(created.recurring_run_id)


ImageOption = Annotated[
    str,
    typer.Option(
        envvar="TRAINER_IMAGE",
        help="The trainer image the tasks run in (the Dockerfile's `trainer` stage).",
    ),
]
PackageOption = Annotated[Path, typer.Option(help="The compiled pipeline.")]
HostOption = Annotated[
    str | None,
    typer.Option(envvar=HOST_ENV_VAR, help="Kubeflow Pipelines API endpoint (default: $KFP_HOST)."),
]


def _config(ctx: typer.Context) -> Config:
    return load_config(ctx.obj)


@app.command("compile")
def compile_command(
    ctx: typer.Context,
    # No image at all is refused by check_image, in one line.
    image: ImageOption = "",
    output: PackageOption = DEFAULT_PACKAGE,
    scoring_output: Annotated[
        Path, typer.Option(help="The compiled batch-scoring pipeline.")
    ] = DEFAULT_SCORING_PACKAGE,
) -> None:
    """Write both pipelines (IR YAML) with their commit and template release; nothing when
    TRAINER_IMAGE or params.yaml model.estimator cannot work."""
    with reported_errors():
        config = _config(ctx)
        check_image(image)
        check_estimator(config)
        path = compile_pipeline(config, image, output)
        scoring_path = compile_pipeline(config, image, scoring_output, scoring=True)
    typer.echo(f"pipeline written to {path}")
    typer.echo(f"scoring pipeline written to {scoring_path}")


@app.command("local")
def local_command(
    ctx: typer.Context,
    image: ImageOption = "local",
    pipeline_root: Annotated[
        Path, typer.Option(help="Where the local run keeps its artifacts.")
    ] = Path("build/kfp-local"),
) -> None:
    """Run the pipeline here, each task a subprocess (no Docker), and print its metrics; a
    failed task's own error and status (the tasks' output: <pipeline-root>/local-run.log)."""
    typer.echo(f"running the pipeline's tasks here; their output: {local_log(pipeline_root)}")
    with reported_errors(), task_failures():
        metrics = run_local(_config(ctx), image, pipeline_root)
    typer.echo(json.dumps(metrics, indent=2, sort_keys=True))
    typer.echo(f"metrics written to {pipeline_root / 'metrics.json'}")


@app.command("run")
def run_command(
    ctx: typer.Context,
    host: HostOption = None,
    package: PackageOption = DEFAULT_PACKAGE,
    timeout: Annotated[int, typer.Option(help="Seconds to wait for the run.")] = 7200,
    run_id_file: Annotated[
        Path, typer.Option(help="Where the submitted run's id is written.")
    ] = DEFAULT_RUN_ID_FILE,
) -> None:
    """Submit the compiled pipeline to KFP_HOST and wait; exit 1 naming the failed task."""
    with reported_errors():
        run_id, state = submit(
            host, package, _config(ctx).project.slug, timeout, run_id_file=run_id_file
        )
    typer.echo(f"run {run_id}: {state}")


@app.command("schedule")
def schedule_command(
    ctx: typer.Context,
    host: HostOption = None,
    package: PackageOption = DEFAULT_PACKAGE,
    cron: Annotated[str, typer.Option(help="KFP cron (with seconds).")] = WEEKLY_CRON,
) -> None:
    """Create or replace the weekly recurring run of the compiled pipeline."""
    with reported_errors():
        recurring_id = schedule(host, package, _config(ctx).project.slug, cron)
    typer.echo(f"recurring run {recurring_id}: {cron}")


ModelVersionOption = Annotated[
    str, typer.Option(help="The registered version that scores: `champion` or a number.")
]
AllowRejectsOption = Annotated[
    bool, typer.Option(help="Succeed even when rows were rejected (they are in the output).")
]


@app.command("score")
def score_command(
    ctx: typer.Context,
    input_uri: Annotated[
        str, typer.Option("--input", help="The .csv or .parquet file, as the pods reach it.")
    ],
    output_uri: Annotated[
        str, typer.Option("--output-uri", help="A folder URI to copy the predictions to.")
    ] = "",
    model_version: ModelVersionOption = "champion",
    allow_rejects: AllowRejectsOption = False,
    host: HostOption = None,
    package: PackageOption = DEFAULT_SCORING_PACKAGE,
    timeout: Annotated[int, typer.Option(help="Seconds to wait for the run.")] = 7200,
) -> None:
    """Submit the compiled scoring pipeline to KFP_HOST and wait; exit 1 when it failed."""
    with reported_errors():
        arguments = {
            "input_uri": input_uri,
            "output_uri": output_uri,
            "model_version": check_model_version(model_version),
            "allow_rejects": allow_rejects,
        }
        experiment = f"{_config(ctx).project.slug}-scoring"
        run_id, state = submit(host, package, experiment, timeout, arguments)
    typer.echo(f"run {run_id}: {state}")


@app.command("local-score")
def local_score_command(
    ctx: typer.Context,
    input_path: Annotated[Path, typer.Option("--input", help="The .csv or .parquet file.")],
    model_version: ModelVersionOption = "champion",
    allow_rejects: AllowRejectsOption = False,
    image: ImageOption = "local",
    pipeline_root: Annotated[
        Path, typer.Option(help="Where the local run keeps its artifacts.")
    ] = Path("build/kfp-local-score"),
) -> None:
    """Run the scoring pipeline here, its task a subprocess (no Docker); print the output, or
    the task's own error with the status of `make score` (4 an unusable file, 5 rejected rows)."""
    typer.echo(f"running the scoring task here; its output: {local_log(pipeline_root)}")
    with reported_errors(), task_failures():
        folder = score_local(
            _config(ctx), image, pipeline_root, input_path, model_version, allow_rejects
        )
    for path in sorted(folder.iterdir()):
        typer.echo(f"written: {path}")
