"""The checks before training, each on a frame built to have (or lack) one problem.

The frames are declared as `use-data` declares them (infer.py), so the checks read the same
declarations a team's repository holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_stack_runtime.config import SplitSettings
from mlops_stack_runtime.data.checks import DataWarning, check_data
from mlops_stack_runtime.data.columns import Declaration
from mlops_stack_runtime.data.infer import infer_declaration

from . import task_declarations

ROWS = 600


def applicants(seed: int = 0, rows: int = ROWS) -> pd.DataFrame:
    """Income and age decide a fair coin's odds; nothing else is wrong with them."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, rows).round(1)
    age = rng.integers(18, 80, rows)
    odds = 1 / (1 + np.exp(-(income - 50) / 10))
    return pd.DataFrame(
        {
            "income": income,
            "age": age,
            "region": rng.choice(["north", "south", "east"], rows),
            "approved": np.where(rng.random(rows) < odds, "yes", "no"),
        }
    )


def declared(frame: pd.DataFrame, **options: str) -> Declaration:
    return infer_declaration(frame, "approved", positive="yes", **options).declaration


def kinds(warnings: tuple[DataWarning, ...]) -> list[tuple[str, str]]:
    return [(warning.kind, warning.column) for warning in warnings]


def test_clean_data_raise_nothing() -> None:
    frame = applicants()
    assert check_data(frame, declared(frame)) == ()


def test_an_id_repeated_over_rows_suggests_a_grouped_split() -> None:
    frame = applicants().assign(customer_id=[1000 + index // 4 for index in range(ROWS)])
    warnings = check_data(frame, declared(frame))
    assert kinds(warnings) == [("repeated_key", "customer_id"), ("identifier", "customer_id")]
    grouped, identifier = warnings
    assert str(grouped) == (
        "customer_id: rows repeat its values: rows of one value belong together, and a random "
        "split puts them on both sides (150 values, 4.0 rows each on average); set data.split "
        "to {kind: group, group_by: customer_id} in params.yaml"
    )
    assert identifier.figure == f"150 distinct values in {ROWS} rows"
    assert identifier.setting == "move it from features to ignored in data/columns.yaml"
    # Split by it, the repeated key is handled; as a feature it is still an identifier.
    split = SplitSettings(kind="group", group_by="customer_id")
    assert kinds(check_data(frame, declared(frame), split)) == [("identifier", "customer_id")]


@pytest.mark.parametrize("name", ["id", "CustomerID", "order_no", "account-key", "rownames"])
def test_identifiers_are_known_by_their_name(name: str) -> None:
    frame = applicants().assign(**{name: [index // 2 for index in range(ROWS)]})
    assert ("repeated_key", name) in kinds(check_data(frame, declared(frame)))


@pytest.mark.parametrize("name", ["idea", "valid", "keyboard", "width"])
def test_words_ending_like_an_id_are_no_identifier(name: str) -> None:
    frame = applicants().assign(**{name: [index // 2 for index in range(ROWS)]})
    assert check_data(frame, declared(frame)) == ()


def test_codes_are_identifiers_whatever_their_name() -> None:
    frame = applicants().assign(ad=[f"AD-{index // 2:05d}" for index in range(ROWS)])
    declaration = declared(frame)
    warnings = check_data(frame, declaration)
    assert ("repeated_key", "ad") in kinds(warnings)
    # Left out by use-data (too many text values), it is no feature: no identifier warning.
    assert "ad" not in declaration.feature_names
    assert ("identifier", "ad") not in kinds(warnings)


def test_a_category_with_few_codes_is_no_identifier() -> None:
    frame = applicants().assign(branch_id=[index % 12 for index in range(ROWS)])
    assert check_data(frame, declared(frame)) == ()


def test_a_date_column_suggests_a_time_split() -> None:
    days = pd.date_range("2023-03-01", periods=ROWS, freq="D").strftime("%Y-%m-%d")
    frame = applicants().assign(applied=days)
    (warning,) = check_data(frame, declared(frame))
    assert str(warning) == (
        "applied: dates: no feature as they are, and the honest test of a model that will score "
        "later rows is one on the latest period (from 2023-03-01 to 2024-10-20); set data.split "
        "to {kind: time, time_column: applied} in params.yaml"
    )
    split = SplitSettings(kind="time", time_column="applied")
    assert check_data(frame, declared(frame), split) == ()
    # Typed dates (Parquet) and day-first text are dates too.
    typed = frame.assign(applied=pd.to_datetime(frame["applied"]))
    assert kinds(check_data(typed, declared(frame))) == [("date", "applied")]
    european = frame.assign(applied=pd.to_datetime(days).strftime("%d/%m/%Y"))
    assert kinds(check_data(european, declared(frame))) == [("date", "applied")]


def test_text_with_a_few_dates_is_no_date_column() -> None:
    notes = ["2024-01-01"] * 10 + ["called back"] * (ROWS - 10)
    frame = applicants().assign(note=notes)
    assert check_data(frame, declared(frame)) == ()


def test_a_feature_that_is_the_label_in_other_words_is_a_leak() -> None:
    frame = applicants()
    # Recorded after the decision: the letter sent is the label, with a few letters lost.
    frame["letter"] = np.where(frame["approved"] == "yes", "welcome", "regret")
    warnings = check_data(frame, declared(frame))
    assert kinds(warnings) == [("leakage", "letter")]
    assert warnings[0].figure == "ROC AUC 1.000 from this column alone, cross-validated"
    # A number that crosses over at the outcome leaks as well, whatever its direction.
    frame = applicants()
    frame["days_to_decision"] = np.where(frame["approved"] == "yes", 2.0, 9.0) + np.arange(ROWS) % 3
    assert kinds(check_data(frame, declared(frame))) == [("leakage", "days_to_decision")]


def test_a_strong_but_imperfect_feature_is_no_leak() -> None:
    frame = applicants()
    rng = np.random.default_rng(1)
    flips = rng.random(ROWS) < 0.05
    agreed = np.where(frame["approved"] == "yes", "welcome", "regret")
    frame["letter"] = np.where(flips, np.where(agreed == "welcome", "regret", "welcome"), agreed)
    assert check_data(frame, declared(frame)) == ()


def test_leaks_are_found_for_every_task() -> None:
    regression = task_declarations.regression()
    from sklearn.datasets import load_diabetes, load_iris

    frame = load_diabetes(as_frame=True).frame
    leaking = frame.assign(recorded=frame["target"] * 2 + 1)
    declaration = infer_declaration(leaking, "target").declaration
    assert regression.label.task == declaration.label.task == "regression"
    warnings = check_data(leaking, declaration)
    assert kinds(warnings) == [("leakage", "recorded")]
    assert warnings[0].figure.startswith("R² 0.99")
    iris = task_declarations.iris_frame()
    leaking = iris.assign(tag=iris["target"].str.upper())
    declaration = infer_declaration(leaking, "target").declaration
    warnings = check_data(leaking, declaration)
    assert kinds(warnings) == [("leakage", "tag")]
    assert warnings[0].figure == "balanced accuracy 1.000 from this column alone, cross-validated"
    assert load_iris  # the classes are the species' names, as task_declarations reads them


def test_a_proxy_of_the_protected_attribute_is_named_with_its_score() -> None:
    frame = applicants()
    rng = np.random.default_rng(2)
    frame["group"] = rng.choice(["a", "b"], ROWS)
    names = {"a": ["Emily", "Anne", "Jill"], "b": ["Jamal", "Tyrone", "Darnell"]}
    frame["first_name"] = [rng.choice(names[group]) for group in frame["group"]]
    warnings = check_data(frame, declared(frame, protected="group"))
    assert kinds(warnings) == [("proxy", "first_name")]
    assert str(warnings[0]) == (
        "first_name: predicts the protected attribute 'group' on its own: the model can use "
        "group through it, though group is no input (ROC AUC 1.000 from this column alone, "
        "cross-validated); move it to ignored in data/columns.yaml, or keep it and watch the "
        "fairness report"
    )


def test_a_proxy_of_an_attribute_with_many_groups() -> None:
    frame = applicants()
    rng = np.random.default_rng(3)
    frame["origin"] = rng.choice(["p", "q", "r", "s"], ROWS)
    frame["district"] = frame["origin"].map({"p": 1.0, "q": 2.0, "r": 3.0, "s": 4.0})
    frame["district"] += rng.normal(0, 0.1, ROWS)
    warnings = check_data(frame, declared(frame, protected="origin"))
    assert kinds(warnings) == [("proxy", "district")]


def test_an_unrelated_feature_is_no_proxy() -> None:
    frame = applicants()
    frame["group"] = np.random.default_rng(4).choice(["a", "b"], ROWS)
    assert check_data(frame, declared(frame, protected="group")) == ()


def test_a_rare_positive_class_is_named_with_its_share() -> None:
    frame = applicants()
    frame["approved"] = np.where(np.arange(ROWS) % 20 == 0, "yes", "no")
    warnings = check_data(frame, declared(frame))
    assert kinds(warnings) == [("imbalance", "approved")]
    assert warnings[0].figure == f"5.0% of {ROWS} labelled rows"
    assert warnings[0].setting.startswith("set model.threshold in params.yaml")


def test_a_rare_class_of_many() -> None:
    frame = task_declarations.iris_frame()
    frame = pd.concat([frame[frame["target"] != "setosa"], frame[frame["target"] == "setosa"][:5]])
    declaration = infer_declaration(frame, "target").declaration
    warnings = check_data(frame, declaration)
    assert kinds(warnings) == [("imbalance", "target")]
    assert warnings[0].message.startswith("class setosa is rare")
    assert warnings[0].figure == "4.8% of 105 labelled rows"
