"""tools/template_update.py: the conflict scan, the checks before an update and the check report.

Offline: each test builds a small git repository in a tmp folder. The Copier runs themselves are
exercised by the template's own test suite, release against release.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mlops_stack_runtime.tools import template_update as tu

IDENTITY = ["-c", "user.name=Tests", "-c", "user.email=tests@example.com"]


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
    git(template, "init", "--quiet")
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
    assert tu.main(["--project", str(repo), "conflicts"]) == tu.CONFLICTS_EXIT == 4
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
    assert tu.main(["--project", str(repo), "update"]) == tu.UNREACHABLE_EXIT == 5
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


def test_copier_shortcuts_become_the_urls_git_reads() -> None:
    assert tu.git_url("gh:acme/mlops-template") == "https://github.com/acme/mlops-template"
    assert tu.git_url("gl:acme/mlops-template") == "https://gitlab.com/acme/mlops-template"
    assert tu.git_url("git+https://x.example/t.git") == "https://x.example/t.git"
    assert tu.git_url("git@github.com:acme/t.git") == "git@github.com:acme/t.git"


def test_a_template_is_reachable_only_when_git_can_read_it(tmp_path: Path) -> None:
    template = tmp_path / "template.git"
    git(tmp_path, "init", "--quiet", "--bare", str(template))
    tu.check_template_reachable(str(template))
    tu.check_template_reachable(template.as_uri())  # a remote URL: git answers
    with pytest.raises(tu.TemplateUnreachableError, match="not a folder"):
        tu.check_template_reachable("../mlops-template")
    with pytest.raises(tu.TemplateUnreachableError, match="cannot read the template"):
        tu.check_template_reachable((tmp_path / "gone.git").as_uri())
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(tu.TemplateUnreachableError, match="cannot read the template"):
        tu.check_template_reachable(str(plain))  # a folder, but not a git repository


def test_check_report_for_fleet_scripts_and_people() -> None:
    answers = {"_src_path": "https://git.example.com/ml/template.git", "project_slug": "demo"}
    copier_says = {"update_available": True, "current_version": "0.1.0", "latest_version": "0.2.0"}
    result = tu.check_result(answers, copier_says, tu.UPDATE_AVAILABLE_EXIT)
    assert result == {
        "project": "demo",
        "template": "https://git.example.com/ml/template.git",
        "current_version": "0.1.0",
        "latest_version": "0.2.0",
        "update_available": True,
        "status": 3,
    }
    text = tu.check_text(result)
    assert "0.2.0 is available" in text and "on 0.1.0" in text
    assert "make template-update" in text
    current = tu.check_result(answers, {**copier_says, "update_available": False}, 0)
    assert tu.check_text(current) == "demo: on the template's latest release (0.1.0)."
    # Rendered from a commit after the last tag: Copier calls it a post-release of that tag.
    untagged = {
        **copier_says,
        "update_available": False,
        "current_version": "0.2.0.post3.dev0+g1a2b3c4",
    }
    after = tu.check_result(answers, untagged, 0)
    assert after["untagged"] is True
    assert "untagged commit after the template's latest release 0.2.0" in tu.check_text(after)
    assert "untagged" not in tu.check_result(answers, {**untagged, "update_available": True}, 0)


def test_check_failure_is_still_json_for_fleet_scripts(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / ".copier-answers.yml").write_text("_commit: 0.1.0\n_src_path: /nowhere/template\n")
    assert tu.main(["--project", str(repo), "check", "--format", "json"]) == tu.UNREACHABLE_EXIT
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == tu.UNREACHABLE_EXIT
    assert report["template"] == "/nowhere/template"
    assert report["current_version"] == "0.1.0"
    assert "not a folder" in report["error"]


def test_report_flags_edited_removed_files_and_points_at_upstream_diffs() -> None:
    report = tu.UpdateReport("0.1.0", "0.2.0", "a" * 40, modified=["params.yaml"])
    report.removed = [
        tu.Removed(
            ".github/workflows/ci.yml", True, "git show aaaaaaaaaaaa:.github/workflows/ci.yml"
        ),
        tu.Removed(
            ".github/workflows/cd.yml", False, "git show aaaaaaaaaaaa:.github/workflows/cd.yml"
        ),
    ]
    report.recreated = ["src/demo/data/source.py"]
    report.upstream_changes = [
        tu.UpstreamChange("team.mk", "kept as you have it", ".template-update/team.mk.diff")
    ]
    lines = tu.report_text(report).splitlines()
    assert lines[0].startswith("Template update applied (0.1.0 -> 0.2.0): 4 file(s) changed")
    ci = ".github/workflows/ci.yml"
    assert f"  {ci}  (you had edited it)  ->  git show aaaaaaaaaaaa:{ci}" in lines
    assert "  .github/workflows/cd.yml  ->  git show aaaaaaaaaaaa:.github/workflows/cd.yml" in lines
    assert "  src/demo/data/source.py" in lines
    assert "  team.mk  (kept as you have it)  ->  .template-update/team.mk.diff" in lines

    report.conflicts = [tu.Conflict("params.yaml", "conflict markers")]
    conflicted = tu.report_text(report)
    assert conflicted.startswith("Template update 0.1.0 -> 0.2.0 left conflicts")
    assert "Modified:\n  params.yaml" in conflicted  # the conflict path reports every file too
    assert "(you had edited it)" in conflicted


def test_upstream_diffs_are_saved_where_git_never_sees_them(repo: Path) -> None:
    diff = tu.unified_diff("team.mk", b"a\n", b"a\nb\n", ("0.1.0", "0.2.0"))
    assert diff.splitlines()[:2] == ["--- a/team.mk (0.1.0)", "+++ b/team.mk (0.2.0)"]
    assert "+b" in diff.splitlines()
    assert tu.unified_diff("new.py", None, b"x\n", ("0.1.0", "0.2.0")).startswith("--- /dev/null")
    assert "not text" in tu.unified_diff("logo.png", b"\xff\xfe", b"\x00\xff", ("0.1.0", "0.2.0"))

    tu.save_upstream_diffs(repo, {"src/demo/data/source.py": diff})
    assert (repo / tu.NOTES_DIR / "src/demo/data/source.py.diff").read_text() == diff
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    tu.save_upstream_diffs(repo, {})  # the next update's notes replace these
    assert not (repo / tu.NOTES_DIR).exists()


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


RELEASE_1 = {
    "params.yaml": "model:\n  n_estimators: 150\n",
    "train.py": '"""Training."""\n\nROWS = 50\n',
    "same.txt": "same\n",
    "team.mk": "# {project_slug}\nteam: 1\n",
    "old.py": "OLD = 1\n",
    "plain.py": "PLAIN = 1\n",
    "gone.py": "GONE = 1\n",
    "skipped.py": "SKIP = 1\n",
}
RELEASE_2 = {
    "params.yaml": "model:\n  n_estimators: 200\n",
    "train.py": '"""Training."""\n\nROWS = 60\n',
    "same.txt": "same\n",
    "team.mk": "# {project_slug}\nteam: 2\n",
    "gone.py": "GONE = 2\n",
    "skipped.py": "SKIP = 2\n",
    "new.py": "NEW = 1\n",
}


class FakeCopier:
    """Copier's command line as tests/tools/copier_stand_in.py plays it, for `repo`: releases
    0.1.0 (what the repository was rendered from) and 0.2.0. Since then the team edited team.mk
    (which updates leave as it is) and old.py, and deleted gone.py and skipped.py."""

    def __init__(self, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        package = tmp_path / "fake" / "copier"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        stand_in = Path(__file__).with_name("copier_stand_in.py")
        (package / "__main__.py").write_text(stand_in.read_text())
        monkeypatch.setenv("PYTHONPATH", str(package.parent))
        monkeypatch.syspath_prepend(str(package.parent))
        monkeypatch.setenv("UV", str(fake_uv(tmp_path)))
        self.file = tmp_path / "scenario.json"
        monkeypatch.setenv("FAKE_COPIER_SCENARIO", str(self.file))
        self.log = tmp_path / "copier-calls"
        self.scenario: dict[str, object] = {
            "template": str(tmp_path / "template"),
            "releases": {"0.1.0": RELEASE_1, "0.2.0": RELEASE_2},
            "latest": "0.2.0",
            "kept": ["team.mk", "skipped.py"],
            "log": str(self.log),
        }
        self.set()
        for path, text in RELEASE_1.items():
            (repo / path).write_text(text.replace("{project_slug}", "demo-model"))
        (repo / "team.mk").write_text("# demo-model\nteam: 1\nmine: 1\n")
        (repo / "old.py").write_text("OLD = 2\n")
        for path in ("gone.py", "skipped.py"):
            (repo / path).unlink()
        git(repo, "add", "--all")
        git(repo, "commit", "--quiet", "-m", "rendered from 0.1.0, then edited")

    def set(self, **changes: object) -> None:
        self.scenario.update(changes)
        self.file.write_text(json.dumps(self.scenario))

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def copier(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCopier:
    return FakeCopier(repo, tmp_path, monkeypatch)


def test_update_that_leaves_conflicts_exits_4_and_lists_them(
    repo: Path, copier: FakeCopier, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    copier.set(conflict=True)
    head = git(repo, "rev-parse", "HEAD")

    assert tu.main(["--project", str(repo), "update"]) == tu.CONFLICTS_EXIT == 4

    output = capfd.readouterr()
    assert "Template update left 1 file(s) to resolve:" in output.err
    assert "train.py  conflict markers" in output.err
    assert "Nothing was committed" in output.err
    assert output.out.startswith("Template update 0.1.0 -> 0.2.0 left conflicts")
    assert "Modified:\n  .copier-answers.yml\n  params.yaml\n  train.py\n" in output.out
    assert git(repo, "rev-parse", "HEAD") == head
    assert copier.calls()[1] == ["update", "--trust", "--defaults", "--conflict", "inline"]
    assert not (tmp_path / "uv-calls").exists()  # no relock over conflict markers

    git(repo, "reset", "--quiet", "--hard")
    git(repo, "clean", "--quiet", "-fd")
    assert tu.main(["--project", str(repo), "update", "--format", "json"]) == 4
    output = capfd.readouterr()
    report = json.loads(output.out)
    assert report["status"] == 4
    assert report["conflicts"] == [{"path": "train.py", "reason": "conflict markers"}]
    assert (report["from_version"], report["to_version"]) == ("0.1.0", "0.2.0")
    assert "train.py  conflict markers" in output.err


def test_update_without_conflicts_exits_0_and_reports_every_kind_of_change(
    repo: Path, copier: FakeCopier, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()

    assert tu.main(["--project", str(repo), "update", "--format", "json"]) == 0

    report = json.loads(capfd.readouterr().out)
    assert report["status"] == 0
    assert (report["project"], report["template"]) == ("demo-model", str(tmp_path / "template"))
    assert (report["from_version"], report["to_version"]) == ("0.1.0", "0.2.0")
    assert report["base_commit"] == base
    assert report["conflicts"] == []
    assert report["added"] == ["new.py", "uv.lock"]  # uv.lock: the relock's
    assert report["modified"] == [".copier-answers.yml", "params.yaml", "train.py"]
    assert report["recreated"] == ["gone.py"]
    assert report["removed"] == [
        {"path": "old.py", "edited_here": True, "last_version": f"git show {base[:12]}:old.py"},
        {
            "path": "plain.py",
            "edited_here": False,
            "last_version": f"git show {base[:12]}:plain.py",
        },
    ]
    assert report["upstream_changes"] == [
        {"path": "skipped.py", "here": "deleted here", "diff": ".template-update/skipped.py.diff"},
        {"path": "team.mk", "here": "kept as you have it", "diff": ".template-update/team.mk.diff"},
    ]
    assert report["notes"] == ["uv.lock written (there was none): commit it with the update."]
    diff = (repo / ".template-update" / "team.mk.diff").read_text().splitlines()
    assert diff[:2] == ["--- a/team.mk (0.1.0)", "+++ b/team.mk (0.2.0)"]
    assert "-team: 1" in diff and "+team: 2" in diff and " # demo-model" in diff
    # Both releases rendered with the repository's answers, from the template it records.
    copies = [call for call in copier.calls() if call[0] == "copy"]
    assert [call[call.index("--vcs-ref") + 1] for call in copies] == ["0.1.0", "0.2.0"]


def test_update_in_text_lists_what_changed_and_where_the_upstream_diffs_are(
    repo: Path, copier: FakeCopier, capfd: pytest.CaptureFixture[str]
) -> None:
    assert tu.main(["--project", str(repo), "update"]) == 0
    lines = capfd.readouterr().out.splitlines()
    assert lines[0] == (
        "Template update applied (0.1.0 -> 0.2.0): 8 file(s) changed. Review `git diff`,"
    )
    assert "  team.mk  (kept as you have it)  ->  .template-update/team.mk.diff" in lines
    assert "  gone.py" in lines
    assert lines[-1] == "uv.lock written (there was none): commit it with the update."


def test_update_on_the_latest_release_changes_nothing_unless_answers_change(
    repo: Path, copier: FakeCopier, capfd: pytest.CaptureFixture[str]
) -> None:
    copier.set(latest="0.1.0")
    assert tu.main(["--project", str(repo), "update"]) == 0
    assert capfd.readouterr().out == (
        "Already on the template's latest release (0.1.0): nothing to update.\n"
    )
    assert tu.main(["--project", str(repo), "update", "--format", "json"]) == 0
    assert json.loads(capfd.readouterr().out) == {
        "status": 0,
        "project": "demo-model",
        "template": copier.scenario["template"],
        "from_version": "0.1.0",
        "to_version": "0.1.0",
        "note": "Already on the template's latest release (0.1.0): nothing to update.",
    }
    assert git(repo, "status", "--porcelain") == ""
    assert [call[0] for call in copier.calls()] == ["check-update", "check-update"]

    # A changed answer re-renders the release the repository is on.
    code = tu.main(["--project", str(repo), "update", "--data", "project_slug=other"])
    assert code == 0
    update = next(call for call in copier.calls() if call[0] == "update")
    assert update[-4:] == ["--data", "project_slug=other", "--vcs-ref", "0.1.0"]
    assert "project_slug: other" in (repo / ".copier-answers.yml").read_text()
    assert (repo / "team.mk").read_text() == "# demo-model\nteam: 1\nmine: 1\n"


def test_update_names_what_failed_in_copier(
    repo: Path, copier: FakeCopier, capfd: pytest.CaptureFixture[str]
) -> None:
    copier.set(update_exit=1)
    assert tu.main(["--project", str(repo), "update"]) == 1
    err = capfd.readouterr().err
    assert "template-update: copier update exited 1 (its message is above)" in err
    assert "git reset --hard HEAD && git clean -fd" in err

    copier.set(update_exit=0, check_update_fails=True)
    assert tu.main(["--project", str(repo), "update", "--format", "json"]) == 1
    output = capfd.readouterr()
    assert json.loads(output.out) == {
        "status": 1,
        "error": "copier check-update failed: the template's tags cannot be read",
    }

    copier.set(check_update_fails=False, unrenderable=["0.1.0"])
    assert tu.main(["--project", str(repo), "update", "--vcs-ref", "0.2.0"]) == 1
    assert (
        "could not render release 0.1.0 to compare with: no release 0.1.0 in"
        in capfd.readouterr().err
    )


def test_check_says_whether_a_release_is_waiting(
    repo: Path, copier: FakeCopier, capfd: pytest.CaptureFixture[str]
) -> None:
    assert tu.main(["--project", str(repo), "check"]) == 0
    assert capfd.readouterr().out.startswith(
        "demo-model: template release 0.2.0 is available (this repository is on 0.1.0)."
    )
    assert tu.main(["--project", str(repo), "check", "--fail-if-available"]) == 3
    assert tu.main(["--project", str(repo), "check", "--format", "json"]) == 0
    capfd.readouterr()
    assert (
        tu.main(["--project", str(repo), "check", "--format", "json", "--fail-if-available"]) == 3
    )
    assert json.loads(capfd.readouterr().out) == {
        "project": "demo-model",
        "template": copier.scenario["template"],
        "current_version": "0.1.0",
        "latest_version": "0.2.0",
        "update_available": True,
        "status": 3,
    }
    copier.set(latest="0.1.0")
    assert tu.main(["--project", str(repo), "check", "--fail-if-available"]) == 0
    assert capfd.readouterr().out == "demo-model: on the template's latest release (0.1.0).\n"
    copier.set(check_update_fails=True)
    assert tu.main(["--project", str(repo), "check"]) == 1
    assert (
        capfd.readouterr().err
        == "template-check: copier check-update failed: the template's tags cannot be read\n"
    )


def test_update_and_check_need_copier(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tu.importlib.util, "find_spec", lambda name: None)
    for command in ("update", "check"):
        assert tu.main(["--project", str(repo), command]) == 1
        err = capfd.readouterr().err
        assert f"template-{command}: Copier is not installed for" in err
        assert "they run this script with the pinned Copier" in err


def test_the_help_names_every_command_and_option(capsys: pytest.CaptureFixture[str]) -> None:
    def help_of(*args: str) -> str:
        with pytest.raises(SystemExit) as done:
            tu.main([*args, "--help"])
        assert done.value.code == 0
        return " ".join(capsys.readouterr().out.split())

    top = help_of()
    assert "Keep this repository on the template's latest release" in top
    assert "--project PROJECT repository root" in top
    assert "update update from the template's newest release" in top
    assert "check is a newer template release out?" in top
    assert "conflicts list conflicts an update left unresolved" in top
    update = help_of("update")
    assert "--data KEY=VALUE change an answer" in update
    assert "--vcs-ref VCS_REF a template tag or commit instead of the newest" in update
    assert "--format {text,json}" in update
    check = help_of("check")
    assert "--format {text,json}" in check
    assert "--fail-if-available exit 3 when a newer release exists" in check
    with pytest.raises(SystemExit) as missing:
        tu.main([])
    assert missing.value.code == 2
    assert "the following arguments are required: command" in capsys.readouterr().err
