"""Questions: every bad answer is refused with a message naming the question and the rule,
before anything is written; good answers derive the names that other answers default to."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import copier
import pytest
import yaml

from .conftest import TEMPLATE_DIR

BAD_ANSWERS = [
    ({"project_name": "   "}, "project_name must not be empty"),
    ({"project_name": 'My "quoted" model'}, "project_name must not contain quotes"),
    ({"project_slug": "Credit_Risk"}, "project_slug must be kebab-case"),
    ({"project_slug": "credit--risk"}, "project_slug must be kebab-case"),
    ({"project_slug": "-credit"}, "project_slug must be kebab-case"),
    ({"project_slug": "9lives"}, "project_slug must be kebab-case"),
    ({"package_name": "Credit"}, "package_name must be a lowercase Python identifier"),
    ({"package_name": "credit-risk"}, "package_name must be a lowercase Python identifier"),
    ({"package_name": "class"}, "package_name must not be a Python keyword"),
    ({"package_name": "match"}, "package_name must not be a Python keyword"),
    ({"package_name": "json"}, "package_name must not shadow a standard-library module"),
    ({"package_name": "statistics"}, "package_name must not shadow a standard-library module"),
    ({"package_name": "pandas"}, "package_name must not shadow a dependency"),
    ({"package_name": "tests"}, "package_name must not shadow a dependency or a project folder"),
    ({"description": ""}, "description must not be empty"),
    ({"description": "uses `backticks`"}, "description must be one line"),
    ({"author_name": ""}, "author_name must not be empty"),
    ({"author_email": "not-an-email"}, "author_email must be an e-mail address"),
    ({"author_email": "a@b"}, "author_email must be an e-mail address"),
    ({"python_version": "3.9"}, "python_version"),
    ({"stack_tier": "huge"}, "stack_tier"),
    ({"ci_provider": "travis"}, "ci_provider"),
    ({"data_remote": "ftp"}, "data_remote"),
    ({"data_remote": "s3", "data_remote_url": "gs://bucket/x"}, "data_remote_url must be a s3 URL"),
    ({"data_remote": "gcs", "data_remote_url": "bucket"}, "data_remote_url must be a gcs URL"),
    ({"data_remote": "azure", "data_remote_url": "s3://b/x"}, "data_remote_url must be a azure"),
    ({"min_roc_auc": 0.5}, "min_roc_auc must be greater than 0.5 and at most 1"),
    ({"min_roc_auc": "-0.9"}, "min_roc_auc must be a decimal number"),
    ({"min_roc_auc": 1.01}, "min_roc_auc must be greater than 0.5 and at most 1"),
    ({"min_roc_auc": "high"}, "min_roc_auc must be a decimal number"),
    ({"min_roc_auc": "0.5"}, "min_roc_auc must be greater than 0.5 and at most 1"),
    ({"container_image": "registry.example.com/ml/app:latest"}, "container_image must be"),
    ({"container_image": "justaname"}, "container_image must be"),
    ({"stack_tier": "scale-up", "k8s_namespace": "Bad_NS"}, "k8s_namespace must be a DNS-1123"),
    (
        {"stack_tier": "scale-up", "mlflow_tracking_secret": "mlflow-uri"},
        "mlflow_tracking_secret must be an environment variable name",
    ),
    (
        {"stack_tier": "enterprise", "max_demographic_parity_difference": "0"},
        "max_demographic_parity_difference must be a decimal number greater than 0",
    ),
    (
        {"stack_tier": "enterprise", "max_equalized_odds_difference": "lots"},
        "max_equalized_odds_difference must be a decimal number greater than 0",
    ),
    (
        {"stack_tier": "enterprise", "production_approvers": "alice, bob"},
        "production_approvers must be a comma-separated list",
    ),
    (
        {"runtime_index_url": "https://deploy:s3cret@pypi.example.com/simple"},
        "runtime_index_url must not hold credentials",
    ),
    ({"runtime_index_url": "http://pypi.example.com/simple"}, "runtime_index_url must be empty"),
    ({"runtime_index_url": "pypi.example.com/simple"}, "runtime_index_url must be empty or"),
    ({"runtime_index_url": "https://pypi.example.com/simple?x=1"}, "runtime_index_url must be"),
]


def copy_with(data: dict, dst: Path) -> None:
    copier.run_copy(
        str(TEMPLATE_DIR),
        str(dst),
        data=data,
        defaults=True,
        unsafe=True,
        vcs_ref="HEAD",
        quiet=True,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    BAD_ANSWERS,
    ids=[msg[:40] + str(i) for i, (_, msg) in enumerate(BAD_ANSWERS)],
)
def test_bad_answer_is_refused_before_anything_is_written(tmp_path, data, message):
    dst = tmp_path / "project"
    with pytest.raises(ValueError) as error:
        copy_with(data, dst)
    question = next(iter(data)) if len(data) == 1 else list(data)[-1]
    assert question in str(error.value)
    assert message in str(error.value)
    assert not dst.exists(), "a refused answer must leave no destination behind"


def test_cli_refuses_bad_answer_with_the_rule_and_writes_nothing(tmp_path):
    dst = tmp_path / "project"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "copier",
            "copy",
            "--trust",
            "--defaults",
            "--vcs-ref=HEAD",
            "--data=project_slug=Not Kebab",
            str(TEMPLATE_DIR),
            str(dst),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    # What README.md says the user sees: status 1, and Copier's traceback ends in the message.
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(
        "ValueError: Validation error for question 'project_slug': project_slug must be kebab-case"
    ), last_line
    assert "'Not Kebab'" in last_line
    assert not dst.exists()


@pytest.mark.parametrize(
    ("project_name", "slug", "package"),
    [
        ("Credit Risk Model", "credit-risk-model", "credit_risk_model"),
        ("  Fraud Detector X!  ", "fraud-detector-x", "fraud_detector_x"),
        ("Churn 2.0 (EU)", "churn-2-0-eu", "churn_2_0_eu"),
        # Accented letters keep their ASCII base (NFKD) instead of turning into hyphens.
        (
            "Zürich Credit Risk (EU) 2027",
            "zurich-credit-risk-eu-2027",
            "zurich_credit_risk_eu_2027",
        ),
        (
            "Prévision Crédit Ørsted Łódź",
            "prevision-credit-orsted-lodz",
            "prevision_credit_orsted_lodz",
        ),
        ("Điểm Tín Dụng São Paulo", "diem-tin-dung-sao-paulo", "diem_tin_dung_sao_paulo"),
        ("Straße Œuvre", "strasse-oeuvre", "strasse_oeuvre"),
    ],
)
def test_slug_and_package_name_are_derived_from_the_project_name(
    copie, project_name, slug, package
):
    result = copie.copy(extra_answers={"project_name": project_name})
    assert result.exit_code == 0, result.exception
    assert result.answers["project_slug"] == slug
    assert result.answers["package_name"] == package
    assert (result.project_dir / "src" / package / "data" / "columns.yaml").is_file()


def test_a_long_slug_gives_a_namespace_that_fits_the_rule(copie):
    slug = "a-very-long-project-name-for-a-credit-model-abcdef"
    assert len(slug) == 50
    result = copie.copy(extra_answers={"project_slug": slug, "stack_tier": "scale-up"})
    assert result.exit_code == 0, result.exception
    namespace = result.answers["k8s_namespace"]
    assert namespace == "a-very-long-project-name-for-a-credit-mode"
    assert len(namespace) <= 42


def test_reserved_module_names_cover_this_pythons_stdlib():
    """The validator's list is literal Jinja; it must not fall behind the Python at hand."""
    config = (TEMPLATE_DIR / "copier.yml").read_text()
    validator = yaml.safe_load(config)["package_name"]["validator"]
    missing = [
        name
        for name in sys.stdlib_module_names
        if not name.startswith("_") and f"'{name.lower()}'" not in validator
    ]
    assert missing == []


def test_answers_file_records_every_question(copie):
    result = copie.copy(extra_answers={"stack_tier": "enterprise", "data_remote": "gcs"})
    assert result.exit_code == 0, result.exception
    recorded = yaml.safe_load((result.project_dir / ".copier-answers.yml").read_text())
    questions = {
        key
        for key in yaml.safe_load((TEMPLATE_DIR / "copier.yml").read_text())
        if not key.startswith("_")
    }
    assert questions <= set(recorded), questions - set(recorded)
    assert recorded["_src_path"]
    assert recorded["data_remote_url"] == "gs://credit-risk-model-dvc/storage"


def test_the_ascii_fold_table_is_this_pythons_nfkd():
    # The slug default reads includes/ascii_fold.jinja; Unicode decompositions never change, so
    # every entry must still be what unicodedata computes, and the generator must reproduce it
    # on the Unicode version it was made with.
    import importlib.util
    import unicodedata

    root = TEMPLATE_DIR
    spec = importlib.util.spec_from_file_location(
        "make_ascii_fold", root / "includes" / "make_ascii_fold.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (root / "includes" / "ascii_fold.jinja").read_text(encoding="utf-8")
    table = module.folded_letters()
    for letter, base in (("ü", "u"), ("Ç", "C"), ("ǆ", "dz"), ("ø", "o"), ("ß", "ss"), ("€", None)):
        assert table.get(letter) == base, letter
        assert (f'"{letter}": "{base}"' in committed) == (base is not None), letter
    if f"Unicode {unicodedata.unidata_version})" in committed:
        assert committed == module.render()


def test_readme_lists_every_question_with_its_default():
    """The questions table of README.md follows copier.yml: no question left out, none invented."""
    config = yaml.safe_load((TEMPLATE_DIR / "copier.yml").read_text())
    questions = {name for name in config if not name.startswith("_")}
    readme = (TEMPLATE_DIR / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    documented: set[str] = set()
    for row in rows:
        first_cell = row.split("|")[1]
        names = {name for name in re.findall(r"`([a-z_0-9]+)`", first_cell) if name in questions}
        documented |= names
        for name in names:
            default = config[name].get("default")
            # A short literal default is shown as is (a sentence is summed up instead).
            if isinstance(default, str) and "{" not in default and len(default) <= 30:
                assert default in row, f"README's row of {name} does not show its default {default}"
    assert documented == questions
