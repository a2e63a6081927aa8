"""`use-data`: adopt a team's CSV or Parquet file as the project's data, in one step.

Infers columns.yaml from the file (infer.py), puts the file under DVC in data/, points
params.yaml at the built-in `file` source and adds the file to the `prepare` stage. Everything is
checked before anything is written, and a failure while writing restores every file it touched,
so a refused adoption leaves the repository as it was. Nothing is committed or staged.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import DataSourceError
from ..project import current_project
from .columns import ColumnSpec, Declaration, LabelSpec, declaration_to_yaml
from .fetch import run_dvc
from .infer import Inference, infer_declaration
from .sources import FILE_SUFFIXES, read_data_file

if TYPE_CHECKING:
    from ..config import Config

DATA_DIR = "data"
HEADER = """\
# The dataset's columns, declared once: the data schema (schema.py), the model's features
# (features.py), the model server's request validation, drift monitoring and the fairness gate all
# read this file. Written by `make use-data` from {source}; yours to edit (narrow a range, write
# the descriptions, drop a feature). kind: int (whole, never missing), float, category (text).
# The label's task (binary, multiclass, regression) decides the model, its metrics and outputs.
"""


@dataclass(frozen=True)
class Adoption:
    inference: Inference
    data_path: str  # relative to the repo root
    replaced: str | None  # the data file of the previous adoption, if another


def use_data(
    config: Config,
    file: Path,
    label: str,
    positive: str | None = None,
    protected: str | None = None,
    max_category_levels: int | None = None,
    task: str | None = None,
) -> Adoption:
    """Adopt `file`; DataSourceError (and nothing written) when it cannot be used.

    `task` (binary, multiclass, regression) overrides the task inferred from the label's values,
    and is checked against them all the same."""
    file = file.expanduser().resolve()
    if not file.is_file():
        raise DataSourceError(f"{file}: no such file")
    if file.suffix.lower() not in FILE_SUFFIXES:
        raise DataSourceError(f"{file}: a data file is .csv or .parquet, not '{file.suffix}'")
    levels = config.data.max_category_levels if max_category_levels is None else max_category_levels
    frame = _read(file)
    inference = infer_declaration(
        frame,
        label,
        positive,
        protected,
        levels,
        task=task,
        max_classes=config.data.max_classes,
        test_size=config.data.test_size,
    )
    declaration = inference.declaration
    # Read again as the `file` source will (categories as their text in the file, e.g. "01"),
    # and check the result against the declaration before anything is written.
    # (Types, ranges and categories are the observed ones, so the data meet the declaration;
    # the validate stage checks that on every run.)
    declaration = _with_file_categories(declaration, read_data_file(file, declaration))
    inference = replace(inference, declaration=declaration)
    relative = f"{DATA_DIR}/{file.name}"
    previous = config.data.path if config.data.source == "file" else None
    with _Transaction(config.root) as transaction:
        target = config.root / relative
        if previous and previous != relative:
            _forget_previous(config.root, previous, transaction)
        if target.resolve() != file:
            transaction.created(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
        transaction.touch(target.parent / ".gitignore")
        transaction.created(target.with_name(target.name + ".dvc"))
        _dvc("add", relative, cwd=config.root)
        declaration_path = current_project().declaration_file
        transaction.touch(declaration_path)
        declaration_path.write_text(
            declaration_to_yaml(declaration, HEADER.format(source=file.name)), encoding="utf-8"
        )
        transaction.touch(config.params_file)
        _set_params(config.params_file, relative)
        dvc_yaml = config.root / "dvc.yaml"
        transaction.touch(dvc_yaml)
        _set_prepare_deps(dvc_yaml, relative, previous)
    return Adoption(inference, relative, previous if previous != relative else None)


def _read(file: Path) -> pd.DataFrame:
    try:
        if file.suffix.lower() == ".csv":
            return pd.read_csv(file, low_memory=False)
        return pd.read_parquet(file)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise DataSourceError(f"{file} could not be read: {error}") from error


def _with_file_categories(declaration: Declaration, typed: pd.DataFrame) -> Declaration:
    """Categories, and a multi-class label's classes, as the file source reads them (a CSV's
    "01" stays "01")."""

    def observed(spec: ColumnSpec) -> ColumnSpec:
        if spec.kind != "category":
            return spec
        values = typed[spec.name].dropna().unique()  # read_data_file gives canonical text
        ordered = tuple(v for v in spec.categories if v in set(values))
        extra = tuple(sorted(set(values) - set(ordered)))
        return ColumnSpec(
            spec.name, "category", spec.description, spec.nullable, categories=ordered + extra
        )

    protected = declaration.protected_attribute
    label = declaration.label
    if label.task == "multiclass":
        classes = observed(label.as_column()).categories
        label = LabelSpec(label.name, label.description, classes, None, "multiclass")
    return Declaration(
        tuple(observed(spec) for spec in declaration.features),
        label,
        None if protected is None else observed(protected),
        declaration.ignored,
    )


def _forget_previous(root: Path, previous: str, transaction: _Transaction) -> None:
    """Untrack and delete the previous adoption's file (its content stays in the DVC cache)."""
    old = root / previous
    pointer = old.with_name(old.name + ".dvc")
    transaction.touch(pointer)
    transaction.touch(old.parent / ".gitignore")
    transaction.touch(old)
    if pointer.is_file():
        _dvc("remove", str(pointer.relative_to(root)), cwd=root)
    old.unlink(missing_ok=True)


def _dvc(*args: str, cwd: Path) -> None:
    result = run_dvc(cwd, *args, "--quiet")
    if result.returncode != 0:
        raise DataSourceError(
            f"`dvc {' '.join(args)}` failed: {(result.stderr or result.stdout).strip()}"
        )


def _yaml() -> Any:
    from ruamel.yaml import YAML  # DVC's own YAML library: keeps comments and layout

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _set_params(params_file: Path, data_path: str) -> None:
    yaml = _yaml()
    params = yaml.load(params_file.read_text(encoding="utf-8"))
    data = params["data"]
    data["source"] = "file"
    if "path" in data:
        data["path"] = data_path
    else:
        data.insert(list(data).index("source") + 1, "path", data_path)
    with params_file.open("w", encoding="utf-8") as stream:
        yaml.dump(params, stream)


def _set_prepare_deps(dvc_yaml: Path, data_path: str, previous: str | None) -> None:
    yaml = _yaml()
    pipeline = yaml.load(dvc_yaml.read_text(encoding="utf-8"))
    prepare = pipeline["stages"]["prepare"]
    deps = prepare["deps"]
    for stale in [d for d in deps if isinstance(d, str) and d == previous]:
        deps.remove(stale)
    if data_path not in deps:
        deps.insert(0, data_path)
    params = prepare.setdefault("params", [])
    if "data.path" not in params:
        params.append("data.path")
    with dvc_yaml.open("w", encoding="utf-8") as stream:
        yaml.dump(pipeline, stream)


class _Transaction:
    """Remembers files before they change; on an exception puts every one back as it was."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._saved: dict[Path, bytes | None] = {}

    def touch(self, path: Path) -> None:
        if path not in self._saved:
            self._saved[path] = path.read_bytes() if path.is_file() else None

    def created(self, path: Path) -> None:
        self.touch(path)

    def __enter__(self) -> _Transaction:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if error is None:
            return
        for path, content in self._saved.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
