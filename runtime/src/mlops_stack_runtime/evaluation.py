"""What an evaluation produces: the scored test set that metrics, gates and fairness read.

It sits below evaluate.py (the stage), gates.py and fairness.py, so those three import it and
not each other's stage code: the package has no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .tasks import DECISION_THRESHOLD, DIGITS

__all__ = ["DECISION_THRESHOLD", "DIGITS", "Evaluation"]


@dataclass(frozen=True)
class Evaluation:
    """Predictions of a model on the test set, with everything a gate may need.

    As tasks.py defines them: `y_true` is the label as the model learns it (binary 0/1,
    multi-class the class index, regression the value); `scores` what the model gives (binary the
    positive class's probability, multi-class one probability per class, regression the value);
    `y_pred` the decision (binary class at the threshold, multi-class class index, regression the
    value).
    """

    # The test set as read, protected attribute included (for fairness gates).
    test: pd.DataFrame
    y_true: np.ndarray
    scores: np.ndarray
    y_pred: np.ndarray
    metrics: dict[str, float]

    @property
    def y_prob(self) -> np.ndarray:
        """Binary: the positive class's probability per row (the scores)."""
        return self.scores
