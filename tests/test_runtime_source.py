"""hooks/runtime_source.py: where a rendered repository takes the runtime from (no rendering)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from .conftest import TEMPLATE_DIR
from .test_update import load_hook

runtime_source = load_hook("runtime_source")

PYPROJECT = """[project]
dependencies = ["mlops-stack-runtime==0.1.0"]

[tool.uv.sources]
mlops-stack-runtime = { path = "runtime" }
"""


@pytest.mark.parametrize(
    ("src_path", "commit", "expected"),
    [
        (
            "https://git.example.com/ml/mlops-stack-template.git",
            "0.3.0",
            {
                "git": "https://git.example.com/ml/mlops-stack-template.git",
                "subdirectory": "runtime",
                "tag": "0.3.0",
            },
        ),
        (
            "gh:acme/mlops-stack-template",
            "v1.2.0",
            {
                "git": "https://github.com/acme/mlops-stack-template.git",
                "subdirectory": "runtime",
                "tag": "v1.2.0",
            },
        ),
        (
            "git@git.example.com:ml/template.git",
            "0.3.0-4-gabc1234",
            {"git": "ssh://git@git.example.com/ml/template.git", "subdirectory": "runtime"},
        ),
        (
            "file:///srv/templates/mlops-stack-template",
            "abc1234",
            {"git": "file:///srv/templates/mlops-stack-template", "subdirectory": "runtime"},
        ),
        (
            "/srv/templates/mlops-stack-template",
            "0.3.0",
            {"path": "/srv/templates/mlops-stack-template/runtime"},
        ),
    ],
)
def test_the_source_follows_how_the_template_was_given(
    src_path: str, commit: str, expected: dict[str, str]
) -> None:
    commit_hash = "f" * 40
    entry = runtime_source.source_entry(src_path, commit, commit_hash)
    parsed = tomllib.loads(f"x = {entry}")["x"]
    if "git" in expected and "tag" not in expected:
        expected = {**expected, "rev": commit_hash}  # not a release: the exact commit
    assert parsed == expected


def test_the_line_is_rewritten_in_place_and_idempotently(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(PYPROJECT)
    entry = runtime_source.source_entry("https://example.com/t.git", "0.2.0", "")
    assert runtime_source.rewrite(pyproject, entry) is True
    assert runtime_source.rewrite(pyproject, entry) is False
    sources = tomllib.loads(pyproject.read_text())["tool"]["uv"]["sources"]
    assert sources["mlops-stack-runtime"]["tag"] == "0.2.0"
    assert pyproject.read_text().count("mlops-stack-runtime = {") == 1


def test_a_pyproject_without_the_line_and_an_unpinnable_source_are_refused(
    tmp_path: Path,
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[project]\n")
    with pytest.raises(
        runtime_source.SourceError, match=r"no `mlops-stack-runtime = \{...\}` line"
    ):
        runtime_source.rewrite(pyproject, '{ path = "x" }')
    with pytest.raises(runtime_source.SourceError, match="no release tag or commit"):
        runtime_source.source_entry("https://example.com/t.git", "0.2.0-1-gabc", "")
    with pytest.raises(runtime_source.SourceError, match="not an absolute path"):
        runtime_source.source_entry("../template", "0.2.0", "")


def test_the_template_depends_on_the_runtime_release_of_its_own_version() -> None:
    runtime = tomllib.loads((TEMPLATE_DIR / "runtime" / "pyproject.toml").read_text())["project"]
    template = tomllib.loads((TEMPLATE_DIR / "pyproject.toml").read_text())["project"]
    pinned = re.search(
        r'runtime_version = "([^"]+)"', (TEMPLATE_DIR / "includes" / "runtime.jinja").read_text()
    )
    assert pinned is not None
    assert runtime["version"] == template["version"] == pinned.group(1)


runtime_imports = load_hook("runtime_imports")

TEAM_SOURCE = '''"""A team's source as the copied layout rendered it, and a module of its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import DataSourceError
from .helpers import warehouse_query
from .synthetic import generate
from . import helpers

if TYPE_CHECKING:
    from ..config import Config
'''


def test_the_migration_points_imports_of_removed_modules_at_the_runtime(tmp_path: Path) -> None:
    package = tmp_path / "src" / "churn_model"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("")
    (package / "data" / "helpers.py").write_text("def warehouse_query(): ...\n")
    source = package / "data" / "source.py"
    source.write_text(TEAM_SOURCE)

    assert runtime_imports.migrate(tmp_path, "churn_model") == [
        Path("src/churn_model/data/source.py")
    ]
    text = source.read_text()
    assert "from mlops_stack_runtime.errors import DataSourceError\n" in text
    assert "from mlops_stack_runtime.data.synthetic import generate\n" in text
    assert "    from mlops_stack_runtime.config import Config\n" in text
    # The team's own modules stay relative imports.
    assert "from .helpers import warehouse_query\n" in text
    assert "from . import helpers\n" in text
    # Idempotent: nothing left to change.
    assert runtime_imports.migrate(tmp_path, "churn_model") == []
