"""No credential where a template's code runs: the template-update jobs, run as their runner would.

`make template-update` runs `copier update --trust`: the template's tasks and migrations run in
the CI job. A project here records a hostile template (tests/hostile_template.py) whose task
writes everything it can see (environment, git configuration, the checkout's .git/config) to a
record file; the project's own generated CI then runs, emulated by tests/ci_runner.py with every
secret set to a sentinel value:

- GitHub: template-update.yml, both jobs, every `run:` step with the env it would receive;
- GitLab: the `template-update` job, then `template-update-mr`, with the variables each would
  receive (the job token in the environment and in the checkout's remote URL; a CI/CD variable
  with no environment scope, which every job gets; TEMPLATE_UPDATE_TOKEN and a write credential
  only in their environment scopes, `template-update` and `training`);
- Jenkins: the Jenkinsfile parsed; no template command runs with a credential bound.

The task must have run, no sentinel may be in its record, and the update must still arrive: the
branch `template-update` pushed with the release's files, the pull/merge request asked for with
the token. Neither the pushing token nor any other is left in a git configuration.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

import yaml

from .ci_runner import (
    GitLabProject,
    Runner,
    StepRun,
    gitlab_jobs,
    jenkins_steps,
    run_github_workflow,
    run_gitlab_job,
)
from .hostile_template import NEXT, PREVIOUS, make_hostile_template, task_runs

TEMPLATE_URL = "https://git.example.invalid/ml/hostile-template.git"
SENTINELS = {
    "TEMPLATE_UPDATE_TOKEN": "sentinel-template-update-token-5e1f",
    "TEMPLATE_READ_TOKEN": "sentinel-template-read-token-7a2c",
    "GITHUB_TOKEN": "sentinel-github-token-9d3b",
    "CI_JOB_TOKEN": "sentinel-gitlab-job-token-4c8e",
    # GitLab: a CI/CD variable with no environment scope (a startup tier's read keys, say).
    "AWS_SECRET_ACCESS_KEY": "sentinel-unscoped-ci-variable-1b6d",
    # GitLab: a write credential, scoped to `training` as the README says.
    "MLFLOW_TRACKING_URI": "sentinel-training-scoped-variable-3f0a",
}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Team", "-c", "user.email=team@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def leaked(text: str) -> list[str]:
    return [name for name, value in SENTINELS.items() if value in text]


def assert_nothing_leaked(*places: Path) -> None:
    for place in places:
        if place.exists():
            found = leaked(place.read_text(errors="replace"))
            assert found == [], f"{place} holds {found}"


class Hostile:
    """A project of the given provider whose answers record the hostile template (0.1.0), its
    git host (a bare repository) and what the runner's git may reach."""

    def __init__(self, copie_session, tmp: Path, provider: str) -> None:
        self.record = tmp / "hostile-task-record.txt"
        template = make_hostile_template(tmp / "hostile-template-source", self.record)
        remotes = tmp / "remotes" / "ml"
        remotes.mkdir(parents=True)
        subprocess.run(
            [
                "git",
                "clone",
                "--quiet",
                "--bare",
                str(template),
                str(remotes / "hostile-template.git"),
            ],
            check=True,
        )
        # The generated project, as it is in the template's working tree (tasks: git, uv.lock).
        answers = {"ci_provider": provider, "python_version": "3.11"}
        result = copie_session.copy(extra_answers=answers)
        assert result.exit_code == 0, result.exception
        project = Path(result.project_dir)
        recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
        recorded.update(_src_path=TEMPLATE_URL, _commit=PREVIOUS)
        (project / ".copier-answers.yml").write_text(yaml.safe_dump(recorded, sort_keys=True))
        (project / "HOSTILE.md").write_text("release 0.1.0\n")  # what 0.1.0 rendered
        _git(project, "add", "--all")
        _git(project, "commit", "--quiet", "-m", "Recorded from the hostile template")
        self.project = project
        self.origin = tmp / "origin.git"
        subprocess.run(
            ["git", "clone", "--quiet", "--bare", str(project), str(self.origin)], check=True
        )
        _git(self.origin, "config", "receive.advertisePushOptions", "true")
        self.runner = Runner(
            tmp / "runner",
            self.origin,
            {
                "https://git.example.invalid/ml/": f"{remotes}/",
                "https://github.com/acme/credit.git": self.origin,
                "https://gitlab.example.invalid/acme/credit.git": self.origin,
            },
        )
        assert task_runs(self.record) == 0

    def check_record(self, where: str) -> None:
        """The task ran, and saw no sentinel."""
        assert task_runs(self.record) > 0, f"{where}: the template's task did not run"
        text = self.record.read_text()
        found = leaked(text)
        lines = [line for line in text.splitlines() if leaked(line)]
        assert found == [], f"{where}: the template's code could read {found}:\n" + "\n".join(
            lines[:10]
        )

    def pushed_update(self) -> dict[str, str]:
        """The files of the branch template-update on the git host."""
        branch = _git(self.origin, "rev-parse", "--verify", "refs/heads/template-update").strip()
        assert branch, "nothing was pushed"
        return {
            name: _git(self.origin, "show", f"{branch}:{name}")
            for name in ("HOSTILE.md", "ADDED.md", ".copier-answers.yml")
        }


def assert_the_release_arrived(files: Mapping[str, str]) -> None:
    assert files["HOSTILE.md"] == "release 0.2.0\n"
    assert files["ADDED.md"] == "added by 0.2.0\n"
    assert yaml.safe_load(files[".copier-answers.yml"])["_commit"] == NEXT


def fake_gh(bin_dir: Path, log: Path) -> None:
    """`gh` as the pushing step calls it: no pull request yet, default branch main."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    gh = bin_dir / "gh"
    gh.write_text(
        "#!/bin/sh\n"
        f'printf "%s token=%s\\n" "$*" "$GH_TOKEN" >> "{log}"\n'
        'case "$1 $2" in\n'
        '  "pr view") exit 1 ;;\n'
        '  "repo view") echo main ;;\n'
        "esac\n"
    )
    gh.chmod(0o755)


UPDATE_COMMAND = re.compile(r"^\s*make template-update\b", re.MULTILINE)


def test_github_template_update_gives_the_templates_code_no_token(copie_session, tmp_path):
    hostile = Hostile(copie_session, tmp_path, "github")
    workflow = hostile.project / ".github" / "workflows" / "template-update.yml"
    gh_log = tmp_path / "gh.log"
    fake_gh(tmp_path / "bin", gh_log)
    hostile.runner.path.append(tmp_path / "bin")
    updated: list[str] = []
    left_behind: list[str] = []

    def after(step: StepRun, workspace: Path, gitconfig: Path) -> None:
        # Right after the template's code ran: what it could read. After every step: what it
        # leaves to the job's later steps (its git configuration, the checkout's .git/config).
        if UPDATE_COMMAND.search(step.script):
            updated.append(f"{step.job}: {step.name}")
            hostile.check_record(updated[-1])
            assert leaked(str(step.env)) == [], f"{updated[-1]} is given a token"
        for place in (gitconfig, workspace / ".git" / "config"):
            if place.exists() and leaked(place.read_text()):
                left_behind.append(
                    f"{step.job}: {step.name}: {place} holds {leaked(place.read_text())}"
                )

    run_github_workflow(
        workflow,
        hostile.runner,
        secrets=SENTINELS,
        github_token=SENTINELS["GITHUB_TOKEN"],
        after_step=after,
    )
    assert updated, "no step ran `make template-update`"
    hostile.check_record("after the workflow")
    assert left_behind == [], "a token was written where later steps read it"
    assert_the_release_arrived(hostile.pushed_update())
    calls = gh_log.read_text()
    assert "pr create --base main --head template-update" in calls
    assert f"token={SENTINELS['TEMPLATE_UPDATE_TOKEN']}" in calls, "gh is given the token"


def test_gitlab_template_update_gives_the_templates_code_no_token(copie_session, tmp_path):
    hostile = Hostile(copie_session, tmp_path, "gitlab")
    ci_file = hostile.project / ".gitlab-ci.yml"
    project = GitLabProject()
    # The template lives on this GitLab: the job copies it with the job token (a private one).
    answers = hostile.project / ".copier-answers.yml"
    gitlab_url = f"https://{project.server_host}/ml/hostile-template.git"
    hostile.runner.redirects[f"https://{project.server_host}/ml/"] = hostile.runner.redirects.pop(
        "https://git.example.invalid/ml/"
    )
    recorded = yaml.safe_load(answers.read_text())
    recorded["_src_path"] = gitlab_url
    answers.write_text(yaml.safe_dump(recorded, sort_keys=True))
    _git(hostile.project, "commit", "--quiet", "-am", "The template on this GitLab")
    _git(hostile.project, "push", "--quiet", "--force", str(hostile.origin), "HEAD:main")
    # The CI/CD variables as the README has them set up (this pipeline runs on the protected
    # default branch): TEMPLATE_UPDATE_TOKEN protected, masked, environment scope
    # `template-update`; a write credential scoped to `training`; one variable with no scope,
    # which every job gets: the update job must drop it before the template's code runs.
    variables = {
        name: (SENTINELS[name], scope)
        for name, scope in (
            ("TEMPLATE_UPDATE_TOKEN", "template-update"),
            ("MLFLOW_TRACKING_URI", "training"),
            ("AWS_SECRET_ACCESS_KEY", "*"),
        )
    }
    _, jobs = gitlab_jobs(ci_file)
    updating = [n for n, j in jobs.items() if UPDATE_COMMAND.search("\n".join(j.get("script", [])))]
    assert updating == ["template-update"], "one job runs the update"

    workspace, gitconfig, _ = run_gitlab_job(
        ci_file,
        "template-update",
        hostile.runner,
        project=project,
        job_token=SENTINELS["CI_JOB_TOKEN"],
        project_variables=variables,
    )
    hostile.check_record("template-update")
    assert (workspace / ".template-update-mr" / "update.patch").stat().st_size > 0
    reads_token = re.compile(r"\$\{?TEMPLATE_UPDATE_TOKEN")
    pushing = [n for n, j in jobs.items() if reads_token.search(str(j.get("script", [])))]
    assert pushing == ["template-update-mr"], "one other job pushes with the token"

    workspace, gitconfig, _ = run_gitlab_job(
        ci_file,
        "template-update-mr",
        hostile.runner,
        project=project,
        job_token=SENTINELS["CI_JOB_TOKEN"],
        project_variables=variables,
    )
    # The runner's checkout has the job token in .git/config (as GitLab's runner does): what
    # matters here is that the pushing token was written nowhere.
    for place in (gitconfig, workspace / ".git" / "config"):
        assert SENTINELS["TEMPLATE_UPDATE_TOKEN"] not in place.read_text(), place
    assert_the_release_arrived(hostile.pushed_update())
    hostile.check_record("after both jobs")


def test_jenkins_runs_template_commands_with_no_credential_and_binds_any_push_token(
    render_once,
):
    """Jenkins reports template updates (`make template-check`); neither it nor an update
    command may run where a credential is bound, and a push, if one is ever added, only inside
    the withCredentials that binds its token."""
    for tier in ("startup", "enterprise"):
        project = render_once({"ci_provider": "jenkins", "stack_tier": tier, "data_remote": "s3"})
        steps = jenkins_steps(project / "Jenkinsfile")
        template = [
            s for s in steps if re.search(r"\bmake\b.*\btemplate-(check|update)\b", s.command)
        ]
        assert template, "the Jenkinsfile runs no template command"
        for step in template:
            assert step.credentials == frozenset(), (
                f"{step.stage}: {step.command} with {step.credentials}"
            )
        for step in steps:
            if re.search(r"\bgit\b.*\bpush\b", step.command):
                assert step.credentials, f"{step.stage}: a push without its credential"
                assert not UPDATE_COMMAND.search(step.command)
