"""`make fleet-check` and `make fleet-update` (tools/fleet.py) over a fleet of seven repositories.

The repositories come from the two releases of tests/test_update.py (0.1.0 and the working tree as
0.2.0), and are left the way a platform team finds them: three behind with committed edits (one per
tier and CI provider), one with an edit that conflicts with the release, one with uncommitted
changes, one already on the latest release, one whose `template-update` branch holds a commit a
person made. Every outcome is checked in the repositories themselves, then a second run must change
nothing. The releases live in a temporary repository, not in this checkout, so every run names it
(`--allow-template`, or FLEET_ALLOW_TEMPLATES through make): fleet.py refuses any other template,
which the hostile-template tests at the end hold.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from .conftest import TEMPLATE_DIR, run
from .hostile_template import make_hostile_template, task_runs
from .test_update import (
    NEXT,
    PREVIOUS,
    TEAM_DOCSTRING,
    commit_all,
    edit_params,
    git,
    head,
    releases,  # noqa: F401  (the fixture)
    render,
)

FLEET = [sys.executable, str(TEMPLATE_DIR / "tools" / "fleet.py")]
BRANCH = "template-update"
BEHIND = {  # one per tier and per CI provider: what varies the files an update touches
    "credit-startup": {},
    "risk-scale-up": {
        "project_name": "Risk Scale",
        "stack_tier": "scale-up",
        "ci_provider": "gitlab",
        "data_remote": "gcs",
    },
    "churn-enterprise": {
        "project_name": "Churn Enterprise",
        "stack_tier": "enterprise",
        "ci_provider": "jenkins",
    },
}


@dataclass(frozen=True)
class Fleet:
    root: Path
    heads: dict[str, str]  # repository -> HEAD before any fleet command
    template: Path  # the releases' repository: named with --allow-template

    def repo(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="module")
def fleet(releases: Path, tmp_path_factory: pytest.TempPathFactory) -> Fleet:  # noqa: F811
    root = tmp_path_factory.mktemp("fleet")
    for name, answers in BEHIND.items():
        project = render(str(releases), root / name, PREVIOUS, answers, cwd=root)
        params = project / "params.yaml"
        params.write_text(edit_params(params.read_text()))  # merges cleanly with the release
        commit_all(project, "Team: fewer trees")

    conflicting = render(str(releases), root / "conflicting", PREVIOUS, {}, cwd=root)
    train = next((conflicting / "src").glob("*/features.py"))
    _, _, rest = train.read_text().partition("\n")
    train.write_text(f"{TEAM_DOCSTRING}\n{rest}")  # the line the release rewords
    commit_all(conflicting, "Team: our docstring")

    dirty = render(str(releases), root / "dirty", PREVIOUS, {}, cwd=root)
    (dirty / "params.yaml").write_text(edit_params((dirty / "params.yaml").read_text()))

    render(str(releases), root / "current", NEXT, {}, cwd=root)

    foreign = render(str(releases), root / "foreign-branch", PREVIOUS, {}, cwd=root)
    git(foreign, "switch", "--quiet", "--create", BRANCH)
    (foreign / "NOTES.md").write_text("A person's work in progress.\n")
    commit_all(foreign, "Work in progress")
    git(foreign, "switch", "--quiet", "main")

    heads = {path.name: head(path) for path in root.iterdir()}
    assert len(heads) == 7
    return Fleet(root, heads, releases)


def fleet_json(*args: str, cwd: Path) -> tuple[int, dict]:
    result = run([*FLEET, *args, "--format", "json"], cwd, check=False)
    return result.returncode, json.loads(result.stdout)


def allow(fleet: Fleet) -> tuple[str, str]:
    return ("--allow-template", str(fleet.template))


def by_repo(document: dict) -> dict[str, dict]:
    return {Path(entry["repo"]).name: entry for entry in document["repositories"]}


def branch_tip(repo: Path) -> str | None:
    found = run(["git", "rev-parse", "--verify", "--quiet", BRANCH], repo, check=False)
    return found.stdout.strip() or None


@pytest.fixture(scope="module")
def checked(fleet: Fleet) -> tuple[int, dict]:
    return fleet_json("check", str(fleet.root / "*"), *allow(fleet), cwd=fleet.root)


@pytest.fixture(scope="module")
def updated(fleet: Fleet, checked: tuple[int, dict]) -> tuple[int, dict, str]:
    """`make fleet-update` of the template repository over a glob of the ten."""
    result = run(
        [
            *("make", "--no-print-directory", "-C", str(TEMPLATE_DIR), "fleet-update"),
            f"REPOS={fleet.root}/*",
            "FORMAT=json",
            "JOBS=2",
            # A command-line variable of make reaches the recipe's environment.
            f"FLEET_ALLOW_TEMPLATES={fleet.template}",
        ],
        fleet.root,
        check=False,
    )
    start = result.stdout.index("{\n")  # after make's own lines (uv sync)
    return result.returncode, json.loads(result.stdout[start:]), result.stderr


def test_check_reports_each_repository_and_changes_nothing(
    fleet: Fleet, checked: tuple[int, dict]
) -> None:
    status, document = checked
    entries = by_repo(document)
    assert status == 3 == document["status"], "an update is waiting, nothing failed"
    assert document["summary"] == {"update available": 6, "up to date": 1}
    assert entries["current"]["from_version"] == NEXT
    for name in set(entries) - {"current"}:
        assert entries[name]["from_version"] == PREVIOUS
        assert entries[name]["to_version"] == NEXT
    assert entries["churn-enterprise"]["project"] == "churn-enterprise"
    assert {name: head(fleet.repo(name)) for name in fleet.heads} == fleet.heads


def test_update_reports_every_outcome(updated: tuple[int, dict, str]) -> None:
    status, document, stderr = updated
    assert status == 2, "make's status for a failed recipe"
    assert document["status"] == 1, "conflicts, a dirty tree and a failure"
    assert document["summary"] == {
        "updated": 3,
        "conflicts": 1,
        "dirty": 1,
        "up to date": 1,
        "failed": 1,
    }
    entries = by_repo(document)
    assert {name for name, e in entries.items() if e["result"] == "updated"} == set(BEHIND)
    assert entries["conflicting"]["conflicts"] == [
        f"src/{entries['conflicting']['project'].replace('-', '_')}/features.py"
    ]
    assert "make template-update" in entries["conflicting"]["detail"]
    assert entries["dirty"]["dirty"] == ["params.yaml"]
    assert "commit(s) this command did not make" in entries["foreign-branch"]["detail"]
    assert "Error 1" in stderr, "make names the failed recipe"


def test_updated_repositories_get_one_commit_on_the_branch_and_stay_where_they_were(
    fleet: Fleet, updated: tuple[int, dict, str]
) -> None:
    entries = by_repo(updated[1])
    for name in BEHIND:
        repo = fleet.repo(name)
        assert head(repo) == fleet.heads[name], "the branch the team is on did not move"
        assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "main"
        assert git(repo, "status", "--porcelain").strip() == ""
        assert git(repo, "rev-parse", f"{BRANCH}^").strip() == fleet.heads[name]
        message = git(repo, "log", "-1", "--format=%B", BRANCH)
        assert f"Template-Update: {PREVIOUS} -> {NEXT}" in message
        answers = yaml.safe_load(git(repo, "show", f"{BRANCH}:.copier-answers.yml"))
        assert answers["_commit"] == NEXT
        params = git(repo, "show", f"{BRANCH}:params.yaml")
        assert "n_estimators: 120" in params, "the team's edit survived the update"
        changed = set(git(repo, "diff", "--name-only", "--no-renames", "main", BRANCH).split())
        entry = entries[name]
        listed = entry["added"] + entry["modified"] + entry["removed"] + entry["recreated"]
        assert changed == set(listed)
        assert ".copier-answers.yml" in entry["modified"]
        # The release rewords the team-owned source module: reported, its diff kept in the repo.
        source = f"src/{entry['project'].replace('-', '_')}/data/source.py"
        (upstream,) = [c for c in entry["upstream_changes"] if c["path"] == source]
        assert upstream["here"] == "kept as you have it"
        assert '+"""' in (repo / upstream["diff"]).read_text()


def test_conflicting_dirty_and_foreign_branch_repositories_are_left_as_they_were(
    fleet: Fleet, updated: tuple[int, dict, str]
) -> None:
    for name in ("conflicting", "foreign-branch", "current"):
        repo = fleet.repo(name)
        assert head(repo) == fleet.heads[name]
        assert git(repo, "status", "--porcelain", "--untracked-files=all").strip() == ""
        assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "main"
    assert branch_tip(fleet.repo("conflicting")) is None, "no branch left behind"
    assert branch_tip(fleet.repo("current")) is None
    foreign = fleet.repo("foreign-branch")
    assert git(foreign, "show", f"{BRANCH}:NOTES.md") == "A person's work in progress.\n"
    dirty = fleet.repo("dirty")
    assert git(dirty, "status", "--porcelain").split() == ["M", "params.yaml"]
    assert head(dirty) == fleet.heads["dirty"]


def test_a_second_update_changes_nothing(fleet: Fleet, updated: tuple[int, dict, str]) -> None:
    tips = {name: branch_tip(fleet.repo(name)) for name in BEHIND}
    names = [str(fleet.repo(name)) for name in [*BEHIND, "current"]]
    status, document = fleet_json("update", *names, *allow(fleet), cwd=fleet.root)
    assert status == 0 == document["status"]
    assert document["summary"] == {"updated": 3, "up to date": 1}
    for name, entry in by_repo(document).items():
        if name in BEHIND:
            assert "nothing changed" in entry["detail"]
            assert branch_tip(fleet.repo(name)) == tips[name]
            assert head(fleet.repo(name)) == fleet.heads[name]


def test_the_text_report_is_a_table_with_the_conflicted_files(
    fleet: Fleet, updated: tuple[int, dict, str]
) -> None:
    result = run(
        [*FLEET, "update", str(fleet.repo("conflicting")), *allow(fleet)], fleet.root, check=False
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["repository", "from", "to", "result", "detail"]
    assert lines[1].split()[:4] == [str(fleet.repo("conflicting")), PREVIOUS, NEXT, "conflicts"]
    conflicts = lines.index(f"{fleet.repo('conflicting')}: conflicts:")
    assert lines[conflicts + 1].strip().endswith("/features.py")
    left = f"{fleet.repo('conflicting')}: changed by the template, left as they are here:"
    assert any(line.strip().startswith("src/") for line in lines[lines.index(left) + 1 :])
    assert lines[-1] == "1 repositories: 1 conflicts"
    assert branch_tip(fleet.repo("conflicting")) is None


def test_no_matching_repository_is_an_error(tmp_path: Path) -> None:
    result = run([*FLEET, "check", str(tmp_path / "none-*")], tmp_path, check=False)
    assert result.returncode == 1
    assert "no repository matches" in result.stderr


def test_a_folder_that_is_not_a_generated_repository_fails_with_the_reason(
    tmp_path: Path,
) -> None:
    (tmp_path / "plain").mkdir()
    run(["git", "init", "--quiet", str(tmp_path / "plain")], tmp_path)
    status, document = fleet_json("check", str(tmp_path / "plain"), cwd=tmp_path)
    assert status == 1
    (entry,) = document["repositories"]
    assert entry["result"] == "failed"
    assert "no .copier-answers.yml" in entry["detail"]


def load_fleet(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """tools/fleet.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("fleet", TEMPLATE_DIR / "tools" / "fleet.py")
    assert spec is not None and spec.loader is not None
    fleet = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "fleet", fleet)  # its dataclasses look their module up
    spec.loader.exec_module(fleet)
    return fleet


def test_an_untagged_render_is_reported_up_to_date_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The repository's own check says `untagged`: the fleet row says why nothing updates."""
    fleet = load_fleet(monkeypatch)
    answer = {
        "project": "credit-risk-model",
        "current_version": "0.2.0.post3.dev0+g1a2b3c4",
        "latest_version": "0.2.0",
        "update_available": False,
        "untagged": True,
        "status": 0,
    }

    def check(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
        assert args == ("check", "--format", "json")
        return subprocess.CompletedProcess(args, 0, json.dumps(answer) + "\n", "")

    monkeypatch.setattr(fleet, "run_tool", check)
    monkeypatch.setattr(fleet, "check_repo_shape", lambda repo: None)
    monkeypatch.setattr(fleet, "check_template_source", lambda repo, allowed: None)
    result = fleet.check_repo(tmp_path)
    assert result.result == fleet.UP_TO_DATE
    assert result.detail == (
        "rendered from an untagged commit after release 0.2.0"
        " (0.2.0.post3.dev0+g1a2b3c4); the next release updates it"
    )


# --------------------------------------------------------------------------------------------
# This template only: `update` runs `copier update --trust`, so the template's tasks run on the
# operator's machine. A repository recorded from another source is refused before anything of
# that source is fetched or run, unless the operator names the source.
# --------------------------------------------------------------------------------------------


@pytest.fixture
def hostile_repo(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(template, repository, record): a repository rendered at 0.1.0 of a hostile template
    whose task records what it can see every time it runs (tests/hostile_template.py)."""
    record = tmp_path / "hostile-task-record.txt"
    template = make_hostile_template(tmp_path / "hostile-template", record)
    repo = tmp_path / "repos" / "victim"
    repo.parent.mkdir()
    render(str(template), repo, "0.1.0", {}, cwd=repo.parent, tasks=False)
    git(repo, "init", "--quiet", "--initial-branch=main")
    commit_all(repo, "Rendered from a template that is not this one")
    assert task_runs(record) == 0
    return template, repo, record


def test_a_repository_of_another_template_is_refused_and_its_tasks_never_run(
    hostile_repo: tuple[Path, Path, Path],
) -> None:
    template, repo, record = hostile_repo
    before = head(repo)
    for command in ("check", "update"):
        status, document = fleet_json(command, str(repo), cwd=repo.parent)
        (entry,) = document["repositories"]
        assert (status, entry["result"]) == (1, "failed"), entry
        assert f"recorded template {template} " in entry["detail"], "names the recorded source"
        assert f"--allow-template {template}" in entry["detail"], "says how to accept it"
        assert task_runs(record) == 0, f"`fleet {command}` ran the other template's task"
    assert head(repo) == before and branch_tip(repo) is None
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""

    # Named by the operator (any spelling: here its file:// URL), the source is accepted: the
    # update runs its task, which is what the refusal above kept from running.
    through_make = run(
        [*FLEET, "check", str(repo), "--format", "json"],
        repo.parent,
        check=False,
        FLEET_ALLOW_TEMPLATES=f"file://{template}",
    )
    (entry,) = json.loads(through_make.stdout)["repositories"]
    assert entry["result"] == "update available", entry
    status, document = fleet_json(
        "update", str(repo), "--allow-template", f"file://{template}/", cwd=repo.parent
    )
    (entry,) = document["repositories"]
    assert (status, entry["result"]) == (0, "updated"), entry
    assert task_runs(record) > 0


def test_this_template_is_recognised_by_its_folder_and_its_remotes_in_any_spelling(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fleet = load_fleet(monkeypatch)
    monkeypatch.delenv(fleet.ALLOW_ENV, raising=False)
    root = tmp_path / "mlops-stack-template"
    root.mkdir()
    git(root, "init", "--quiet")
    git(root, "remote", "add", "origin", "git@github.com:Acme/mlops-stack-template.git")
    git(root, "remote", "add", "mirror", "https://git.example.com/ml/mlops-stack-template/")
    sources = fleet.this_template_sources(root)
    repo = tmp_path / "repos" / "credit"
    same = [
        str(root),
        f"{root}/",
        f"file://{root}",
        "../../mlops-stack-template",  # relative: read from the repository, as Copier does
        "https://github.com/acme/mlops-stack-template",
        "https://github.com/Acme/mlops-stack-template.git",
        "http://github.com/Acme/mlops-stack-template.git/",
        "ssh://git@github.com:22/Acme/mlops-stack-template.git",
        "git+https://github.com/Acme/mlops-stack-template.git",
        "gh:Acme/mlops-stack-template",
        "git@git.example.com:ml/mlops-stack-template.git",
        "https://deploy@git.example.com/ml/mlops-stack-template.git",
    ]
    for src in same:
        assert fleet.normalise_source(src, repo) in sources, src
    others = [
        str(tmp_path / "mlops-stack-template-fork"),
        "file:///srv/mlops-stack-template",
        "https://github.com/acme/mlops-stack-template-fork",
        "https://github.com/evil/mlops-stack-template",
        "https://gitlab.com/acme/mlops-stack-template",
        "git@github.com:acme/mlops-stack-template-evil.git",
    ]
    for src in others:
        assert fleet.normalise_source(src, repo) not in sources, src

    # This checkout itself, with no flag: a repository recorded from it passes, another does not.
    allowed = fleet.allowed_sources()
    (repo / ".copier-answers.yml").parent.mkdir(parents=True)
    (repo / ".copier-answers.yml").write_text(f"_src_path: {TEMPLATE_DIR}\n_commit: 0.1.0\n")
    fleet.check_template_source(repo, allowed)
    (repo / ".copier-answers.yml").write_text("_src_path: gh:evil/template\n_commit: 0.1.0\n")
    with pytest.raises(fleet.RepoError, match="recorded template gh:evil/template "):
        fleet.check_template_source(repo, allowed)
    assert fleet.normalise_source("gh:evil/template") in fleet.allowed_sources(["gh:evil/template"])
