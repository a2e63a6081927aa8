"""Batch scoring (`make score`): a CSV or Parquet file in, predictions out, in chunks.

Each row is held to the model server's rules (serving/validation.py, read from columns.yaml): a
row that breaks one goes to the rejects file with its row number and the reason, never silently
dropped. The file is read and written a chunk at a time, so a file larger than memory scores.
Every output row carries the input's columns that are not model inputs (an ID, the label, the
protected attribute: whatever is there, unchanged), the prediction, the model version and the
input file's sha256, so predictions join back to their rows and to what produced them. The
prediction's columns are the model server's outputs for the label's task (serving/outputs.py):
binary `<label>_probability` and `predicted_class`; multi-class `predicted_<label>` and
`<label>_probability_<class>` per class; regression `predicted_<label>`.
Output and rejects appear whole when scoring ends, never half-written.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from .data.columns import FEATURES, LABEL, ColumnSpec, LabelSpec, as_category
from .data.csv_files import TABLE_SUFFIXES
from .errors import BatchError, PipelineError
from .serving.outputs import Outputs
from .serving.validation import RequestError, check_column

if TYPE_CHECKING:
    from .config import Config
    from .serving.batching import Columns, Prediction

log = logging.getLogger(__name__)

# Columns every output row gets besides the carried ones; a carried column of the same name
# would be ambiguous, so such an input is refused.
VERSION_COLUMN = "model_version"
HASH_COLUMN = "input_sha256"


def output_columns(label: LabelSpec) -> tuple[str, ...]:
    """The columns scoring adds to each row for `label`'s task."""
    return (*Outputs(label).names, VERSION_COLUMN, HASH_COLUMN)


OUTPUT_COLUMNS = output_columns(LABEL)
ROW_COLUMN, REASON_COLUMN = "row", "reason"
DEFAULT_CHUNK_ROWS = 50_000


class Scorer(Protocol):
    """What scoring needs of a model: the version it reports, the label it predicts and the
    inputs it takes (the columns.yaml it was loaded with), and predictions on checked inputs."""

    @property
    def version(self) -> str: ...

    @property
    def label(self) -> LabelSpec: ...

    @property
    def features(self) -> Sequence[ColumnSpec]: ...

    def predict(self, columns: Columns) -> Prediction: ...


@dataclass(frozen=True)
class ScoreSummary:
    input: Path
    output: Path
    rejects: Path | None  # None when no row was rejected
    rows: int
    scored: int
    rejected: int
    model_version: str
    input_sha256: str


# --- reading and writing in chunks ----------------------------------------------------------------
def check_paths(input_path: Path, output: Path, rejects: Path) -> None:
    """BatchError before any work: formats by suffix, an existing input, distinct outputs."""
    for path in (input_path, output, rejects):
        if path.suffix.lower() not in TABLE_SUFFIXES:
            found = f"'{path.suffix}'" if path.suffix else "a name without one"
            raise BatchError(f"{path}: scoring reads and writes .csv or .parquet, not {found}")
    if not input_path.is_file():
        raise BatchError(f"{input_path}: no such file")
    resolved = {input_path.resolve(), output.resolve(), rejects.resolve()}
    if len(resolved) != 3:
        raise BatchError("the input, the output and the rejects file must be three different files")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() != ".csv"


def read_chunks(
    path: Path, chunk_rows: int, features: Sequence[ColumnSpec] = FEATURES
) -> Iterator[pd.DataFrame]:
    """The file's rows, `chunk_rows` at a time. CSV: columns that are not numeric model inputs
    are read as text (an ID "007" stays "007"); an empty field is missing. Category features are
    compared as training compares them (data/columns.py `as_category`): "15000.0", as pandas
    writes an integer code of a column with gaps, is the category "15000"."""
    categories = [spec.name for spec in features if spec.kind == "category"]
    try:
        if is_parquet(path):
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield _canonical_categories(batch.to_pandas(), categories)
            return
        header = pd.read_csv(path, nrows=0).columns
        numeric = {spec.name for spec in features if spec.kind != "category"}
        text = {name: str for name in header if name not in numeric}
        for chunk in pd.read_csv(
            path, chunksize=chunk_rows, dtype=text, keep_default_na=False, na_values=[""]
        ):
            yield _canonical_categories(chunk, categories)
    # pandas' and pyarrow's parse errors are ValueErrors; a file that is not text fails to decode.
    except (ValueError, OSError) as error:
        raise BatchError(f"{path} cannot be read: {error}") from error


def _canonical_categories(chunk: pd.DataFrame, categories: Sequence[str]) -> pd.DataFrame:
    for name in categories:
        if name in chunk.columns:
            chunk[name] = as_category(chunk[name])
    return chunk


class ChunkWriter:
    """Appends frames to a CSV or Parquet file written beside `path`, moved there by `close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        self.rows = 0
        self._parquet: Any = None
        self._schema: Any = None
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, frame: pd.DataFrame) -> None:
        if is_parquet(self.path):
            import pyarrow as pa
            import pyarrow.parquet as pq

            try:
                table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
            except (ValueError, TypeError) as error:  # ArrowInvalid, ArrowTypeError
                raise BatchError(
                    f"{self.path}: rows cannot be written as Parquet: {error}"
                ) from None
            if self._parquet is None:
                self._schema = table.schema
                self._parquet = pq.ParquetWriter(self.partial, table.schema)
            self._parquet.write_table(table)
        else:
            frame.to_csv(
                self.partial, mode="a" if self.rows else "w", header=not self.rows, index=False
            )
        self.rows += len(frame)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self.partial.replace(self.path)

    def discard(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self.partial.unlink(missing_ok=True)


# --- checking rows --------------------------------------------------------------------------------
def plain_values(spec: ColumnSpec, series: pd.Series) -> list[Any]:
    """Python scalars as the server sees them in JSON: int, float, str, None for missing.

    A CSV column of numbers with one bad value reads as text: each value that is a number is
    read back as one, so only the bad value is refused.
    """
    values = series.astype(object).where(series.notna(), None).tolist()
    plain = [v.item() if isinstance(v, np.generic) else v for v in values]
    if spec.kind != "category":
        plain = [_number(v) if type(v) is str else v for v in plain]
    return plain


def _number(text: str) -> Any:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def check_chunk(
    frame: pd.DataFrame, features: Sequence[ColumnSpec] = FEATURES
) -> tuple[Columns, np.ndarray, dict[int, str]]:
    """The model's input columns of the rows that pass, their positions, and each bad row's reason.

    A column is checked whole first (the common case: every value passes); only a column that
    fails is checked value by value, to find every row it rejects and why.
    """
    reasons: dict[int, str] = {}
    values = {spec.name: plain_values(spec, frame[spec.name]) for spec in features}
    passed: dict[str, np.ndarray] = {}
    for spec in features:
        try:
            passed[spec.name] = check_column(spec, values[spec.name], _where(spec))
        except RequestError:
            for index, value in enumerate(values[spec.name]):
                reason = _row_reason(spec, value)
                if reason and index not in reasons:
                    reasons[index] = reason
    if not reasons:
        return passed, np.arange(len(frame)), reasons
    good = np.array([i for i in range(len(frame)) if i not in reasons], dtype=np.int64)
    columns = {
        spec.name: passed[spec.name][good]
        if spec.name in passed
        else check_column(spec, [values[spec.name][i] for i in good], _where(spec))
        for spec in features
    }
    return columns, good, reasons


def _where(spec: ColumnSpec) -> Callable[[int], str]:
    return lambda _index: spec.name


def _row_reason(spec: ColumnSpec, value: Any) -> str | None:
    try:
        check_column(spec, [value], _where(spec))
    except RequestError as error:
        return error.message
    return None


# --- the job --------------------------------------------------------------------------------------
def score_file(
    model: Scorer,
    input_path: Path,
    output: Path,
    rejects: Path | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
) -> ScoreSummary:
    """Score every row of `input_path` into `output`; rejected rows go to `rejects`.

    `rejects` defaults to `<output stem>.rejects<suffix>`; it is written only when a row was
    rejected (an older one is removed). `progress` is called with the rows done after each chunk.
    """
    rejects = rejects or output.with_name(f"{output.stem}.rejects{output.suffix}")
    if chunk_rows < 1:
        raise BatchError(f"the chunk size must be at least 1 row, got {chunk_rows}")
    check_paths(input_path, output, rejects)
    input_sha256 = file_sha256(input_path)
    scored_writer, rejects_writer = ChunkWriter(output), ChunkWriter(rejects)
    rows = 0
    no_rows: pd.DataFrame | None = None  # the output's columns, for a file with no row scored
    outputs = Outputs(model.label)
    added = output_columns(model.label)
    features = tuple(model.features)
    try:
        for chunk in read_chunks(input_path, chunk_rows, features):
            _check_columns(chunk, input_path, added, features)
            columns, good, reasons = check_chunk(chunk, features)
            carried = chunk.drop(columns=[spec.name for spec in features])
            if no_rows is None:
                no_rows = carried.iloc[:0].assign(
                    **{name: pd.Series(dtype=object) for name in added}
                )
            if len(good):
                scores, decision = model.predict(columns)
                scored = carried.iloc[good].reset_index(drop=True)
                for name, values in outputs.columns(scores, decision).items():
                    scored[name] = values
                scored[VERSION_COLUMN] = model.version
                scored[HASH_COLUMN] = input_sha256
                scored_writer.write(scored)
            if reasons:
                bad = sorted(reasons)
                rejected = chunk.iloc[bad].reset_index(drop=True)
                # The features as text: a rejected value may be text in a number column in one
                # chunk and a number in the next, which one Parquet schema cannot hold.
                rejected = rejected.astype({spec.name: "string" for spec in features})
                rejected.insert(0, REASON_COLUMN, [reasons[i] for i in bad])
                # Row numbers count data rows from 1, as a spreadsheet shows them under the header.
                rejected.insert(0, ROW_COLUMN, [rows + i + 1 for i in bad])
                rejects_writer.write(rejected)
            rows += len(chunk)
            if progress:
                progress(rows)
        if no_rows is None or rows == 0:
            raise BatchError(f"{input_path} holds no rows to score")
        if scored_writer.rows == 0:
            scored_writer.write(no_rows)  # every row was rejected
        scored_writer.close()
        if rejects_writer.rows:
            rejects_writer.close()
        else:
            rejects_writer.discard()
            rejects.unlink(missing_ok=True)
    except BaseException:
        scored_writer.discard()
        rejects_writer.discard()
        raise
    summary = ScoreSummary(
        input=input_path,
        output=output,
        rejects=rejects if rejects_writer.rows else None,
        rows=rows,
        scored=scored_writer.rows,
        rejected=rejects_writer.rows,
        model_version=model.version,
        input_sha256=input_sha256,
    )
    log.info("scored %s: %d rows, %d rejected", input_path, rows, summary.rejected)
    return summary


def _check_columns(
    chunk: pd.DataFrame, source: Path, added: tuple[str, ...], features: Sequence[ColumnSpec]
) -> None:
    missing = [spec.name for spec in features if spec.name not in chunk.columns]
    if missing:
        raise BatchError(f"{source} lacks the model input(s) {', '.join(missing)}")
    clashing = [name for name in added if name in chunk.columns]
    if clashing:
        raise BatchError(
            f"{source} already has column(s) {', '.join(clashing)}, which scoring writes:"
            " rename them (or score the original input)"
        )


# --- the models it scores with --------------------------------------------------------------------
@dataclass(frozen=True)
class RegistryModel:
    """A registered version of the model, loaded from the MLflow registry."""

    version: str
    pipeline: Any
    threshold: float
    label: LabelSpec = LABEL
    features: tuple[ColumnSpec, ...] = FEATURES

    def predict(self, columns: Columns) -> Prediction:
        from .serving.model import predict_checked

        names = [spec.name for spec in self.features]
        return predict_checked(self.pipeline, columns, names, self.threshold, self.label)


def load_scorer(config: Config, model_dir: Path, version: str | None) -> Scorer:
    """The verified model of `model_dir` (as the server loads it), or a registered version:
    `champion` (the version holding that alias) or a version number, verified against the
    version's model_sha256 tag (Registry.load_verified_model): ArtifactIntegrityError, and
    nothing unpickled, when the registered file changed or nothing records its sha256."""
    if version is None:
        from .serving.model import ServedModel

        return ServedModel.load(model_dir)
    from .registry import CHAMPION, Registry, version_threshold

    if version != CHAMPION and not (version.isdigit() and int(version) > 0):
        raise PipelineError(
            f"the model version is '{CHAMPION}' or a version number, not {version!r}"
        )
    registry = Registry(config)
    name = config.mlflow.registered_model
    if version == CHAMPION:
        found = registry.aliased(name, CHAMPION)
        if found is None:
            raise PipelineError(
                f"'{name}' has no champion in {registry.location} yet: `make promote`"
            )
    else:
        found = registry.version(name, int(version))
    # Checked against the version's model_sha256 tag before anything is unpickled.
    pipeline = registry.load_verified_model(found)
    from .serving.model import check_task

    # A version trained for another task than the declared label's is refused, as `serve` does.
    check_task(pipeline, LABEL, f"version {found.version} of '{name}'")
    threshold = version_threshold(found, config.model.fixed_threshold)
    return RegistryModel(str(found.version), pipeline, threshold)
