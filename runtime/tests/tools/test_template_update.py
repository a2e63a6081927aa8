"""tools/template_update.py: the conflict scan, the checks before an update and the check report.

Offline: each test builds a small git repository in a tmp folder. The Copier runs themselves are
exercised by the template's own test suite, release against release.
"""

from __future__ import annotations

import json
import locale
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlops_stack_runtime.tools import template_update as tu

IDENTITY = ["-c", "user.name=Tests", "-c", "user.email=tests@example.com"]
NOT_A_FOLDER = (
    " is not a folder on this machine. Point `_src_path` at the template's git URL (edit the"
    " line, commit), then retry."
)


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail, rather than hang, when the code under test loops forever."""

    def stop(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def ascii_locale() -> Iterator[None]:
    """A machine whose locale is not UTF-8 (files opened without an encoding read ASCII)."""
    previous = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        assert locale.getpreferredencoding(False) != "UTF-8"
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, previous)


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
    # An untracked link to nothing is no conflict (it cannot be read).
    (repo / "latest.log").symlink_to(repo / "logs" / "gone.log")
    assert tu.main(["--project", str(repo), "conflicts"]) == 0
    assert capsys.readouterr().out == "No conflict markers, .rej files or unmerged files left.\n"

    (repo / "params.yaml").write_text(">>>>>>> after updating\n")
    (repo / "src" / "pipelines").mkdir(parents=True)  # a new folder: its files are listed
    (repo / "src" / "pipelines" / "train.py.rej").write_text("@@ -1 +1 @@\n")
    assert tu.main(["--project", str(repo), "conflicts"]) == tu.CONFLICTS_EXIT == 4
    assert capsys.readouterr().err == (
        "Template update left 2 file(s) to resolve:\n"
        "  params.yaml                 conflict markers\n"
        "  src/pipelines/train.py.rej  rejected hunks\n"
        f"{tu.RESOLVE_HELP}\n"
    )
    assert tu.RESOLVE_HELP.startswith("Nothing was committed. Resolve each file:\n")
    assert "then `git add <file>`" in tu.RESOLVE_HELP
    assert "`git reset --hard HEAD && git clean -fd`" in tu.RESOLVE_HELP


def test_update_refuses_a_dirty_tree_and_names_the_files(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "mv", "train.py", "a_train.py")  # a rename: one entry, the new name
    (repo / "params.yaml").write_text("model:\n  n_estimators: 300\n")
    (repo / "notes").mkdir()
    (repo / "notes" / "draft.txt").write_text("draft\n")
    head = git(repo, "rev-parse", "HEAD")

    with within(2):  # one git call; a parse that loops would hold memory until it fails
        assert tu.status(repo, "--untracked-files=all") == [
            tu.StatusEntry("R ", "a_train.py"),
            tu.StatusEntry(" M", "params.yaml"),
            tu.StatusEntry("??", "notes/draft.txt"),
        ]
    assert tu.main(["--project", str(repo), "update"]) == 1
    assert capsys.readouterr().err == (
        "template-update: the work tree has uncommitted changes; commit or stash them first"
        " (Copier merges the template into committed files only):\n"
        "  R  a_train.py\n"
        "   M params.yaml\n"
        "  ?? notes/draft.txt\n"
    )
    assert git(repo, "rev-parse", "HEAD") == head


def test_a_dirty_tree_lists_a_copy_once_where_git_reports_copies(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "config", "status.renames", "copies")
    (repo / "train_copy.py").write_text((repo / "train.py").read_text())
    (repo / "train.py").write_text('"""Training."""\n\nROWS = 50\nCOLUMNS = 3\n')
    git(repo, "add", "--all")

    with within(2):
        assert tu.status(repo) == [
            tu.StatusEntry("M ", "train.py"),
            tu.StatusEntry("C ", "train_copy.py"),
        ]
    assert tu.main(["--project", str(repo), "update"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[1:] == ["  M  train.py", "  C  train_copy.py"]


def test_update_names_a_template_path_missing_on_this_machine(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / ".copier-answers.yml").write_text(
        "_commit: 0.1.0\n_src_path: /nowhere/mlops-template\n"
    )
    git(repo, "commit", "--quiet", "-am", "moved template")
    assert tu.main(["--project", str(repo), "update"]) == tu.UNREACHABLE_EXIT == 5
    assert capsys.readouterr().err == (
        "template-update: the template recorded in .copier-answers.yml"
        f" (_src_path: /nowhere/mlops-template){NOT_A_FOLDER}\n"
    )


def test_update_without_answers_file_says_copier_cannot_update(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(repo, "rm", "--quiet", ".copier-answers.yml")
    git(repo, "commit", "--quiet", "-m", "no answers")
    assert tu.main(["--project", str(repo), "update"]) == 1
    assert capsys.readouterr().err == (
        "template-update: no .copier-answers.yml: this repository does not record the template"
        " it came from, so Copier cannot update it\n"
    )


@pytest.mark.parametrize(
    ("answers", "lacking"),
    [
        ("_src_path: /somewhere/template\n", "_commit"),
        ("_commit: ''\n_src_path: /somewhere/template\n", "_commit"),
        ("project_slug: demo-model\n", "_src_path, _commit"),
        ("", "_src_path, _commit"),
    ],
)
def test_update_names_the_answers_copier_needs(
    repo: Path, capsys: pytest.CaptureFixture[str], answers: str, lacking: str
) -> None:
    (repo / ".copier-answers.yml").write_text(answers)
    git(repo, "commit", "--quiet", "-am", "answers")
    assert tu.main(["--project", str(repo), "update"]) == 1
    assert capsys.readouterr().err == (
        f"template-update: .copier-answers.yml lacks {lacking}; Copier cannot update\n"
    )


def test_answers_are_read_as_utf_8_whatever_the_locale(repo: Path) -> None:
    (repo / ".copier-answers.yml").write_bytes(
        "_commit: 0.1.0\n_src_path: /t\nauthor: José Núñez\n".encode()
    )
    with ascii_locale():
        assert tu.read_answers(repo)["author"] == "José Núñez"


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
    with pytest.raises(tu.TemplateUnreachableError) as missing:
        tu.check_template_reachable("../mlops-template")
    assert str(missing.value) == (
        "the template recorded in .copier-answers.yml (_src_path: ../mlops-template)" + NOT_A_FOLDER
    )
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
    (repo / ".copier-answers.yml").write_text(
        "_commit: 0.1.0\n_src_path: /nowhere/template\nproject_slug: demo-model\n"
    )
    assert tu.main(["--project", str(repo), "check", "--format", "json"]) == tu.UNREACHABLE_EXIT
    output = capsys.readouterr()
    assert json.loads(output.out) == {
        "project": "demo-model",
        "template": "/nowhere/template",
        "current_version": "0.1.0",
        "error": "the template recorded in .copier-answers.yml (_src_path: /nowhere/template)"
        + NOT_A_FOLDER,
        "status": tu.UNREACHABLE_EXIT,
    }
    assert output.err == ""

    (repo / ".copier-answers.yml").unlink()  # nothing to name the repository with
    assert tu.main(["--project", str(repo), "check", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out) == {
        "project": None,
        "template": None,
        "current_version": None,
        "error": "no .copier-answers.yml: this repository does not record the template it came"
        " from, so Copier cannot update it",
        "status": 1,
    }


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
    report.added = ["src/demo/steps/new_step.py"]
    report.notes = ["uv.lock re-resolved for the updated pyproject.toml (existing pins kept)."]
    details = [
        "Removed by the update (your last version: the command shown):",
        "  .github/workflows/ci.yml  (you had edited it)  ->"
        "  git show aaaaaaaaaaaa:.github/workflows/ci.yml",
        "  .github/workflows/cd.yml  ->  git show aaaaaaaaaaaa:.github/workflows/cd.yml",
        "Recreated (you had deleted them; delete them again if you still do not want them):",
        "  src/demo/data/source.py",
        "Changed by the template but left as they are here (team-owned or deleted here);"
        " read the template's change and apply what you want by hand:",
        "  team.mk  (kept as you have it)  ->  .template-update/team.mk.diff",
        "uv.lock re-resolved for the updated pyproject.toml (existing pins kept).",
    ]
    # Without conflicts the added and modified files are for `git diff` to show.
    assert tu.report_text(report).splitlines() == [
        "Template update applied (0.1.0 -> 0.2.0): 5 file(s) changed. Review `git diff`,",
        "run `make ci`, then commit (`git add -A && git commit`).",
        *details,
    ]

    report.conflicts = [tu.Conflict("params.yaml", "conflict markers")]
    # With conflicts the report lists every file too, beside the conflicts listed on stderr.
    assert tu.report_text(report).splitlines() == [
        "Template update 0.1.0 -> 0.2.0 left conflicts (listed on stderr); it changed 5 file(s):",
        "Added:",
        "  src/demo/steps/new_step.py",
        "Modified:",
        "  params.yaml",
        *details,
    ]


def test_report_of_an_update_that_changed_nothing() -> None:
    report = tu.UpdateReport("0.1.0", "0.1.0", "a" * 40)
    assert tu.report_text(report) == "Template update 0.1.0 -> 0.1.0: no file changed."
    report.notes = [
        "No uv here to re-resolve uv.lock: run `uv lock` (or `make setup`), commit uv.lock."
    ]
    assert tu.report_text(report).splitlines()[1:] == report.notes


def test_upstream_diffs_are_saved_where_git_never_sees_them(repo: Path) -> None:
    versions = ("0.1.0", "0.2.0")
    diff = tu.unified_diff("team.mk", b"a\n", b"a\nb\n", versions)
    assert diff == "--- a/team.mk (0.1.0)\n+++ b/team.mk (0.2.0)\n@@ -1 +1,2 @@\n a\n+b\n"
    assert tu.unified_diff("new.py", None, b"x\n", versions) == (
        "--- /dev/null\n+++ b/new.py (0.2.0)\n@@ -0,0 +1 @@\n+x\n"
    )
    assert tu.unified_diff("old.py", b"x\n", None, versions) == (
        "--- a/old.py (0.1.0)\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
    )
    assert tu.unified_diff("logo.png", b"\xff\xfe", b"\x00\xff", versions) == (
        "logo.png: not text; compare the two releases by hand\n"
    )

    accented = tu.unified_diff(
        "README.md", "Modèle\n".encode(), "Modèle à jour\n".encode(), versions
    )
    with ascii_locale():  # saved as UTF-8 whatever the locale
        tu.save_upstream_diffs(repo, {"src/demo/data/source.py": diff, "README.md": accented})
    assert (repo / tu.NOTES_DIR / "src/demo/data/source.py.diff").read_text() == diff
    assert (repo / tu.NOTES_DIR / "README.md.diff").read_bytes() == accented.encode()
    assert (repo / tu.NOTES_DIR / ".gitignore").read_text() == (
        "# Written by template updates; never committed.\n*\n"
    )
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    tu.save_upstream_diffs(repo, {})  # the next update's notes replace these
    assert not (repo / tu.NOTES_DIR).exists()


def fake_uv(
    tmp_path: Path, exit_code: int = 0, message: str = "resolution failed", name: str = "fake-uv"
) -> Path:
    """A `uv` that records its arguments and writes uv.lock, as `uv lock` would."""
    script = tmp_path / name
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{tmp_path}/uv-calls"\n'
        'echo "version = 1" > uv.lock\n'
        f"printf '{message}' >&2\nexit {exit_code}\n"
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
    assert note == "uv.lock re-resolved for the updated pyproject.toml (existing pins kept)."
    assert (tmp_path / "uv-calls").read_text().split() == ["lock", "--quiet"]


def test_relock_finds_uv_on_the_path(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_uv(bin_dir, name="uv")
    monkeypatch.delenv("UV", raising=False)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert tu.relock(repo) == "uv.lock written (there was none): commit it with the update."
    assert (bin_dir / "uv-calls").read_text().split() == ["lock", "--quiet"]


def test_relock_writes_a_missing_lock_and_reports_a_failure(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UV", str(fake_uv(tmp_path, exit_code=1)))
    note = tu.relock(repo)  # no uv.lock in the repository
    assert note == (
        "`uv lock` failed (resolution failed): fix pyproject.toml, run `uv lock`, commit uv.lock."
    )
    (repo / "uv.lock").unlink()  # the failed run left one behind
    monkeypatch.setenv("UV", str(fake_uv(tmp_path, exit_code=2, message="")))
    assert tu.relock(repo) == (
        "`uv lock` failed (no message): fix pyproject.toml, run `uv lock`, commit uv.lock."
    )
    (repo / "uv.lock").unlink()
    monkeypatch.setenv("UV", str(tmp_path / "no-such-uv"))
    assert tu.relock(repo) == (
        "No uv here to re-resolve uv.lock: run `uv lock` (or `make setup`), commit uv.lock."
    )


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
    # The conflicted file is the update's: not a change the update left as you have it.
    assert [change["path"] for change in report["upstream_changes"]] == ["skipped.py", "team.mk"]


@pytest.mark.parametrize("staged", [False, True], ids=["unstaged", "staged"])
def test_update_without_conflicts_exits_0_and_reports_every_kind_of_change(
    repo: Path,
    copier: FakeCopier,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    staged: bool,
) -> None:
    copier.set(stage=staged)  # whether Copier leaves its changes staged or not
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
    output = capfd.readouterr()
    assert output.err == (
        "copier: update failed half-way\n"  # Copier's own message, above this script's
        "template-update: copier update exited 1 (its message is above). Undo partial changes"
        " with `git reset --hard HEAD && git clean -fd`.\n"
    )
    assert output.out == ""

    copier.set(update_exit=0, check_update_fails=True)
    assert tu.main(["--project", str(repo), "update", "--format", "json"]) == 1
    output = capfd.readouterr()
    assert json.loads(output.out) == {
        "status": 1,
        "error": "copier check-update failed: the template's tags cannot be read",
    }

    traceback = (
        "Traceback (most recent call last):\n  File copier/main.py, line 1\n"
        "copier.errors.UserMessageError: no tag 0.1.0 in the template\n"
    )
    copier.set(check_update_fails=False, unrenderable={"0.1.0": traceback})
    assert tu.main(["--project", str(repo), "update", "--vcs-ref", "0.2.0"]) == 1
    assert capfd.readouterr().err.splitlines()[-1] == (
        "template-update: could not render release 0.1.0 to compare with:"
        " copier.errors.UserMessageError: no tag 0.1.0 in the template"
    )
    git(repo, "reset", "--quiet", "--hard")
    git(repo, "clean", "--quiet", "-fd")
    copier.set(unrenderable={"0.1.0": ""})
    assert tu.main(["--project", str(repo), "update", "--vcs-ref", "0.2.0"]) == 1
    assert capfd.readouterr().err.splitlines()[-1] == (
        "template-update: could not render release 0.1.0 to compare with: no message"
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


@pytest.mark.parametrize(
    ("copier_says", "reported"),
    [
        (
            "Error\nwhile reading tags\nfatal: no tag in the template\n",
            "fatal: no tag in the template",
        ),
        ("", ""),
    ],
)
def test_check_names_the_last_line_of_what_copier_said(
    repo: Path,
    copier: FakeCopier,
    capfd: pytest.CaptureFixture[str],
    copier_says: str,
    reported: str,
) -> None:
    copier.set(check_update_fails=copier_says)
    assert tu.main(["--project", str(repo), "check"]) == 1
    assert capfd.readouterr().err == f"template-check: copier check-update failed: {reported}\n"


def test_check_without_fail_if_available_exits_0_when_a_release_waits(
    repo: Path, copier: FakeCopier, capfd: pytest.CaptureFixture[str]
) -> None:
    assert tu.check(repo, "text") == 0
    assert "template release 0.2.0 is available" in capfd.readouterr().out


def test_update_and_check_need_copier(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tu.importlib.util, "find_spec", lambda name: None)
    for command in ("update", "check"):
        assert tu.main(["--project", str(repo), command]) == 1
        assert capfd.readouterr().err == (
            f"template-{command}: Copier is not installed for {sys.executable}. Run `make"
            " template-update` or `make template-check`: they run this script with the pinned"
            " Copier.\n"
        )


def test_the_help_names_every_command_and_option(capsys: pytest.CaptureFixture[str]) -> None:
    def help_of(*args: str) -> str:
        with pytest.raises(SystemExit) as done:
            tu.main([*args, "--help"])
        assert done.value.code == 0
        return " ".join(capsys.readouterr().out.split())

    top = help_of()
    assert "Keep this repository on the template's latest release" in top
    assert "Exit status" not in top  # the first line of the docstring only
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


@pytest.mark.parametrize("current", ["0.2.0.post3", "0.2.1.dev2", "0.2.0+g1a2b3c4"])
def test_check_tells_a_commit_after_the_latest_release_by_its_version(current: str) -> None:
    answers = {"_src_path": "https://git.example.com/ml/template.git", "project_slug": None}
    found = {"update_available": False, "current_version": current, "latest_version": "0.2.0"}
    result = tu.check_result(answers, found, 0)
    assert result["untagged"] is True
    assert tu.check_text(result) == (
        "this repository: rendered from an untagged commit after the template's latest release"
        f" 0.2.0 ({current}); no newer release yet. The next release updates it."
    )
    # On the latest commit of a template that has no release yet, there is nothing newer.
    same = {**found, "latest_version": current}
    assert "untagged" not in tu.check_result(answers, same, 0)
    assert tu.check_text(tu.check_result(answers, same, 0)) == (
        f"this repository: on the template's latest release ({current})."
    )


def test_update_on_an_untagged_commit_waits_for_the_next_release(
    repo: Path, copier: FakeCopier, capfd: pytest.CaptureFixture[str]
) -> None:
    answers = repo / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace("0.1.0", "0.2.0.post3.dev0+g1a2b3c4"))
    git(repo, "commit", "--quiet", "-am", "rendered from a commit after 0.2.0")
    assert tu.main(["--project", str(repo), "update"]) == 0
    assert capfd.readouterr().out == (
        "Rendered from an untagged commit after release 0.2.0 (0.2.0.post3.dev0+g1a2b3c4): no"
        " newer release yet, nothing to update. The next release updates it (or `--vcs-ref"
        " <commit>` for a commit of the template).\n"
    )
    assert [call[0] for call in copier.calls()] == ["check-update"]


def test_update_shows_what_the_templates_tasks_print_and_keeps_json_clean(
    repo: Path, copier: FakeCopier, capfd: pytest.CaptureFixture[str]
) -> None:
    copier.set(task_output="post-update task: hooks installed")
    assert tu.main(["--project", str(repo), "update"]) == 0
    output = capfd.readouterr()
    assert output.out.splitlines()[0] == "post-update task: hooks installed"
    assert output.out.splitlines()[1].startswith("Template update applied (0.1.0 -> 0.2.0)")
    assert "hooks installed" not in output.err

    git(repo, "reset", "--quiet", "--hard")
    git(repo, "clean", "--quiet", "-fd")
    assert tu.main(["--project", str(repo), "update", "--format", "json"]) == 0
    output = capfd.readouterr()
    assert json.loads(output.out)["status"] == 0  # stdout holds the JSON alone
    assert output.err == "post-update task: hooks installed\n"


def test_update_and_check_read_a_relative_template_path_from_the_project(
    repo: Path,
    copier: FakeCopier,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    answers = repo / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace(str(tmp_path / "template"), "../template"))
    git(repo, "commit", "--quiet", "-am", "template beside the repository")
    elsewhere = tmp_path / "elsewhere" / "deeper"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)  # not where Copier runs
    copier.set(template=str((tmp_path / "template").resolve()))  # what the renders are given

    assert tu.main(["--project", str(repo), "check"]) == 0
    assert "template release 0.2.0 is available" in capfd.readouterr().out
    assert tu.main(["--project", str(repo), "update", "--format", "json"]) == 0
    report = json.loads(capfd.readouterr().out)
    assert (report["template"], report["to_version"]) == ("../template", "0.2.0")
    assert report["upstream_changes"][-1]["path"] == "team.mk"


def test_update_renders_a_remote_template_from_its_url(
    repo: Path, copier: FakeCopier, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    url = (tmp_path / "template").as_uri()
    answers = repo / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace(str(tmp_path / "template"), url))
    git(repo, "commit", "--quiet", "-am", "template by URL")
    copier.set(template=url)

    assert tu.main(["--project", str(repo), "update", "--format", "json"]) == 0
    report = json.loads(capfd.readouterr().out)
    assert (report["template"], report["to_version"]) == (url, "0.2.0")
    copies = [call for call in copier.calls() if call[0] == "copy"]
    assert [call[-2] for call in copies] == [url, url]


def test_update_to_a_chosen_ref_asks_copier_for_nothing_else(
    repo: Path, copier: FakeCopier, capfd: pytest.CaptureFixture[str]
) -> None:
    releases = {"0.1.0": RELEASE_1, "0.2.0": RELEASE_2, "0.3.0": RELEASE_2}
    copier.set(releases=releases, latest="0.3.0")
    assert tu.main(["--project", str(repo), "update", "--vcs-ref", "0.2.0"]) == 0
    assert capfd.readouterr().out.startswith("Template update applied (0.1.0 -> 0.2.0)")
    assert copier.calls()[0] == [
        "update",
        "--trust",
        "--defaults",
        "--conflict",
        "inline",
        "--vcs-ref",
        "0.2.0",
    ]


def test_update_reports_only_what_the_template_changed_and_the_update_left(
    repo: Path, copier: FakeCopier, capfd: pytest.CaptureFixture[str]
) -> None:
    release_1 = {
        **RELEASE_1,
        "legacy.py": "LEGACY = 1\n",  # removed upstream; never here
        "tools.cfg": "[tools]\n",  # removed upstream; the update leaves it
        "ci.yml": "jobs: [test]\n",
    }
    release_2 = {
        **RELEASE_2,
        "src/demo/steps/new_step.py": "STEP = 1\n",  # in a folder new to the repository
        "team.yaml": "owner: platform\n",  # new in the template; the team has its own
        "ci.yml": "jobs: [test, lint]\n",  # the team made the same change already
    }
    copier.set(
        releases={"0.1.0": release_1, "0.2.0": release_2},
        kept=["team.mk", "skipped.py", "team.yaml", "tools.cfg", "ci.yml"],
    )
    (repo / "same.txt").write_text("same\nmine\n")  # edited here; the template did not change it
    (repo / "team.yaml").write_text("owner: us\n")
    (repo / "tools.cfg").write_text("[tools]\n")
    (repo / "ci.yml").write_text("jobs: [test, lint]\n")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "the team's own files")

    assert tu.main(["--project", str(repo), "update", "--format", "json"]) == 0
    report = json.loads(capfd.readouterr().out)
    assert report["added"] == ["new.py", "src/demo/steps/new_step.py", "uv.lock"]
    assert report["upstream_changes"] == [
        {"path": "skipped.py", "here": "deleted here", "diff": ".template-update/skipped.py.diff"},
        {"path": "team.mk", "here": "kept as you have it", "diff": ".template-update/team.mk.diff"},
        {
            "path": "team.yaml",
            "here": "kept as you have it",
            "diff": ".template-update/team.yaml.diff",
        },
        {
            "path": "tools.cfg",
            "here": "kept as you have it",
            "diff": ".template-update/tools.cfg.diff",
        },
    ]
    assert (repo / ".template-update" / "team.yaml.diff").read_text() == (
        "--- /dev/null\n+++ b/team.yaml (0.2.0)\n@@ -0,0 +1 @@\n+owner: platform\n"
    )
    assert (repo / ".template-update" / "tools.cfg.diff").read_text() == (
        "--- a/tools.cfg (0.1.0)\n+++ /dev/null\n@@ -1 +0,0 @@\n-[tools]\n"
    )


def test_main_works_on_the_current_folder_by_default(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo)
    assert tu.main(["conflicts"]) == 0
    assert capsys.readouterr().out == "No conflict markers, .rej files or unmerged files left.\n"
    (repo / "train.py").write_text("<<<<<<< before updating\n")
    assert tu.main(["conflicts"]) == 4


def test_a_folder_outside_git_is_one_line_naming_the_git_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    template = tmp_path / "template"
    template.mkdir()
    git(template, "init", "--quiet")
    project = tmp_path / "unversioned"
    project.mkdir()
    (project / ".copier-answers.yml").write_text(f"_commit: 0.1.0\n_src_path: {template}\n")

    assert tu.main(["--project", str(project), "update"]) == 1
    output = capfd.readouterr()
    assert output.err == (
        "template-update: `git status --porcelain=v1 -z --untracked-files=all` failed: fatal: not"
        " a git repository (or any of the parent directories): .git\n"
    )
    assert output.out == ""
    assert tu.main(["--project", str(project), "conflicts"]) == 1
    assert capfd.readouterr().err.startswith(
        "template-conflicts: `git diff --name-only -z --diff-filter=U` failed: "
    )


def test_scan_leaves_out_a_deleted_rej_file(repo: Path) -> None:
    (repo / "params.yaml.rej").write_text("@@ -1 +1 @@\n")
    git(repo, "add", "params.yaml.rej")
    git(repo, "commit", "--quiet", "-m", "committed by mistake")
    (repo / "params.yaml.rej").unlink()
    assert tu.scan(repo) == []


@pytest.fixture
def fake_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `git` on the PATH whose ls-remote fails with the message in tmp_path/git-says."""
    bin_dir = tmp_path / "git-bin"
    bin_dir.mkdir()
    script = bin_dir / "git"
    script.write_text(
        "#!/bin/sh\n"
        f'sed "s/@PROMPT@/$GIT_TERMINAL_PROMPT/" "{tmp_path}/git-says" >&2\n'
        f'exit "$(cat "{tmp_path}/git-exit")"\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.delenv("GIT_TERMINAL_PROMPT", raising=False)
    return tmp_path


def test_an_unreadable_remote_template_is_named_with_what_git_said(fake_git: Path) -> None:
    url = "https://git.example.com/ml/template.git"
    (fake_git / "git-says").write_text(
        "fatal: could not read Username for 'https://git.example.com':\n"
        "   terminal prompts disabled (GIT_TERMINAL_PROMPT=@PROMPT@)\n"
    )
    (fake_git / "git-exit").write_text("128")
    with pytest.raises(tu.TemplateUnreachableError) as error:
        tu.check_template_reachable(url)
    assert str(error.value) == (
        f"cannot read the template at {url}: fatal: could not read Username for"
        " 'https://git.example.com': terminal prompts disabled (GIT_TERMINAL_PROMPT=0)"
    )
    (fake_git / "git-says").write_text("")
    (fake_git / "git-exit").write_text("2")
    with pytest.raises(tu.TemplateUnreachableError) as silent:
        tu.check_template_reachable(url)
    assert str(silent.value) == f"cannot read the template at {url}: git exited 2"


def test_a_template_that_does_not_answer_is_given_up_after_120_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waited: list[float | None] = []

    def hangs(
        command: list[str], timeout: float | None = None, **options: object
    ) -> subprocess.CompletedProcess[str]:
        waited.append(timeout)
        if timeout is None:
            raise AssertionError("git would wait forever")
        raise subprocess.TimeoutExpired(command, timeout)

    monkeypatch.setattr(tu.subprocess, "run", hangs)
    with pytest.raises(tu.TemplateUnreachableError) as error:
        tu.check_template_reachable("gh:acme/mlops-template")
    assert str(error.value) == "the template at gh:acme/mlops-template did not answer within 120 s"
    assert error.value.exit_code == tu.UNREACHABLE_EXIT
    assert waited == [120]
