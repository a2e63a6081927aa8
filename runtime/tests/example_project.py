"""The repository the runtime's suite runs against, set up when tests/conftest.py imports this.

A generated repository's package and params.yaml, without rendering the template: the template's
team files (template/src/{{package_name}}/: the column declaration, the data source and the model
definition, which need no Jinja) are copied into a package `credit_risk_model` in a temporary
folder, beside example/params.yaml (an enterprise render's: every section a tier can have). The
runtime finds the package through MLOPS_STACK_PROJECT, the fixtures the repository through
MLOPS_STACK_REPOSITORY, and the processes the tests start find it on PYTHONPATH.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

PACKAGE = "credit_risk_model"
HERE = Path(__file__).resolve().parent
TEMPLATE_SOURCE = Path("template") / "src" / "{{package_name}}"
# The template's checkout: the nearest folder above this one holding template/ (runtime/tests/ in
# a checkout; runtime/mutants/tests/ under mutation testing, which copies the tests).
TEMPLATE_CHECKOUT = next(
    (folder for folder in HERE.parents if (folder / TEMPLATE_SOURCE).is_dir()), HERE.parents[1]
)
TEMPLATE_PACKAGE = TEMPLATE_CHECKOUT / TEMPLATE_SOURCE
TEAM_FILES = ("features.py", "data/__init__.py", "data/source.py", "data/columns.yaml")
INIT = '''"""The example repository's own package (the template's default answers)."""

DISTRIBUTION_NAME = "credit-risk-model"
PROJECT_NAME = "Credit Risk Model"
'''


def build_example(root: Path) -> Path:
    """The example repository at `root`: params.yaml and src/credit_risk_model/."""
    package = root / "src" / PACKAGE
    for name in TEAM_FILES:
        source = TEMPLATE_PACKAGE / name
        if not source.is_file():
            raise pytest.UsageError(f"the runtime's suite needs the template's {source}")
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, package / name)
    (package / "__init__.py").write_text(INIT, encoding="utf-8")
    shutil.copyfile(HERE / "example" / "params.yaml", root / "params.yaml")
    return root


root = build_example(Path(tempfile.mkdtemp(prefix="mlops-stack-example-")))
sys.path.insert(0, str(root / "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(root / "src"), os.environ.get("PYTHONPATH")])
)
os.environ["MLOPS_STACK_PROJECT"] = PACKAGE
os.environ["MLOPS_STACK_REPOSITORY"] = str(root)
atexit.register(shutil.rmtree, root, ignore_errors=True)
