"""The columns of the dataset, read once from columns.yaml: every other module imports them here.

The pandera schemas (schema.py), the model's feature lists (features.py), the model server's
request validation, drift monitoring and the fairness gate are all derived from this declaration,
so a column is declared once. `make use-data` writes columns.yaml for a team's own data.

Categories are text: whatever a category's values look like in a file (1, 2.0, True), they are
compared as their canonical text ("1", "2", "true"), in training, validation and serving alike.

pandas is imported only by the functions that take frames: the model server's ONNX path reads
this module without it (its image has no pandas).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml

from ..errors import ConfigError
from ..project import current_project

if TYPE_CHECKING:
    import pandas as pd

ColumnKind = Literal["int", "float", "category"]
KINDS: tuple[str, ...] = ("int", "float", "category")
# Points the code at another declaration (one-off experiments) without editing columns.yaml.
DECLARATION_ENV_VAR = "COLUMNS_FILE"

_WHOLE_NUMBER_TEXT = re.compile(r"^([+-]?\d+)\.0*$")


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its type, whether it may be missing, and its allowed values."""

    name: str
    kind: ColumnKind
    description: str
    nullable: bool = False
    min_value: float | None = None
    max_value: float | None = None
    categories: tuple[str, ...] = field(default_factory=tuple)


TaskKind = Literal["binary", "multiclass", "regression"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class LabelSpec:
    """The label and the task it makes: binary (two values, one of them the positive class),
    multiclass (three or more values, the classes) or regression (a number).

    A classification model learns each class as its index: binary 1 is the positive value and 0
    the other; multi-class `i` is `values[i]`.
    """

    name: str
    description: str
    # The classes as text (binary: two, multiclass: three or more); empty for regression.
    values: tuple[str, ...]
    # The binary label's positive value; None for the other tasks.
    positive: str | None = None
    task: TaskKind = "binary"
    # Regression: the range of the label as declared (sample data, the model card).
    min_value: float | None = None
    max_value: float | None = None

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"

    @property
    def negative(self) -> str:
        if self.task != "binary" or self.positive is None:
            raise ValueError(f"label '{self.name}' is {self.task}: it has no negative value")
        return next(value for value in self.values if value != self.positive)

    @property
    def classes(self) -> tuple[str, ...]:
        """The classes in the order of the model's class indices (binary: negative, positive)."""
        if self.task == "binary":
            return (self.negative, str(self.positive))
        return self.values

    def as_column(self) -> ColumnSpec:
        if self.task == "regression":
            return ColumnSpec(
                self.name, "float", self.description, False, self.min_value, self.max_value
            )
        return ColumnSpec(self.name, "category", self.description, categories=self.values)


@dataclass(frozen=True)
class Declaration:
    """Everything columns.yaml says: features, label, an optional protected attribute."""

    features: tuple[ColumnSpec, ...]
    label: LabelSpec
    protected_attribute: ColumnSpec | None = None
    ignored: Mapping[str, str] = field(default_factory=dict)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.features)

    @property
    def category_columns(self) -> tuple[ColumnSpec, ...]:
        """Every column read as text: categorical features, a categorical protected attribute
        and the label."""
        specs = [spec for spec in self.features if spec.kind == "category"]
        if self.protected_attribute is not None and self.protected_attribute.kind == "category":
            specs.append(self.protected_attribute)
        if self.label.is_classification:
            specs.append(self.label.as_column())
        return tuple(specs)

    @property
    def all_columns(self) -> tuple[ColumnSpec, ...]:
        protected = () if self.protected_attribute is None else (self.protected_attribute,)
        return (*self.features, *protected, self.label.as_column())


def _is_pandas_na(value: Any) -> bool:
    # Without pandas loaded there is no pd.NA to meet, and no reason to load it.
    pandas = sys.modules.get("pandas")
    return pandas is not None and value is pandas.NA


def canonical_text(value: Any) -> str | None:
    """The text a category value is compared as: 1, 1.0 and "1.0" are "1"; True is "true"."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or _is_pandas_na(value):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    text = str(value)
    whole = _WHOLE_NUMBER_TEXT.match(text)
    if whole:
        return whole.group(1)
    return text.lower() if text.lower() in ("true", "false") else text


def as_category(series: pd.Series) -> pd.Series:
    """A column as canonical text (missing values stay missing), whatever its dtype.

    Vectorised: the same result as canonical_text on each value, at the cost of a few string
    operations on the whole column.
    """
    import pandas as pd

    missing = series.isna()
    if pd.api.types.is_bool_dtype(series):
        text = series.map({True: "true", False: "false"}).astype(object)
    elif pd.api.types.is_integer_dtype(series):
        text = series.astype(str).astype(object)
    else:
        # str() of each value: 1.0 and "1.0" become "1" and True "true" below.
        text = series.astype(str)
        whole = text.str.match(_WHOLE_NUMBER_TEXT.pattern)
        if whole.any():
            text = text.where(~whole, text.str.replace(r"\.0*$", "", regex=True))
        lowered = text.str.lower()
        boolean = lowered.isin(("true", "false"))
        if boolean.any():
            text = text.where(~boolean, lowered)
        text = text.astype(object)
    return text.where(~missing, np.nan)


def apply_declared_types(
    frame: pd.DataFrame, declaration: Declaration | None = None
) -> pd.DataFrame:
    """`frame` with every declared category column as canonical text; other columns as they are.

    Called on every read of a dataset, so a category whose values look like numbers stays a
    category between stages.
    """
    declaration = declaration or DECLARATION
    out = frame.copy()
    for spec in declaration.category_columns:
        if spec.name in out.columns:
            out[spec.name] = as_category(out[spec.name])
    return out


def binary_label(series: pd.Series, label: LabelSpec | None = None) -> pd.Series:
    """1 where the label is its positive value, else 0 (the classes the model learns)."""
    label = label or LABEL
    return (as_category(series) == label.positive).astype(np.int64)


def encode_label(series: pd.Series, label: LabelSpec | None = None) -> pd.Series:
    """The label as the model learns it: binary 0/1 (1: the positive value), multi-class the
    index of each class in `label.classes` (-1 for a value that is not one), regression float."""
    import pandas as pd

    label = label or LABEL
    if label.task == "binary":
        return binary_label(series, label)
    if label.task == "multiclass":
        index = {value: i for i, value in enumerate(label.classes)}
        codes = as_category(series).map(index)
        return pd.Series(
            codes.fillna(-1).to_numpy(dtype=np.int64), index=series.index, name=series.name
        )
    return pd.to_numeric(series, errors="coerce").astype(np.float64)


def class_names(indices: Any, label: LabelSpec | None = None) -> np.ndarray:
    """The class (as text) of each class index the model predicted."""
    label = label or LABEL
    classes = np.asarray(label.classes, dtype=object)
    return classes[np.asarray(indices, dtype=np.int64)]


def declaration_file() -> Path:
    """columns.yaml of the project's package, or the file COLUMNS_FILE names."""
    named = os.environ.get(DECLARATION_ENV_VAR)
    return Path(named) if named else current_project().declaration_file


def load_declaration(path: Path | None = None) -> Declaration:
    """Read and check columns.yaml; a bad entry raises ConfigError naming the column and key."""
    path = path or declaration_file()
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ConfigError(f"column declaration not found: {path}") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from error
    return parse_declaration(content, source=path.name)


def parse_declaration(content: Any, source: str = "columns.yaml") -> Declaration:
    """A Declaration from the mapping columns.yaml holds."""
    if not isinstance(content, Mapping):
        raise ConfigError(f"{source}: must hold a mapping with label, features")
    features_raw = content.get("features")
    if not isinstance(features_raw, Sequence) or isinstance(features_raw, str) or not features_raw:
        raise ConfigError(f"{source}: 'features' must be a non-empty list of columns")
    features = tuple(
        _column(entry, f"{source}: features[{i}]") for i, entry in enumerate(features_raw)
    )
    protected_raw = content.get("protected_attribute")
    protected = (
        None if protected_raw is None else _column(protected_raw, f"{source}: protected_attribute")
    )
    label = _label(content.get("label"), f"{source}: label")
    names = [spec.name for spec in features]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{source}: features declared twice: {', '.join(duplicates)}")
    for other in (label.name, None if protected is None else protected.name):
        if other is not None and other in names:
            raise ConfigError(
                f"{source}: '{other}' cannot be a feature and the label or protected attribute"
            )
    if protected is not None and protected.name == label.name:
        raise ConfigError(f"{source}: the protected attribute cannot be the label ('{label.name}')")
    ignored = content.get("ignored") or {}
    if isinstance(ignored, Sequence) and not isinstance(ignored, str):
        ignored = {str(name): "" for name in ignored}
    if not isinstance(ignored, Mapping):
        raise ConfigError(f"{source}: 'ignored' must map column names to reasons")
    return Declaration(features, label, protected, {str(k): str(v) for k, v in ignored.items()})


def _column(entry: Any, where: str) -> ColumnSpec:
    if (
        not isinstance(entry, Mapping)
        or not isinstance(entry.get("name"), str)
        or not entry["name"]
    ):
        raise ConfigError(f"{where}: each column needs a 'name'")
    name, kind = entry["name"], entry.get("kind")
    where = f"{where} ('{name}')"
    if kind not in KINDS:
        raise ConfigError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    bounds = {key: entry.get(key) for key in ("min", "max")}
    for key, value in bounds.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(f"{where}: '{key}' must be a number, got {value!r}")
    if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
        raise ConfigError(f"{where}: 'min' {bounds['min']} is above 'max' {bounds['max']}")
    categories = tuple(canonical_text(value) or "" for value in entry.get("categories") or ())
    if kind == "category" and (not categories or "" in categories):
        raise ConfigError(f"{where}: a category column needs its non-empty 'categories'")
    if kind != "category" and categories:
        raise ConfigError(f"{where}: 'categories' is for kind category, not {kind}")
    return ColumnSpec(
        name=name,
        kind=kind,
        description=str(entry.get("description") or name),
        nullable=bool(entry.get("nullable", False)),
        min_value=bounds["min"],
        max_value=bounds["max"],
        categories=categories,
    )


def _label(entry: Any, where: str) -> LabelSpec:
    if (
        not isinstance(entry, Mapping)
        or not isinstance(entry.get("name"), str)
        or not entry["name"]
    ):
        raise ConfigError(f"{where}: needs a 'name'")
    name = entry["name"]
    values = tuple(canonical_text(value) for value in entry.get("values") or ())
    task = entry.get("task")
    if task is None:  # declarations written before tasks: two values make a binary label
        task = "binary" if len(values) == 2 else "multiclass" if len(values) > 2 else None
    if task not in TASKS:
        raise ConfigError(
            f"{where} ('{name}'): 'task' must be one of {', '.join(TASKS)}, got {task!r}"
        )
    description = str(entry.get("description") or name)
    if task == "regression":
        if values or entry.get("positive") is not None:
            raise ConfigError(
                f"{where} ('{name}'): a regression label has no 'values' or 'positive'"
            )
        bounds = {key: entry.get(key) for key in ("min", "max")}
        for key, value in bounds.items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ConfigError(f"{where} ('{name}'): '{key}' must be a number, got {value!r}")
        low, high = bounds["min"], bounds["max"]
        if low is not None and high is not None and low > high:
            raise ConfigError(f"{where} ('{name}'): 'min' {low} is above 'max' {high}")
        return LabelSpec(name, description, (), None, "regression", low, high)
    if None in values or len(set(values)) != len(values):
        raise ConfigError(f"{where} ('{name}'): 'values' must be distinct, non-empty values")
    if task == "multiclass":
        if len(values) < 3:
            raise ConfigError(
                f"{where} ('{name}'): a multiclass label lists its three or more classes in "
                f"'values' (two values make task binary), got {len(values)}"
            )
        if entry.get("positive") is not None:
            raise ConfigError(f"{where} ('{name}'): 'positive' is for a binary label only")
        return LabelSpec(name, description, tuple(str(v) for v in values), None, "multiclass")
    if len(values) != 2:
        raise ConfigError(f"{where} ('{name}'): 'values' must list the label's two distinct values")
    positive = canonical_text(entry.get("positive"))
    if positive is None or positive not in values:
        raise ConfigError(
            f"{where} ('{name}'): 'positive' must be one of "
            f"{', '.join(map(str, values))}, "
            f"got {entry.get('positive')!r}"
        )
    return LabelSpec(
        name=name,
        description=description,
        values=(str(values[0]), str(values[1])),
        positive=positive,
        task="binary",
    )


DECLARATION: Declaration = load_declaration()
FEATURES: tuple[ColumnSpec, ...] = DECLARATION.features
LABEL: LabelSpec = DECLARATION.label
# Kept out of the model's inputs; used only by the fairness gate and its reports. None: no gate.
PROTECTED_ATTRIBUTE: ColumnSpec | None = DECLARATION.protected_attribute

NUMERIC_FEATURES: tuple[str, ...] = tuple(c.name for c in FEATURES if c.kind != "category")
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(c.name for c in FEATURES if c.kind == "category")
FEATURE_NAMES: tuple[str, ...] = tuple(c.name for c in FEATURES)
TASK: TaskKind = LABEL.task
# What the model predicts, in words and as the server's output field.
PROBABILITY_NAME: str = f"{LABEL.name}_probability"
PREDICTION_MEANING: str = {
    "binary": f"probability that {LABEL.name} is {LABEL.positive}",
    "multiclass": f"class of {LABEL.name} ({', '.join(LABEL.values)})",
    "regression": f"value of {LABEL.name}",
}[LABEL.task]


def declaration_to_yaml(declaration: Declaration, header: str = "") -> str:
    """columns.yaml text for `declaration` (what parse_declaration reads back)."""

    def column(spec: ColumnSpec) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": spec.name,
            "kind": spec.kind,
            "description": spec.description,
        }
        if spec.nullable:
            entry["nullable"] = True
        if spec.min_value is not None:
            entry["min"] = spec.min_value
        if spec.max_value is not None:
            entry["max"] = spec.max_value
        if spec.categories:
            entry["categories"] = list(spec.categories)
        return entry

    label = declaration.label
    label_entry: dict[str, Any] = {
        "name": label.name,
        "task": label.task,
        "description": label.description,
    }
    if label.task == "regression":
        label_entry.update(
            {k: v for k, v in (("min", label.min_value), ("max", label.max_value)) if v is not None}
        )
    else:
        label_entry["values"] = list(label.values)
    if label.task == "binary":
        label_entry["positive"] = label.positive
    content = {
        "label": label_entry,
        "protected_attribute": None
        if declaration.protected_attribute is None
        else column(declaration.protected_attribute),
        "features": [column(spec) for spec in declaration.features],
        "ignored": dict(declaration.ignored),
    }
    body = yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=100)
    return header + body
