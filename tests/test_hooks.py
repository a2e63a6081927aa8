"""The post-copy hook: git init and a first commit, idempotent, with or without a git identity,
and a failure that says how to finish by hand."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import TEMPLATE_DIR, project_env

HOOK = TEMPLATE_DIR / "hooks" / "post_copy.py"
AUTHOR = ["--author-name=Risk Team", "--author-email=risk@example.com"]


def run_hook(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HOOK), *AUTHOR],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def bare_render(tmp_path) -> Path:
    """Rendered files without the hook having run (what Copier writes before its tasks)."""
    import copier

    project = tmp_path / "project"
    copier.run_copy(
        str(TEMPLATE_DIR), str(project), defaults=True, vcs_ref="HEAD", quiet=True, skip_tasks=True
    )
    assert not (project / ".git").exists()
    # The task before post-copy in copier.yml: where the runtime comes from (uv locks it).
    hook = TEMPLATE_DIR / "hooks" / "runtime_source.py"
    subprocess.run(
        [sys.executable, str(hook), "--answers-file", ".copier-answers.yml"],
        cwd=project,
        check=True,
        capture_output=True,
    )
    return project


def no_identity_env(home: Path) -> dict[str, str]:
    """A machine where git has no user.name/user.email configured."""
    env = {
        k: v for k, v in project_env().items() if not k.startswith(("GIT_AUTHOR", "GIT_COMMITTER"))
    }
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", XDG_CONFIG_HOME=str(home / ".config"))
    return env


def git(project: Path, *args: str, env: dict[str, str]) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_hook_commits_with_the_answers_identity_when_git_has_none(bare_render, tmp_path):
    env = no_identity_env(tmp_path / "home")
    (tmp_path / "home").mkdir()
    first = run_hook(bare_render, env)
    assert first.returncode == 0, first.stderr
    assert "git init, uv.lock, first commit" in first.stdout
    assert "uv.lock" in git(bare_render, "ls-files", env=env).splitlines()
    assert git(bare_render, "log", "--format=%an <%ae>|%s", env=env) == (
        "Risk Team <risk@example.com>|Initial commit from template"
    )
    assert git(bare_render, "branch", "--show-current", env=env) == "main"
    assert git(bare_render, "status", "--porcelain", env=env) == ""


def test_hook_is_idempotent(bare_render):
    env = project_env()
    assert run_hook(bare_render, env).returncode == 0
    head = git(bare_render, "rev-parse", "HEAD", env=env)
    again = run_hook(bare_render, env)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert git(bare_render, "rev-parse", "HEAD", env=env) == head


def test_hook_failure_says_what_failed_and_how_to_finish(bare_render):
    (bare_render / ".dvc" / "config").unlink()
    result = run_hook(bare_render, project_env())
    assert result.returncode == 1
    assert "DVC files missing: .dvc/config" in result.stderr
    assert "Finish by hand" in result.stderr
    assert not (bare_render / ".git").exists(), "nothing is committed when a step fails"


def test_hook_commits_without_a_lock_file_when_uv_is_missing(bare_render, tmp_path):
    git_dir = Path(shutil.which("git")).parent
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(git_dir / "git")
    env = project_env(PATH=str(bin_dir))
    result = run_hook(bare_render, env)
    assert result.returncode == 0, result.stderr
    assert "no uv; `make setup` will write uv.lock: commit it." in result.stderr
    assert "uv.lock" not in git(bare_render, "ls-files", env=env).splitlines()
    assert git(bare_render, "log", "--format=%s", env=env) == "Initial commit from template"
