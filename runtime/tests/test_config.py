from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from mlops_stack_runtime.config import (
    PARAMS_ENV_VAR,
    Params,
    find_params_file,
    load_config,
)
from mlops_stack_runtime.errors import (
    ConfigError,
)
from mlops_stack_runtime.testing.fixtures import repository_params

from credit_risk_model.data.source import (
    KNOWN_SOURCES,
)

REPO_PARAMS = repository_params()


def write_params(folder: Path, change: Any = None) -> Path:
    """The repo's params.yaml, edited by `change(params)`, written into `folder`."""
    params = yaml.safe_load(REPO_PARAMS.read_text())
    if change is not None:
        change(params)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_the_repository_params_load() -> None:
    config = load_config(REPO_PARAMS)
    assert config.root == REPO_PARAMS.parent
    # The example's generator until `make use-data` (file); a source of your own is added to
    # KNOWN_SOURCES in data/source.py with its loader.
    assert config.data.source in KNOWN_SOURCES
    assert isinstance(config.data.n_rows, int)
    assert 0 < config.data.test_size < 1
    assert 0.5 < config.gates.min_roc_auc <= 1
    assert config.model.classifier_hyperparameters()
    assert config.mlflow.registered_model == config.project.slug


def test_paths_resolve_from_the_folder_of_params_yaml(tmp_path: Path) -> None:
    config = load_config(write_params(tmp_path))
    assert config.paths.raw_data == tmp_path / "data" / "raw" / "credit.csv"
    assert config.paths.models_dir == tmp_path / "models"
    assert config.paths.roc_plot == tmp_path / "reports" / "plots" / "roc.csv"


def test_params_yaml_is_found_from_a_subfolder(tmp_path: Path) -> None:
    params = write_params(tmp_path)
    nested = tmp_path / "src" / "deep"
    nested.mkdir(parents=True)
    assert find_params_file(start=nested) == params


def test_environment_variable_wins_over_the_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    params = write_params(other)
    monkeypatch.setenv(PARAMS_ENV_VAR, str(params))
    assert find_params_file(start=REPO_PARAMS.parent) == params


def test_explicit_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="params file not found"):
        load_config(tmp_path / "missing.yaml")


def test_no_params_anywhere_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"no params\.yaml in .*{PARAMS_ENV_VAR}"):
        find_params_file(start=tmp_path)


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(write_params(tmp_path))
    with pytest.raises(ValidationError, match="frozen"):
        config.data.seed = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        config.model = config.model  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.model.hyperparameters["new"] = {}  # type: ignore[index]


def delete(section: str, key: str) -> Any:
    return lambda params: params[section].pop(key)


def assign(section: str, key: str, value: Any) -> Any:
    return lambda params: params[section].__setitem__(key, value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (delete("data", "seed"), "missing key 'data.seed'"),
        (delete("mlflow", "registered_model"), "missing key 'mlflow.registered_model'"),
        (lambda params: params.pop("gates"), "missing key 'gates.min_roc_auc'"),
        (assign("data", "n_rows", "many"), "'data.n_rows' must be an integer"),
        (assign("data", "n_rows", True), "'data.n_rows' must be an integer"),
        (assign("data", "test_size", 1.5), "'data.test_size' must be a number with 0 < x < 1"),
        (assign("gates", "min_roc_auc", 0), "'gates.min_roc_auc' must be a number with 0 < x <= 1"),
        (assign("model", "estimator", ""), "'model.estimator' must be a non-empty string"),
        (assign("model", "hyperparameters", [1]), "'model.hyperparameters' must be a mapping"),
        (lambda params: params.__setitem__("data", 3), "'data' must be a mapping"),
        # An optional section written with nothing under it is refused, not switched off.
        (assign("gates", "fairness", None), "'gates.fairness' must be a mapping, got None"),
        (lambda params: params.__setitem__("drift", None), "'drift' must be a mapping, got None"),
        (assign("data", "path", None), "'data.path' must be a non-empty string, got None"),
        (
            assign("gates", "min_recall", None),
            "'gates.min_recall' must be a number (leave the key out to switch it off), got None",
        ),
        (assign("gates", "min_pr_auc", 1.5), "'gates.min_pr_auc' must be a number with 0 < x <= 1"),
    ],
)
def test_a_bad_value_is_named(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write_params(tmp_path, change))


def test_missing_hyperparameters_of_the_chosen_classifier_are_named(tmp_path: Path) -> None:
    config = load_config(write_params(tmp_path, assign("model", "estimator", "svm")))
    with pytest.raises(ConfigError, match=r"'model\.hyperparameters\.svm' is missing"):
        config.model.classifier_hyperparameters()


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_tier_sections_are_optional(tmp_path: Path) -> None:
    def drop_tier_sections(params: dict[str, Any]) -> None:
        params["gates"].pop("fairness", None)
        params.pop("promotion", None)
        params.pop("governance", None)

    config = load_config(write_params(tmp_path, drop_tier_sections))
    assert config.gates.fairness is None
    assert config.promotion.min_improvement == 0.0
    assert config.governance.production_approvers == ()


def test_tier_sections_are_read(tmp_path: Path) -> None:
    def add_tier_sections(params: dict[str, Any]) -> None:
        params["gates"]["fairness"] = {
            "max_demographic_parity_difference": 0.05,
            "max_equalized_odds_difference": 0.2,
        }
        params["promotion"] = {"min_improvement": 0.01}
        params["governance"] = {"production_approvers": "risk-office, ml-leads"}

    config = load_config(write_params(tmp_path, add_tier_sections))
    assert config.gates.fairness is not None
    assert config.gates.fairness.max_demographic_parity_difference == 0.05
    assert config.gates.fairness.max_equalized_odds_difference == 0.2
    assert config.promotion.min_improvement == 0.01
    assert config.governance.production_approvers == ("risk-office", "ml-leads")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda params: params["gates"].__setitem__(
                "fairness", {"max_demographic_parity_difference": 0.1}
            ),
            "missing key 'gates.fairness.max_equalized_odds_difference'",
        ),
        (
            lambda params: params["gates"].__setitem__(
                "fairness",
                {"max_demographic_parity_difference": 0, "max_equalized_odds_difference": 0.1},
            ),
            "'gates.fairness.max_demographic_parity_difference' must be a number with 0 < x <= 1",
        ),
        (
            lambda params: params.__setitem__("promotion", {"min_improvement": -0.1}),
            "'promotion.min_improvement' must be a number with 0.0 <= x <= 1000000000000.0",
        ),
        (
            lambda params: params.__setitem__("promotion", {"min_improvement": "a lot"}),
            "'promotion.min_improvement' must be a number",
        ),
    ],
)
def test_a_bad_tier_setting_is_named(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write_params(tmp_path, change))


def test_an_unknown_key_of_a_known_section_is_refused_as_a_likely_typo(tmp_path: Path) -> None:
    """A misspelt key would otherwise leave its setting at the default without a word."""
    path = write_params(tmp_path, assign("data", "n_row", 500))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert message.startswith("params.yaml: unknown key 'data.n_row' (a typo? 'data' knows ")
    assert "n_rows" in message


def test_a_misspelt_required_key_is_named_as_the_typo_not_only_as_missing(tmp_path: Path) -> None:
    def misspell(params: dict[str, Any]) -> None:
        params["data"]["n_row"] = params["data"].pop("n_rows")

    with pytest.raises(ConfigError) as refused:
        load_config(write_params(tmp_path, misspell))
    assert str(refused.value).startswith(
        "params.yaml: missing key 'data.n_rows'; unknown key 'data.n_row' (a typo? 'data' knows "
    )


def test_top_level_sections_of_the_team_are_left_alone(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda params: params.__setitem__("team", {"owner": "risk"}))
    config = load_config(path)
    assert config.params["team"] == {"owner": "risk"}


def test_params_yaml_has_a_json_schema_naming_every_section() -> None:
    schema = Params.model_json_schema()
    assert set(schema["required"]) == {"project", "data", "model", "gates", "mlflow"}
    assert {"promotion", "governance", "drift", "serving"} <= set(schema["properties"])
    data = schema["$defs"]["DataSettings"]
    assert data["additionalProperties"] is False
    assert {"source", "n_rows", "seed", "test_size"} <= set(data["required"])


def test_onnx_tolerances_have_defaults_and_are_read(tmp_path: Path) -> None:
    def without_serving(params: dict[str, Any]) -> None:
        params.pop("serving", None)

    default = load_config(write_params(tmp_path, without_serving))
    assert (default.onnx_tolerance, default.onnx_relative_tolerance) == (1e-5, 1e-4)

    def set_both(params: dict[str, Any]) -> None:
        params["serving"] = {"onnx_tolerance": 0.001, "onnx_relative_tolerance": 0.01}

    config = load_config(write_params(tmp_path, set_both))
    assert (config.onnx_tolerance, config.onnx_relative_tolerance) == (0.001, 0.01)


def test_a_bad_onnx_relative_tolerance_is_named(tmp_path: Path) -> None:
    def negative(params: dict[str, Any]) -> None:
        params["serving"] = {"onnx_relative_tolerance": -1}

    with pytest.raises(
        ConfigError,
        match=re.escape("'serving.onnx_relative_tolerance' must be a number with 0.0 <= x <= 1.0"),
    ):
        load_config(write_params(tmp_path, negative))


def test_the_split_is_random_unless_params_say_otherwise(tmp_path: Path) -> None:
    config = load_config(write_params(tmp_path, lambda params: params["data"].pop("split", None)))
    assert config.data.split.kind == "random"
    grouped = {"kind": "group", "group_by": "job_ad_id"}
    config = load_config(write_params(tmp_path, assign("data", "split", grouped)))
    assert (config.data.split.kind, config.data.split.group_by) == ("group", "job_ad_id")
    # YAML reads an unquoted date as a date: it is kept as the same date.
    path = write_params(tmp_path, assign("data", "split", {"kind": "time", "time_column": "day"}))
    text = path.read_text().replace("time_column: day", "time_column: day\n    cutoff: 2024-03-01")
    path.write_text(text)
    assert load_config(path).data.split.cutoff == "2024-03-01"
    at_year = {"kind": "time", "time_column": "year", "cutoff": 2020}
    assert (
        load_config(write_params(tmp_path, assign("data", "split", at_year))).data.split.cutoff
        == 2020.0
    )


@pytest.mark.parametrize(
    ("split", "message"),
    [
        (
            {"kind": "stratified"},
            "'data.split.kind' must be one of random, group, time, got 'stratified'",
        ),
        (
            {"kind": "group"},
            "'data.split' kind group needs group_by: the column whose rows stay on one side",
        ),
        (
            {"kind": "time"},
            "'data.split' kind time needs time_column: the column whose latest values are held out",
        ),
        (
            {"kind": "random", "group_by": "id"},
            "'data.split' sets group_by, which only kind group reads (kind is random)",
        ),
        (
            {"kind": "group", "group_by": "id", "cutoff": 3},
            "'data.split' sets cutoff, which only kind time reads (kind is group)",
        ),
        (
            {"kind": "time", "time_column": "day", "cutoff": ""},
            "'data.split.cutoff' must be a non-empty string, got ''",
        ),
        (
            {"kind": "group", "group_by": None},
            "'data.split.group_by' must be a non-empty string, got None",
        ),
        (
            {"kind": "group", "group_by": "id", "by": "x"},
            "unknown key 'data.split.by' (a typo? 'data.split' knows kind, group_by, "
            "time_column, cutoff)",
        ),
    ],
)
def test_a_bad_split_is_named(tmp_path: Path, split: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write_params(tmp_path, assign("data", "split", split)))
    assert str(refused.value) == f"params.yaml: {message}"
