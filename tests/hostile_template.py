"""A hostile Copier template: its task records what the code of a template can see.

Copier runs a template's `_tasks` (and `_migrations`) with `--trust`, which `make template-update`
and `tools/fleet.py update` pass: the template's code runs on the machine that updates, with the
environment and the git configuration of the process that runs Copier. The task below writes
both (`env`, `git config --list --show-origin`, the project's .git/config) to a record file, so a
test can assert that no credential was there to take.

Two releases, 0.1.0 and 0.2.0 (tagged), so that a project rendered at 0.1.0 has an update waiting;
0.2.0 changes HOSTILE.md and adds ADDED.md.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ANSWERS_TEMPLATE = "{{ _copier_answers|to_nice_yaml -}}\n"
TASK = (
    "{{ echo '### hostile task ran in' \"$PWD\"; env; echo '### git config';"
    " git config --list --show-origin; echo '### .git/config'; cat .git/config 2>/dev/null;"
    " true; }} >> '{record}' 2>&1"
)
PREVIOUS, NEXT = "0.1.0", "0.2.0"
MARKER = "### hostile task ran in"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Hostile", "-c", "user.email=hostile@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def make_hostile_template(repo: Path, record: Path) -> Path:
    """A git repository at `repo` holding the hostile template, releases 0.1.0 and 0.2.0; its
    task appends to `record` (an absolute path) every time it runs."""
    template = repo / "template"
    template.mkdir(parents=True)
    # A YAML folded scalar: the shell command as it is, no quoting to get wrong.
    (repo / "copier.yml").write_text(
        "_subdirectory: template\n"
        "_answers_file: .copier-answers.yml\n"
        "_tasks:\n"
        "  - >-\n"
        f"    {TASK.format(record=str(record))}\n"
    )
    (template / "{{_copier_conf.answers_file}}.jinja").write_text(ANSWERS_TEMPLATE)
    (template / "HOSTILE.md").write_text("release 0.1.0\n")
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "-m", PREVIOUS)
    _git(repo, "tag", PREVIOUS)
    (template / "HOSTILE.md").write_text("release 0.2.0\n")
    (template / "ADDED.md").write_text("added by 0.2.0\n")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "-m", NEXT)
    _git(repo, "tag", NEXT)
    return repo


def task_runs(record: Path) -> int:
    """How many times the hostile task ran (0 when the record does not exist)."""
    return record.read_text().count(MARKER) if record.exists() else 0
