"""Command line: one subcommand per pipeline stage (dvc.yaml calls them), `promote`,
`model-card`, `serve`, the release commands `fetch-model`, `release-check` and `pin-image` (CD
and `make deploy`), the monitoring commands `drift` and `collect`, batch scoring (`score`), and on
the cluster tiers the pipeline orchestration group (pipelines/commands.py).

Exit codes: 0 success, 1 an expected failure (message on stderr), 2 a usage error, 3 `drift`
found drift or `release-check` found nothing to deploy, 4 the batch given to `drift`, `collect`
or `score` cannot be used, 5 `score` rejected rows (unless `--allow-rejects`).

Heavy libraries (scikit-learn, pandera, MLflow) are imported inside the commands, so `--help`
is instant and the serving image, which has no MLflow or DVC, can import this module.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from . import exit_codes
from .command_errors import reported_errors
from .config import PARAMS_ENV_VAR, Config, load_config
from .errors import BatchError

# The statuses schedulers tell apart (exit_codes.py).
DRIFT_EXIT_CODE = exit_codes.DRIFT
BATCH_ERROR_EXIT_CODE = exit_codes.BATCH_ERROR
ROWS_REJECTED_EXIT_CODE = exit_codes.ROWS_REJECTED

app = typer.Typer(
    help=(
        "The model's pipeline (prepare, validate, train, evaluate), its registry promotion "
        "(promote), its model card (model-card), its server (serve) and its monitoring "
        "(drift, collect)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def options(
    ctx: typer.Context,
    params: Annotated[
        Path | None,
        typer.Option(
            "--params",
            help=f"params.yaml to use (default: ${PARAMS_ENV_VAR}, else the nearest one up).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    ctx.obj = params


# `make deploy` tells "nothing to deploy" (a kept champion) from a failure by this code.
RELEASE_SKIPPED_EXIT_CODE = exit_codes.RELEASE_SKIPPED


@contextmanager
def batch_errors() -> Iterator[None]:
    """An unusable batch exits 4, apart from other failures, so schedulers can tell them apart."""
    try:
        yield
    except BatchError as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=BATCH_ERROR_EXIT_CODE) from None


def _config(ctx: typer.Context) -> Config:
    return load_config(ctx.obj)


# The cluster tiers install the Kubeflow Pipelines SDK (the runtime's `pipelines` extra): the
# orchestrated training pipeline and its command group (pipelines/commands.py).
if importlib.util.find_spec("kfp") is not None:
    from .pipelines import commands as pipeline_commands

    app.add_typer(pipeline_commands.app, name=pipeline_commands.GROUP_NAME)


@app.command()
def prepare(
    ctx: typer.Context,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Write a batch of current data here (.csv or .parquet, for `drift`), "
            "not to data/raw/."
        ),
    ] = None,
    shift: Annotated[
        float,
        typer.Option(
            min=0.0, help="Synthetic source: move the batch's population (0 none, 1 strong)."
        ),
    ] = 0.0,
    rows: Annotated[
        int | None, typer.Option(min=1, help="Synthetic source: rows of the batch.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(min=0, help="Synthetic source: seed of the batch.")
    ] = None,
) -> None:
    """Load the raw data from params `data.source` into data/raw/ (or a batch into --output)."""
    if output is None and (shift or rows is not None or seed is not None):
        raise typer.BadParameter("--shift, --rows and --seed make a batch: give --output too")
    with reported_errors():
        from .data.prepare import prepare as run_prepare
        from .data.prepare import write_batch

        config = _config(ctx)
        if output is None:
            path = run_prepare(config)
        else:
            path = write_batch(config, output, shift=shift, n_rows=rows, seed=seed)
    typer.echo(f"{'raw data' if output is None else 'batch'} written to {path}")


@app.command("use-data")
def use_data(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The team's data: a .csv or .parquet file.")],
    label: Annotated[str, typer.Option(help="The column to predict.")],
    positive: Annotated[
        str | None,
        typer.Option(
            help="A binary label's positive value (needed unless it is 0/1 or true/false)."
        ),
    ] = None,
    protected: Annotated[
        str | None,
        typer.Option(
            help="A protected attribute (any type): kept out of the features, for fairness."
        ),
    ] = None,
    max_category_levels: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Whole-number columns with at most this many values become categories "
            "(default: params data.max_category_levels).",
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="binary, multiclass or regression: overrides the task inferred from the "
            "label's values (still checked against them)."
        ),
    ] = None,
) -> None:
    """Adopt a CSV or Parquet file: infer data/columns.yaml and the label's task (binary,
    multiclass, regression), `dvc add` the file into data/, point params.yaml at it. Refused
    (exit 1, nothing written) when the label cannot make the task, saying why."""
    with reported_errors():
        from .data.adopt import use_data as adopt
        from .data.checks import check_data
        from .data.columns import TASKS
        from .data.report import format_adoption
        from .data.sources import read_data_file

        if task is not None and task not in TASKS:
            raise typer.BadParameter(
                f"{task!r} is not one of {', '.join(TASKS)}", param_hint="--task"
            )
        config = _config(ctx)
        adoption = adopt(
            config,
            file,
            label=label,
            positive=positive,
            protected=protected,
            max_category_levels=max_category_levels,
            task=task,
        )
        # The checks before training, on the data as the `file` source reads them.
        declaration = adoption.inference.declaration
        adopted = read_data_file(config.root / adoption.data_path, declaration)
        warnings = check_data(adopted, declaration, config.data.split)
    typer.echo(format_adoption(adoption, warnings))


@app.command()
def data(ctx: typer.Context) -> None:
    """Fetch the `file` source's data from the DVC remote when it is missing (CI runs this)."""
    with reported_errors():
        from .data.fetch import fetch_data

        typer.echo(fetch_data(_config(ctx)))


@app.command()
def validate(ctx: typer.Context) -> None:
    """Check the raw data against the schema, then split it into train and test sets."""
    with reported_errors():
        from .data.validate import validate as run_validate

        report = run_validate(_config(ctx))
    typer.echo(report.to_text())


@app.command()
def train(ctx: typer.Context) -> None:
    """Fit the model, save it with its audit record, log and register it in MLflow."""
    with reported_errors():
        from .tasks import TASK_METRICS
        from .train import train as run_train

        result = run_train(_config(ctx))
    record = result.record
    primary = TASK_METRICS[record.task].primary
    typer.echo(
        f"model saved (sha256 {record.model_sha256[:12]}), "
        f"held-out {primary} {record.metrics[primary]:.4f}, registered as "
        f"{record.registered_model_name} version {record.registered_model_version}"
    )
    if record.threshold_rule and record.threshold_rule.startswith("chosen"):
        typer.echo(f"decision threshold {record.threshold}: {record.threshold_rule}")
    inference = record.inference or {}
    onnx = inference.get("runtime") == "onnx"
    runtime = "ONNX Runtime (models/model.onnx)" if onnx else "scikit-learn (models/model.joblib)"
    typer.echo(f"served by {runtime}: {inference.get('reason', 'no ONNX export')}")


@app.command()
def evaluate(ctx: typer.Context) -> None:
    """Score the model on the test set, write metrics and plots, apply the quality gates."""
    with reported_errors():
        from .audit import decision_threshold, read_record
        from .evaluate import evaluate as run_evaluate
        from .evaluate import format_metrics, positive_rate_warning
        from .explain import read_importance

        config = _config(ctx)
        evaluation, gate_results = run_evaluate(config)
        importance = read_importance(config.paths.importance)
        rate_warning = positive_rate_warning(
            evaluation, decision_threshold(read_record(config.paths.models_dir))
        )
    typer.echo(f"held-out metrics:\n{format_metrics(evaluation.metrics)}")
    if rate_warning is not None:
        typer.echo(rate_warning, err=True)
    if importance is not None:
        typer.echo(importance.to_text())
    for result in gate_results:
        typer.echo(f"gate passed: {result.message}")


@app.command()
def promote(ctx: typer.Context) -> None:
    """Alias the new model version `challenger`; make it `champion` if it beats the current one."""
    with reported_errors():
        from .promotion import promote as run_promote

        promotion = run_promote(_config(ctx))
    metric = promotion.metric
    for role, contender in (
        ("challenger", promotion.challenger),
        ("champion", promotion.previous_champion),
    ):
        if contender is not None:
            gates = "passes every gate" if not contender.failed_gates else "fails a gate"
            typer.echo(
                f"{role}: version {contender.version}, held-out {metric} "
                f"{contender.metrics[metric]:.4f}, {gates}"
            )
    if promotion.outcome == "promoted":
        typer.echo(f"promoted: version {promotion.champion_version} is the champion now")
    elif promotion.outcome == "kept_champion":
        typer.echo(f"kept champion version {promotion.champion_version}")
    typer.echo(f"reason: {promotion.reason}")


@app.command("release-check")
def release_check(ctx: typer.Context) -> None:
    """Exit 0 when models/ holds the registry champion (deploy it), 3 when it does not."""
    with reported_errors():
        from .release import check_release

        decision = check_release(_config(ctx))
    typer.echo(("deploy: " if decision.deploy else "skip: ") + decision.reason)
    if not decision.deploy:
        raise typer.Exit(code=RELEASE_SKIPPED_EXIT_CODE)


@app.command("fetch-model")
def fetch_model(
    ctx: typer.Context,
    version: Annotated[
        str | None,
        typer.Option(help="The registry version: champion, challenger or a number."),
    ] = None,
    pipeline_run: Annotated[
        str | None,
        typer.Option(help="Instead of --version: the version this pipeline run trained."),
    ] = None,
) -> None:
    """Put a registry version's model files (and its promotion report and model card, when
    its run has them) where `make pipeline` writes them, checked against its sha256 tags."""
    with reported_errors():
        from .model_fetch import fetch_model as run_fetch

        fetched = run_fetch(_config(ctx), version=version, pipeline_run=pipeline_run)
    typer.echo(
        f"fetched version {fetched.version} (sha256 {fetched.model_sha256[:12]}, served by "
        f"{fetched.runtime})"
    )
    for path in fetched.written:
        typer.echo(f"written: {path}")
    for path in fetched.absent:
        # Only worth a line when an older file stays beside the fetched model.
        if path.exists():
            typer.echo(f"not in the version's run, so the existing file stays: {path}")


@app.command("pin-image")
def pin_image(
    ctx: typer.Context,
    image: Annotated[str, typer.Option(help="Image repository, as in the manifests.")],
    digest: Annotated[str, typer.Option(help="Digest of the pushed image: sha256:<hex>.")],
    canary_percent: Annotated[
        int | None,
        typer.Option(help="Traffic share of the new revision; omitted: all the traffic."),
    ] = None,
    model_sha256: Annotated[
        str | None,
        typer.Option(
            help="sha256 the server requires of its model (MODEL_SHA256); omitted: the "
            "registry champion's, from reports/promotion.json."
        ),
    ] = None,
    onnx_sha256: Annotated[
        str | None,
        typer.Option(
            help="sha256 the server requires of model.onnx (ONNX_SHA256); omitted: the "
            "champion's from reports/promotion.json when ONNX Runtime serves it (only when "
            "--model-sha256 is omitted too)."
        ),
    ] = None,
) -> None:
    """Read manifests on stdin, pin the image and the model's sha256s, write them to stdout."""
    with reported_errors():
        import yaml

        from .release import champion_onnx_sha256, champion_sha256, parse_manifests
        from .release import pin_image as pin

        expected = model_sha256 or champion_sha256(_config(ctx))
        # The report's ONNX hash belongs to the report's champion, not to a --model-sha256.
        expected_onnx = onnx_sha256 or (
            None if model_sha256 else champion_onnx_sha256(_config(ctx))
        )
        documents = parse_manifests(typer.get_binary_stream("stdin").read())
        pinned = pin(
            documents,
            image=image,
            digest=digest,
            canary_percent=canary_percent,
            model_sha256=expected,
            onnx_sha256=expected_onnx,
        )
        typer.echo(yaml.safe_dump_all(pinned, sort_keys=False), nl=False)


@app.command("model-card")
def model_card(ctx: typer.Context) -> None:
    """Write docs/model_card.md from the audit record, metrics, fairness and promotion reports."""
    with reported_errors():
        from .model_card import write_model_card

        path = write_model_card(_config(ctx))
    typer.echo(f"model card written to {path}")


@app.command()
def drift(
    ctx: typer.Context,
    current: Annotated[
        Path,
        typer.Argument(help="Batch of current data (.csv or .parquet) holding the model's inputs."),
    ],
) -> None:
    """Compare a batch with the champion's training data; exit 3 on drift, 4 on a bad batch.

    Writes reports/drift.json and reports/drift.html; thresholds: params.yaml `drift`.
    """
    with reported_errors(), batch_errors():
        from .monitoring.drift import run_drift

        config = _config(ctx)
        report = run_drift(config, current)
    typer.echo(report.to_text())
    typer.echo(f"reports: {config.paths.drift_report}, {config.paths.drift_html}")
    if report.drifted:
        raise typer.Exit(code=DRIFT_EXIT_CODE)


@app.command()
def collect(
    ctx: typer.Context,
    logs: Annotated[list[Path], typer.Argument(help="The model server's JSON log files.")],
    output: Annotated[
        Path | None,
        typer.Option(help="Batch to write, .csv or .parquet (default data/current/batch.csv)."),
    ] = None,
) -> None:
    """Turn the model server's JSON request logs into a batch of current data for `drift`."""
    with reported_errors(), batch_errors():
        from .monitoring.collect import collect as run_collect

        collected = run_collect(logs, output or _config(ctx).paths.current_batch)
    skipped = f", {collected.without_features} without inputs skipped" * bool(
        collected.without_features
    )
    typer.echo(
        f"batch written to {collected.path}: {collected.rows} rows from "
        f"{collected.predictions} logged prediction(s){skipped}"
    )


@app.command()
def score(
    ctx: typer.Context,
    input_file: Annotated[
        Path, typer.Argument(metavar="INPUT", help="Rows to score: .csv or .parquet.")
    ],
    output: Annotated[Path, typer.Argument(help="Predictions to write: .csv or .parquet.")],
    model_dir: Annotated[
        Path, typer.Option(help="Folder holding model.joblib and model.json (as `serve`).")
    ] = Path("models"),
    version: Annotated[
        str | None,
        typer.Option(help="A registered version instead: `champion` or a version number."),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            help="Rejected rows, with row number and reason (default: OUTPUT's "
            "name with .rejects before its suffix)."
        ),
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(help="Rows read, checked and scored at a time.")
    ] = 50_000,
    allow_rejects: Annotated[
        bool, typer.Option(help="Exit 0 even when rows were rejected.")
    ] = False,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="A progress bar (default: on a terminal)."),
    ] = None,
) -> None:
    """Score a file in chunks with the verified model or a registered version; exit 5 when
    rows were rejected, 4 when the file cannot be scored."""
    with reported_errors(), batch_errors():
        from .scoring import load_scorer, score_file
        from .terminal_progress import row_progress

        model = load_scorer(_config(ctx), model_dir, version)
        with row_progress(input_file, enabled=progress) as advance:
            summary = score_file(model, input_file, output, rejects, chunk_rows, advance)
    typer.echo(
        f"scored {summary.scored} of {summary.rows} rows of {summary.input} with model version "
        f"{summary.model_version} into {summary.output}"
    )
    if summary.rejects is not None:
        typer.secho(
            f"{summary.rejected} row(s) rejected: {summary.rejects} has each row number and reason",
            err=True,
            fg=typer.colors.YELLOW,
        )
        if not allow_rejects:
            raise typer.Exit(code=ROWS_REJECTED_EXIT_CODE)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    model_dir: Annotated[
        Path, typer.Option(help="Folder holding model.joblib and model.json.")
    ] = Path("models"),
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: $WEB_CONCURRENCY, else 1).")
    ] = None,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(help="Larger request bodies get 413 (default: $MAX_BODY_BYTES, else 1 MiB)."),
    ] = None,
    log_features: Annotated[
        bool | None,
        typer.Option(
            "--log-features/--no-log-features",
            help="Put each prediction's inputs and answers in its log line, for `collect` "
            "(default: $LOG_FEATURES, else off: the inputs may be personal data).",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Port of the Prometheus metrics (GET /metrics), on --host (default: "
            "$METRICS_PORT, else 8082)."
        ),
    ] = None,
) -> None:
    """Serve the verified model over HTTP, and its metrics on a port of their own."""
    with reported_errors():
        from .serving.server import run_server

        run_server(
            host=host,
            port=port,
            model_dir=model_dir,
            workers=workers,
            max_body_bytes=max_body_bytes,
            log_features=log_features,
            metrics_port=metrics_port,
        )


def main(package: str | None = None) -> None:
    """The CLI for the project `package` (`python -m <package>`), named as its console script."""
    from .project import ProjectError, bind, current_project

    if package:
        bind(package)
    try:
        name = current_project().distribution
    except ProjectError as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise SystemExit(exit_codes.FAILED) from None
    app(prog_name=name)
