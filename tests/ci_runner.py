"""Run a rendered project's CI jobs here, the way their runner would, to see what each step gets.

GitHub Actions: a workflow's jobs in the order of their `needs`, each on a fresh checkout, each
`run:` step with bash (`-eo pipefail`, as the runner does) and the environment that step would
receive: the runner's variables, the job's `env`, the step's `env` with `${{ secrets.X }}`
replaced by the value the test gives for X (a sentinel), `${{ github.token }}` likewise.
`actions/checkout`, `setup-uv`, `upload-artifact` and `download-artifact` are emulated; any other
action fails the run. GITHUB_OUTPUT, GITHUB_ENV and job outputs work; `if:` conditions of the
forms the generated workflows use are evaluated.

GitLab CI: a job's `before_script` and `script` in one bash (`-eo pipefail`) with the variables
the job would receive: the file's, the job's, GitLab's predefined ones (the job token among them,
also in the checkout's remote URL as the runner leaves it) and the project's CI/CD variables the
test gives, each only to the jobs of its environment scope. Artifacts (paths and dotenv reports)
pass to the jobs that need them.

Jenkins: where each `sh` step runs, and which credential IDs are bound there (pipeline and stage
`environment { X = credentials('id') }`, enclosing `withCredentials([...])`), and under which
`when`.

Nothing reaches the network: the tests point git at local repositories with `url.<local>.insteadOf`
in the job's own global git configuration (GIT_CONFIG_GLOBAL), which is also where the jobs'
`git config --global` writes go.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .conftest import project_env

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class StepFailed(AssertionError):
    pass


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@dataclass
class Runner:
    """The machine the jobs run on: a git remote for the project, local stand-ins for URLs."""

    root: Path
    origin: Path  # bare repository: the project as its git host has it
    redirects: dict[str, str | Path]  # URL prefix -> local path (git's insteadOf)
    artifacts: dict[str, Path] = field(default_factory=dict)
    jobs_run: list[str] = field(default_factory=list)
    path: list[Path] = field(default_factory=list)  # folders put before PATH (stand-in tools)

    def job_dirs(self, name: str) -> tuple[Path, Path, Path]:
        """(workspace, temp, global git config) of a fresh runner for the job."""
        base = self.root / f"job-{len(self.jobs_run)}-{name}"
        self.jobs_run.append(name)
        workspace, temp = base / "workspace", base / "temp"
        temp.mkdir(parents=True)
        gitconfig = base / "gitconfig"
        gitconfig.write_text(
            "".join(
                f'[url "{target}"]\n\tinsteadOf = {prefix}\n'
                for prefix, target in self.redirects.items()
            )
        )
        return workspace, temp, gitconfig

    def checkout(self, workspace: Path, remote_url: str) -> None:
        """A fresh clone of the default branch; `origin` named as the runner names it."""
        subprocess.run(
            ["git", "clone", "--quiet", str(self.origin), str(workspace)],
            check=True,
            capture_output=True,
        )
        git(workspace, "remote", "set-url", "origin", remote_url)

    def base_env(self, gitconfig: Path, **extra: str) -> dict[str, str]:
        env = project_env()
        for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME"):
            env.pop(name, None)
        env.pop("GIT_COMMITTER_EMAIL", None)
        env.update(GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1", CI="true")
        env["PATH"] = os.pathsep.join([*map(str, self.path), env["PATH"]])
        env.update(extra)
        return env


def bash(script: str, cwd: Path, env: Mapping[str, str], what: str) -> str:
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if result.returncode != 0:
        raise StepFailed(
            f"{what} exited {result.returncode}\n--- script\n{script}\n"
            f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result.stdout + result.stderr


def _key_values(path: Path) -> dict[str, str]:
    """KEY=value lines and KEY<<DELIMITER blocks (GITHUB_OUTPUT, GITHUB_ENV, dotenv)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    lines = iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line and "=" not in line.split("<<", 1)[0]:
            key, delimiter = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            values[key] = "\n".join(block)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


# --------------------------------------------------------------------------------------------
# GitHub Actions
# --------------------------------------------------------------------------------------------


def load_workflow(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    if True in workflow:  # YAML 1.1 reads the key `on` as True
        workflow["on"] = workflow.pop(True)
    return workflow


@dataclass
class GitHubContext:
    secrets: Mapping[str, str]
    github_token: str
    repository: str = "acme/credit"
    default_branch: str = "main"
    steps: dict[str, dict[str, str]] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    needs: dict[str, dict[str, str]] = field(default_factory=dict)
    runner_temp: str = ""

    def value(self, expression: str) -> str:
        parts = expression.split(".")
        if parts[0] == "secrets" and len(parts) == 2:
            return self.secrets.get(parts[1], "")
        if parts[0] == "vars" and len(parts) == 2:
            return ""
        simple = {
            "github.token": self.github_token,
            "github.actor": "github-actions[bot]",
            "github.ref": f"refs/heads/{self.default_branch}",
            "github.repository": self.repository,
            "github.event.repository.default_branch": self.default_branch,
            "runner.temp": self.runner_temp,
        }
        if expression in simple:
            return simple[expression]
        if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
            return self.steps.get(parts[1], {}).get(parts[3], "")
        if parts[0] == "steps" and len(parts) == 3 and parts[2] == "outcome":
            return self.outcomes.get(parts[1], "")
        if parts[0] == "needs" and len(parts) == 4 and parts[2] == "outputs":
            return self.needs.get(parts[1], {}).get(parts[3], "")
        raise NotImplementedError(f"expression {expression!r}")

    def substitute(self, text: str) -> str:
        return EXPRESSION.sub(lambda m: self.value(m.group(1)), text)

    def condition(self, expression: str | None) -> bool:
        """The success path: failure() is false, always() true; `a == 'b'` comparisons."""
        if expression is None:
            return True
        text = expression.strip()
        if text.startswith("${{"):
            text = EXPRESSION.sub(lambda m: m.group(1), text)
        if "failure()" in text:
            return False
        if text in ("always()", "success()"):
            return True
        match = re.fullmatch(r"([\w.-]+)\s*(==|!=)\s*'([^']*)'", text)
        if not match:
            raise NotImplementedError(f"condition {expression!r}")
        left = self.value(match.group(1))
        return (left == match.group(3)) == (match.group(2) == "==")


@dataclass
class StepRun:
    job: str
    name: str
    script: str
    env: dict[str, str]  # the step's own env, substituted
    output: str


def run_github_workflow(
    path: Path,
    runner: Runner,
    *,
    secrets: Mapping[str, str],
    github_token: str,
    after_step: Callable[[StepRun, Path, Path], None] | None = None,
) -> dict[str, dict[str, str]]:
    """Run every job of the workflow (on the success path); returns each job's outputs.
    `after_step(step, workspace, gitconfig)` is called after every `run:` step."""
    workflow = load_workflow(path)
    jobs: dict[str, dict[str, Any]] = workflow["jobs"]
    order: list[str] = []
    while len(order) < len(jobs):
        for name, job in jobs.items():
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            if name not in order and all(n in order for n in needs):
                order.append(name)
    outputs: dict[str, dict[str, str]] = {}
    for name in order:
        job = jobs[name]
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        ctx = GitHubContext(secrets, github_token, needs={n: outputs.get(n, {}) for n in needs})
        if any(n not in outputs for n in needs) or not ctx.condition(job.get("if")):
            continue  # skipped, and so are the jobs that need it
        workspace, temp, gitconfig = runner.job_dirs(name)
        ctx.runner_temp = str(temp)
        files = {k: temp / f"{k.lower()}" for k in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH")}
        env = runner.base_env(
            gitconfig,
            GITHUB_ACTIONS="true",
            GITHUB_REPOSITORY=ctx.repository,
            GITHUB_WORKSPACE=str(workspace),
            GITHUB_STEP_SUMMARY=str(temp / "step-summary.md"),
            RUNNER_TEMP=str(temp),
        )
        env.update({k: ctx.substitute(str(v)) for k, v in workflow.get("env", {}).items()})
        env.update({k: ctx.substitute(str(v)) for k, v in job.get("env", {}).items()})
        for index, step in enumerate(job["steps"]):
            step_id = step.get("id", f"step{index}")
            label = f"{path.name} job {name} step {step.get('name') or step.get('uses')}"
            if not ctx.condition(step.get("if")):
                ctx.outcomes[step_id] = "skipped"
                continue
            uses = step.get("uses", "")
            with_ = {k: ctx.substitute(str(v)) for k, v in step.get("with", {}).items()}
            if uses.startswith("actions/checkout@"):
                assert with_.get("persist-credentials") == "False", f"{label}: persists a token"
                runner.checkout(workspace, f"https://github.com/{ctx.repository}.git")
            elif uses.startswith("astral-sh/setup-uv@"):
                pass  # uv is on PATH here; the job's Python is this machine's
            elif uses.startswith("actions/upload-artifact@"):
                store = runner.root / "artifacts" / with_["name"]
                shutil.copytree(Path(with_["path"].strip()), store, dirs_exist_ok=True)
                runner.artifacts[with_["name"]] = store
            elif uses.startswith("actions/download-artifact@"):
                target = Path(with_.get("path", str(workspace)))
                shutil.copytree(runner.artifacts[with_["name"]], target, dirs_exist_ok=True)
            elif uses:
                raise NotImplementedError(f"{label}: action {uses}")
            else:
                for file in files.values():
                    file.write_text("")
                step_env = {k: ctx.substitute(str(v)) for k, v in step.get("env", {}).items()}
                output = bash(step["run"], workspace, {**env, **step_env, **_str(files)}, label)
                ctx.steps[step_id] = _key_values(files["GITHUB_OUTPUT"])
                env.update(_key_values(files["GITHUB_ENV"]))
                for line in files["GITHUB_PATH"].read_text().splitlines():
                    env["PATH"] = f"{line}{os.pathsep}{env['PATH']}"
                if after_step is not None:
                    run = StepRun(name, str(step.get("name")), step["run"], step_env, output)
                    after_step(run, workspace, gitconfig)
            ctx.outcomes[step_id] = "success"
        outputs[name] = {k: ctx.substitute(str(v)) for k, v in job.get("outputs", {}).items()}
    return outputs


def _str(files: Mapping[str, Path]) -> dict[str, str]:
    return {k: str(v) for k, v in files.items()}


# --------------------------------------------------------------------------------------------
# GitLab CI
# --------------------------------------------------------------------------------------------


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
    return over


def gitlab_jobs(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The config and its jobs (hidden ones too) with `extends:` resolved (GitLab's deep merge)."""
    config = yaml.safe_load(path.read_text())
    keywords = {"workflow", "stages", "variables", "default", "include", "image", "cache"}

    def resolve(name: str) -> dict[str, Any]:
        body = config[name]
        parents = body.get("extends", [])
        merged: dict[str, Any] = {}
        for parent in [parents] if isinstance(parents, str) else parents:
            merged = _merge(merged, resolve(parent))
        return _merge(merged, {k: v for k, v in body.items() if k != "extends"})

    return config, {k: resolve(k) for k in config if k not in keywords}


def _expand(value: str, variables: Mapping[str, str]) -> str:
    return re.sub(
        r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: variables.get(m.group(1), ""), value
    )


def gitlab_rule_matches(rule_if: str, variables: Mapping[str, str]) -> bool:
    """`$A == "x" && $B != $C ...`: the forms the generated file uses."""
    for clause in rule_if.split("&&"):
        match = re.fullmatch(r"\s*(\S+)\s*(==|!=)\s*(\S+)\s*", clause)
        if not match:
            raise NotImplementedError(f"rule {rule_if!r}")

        def operand(text: str) -> str:
            return text.strip('"') if text.startswith('"') else _expand(text, variables)

        equal = operand(match.group(1)) == operand(match.group(3))
        if equal != (match.group(2) == "=="):
            return False
    return True


def gitlab_job_runs(job: Mapping[str, Any], variables: Mapping[str, str]) -> bool:
    for rule in job.get("rules", [{"when": "on_success"}]):
        if "if" not in rule or gitlab_rule_matches(rule["if"], variables):
            return rule.get("when", "on_success") != "never"
    return False


@dataclass
class GitLabProject:
    server_host: str = "gitlab.example.invalid"
    path: str = "acme/credit"
    default_branch: str = "main"

    @property
    def url(self) -> str:
        return f"https://{self.server_host}/{self.path}"


def gitlab_predefined(project: GitLabProject, job_token: str, workspace: Path) -> dict[str, str]:
    """What GitLab gives every job of a scheduled pipeline on the default branch."""
    return {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_PIPELINE_SOURCE": "schedule",
        "CI_COMMIT_BRANCH": project.default_branch,
        "CI_COMMIT_REF_NAME": project.default_branch,
        "CI_DEFAULT_BRANCH": project.default_branch,
        "CI_SERVER_HOST": project.server_host,
        "CI_SERVER_URL": f"https://{project.server_host}",
        "CI_PROJECT_PATH": project.path,
        "CI_PROJECT_URL": project.url,
        "CI_PROJECT_DIR": str(workspace),
        "CI_JOB_TOKEN": job_token,
        "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": job_token,
        "CI_DEPENDENCY_PROXY_PASSWORD": job_token,
        "CI_REPOSITORY_URL": f"https://gitlab-ci-token:{job_token}@{project.server_host}/{project.path}.git",
    }


def run_gitlab_job(
    path: Path,
    name: str,
    runner: Runner,
    *,
    project: GitLabProject,
    job_token: str,
    project_variables: Mapping[str, tuple[str, str]],
    needs_dotenv: Mapping[str, str] | None = None,
) -> tuple[Path, Path, str]:
    """Run one job; `project_variables` maps a CI/CD variable to (value, environment scope),
    scope "*" for every job. Returns (workspace, global git config, output)."""
    config, jobs = gitlab_jobs(path)
    job = jobs[name]
    workspace, _, gitconfig = runner.job_dirs(name)
    # The runner clones with the job token in the remote URL.
    runner.checkout(
        workspace, f"https://gitlab-ci-token:{job_token}@{project.server_host}/{project.path}.git"
    )
    variables = gitlab_predefined(project, job_token, workspace)
    environment = job.get("environment", {})
    environment = environment.get("name") if isinstance(environment, dict) else environment
    for key, (value, scope) in project_variables.items():
        if scope in ("*", environment):
            variables[key] = value
    for key, value in {**config.get("variables", {}), **job.get("variables", {})}.items():
        if key == "UV_CACHE_DIR":
            continue  # the runner's cache: here, this machine's uv cache
        if key not in variables:  # CI/CD variables win over the file's
            variables[key] = _expand(str(value), variables)
    variables.update(needs_dotenv or {})
    if not gitlab_job_runs(job, variables):
        raise StepFailed(f"job {name} would not run in a scheduled pipeline of the default branch")
    for need in job.get("needs", []):
        need = need if isinstance(need, str) else need["job"]
        if need in runner.artifacts:
            shutil.copytree(runner.artifacts[need], workspace, dirs_exist_ok=True)
    lines = [*job.get("before_script", []), *job.get("script", [])]
    env = runner.base_env(gitconfig, **variables)
    output = bash("\n".join(lines), workspace, env, f"{path.name} job {name}")
    paths = job.get("artifacts", {}).get("paths", [])
    if paths:
        store = runner.root / "artifacts" / name
        for item in paths:
            source = workspace / item
            if source.is_dir():
                shutil.copytree(source, store / item, dirs_exist_ok=True)
            elif source.exists():
                (store / item).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, store / item)
        runner.artifacts[name] = store
    return workspace, gitconfig, output


# --------------------------------------------------------------------------------------------
# Jenkins
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JenkinsStep:
    stage: str
    command: str
    credentials: frozenset[str]  # credential IDs bound where the command runs
    when: str  # the stage's `when { ... }` text ("" without one)


def _credential_ids(text: str) -> set[str]:
    return set(re.findall(r"credentials\('([^']+)'\)", text)) | set(
        re.findall(r"credentialsId:\s*'([^']+)'", text)
    )


def jenkins_steps(path: Path) -> list[JenkinsStep]:
    """Every `sh` step of a declarative Jenkinsfile with the credentials bound around it."""
    from .validators import _as_call, _groovy_parser, _statements, _string_value, _text

    root = _groovy_parser().parse(path.read_bytes()).root_node
    (pipeline,) = [c for c in _statements(root) if c.name == "pipeline"]
    sections = _statements(pipeline.body)
    pipeline_ids: set[str] = set()
    for section in sections:
        if section.name == "environment":
            pipeline_ids |= _credential_ids(_text(section.node))
    steps: list[JenkinsStep] = []

    def walk_stages(body: Any) -> None:
        for call in _statements(body):
            if call.name != "stage" or call.body is None:
                continue
            name = _string_value(call.args.named_children[0]) or "?"
            directives = _statements(call.body)
            stage_ids = set(pipeline_ids)
            when = ""
            for directive in directives:
                if directive.name == "environment":
                    stage_ids |= _credential_ids(_text(directive.node))
                elif directive.name == "when":
                    when = " ".join(_text(directive.node).split())
                elif directive.name in ("stages", "parallel"):
                    walk_stages(directive.body)
            for directive in directives:
                if directive.name not in ("steps", "post"):
                    continue
                stack = [directive.node]
                while stack:
                    node = stack.pop()
                    stack.extend(node.named_children)
                    call_ = (
                        _as_call(node)
                        if node.type in ("method_invocation", "juxt_function_call")
                        else None
                    )
                    if call_ is None or call_.name != "sh":
                        continue
                    bound = set(stage_ids)
                    parent = node.parent
                    while parent is not None and parent != directive.node:
                        if parent.type in ("method_invocation", "juxt_function_call"):
                            outer = _as_call(parent)
                            if outer.name == "withCredentials" and outer.args is not None:
                                bound |= _credential_ids(_text(outer.args))
                        parent = parent.parent
                    args = call_.args.named_children if call_.args is not None else []
                    command = _string_value(args[0]) if args else None
                    steps.append(JenkinsStep(name, command or _text(node), frozenset(bound), when))

    for section in sections:
        if section.name == "stages":
            walk_stages(section.body)
        elif section.name == "post":
            stack = [section.node]
            while stack:
                node = stack.pop()
                stack.extend(node.named_children)
                if node.type in ("method_invocation", "juxt_function_call"):
                    call_ = _as_call(node)
                    if call_.name == "sh" and call_.args is not None:
                        command = _string_value(call_.args.named_children[0])
                        steps.append(
                            JenkinsStep("post", command or "", frozenset(pipeline_ids), "")
                        )
    return steps
