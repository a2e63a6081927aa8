"""What the model relies on: permutation importance on the held-out set (scikit-learn).

Each feature's column is shuffled `PERMUTATION_REPEATS` times and the model scored again: the
drop in the task's primary metric (binary ROC AUC, multi-class macro F1, regression RMSE, turned
so that a drop is positive) is how much the model needs that column. It works the same for every
model family, reads the declared features, and is measured on the rows the gates judge. The
`evaluate` stage writes it to reports/importance.json, logs it to the model's MLflow run, and the
model card shows it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sklearn.inspection import permutation_importance

from . import tasks
from .data.columns import FEATURE_NAMES, LABEL, encode_label
from .errors import ArtifactIntegrityError
from .evaluation import DECISION_THRESHOLD

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from .data.columns import LabelSpec

PERMUTATION_REPEATS = 5
SEED = 0
DIGITS = 4
# Features the console shows (the file and the model card have them all).
SHOWN_FEATURES = 10


@dataclass(frozen=True)
class FeatureImportance:
    name: str
    mean: float  # the primary metric's mean drop when the column is shuffled
    std: float


@dataclass(frozen=True)
class Importance:
    metric: str  # the task's primary metric
    repeats: int
    rows: int
    features: tuple[FeatureImportance, ...]  # the largest drop first

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "repeats": self.repeats,
            "rows": self.rows,
            "features": [asdict(feature) for feature in self.features],
        }

    def to_text(self, limit: int = SHOWN_FEATURES) -> str:
        """The `limit` features the model relies on most, one `name drop ± std` line each."""
        shown = self.features[:limit]
        width = max([7, *(len(feature.name) for feature in shown)])
        lines = [
            f"what the model relies on ({self.metric} drop when a column is shuffled, "
            f"{self.rows} held-out rows; reports/importance.json):"
        ]
        lines += [
            f"  {feature.name:<{width}} {feature.mean:+.4f} ± {feature.std:.4f}"
            for feature in shown
        ]
        if len(self.features) > limit:
            lines.append(f"  ... and {len(self.features) - limit} more")
        return "\n".join(lines)


def permutation_importances(
    model: Any,
    test: pd.DataFrame,
    threshold: float = DECISION_THRESHOLD,
    label: LabelSpec | None = None,
    feature_names: tuple[str, ...] | None = None,
) -> Importance:
    """The drop in the primary metric when each feature is shuffled (seeded, so the same model
    and data give the same figures)."""
    label = label or LABEL
    names = list(feature_names or FEATURE_NAMES)
    task = tasks.task_metrics(label)
    features, truth = test[names], encode_label(test[label.name], label)
    sign = 1.0 if task.higher_is_better else -1.0

    def score(estimator: Any, x: pd.DataFrame, y: Any) -> float:
        scores = tasks.model_scores(estimator, x, label)
        return sign * tasks.compute_metrics(y, scores, label, threshold)[task.primary]

    result = permutation_importance(
        model,
        features,
        truth,
        scoring=score,
        n_repeats=PERMUTATION_REPEATS,
        random_state=SEED,
        n_jobs=1,
    )
    found = [
        FeatureImportance(name, round(float(mean), DIGITS), round(float(std), DIGITS))
        for name, mean, std in zip(
            names, result.importances_mean, result.importances_std, strict=True
        )
    ]
    found.sort(key=lambda feature: (-feature.mean, feature.name))
    return Importance(task.primary, PERMUTATION_REPEATS, len(features), tuple(found))


def write_importance(importance: Importance, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(importance.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def read_importance(path: Path) -> Importance | None:
    """reports/importance.json, or None when the pipeline has not written it yet."""
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        features = tuple(
            FeatureImportance(str(item["name"]), float(item["mean"]), float(item["std"]))
            for item in content["features"]
        )
        return Importance(
            str(content["metric"]), int(content["repeats"]), int(content["rows"]), features
        )
    except (ValueError, OSError, KeyError, TypeError) as error:
        raise ArtifactIntegrityError(
            f"{path} cannot be read ({error}): `make pipeline` writes it again"
        ) from error
