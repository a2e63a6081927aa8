"""What an evaluation produces: the scored test set that metrics, gates and fairness read.

It sits below evaluate.py (the stage), gates.py and fairness.py, so those three import it and
not each other's stage code: the package has no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# Probability at or above which the positive class is predicted, unless params.yaml sets
# `model.threshold`.
DECISION_THRESHOLD = 0.5
# Enough digits to compare runs, few enough to keep metrics diffs readable.
DIGITS = 6


@dataclass(frozen=True)
class Evaluation:
    """Predictions of a model on the test set, with everything a gate may need."""

    # The test set as read, protected attribute included (for fairness gates).
    test: pd.DataFrame
    y_true: np.ndarray
    y_prob: np.ndarray
    y_pred: np.ndarray
    metrics: dict[str, float]
