"""tools/template_update.py: the conflict scan, the checks before an update and the check report.

Offline: each test builds a small git repository in a tmp folder. The Copier runs themselves are
exercised by the template's own test suite, release against release.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "template_update.py"
IDENTITY = ["-c", "user.name=Tests", "-c", "user.email=tests@example.com"]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("template_update", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


tu = load_script()


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *IDENTITY, *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed repository generated from a template that exists on this machine."""
    root = tmp_path / "repo"
    root.mkdir()
    template = tmp_path / "template"
    template.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / ".copier-answers.yml").write_text(
        f"_commit: 0.1.0\n_src_path: {template}\nproject_slug: demo-model\n"
    )
    (root / "params.yaml").write_text("model:\n  n_estimators: 150\n")
    (root / "train.py").write_text('"""Training."""\n\nROWS = 50\n')
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", "initial")
    return root


def test_scan_finds_markers_rejected_hunks_and_unmerged_files(repo: Path) -> None:
    (repo / "train.py").write_text(
        '"""Training."""\n\n<<<<<<< before updating\nROWS = 40\n=======\nROWS = 60\n'
        ">>>>>>> after updating\n"
    )
    (repo / "params.yaml.rej").write_text("@@ -1 +1 @@\n")
    (repo / ".gitignore").write_text("*.rej\n")
    (repo / "ignored.yml.rej").write_text("@@ -1 +1 @@\n")
    git(repo, "checkout", "--quiet", "-b", "other")
    (repo / "params.yaml").write_text("model:\n  n_estimators: 300\n")
    git(repo, "commit", "--quiet", "-m", "other", "params.yaml")
    git(repo, "checkout", "--quiet", "main")
    (repo / "params.yaml").write_text("model:\n  n_estimators: 200\n")
    git(repo, "commit", "--quiet", "-m", "main", "params.yaml")
    merge = subprocess.run(["git", *IDENTITY, "merge", "other"], cwd=repo, capture_output=True)
    assert merge.returncode != 0, "the merge should conflict"

    found = {c.path: c.reason for c in tu.scan(repo)}

    assert found == {
        "train.py": "conflict markers",
        "params.yaml.rej": "rejected hunks",
        "ignored.yml.rej": "rejected hunks",
        "params.yaml": "unmerged (git marks it conflicted)",
    }


def test_scan_reads_only_changed_files_and_only_line_start_markers(repo: Path) -> None:
    (repo / "docs.md").write_text("<<<<<<< before updating\ncommitted deliberately\n")
    git(repo, "add", "docs.md")
    git(repo, "commit", "--quiet", "-m", "docs")
    (repo / "train.py").write_text('MARKERS = ("<<<<<<< ", ">>>>>>> ")\n    <<<<<<< indented\n')
    (repo / "new_module.py").write_text("=======\n")
    assert tu.scan(repo) == []


def test_conflicts_command_lists_the_files_and_how_to_resolve(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tu.main(["--project", str(repo), "conflicts"]) == 0
    assert "No conflict markers" in capsys.readouterr().out

    (repo / "params.yaml").write_text(">>>>>>> after updating\n")
    assert tu.main(["--project", str(repo), "conflicts"]) == 1
    err = capsys.readouterr().err
    assert "params.yaml  conflict markers" in err
    assert "Nothing was committed" in err
    assert "git add <file>" in err
    assert "git reset --hard HEAD" in err


def test_update_refuses_a_dirty_tree_and_names_the_files(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "params.yaml").write_text("model:\n  n_estimators: 300\n")
    (repo / "notes.txt").write_text("draft\n")
    head = git(repo, "rev-parse", "HEAD")

    assert tu.main(["--project", str(repo), "update"]) == 1

    err = capsys.readouterr().err
    assert "commit or stash" in err
    assert " M params.yaml" in err
    assert "?? notes.txt" in err
    assert git(repo, "rev-parse", "HEAD") == head


def test_update_names_a_template_path_missing_on_this_machine(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / ".copier-answers.yml").write_text(
        "_commit: 0.1.0\n_src_path: /nowhere/mlops-template\n"
    )
    git(repo, "commit", "--quiet", "-am", "moved template")
    assert tu.main(["--project", str(repo), "update"]) == 1
    err = capsys.readouterr().err
    assert "_src_path: /nowhere/mlops-template" in err
    assert "git URL" in err


def test_update_without_answers_file_says_copier_cannot_update(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "rm", "--quiet", ".copier-answers.yml")
    git(repo, "commit", "--quiet", "-m", "no answers")
    assert tu.main(["--project", str(repo), "update"]) == 1
    assert "no .copier-answers.yml" in capsys.readouterr().err


def test_remote_template_urls_need_no_local_folder() -> None:
    for url in (
        "https://github.com/acme/mlops-template.git",
        "git@github.com:acme/mlops-template.git",
        "gh:acme/mlops-template",
    ):
        tu.check_template_reachable(url)
    with pytest.raises(tu.UpdateError, match="not a folder"):
        tu.check_template_reachable("../mlops-template")


def test_check_report_for_fleet_scripts_and_people() -> None:
    answers = {"_src_path": "https://git.example.com/ml/template.git", "project_slug": "demo"}
    copier_says = json.dumps(
        {"update_available": True, "current_version": "0.1.0", "latest_version": "0.2.0"}
    )
    result = tu.check_result(answers, copier_says)
    assert result == {
        "project": "demo",
        "template": "https://git.example.com/ml/template.git",
        "current_version": "0.1.0",
        "latest_version": "0.2.0",
        "update_available": True,
    }
    text = tu.check_text(result)
    assert "0.2.0 is available" in text and "on 0.1.0" in text
    assert "make template-update" in text
    current = tu.check_result(answers, copier_says.replace("true", "false"))
    assert tu.check_text(current) == "demo: on the template's latest release (0.1.0)."


def test_check_failure_is_still_json_for_fleet_scripts(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / ".copier-answers.yml").write_text("_commit: 0.1.0\n_src_path: /nowhere/template\n")
    assert tu.main(["--project", str(repo), "check", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["template"] == "/nowhere/template"
    assert report["current_version"] == "0.1.0"
    assert "not a folder" in report["error"]


def test_change_summary_calls_out_removed_files(repo: Path) -> None:
    (repo / "train.py").unlink()
    (repo / "params.yaml").write_text("model:\n  n_estimators: 300\n")
    summary = tu.change_summary(repo)
    assert "2 file(s) changed" in summary
    assert "Removed by the update" in summary
    assert summary.rstrip().endswith("train.py")
    git(repo, "checkout", "--quiet", "--", ".")
    assert tu.change_summary(repo).startswith("Already on the template's latest release")


def fake_uv(tmp_path: Path, exit_code: int = 0) -> Path:
    """A `uv` that records its arguments and writes uv.lock, as `uv lock` would."""
    script = tmp_path / "fake-uv"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{tmp_path}/uv-calls"\n'
        'echo "version = 1" > uv.lock\n'
        f"echo 'resolution failed' >&2\nexit {exit_code}\n"
    )
    script.chmod(0o755)
    return script


def test_relock_re_resolves_after_pyproject_changed(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (repo / "uv.lock").write_text("version = 1\n")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "lock")
    monkeypatch.setenv("UV", str(fake_uv(tmp_path)))
    assert tu.relock(repo) is None, "nothing changed: nothing to lock"
    assert not (tmp_path / "uv-calls").exists()

    (repo / "pyproject.toml").write_text('[project]\nname = "demo"\ndependencies = ["x"]\n')
    note = tu.relock(repo)
    assert note is not None and "uv.lock re-resolved" in note
    assert (tmp_path / "uv-calls").read_text().split() == ["lock", "--quiet"]


def test_relock_writes_a_missing_lock_and_reports_a_failure(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV", str(fake_uv(tmp_path, exit_code=1)))
    note = tu.relock(repo)  # no uv.lock in the repository
    assert note is not None and "`uv lock` failed (resolution failed)" in note
    (repo / "uv.lock").unlink()  # the failed run left one behind
    monkeypatch.setenv("UV", str(tmp_path / "no-such-uv"))
    note = tu.relock(repo)
    assert note is not None and "run `uv lock`" in note
