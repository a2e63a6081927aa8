"""Shared helpers: render the template and run a rendered project's own commands."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

TEMPLATE_DIR = Path(__file__).resolve().parents[1]

TIERS = ("startup", "scale-up", "enterprise")
CI_PROVIDERS = ("github", "gitlab", "jenkins")
DATA_REMOTES = ("local", "s3", "gcs", "azure")
ALL_COMBINATIONS: list[dict[str, str]] = [
    {"stack_tier": tier, "ci_provider": ci, "data_remote": remote}
    for tier, ci, remote in itertools.product(TIERS, CI_PROVIDERS, DATA_REMOTES)
]

# A leftover opening Jinja tag in rendered output; GitHub Actions' `${{ ... }}` is meant to stay.
# (Closing tags alone are not looked for: Python format specs such as `{x:.0%}` end in `%}`.)
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{|\{%|\{#")

# Variables of the calling environment that must not leak into a rendered project's commands.
# PYTHONDONTWRITEBYTECODE (set on some CI machines) would make every Python process of a
# rendered project compile its imports from source again: seconds per process. Make's own
# variables come from `make test`: a rendered project's make would think it is a sub-make and
# print "make[1]: Entering directory" lines into the output the tests read.
LEAKY_ENV = (
    "MAKEFLAGS",
    "MAKELEVEL",
    "MFLAGS",
    "MAKEOVERRIDES",
    "GNUMAKEFLAGS",
    "VIRTUAL_ENV",
    "MLFLOW_TRACKING_URI",
    "PYTHONPATH",
    "UV_PROJECT_ENVIRONMENT",
    "PYTHONDONTWRITEBYTECODE",
)


def combination_id(answers: Mapping[str, str]) -> str:
    return "-".join(str(v) for v in answers.values())


def project_env(**extra: str) -> dict[str, str]:
    """Environment for commands run inside a rendered project, as a user's shell would have it."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
    env.setdefault("GIT_AUTHOR_NAME", "Template Tests")
    env.setdefault("GIT_AUTHOR_EMAIL", "tests@example.com")
    env.setdefault("GIT_COMMITTER_NAME", "Template Tests")
    env.setdefault("GIT_COMMITTER_EMAIL", "tests@example.com")
    env.update(extra)
    return env


def run(
    args: list[str], cwd: Path, *, check: bool = True, timeout: float = 1200, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a command in a rendered project; on failure, show its whole output."""
    result = subprocess.run(
        args,
        cwd=cwd,
        env=project_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"`{' '.join(args)}` exited {result.returncode} in {cwd}\n"
            f"--- stdout\n{result.stdout[-12000:]}\n--- stderr\n{result.stderr[-12000:]}"
        )
    return result


def make(project: Path, *targets: str, check: bool = True, **env: str):
    return run(["make", *targets], project, check=check, **env)


def rendered_files(project: Path) -> Iterator[Path]:
    """Every file of a rendered project, except git's and tool caches."""
    skip = {".git", ".venv", ".ruff_cache", ".pytest_cache", "__pycache__", "mlruns"}
    for path in project.rglob("*"):
        if path.is_file() and not skip.intersection(path.relative_to(project).parts):
            yield path


def _answer_key(answers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Answers with the defaults of copier.yml filled in that other answers depend on, so that
    two spellings of one render (`{}` and `{"stack_tier": "startup"}`) are one key."""
    full = {"stack_tier": "startup", "ci_provider": "github", **answers}
    cluster = full["stack_tier"] != "startup"
    full.setdefault("data_remote", "s3" if cluster else "local")
    if cluster:
        full.setdefault(
            "orchestrator", "kubeflow" if full["stack_tier"] == "enterprise" else "ci-runner"
        )
    return tuple(sorted((key, str(value)) for key, value in full.items()))


_RENDERED: dict[tuple[tuple[str, str], ...], Path] = {}


@pytest.fixture(scope="session")
def render_once(copie_session) -> Callable[[Mapping[str, str]], Path]:
    """Render an answer set once per test session and share the project: for tests that only
    read what was rendered (files, linters, `make -n`). A test that changes the project or runs
    its commands renders a copy of its own (`copie_session.copy`)."""

    def render(answers: Mapping[str, str]) -> Path:
        key = _answer_key(answers)
        if key not in _RENDERED:
            result = copie_session.copy(extra_answers=dict(answers))
            assert result.exit_code == 0, result.exception
            _RENDERED[key] = Path(result.project_dir)
        return _RENDERED[key]

    return render


@pytest.fixture(scope="session")
def default_project(copie_session) -> Path:
    """The all-defaults project (startup, GitHub) after `make setup lint test pipeline`.

    Shared by the modules that check it, so its slow set-up and pipeline run once.
    """
    result = copie_session.copy()
    assert result.exit_code == 0, result.exception
    make(result.project_dir, "setup", "lint", "test", "pipeline")
    return result.project_dir


RUNTIME_PYPROJECT = TEMPLATE_DIR / "runtime" / "pyproject.toml"


def expand_runtime(requirements: list) -> list[str]:
    """Requirements with `mlops-stack-runtime[extras]` replaced by what it brings: the runtime's
    own dependencies and those of the extras named (entries other than strings, such as
    `{include-group = ...}`, are dropped). The runtime itself stays listed by its name."""
    import tomllib

    project = tomllib.loads(RUNTIME_PYPROJECT.read_text(encoding="utf-8"))["project"]
    name = project["name"]
    expanded: list[str] = []
    pending = [r for r in requirements if isinstance(r, str)]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop(0)
        match = re.match(rf"^{re.escape(name)}(?:\[([^\]]*)\])?", requirement)
        if not match:
            expanded.append(requirement)
            continue
        if name not in seen:
            seen.add(name)
            expanded.append(name)
            pending += project["dependencies"]
        for extra in filter(None, (e.strip() for e in (match.group(1) or "").split(","))):
            if extra not in seen:
                seen.add(extra)
                pending += project["optional-dependencies"][extra]
    return expanded


@pytest.fixture(scope="session")
def kserve_python(tmp_path_factory) -> Path:
    """A throwaway venv with KServe's SDK (large: kept out of the template's own environment)."""
    venv = tmp_path_factory.mktemp("kserve") / "venv"
    from .test_serving import KSERVE_VERSION, uv_executable

    uv = uv_executable()
    env = project_env()
    subprocess.run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env
    )
    python = venv / "bin" / "python"
    install = subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), f"kserve=={KSERVE_VERSION}"],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
        env=env,
    )
    assert install.returncode == 0, install.stderr
    return python
