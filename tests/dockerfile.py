"""A Dockerfile's build emulated without a Docker engine: what `docker build` does to the files.

Each stage gets a folder that stands in for its filesystem root. COPY copies from the build
context (the project as `.dockerignore` lets it in) or from an earlier stage; RUN runs the `uv`
commands for real and lists the others (user creation, installing uv itself: they need root or
the base image) as skipped; ENV, ARG and WORKDIR are followed, with the absolute paths of ENV
values moved under the stage's folder. Stages other than the final one are deleted afterwards,
as they are not in the image. `Image` then holds what is needed to run the CMD and HEALTHCHECK
as the container would: its environment, working directory and argv.

RUN's `--mount=type=secret` flags are followed as BuildKit does: a secret the build is given
(`secrets`, as `docker build --secret`) is there for that one command only, as the environment
variable `env=` names or as the file `target=` names (a `.netrc` target becomes a file outside
the stage's root that the variable NETRC points to, where uv reads it; other targets are not
emulated); a secret not given is left out unless `required=true`.

Differences from a real build, on purpose: the base image's files are the host's (uv gets the
base image's Python version when the host has it, else the `fallback_python` the caller names,
recorded in `Image.python`), and USER is recorded, not switched to.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


class DockerfileError(AssertionError):
    """A step that a real build would fail on, or one the emulation does not know."""


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, with continuation lines joined and comments left out."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # comments, also between continuation lines, as Docker reads them
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].strip() if continued else stripped)
        if continued:
            continue
        keyword, _, arguments = " ".join(part for part in pending if part).partition(" ")
        found.append(Instruction(start, keyword.upper(), arguments.strip()))
        pending = []
    if pending:
        raise DockerfileError(f"line {start}: the last instruction ends in a continuation")
    return found


# --- .dockerignore -------------------------------------------------------------------------------
@dataclass(frozen=True)
class IgnoreRule:
    pattern: str
    exception: bool
    regex: re.Pattern[str]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match as Docker extends it: `*` and `?` stop at `/`, `**` crosses it."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if pattern.startswith("/", i):
                out[-1] = "(?:.*/)?"
                i += 1
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                raise DockerfileError(f".dockerignore: unclosed `[` in {pattern!r}")
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


def ignore_rules(text: str) -> list[IgnoreRule]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line[1:].strip() if exception else line
        # Docker cleans each pattern (filepath.Clean): no leading "/" or "./", no trailing "/".
        cleaned = str(PurePosixPath("/" + pattern)).lstrip("/") or "."
        rules.append(IgnoreRule(cleaned, exception, _pattern_regex(cleaned)))
    return rules


def is_ignored(path: str, rules: list[IgnoreRule]) -> bool:
    """Docker's rule: the last rule that matches the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for rule in rules:
        if any(rule.regex.fullmatch(candidate) for candidate in candidates):
            ignored = not rule.exception
    return ignored


def build_context(project: Path) -> Iterator[str]:
    """Paths (relative, POSIX) of the files `docker build` would send from the project."""
    ignore = project / ".dockerignore"
    rules = ignore_rules(ignore.read_text(encoding="utf-8")) if ignore.is_file() else []
    # A folder is entered only if it is let in, or an exception may let in something below it.
    exceptions = [rule.pattern for rule in rules if rule.exception]

    def may_hold_exception(folder: str) -> bool:
        return any(
            pattern.startswith(folder + "/") or not pattern[:1].isalnum() or "*" in pattern
            for pattern in exceptions
        )

    for current, folders, files in os.walk(project):
        relative = Path(current).relative_to(project).as_posix()
        prefix = "" if relative == "." else relative + "/"
        folders[:] = [
            name
            for name in sorted(folders)
            if not is_ignored(prefix + name, rules) or may_hold_exception(prefix + name)
        ]
        for name in sorted(files):
            if not is_ignored(prefix + name, rules):
                yield prefix + name


# --- the build -----------------------------------------------------------------------------------
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _expand(value: str, variables: Mapping[str, str]) -> str:
    return _VARIABLE.sub(lambda m: variables.get(m.group(1) or m.group(2), ""), value)


def _key_values(arguments: str) -> list[tuple[str, str]]:
    """ENV and ARG arguments: `A=1 B="two words"`, or the old `ENV A one value` form."""
    tokens = shlex.split(arguments, posix=True)
    if tokens and "=" not in tokens[0]:
        return [(tokens[0], " ".join(tokens[1:]))]
    return [tuple(token.split("=", 1)) if "=" in token else (token, "") for token in tokens]  # type: ignore[misc]


def _exec_form(arguments: str, what: str) -> list[str]:
    try:
        argv = json.loads(arguments)
    except json.JSONDecodeError as error:
        raise DockerfileError(f"{what} is not in exec (JSON array) form: {arguments}") from error
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise DockerfileError(f"{what} is not a list of strings: {arguments}")
    return argv


@dataclass
class Stage:
    name: str
    base: str
    root: Path
    env: dict[str, str] = field(default_factory=dict)  # as written: container paths
    workdir: str = "/"
    user: str = "root"
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    exposed: list[str] = field(default_factory=list)

    def path(self, container_path: str) -> Path:
        """Where a container path of this stage lives in the emulation."""
        absolute = PurePosixPath(self.workdir, container_path)
        return self.root.joinpath(*absolute.parts[1:])

    def host_env(self, host: Mapping[str, str]) -> dict[str, str]:
        """The stage's ENV for a process on the host: its absolute paths under the stage root.

        Values the Dockerfile writes are moved (each `:`-separated part that starts with `/`);
        a reference to a variable it does not set (`$PATH`) keeps the host's value.
        """
        values: dict[str, str] = {}
        for key, literal in self.env.items():
            moved = ":".join(
                str(self.path(part)) if part.startswith("/") else part
                for part in literal.split(":")
            )
            values[key] = _expand(moved, {**host, **values})
        return values


@dataclass(frozen=True)
class Image:
    """The final stage, built: run `command` with `env` in `workdir` as the container would."""

    stage: Stage
    env: dict[str, str]
    skipped: list[str]
    python: dict[str, str]  # base image's Python version -> the interpreter uv used for it

    @property
    def root(self) -> Path:
        return self.stage.root

    @property
    def workdir(self) -> Path:
        return self.stage.path(self.stage.workdir)

    def which(self, program: str) -> Path | None:
        found = shutil.which(program, path=self.env.get("PATH"))
        return None if found is None else Path(found)

    def command(self, argv: list[str]) -> list[str]:
        """An exec-form argv with its program resolved on the image's PATH."""
        program = self.which(argv[0])
        if program is None:
            raise DockerfileError(f"{argv[0]!r} is not on the image's PATH {self.env.get('PATH')}")
        return [str(program), *argv[1:]]


def _python_version(base: str) -> str | None:
    """`python:3.12-slim-bookworm@sha256:...` -> "3.12": the Python uv must use."""
    match = re.match(r"^(?:[\w.-]+/)*python:(\d+\.\d+)", base)
    return match.group(1) if match else None


def emulate_build(
    dockerfile: Path,
    *,
    context: Path,
    workdir: Path,
    uv: str,
    host_env: Mapping[str, str],
    known_skips: tuple[str, ...] = (),
    fallback_python: str | None = None,
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> Image:
    """Build the Dockerfile's final stage (or the stage `target`, as `docker build --target`)
    into `workdir`; see the module docstring.

    `known_skips`: prefixes of RUN commands that may be left out; any other RUN that is not a
    `uv` command fails, so a new build step cannot go unnoticed. `fallback_python`: the
    interpreter for uv when the host lacks the base image's Python (none: that fails).
    `build_args`: `docker build --build-arg` values, which replace the defaults of the ARGs
    that declare them. `secrets`: `docker build --secret` values by id (the secret's content).
    """
    sent = set(build_context(context))
    stages: list[Stage] = []
    args: dict[str, str] = {}
    skipped: list[str] = []
    pythons: dict[str, str] = {}
    stage: Stage | None = None
    for step in instructions(dockerfile.read_text(encoding="utf-8")):
        where = f"{dockerfile.name}:{step.line} {step.keyword}"
        if step.keyword == "FROM":
            if target is not None and stage is not None and stage.name == target:
                break
            stage = _start_stage(step.arguments, stages, workdir)
            stages.append(stage)
            continue
        if step.keyword == "ARG":
            for key, value in _key_values(step.arguments):
                args[key] = (build_args or {}).get(key, value)
            continue
        if stage is None:
            raise DockerfileError(f"{where}: before the first FROM")
        if step.keyword == "ENV":
            for key, value in _key_values(step.arguments):
                stage.env[key] = value
        elif step.keyword == "WORKDIR":
            stage.workdir = str(PurePosixPath(stage.workdir, step.arguments))
            stage.path(".").mkdir(parents=True, exist_ok=True)
        elif step.keyword == "COPY":
            _copy(step.arguments, stage, stages, context, sent, where)
        elif step.keyword == "RUN":
            mounts, command = _run_flags(_expand(step.arguments, {**args, **stage.env}), where)
            if re.match(r"^uv\s", command):
                python = _interpreter(stage.base, uv, host_env, fallback_python, pythons)
                with _secret_env(mounts, secrets or {}, where) as secret_env:
                    _run_uv(command, stage, {**args, **secret_env}, uv, host_env, python, where)
            elif known_skips and command.startswith(known_skips):
                skipped.append(command)
            else:
                raise DockerfileError(f"{where}: a step the emulation does not know: {command}")
        elif step.keyword == "USER":
            stage.user = step.arguments
        elif step.keyword == "EXPOSE":
            stage.exposed.extend(step.arguments.split())
        elif step.keyword == "CMD":
            stage.cmd = _exec_form(step.arguments, where)
        elif step.keyword == "HEALTHCHECK":
            _, _, form = step.arguments.partition("CMD ")
            stage.healthcheck = _exec_form(form.strip(), where)
        else:
            raise DockerfileError(f"{where}: an instruction the emulation does not know")
    if stage is None:
        raise DockerfileError(f"{dockerfile}: no FROM")
    if target is not None and stage.name != target:
        raise DockerfileError(f"{dockerfile}: no stage named {target!r}")
    for other in stages:
        if other.root != stage.root:
            shutil.rmtree(other.root, ignore_errors=True)  # earlier stages are not in the image
    env = {**host_env, **stage.host_env(host_env)}
    return Image(stage=stage, env=env, skipped=skipped, python=pythons)


def _run_flags(arguments: str, where: str) -> tuple[list[dict[str, str]], str]:
    """RUN's leading `--mount=...` flags (as key=value maps) and the command after them."""
    mounts: list[dict[str, str]] = []
    rest = arguments
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        name, _, value = flag[2:].partition("=")
        if name != "mount":
            raise DockerfileError(f"{where}: a RUN flag the emulation does not know: {flag}")
        options = dict(part.partition("=")[::2] for part in value.split(","))
        if options.get("type") != "secret":
            raise DockerfileError(f"{where}: a mount the emulation does not know: {value}")
        if "id" not in options:
            raise DockerfileError(f"{where}: a secret mount without an id: {value}")
        mounts.append(options)
    return mounts, rest


@contextmanager
def _secret_env(
    mounts: list[dict[str, str]], secrets: Mapping[str, str], where: str
) -> Iterator[dict[str, str]]:
    """The environment that hands the command its secrets; their files are deleted afterwards."""
    env: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="secrets-") as folder:
        for mount in mounts:
            secret_id = mount["id"]
            if secret_id not in secrets:
                if mount.get("required", "false") == "true":
                    raise DockerfileError(f"{where}: the required secret {secret_id!r} is missing")
                continue
            if "env" in mount:
                env[mount["env"]] = secrets[secret_id]
            target = mount.get("target") or mount.get("dst")
            if not target and "env" in mount:
                continue
            target = target or f"/run/secrets/{secret_id}"  # BuildKit's default
            if PurePosixPath(target).name != ".netrc":
                unknown = f"{where}: a secret file the emulation does not know: {target}"
                raise DockerfileError(unknown)
            path = Path(folder) / secret_id
            path.write_text(secrets[secret_id], encoding="utf-8")
            path.chmod(0o600)
            env["NETRC"] = str(path)
        yield env


def _start_stage(arguments: str, stages: list[Stage], workdir: Path) -> Stage:
    words = arguments.split()
    base = words[0]
    name = words[2] if len(words) == 3 and words[1].upper() == "AS" else f"stage-{len(stages)}"
    root = workdir / name
    parent = next((s for s in stages if s.name == base), None)
    if parent is None:
        root.mkdir(parents=True)
        return Stage(name=name, base=base, root=root)
    shutil.copytree(parent.root, root, symlinks=True)
    return Stage(
        name=name,
        base=parent.base,
        root=root,
        env=dict(parent.env),
        workdir=parent.workdir,
        user=parent.user,
        cmd=list(parent.cmd),
        healthcheck=list(parent.healthcheck),
        exposed=list(parent.exposed),
    )


def _copy(
    arguments: str,
    stage: Stage,
    stages: list[Stage],
    context: Path,
    sent: set[str],
    where: str,
) -> None:
    words = shlex.split(arguments)
    flags = dict(w.removeprefix("--").partition("=")[::2] for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    if len(paths) < 2:
        raise DockerfileError(f"{where}: needs a source and a destination")
    *sources, destination = paths
    into_folder = destination.endswith("/") or len(sources) > 1
    target = stage.path(destination)
    origin = next((s for s in stages if s.name == flags.get("from")), None)
    if "from" in flags and origin is None:
        raise DockerfileError(f"{where}: no earlier stage named {flags['from']!r}")
    for source in sources:
        if origin is not None:
            found = origin.path(source)
            if not found.exists():
                raise DockerfileError(f"{where}: {source} does not exist in stage {origin.name}")
            if found.is_dir():  # a folder's contents, not the folder itself, as COPY does
                shutil.copytree(found, target, symlinks=True, dirs_exist_ok=True)
            else:
                _copy_file(found, target / found.name if into_folder else target)
            continue
        relative = str(PurePosixPath("/" + source)).lstrip("/")
        if relative in sent:
            _copy_file(context / relative, target / Path(relative).name if into_folder else target)
            continue
        below = sorted(p for p in sent if not relative or p.startswith(relative + "/"))
        if not below:
            raise DockerfileError(
                f"{where}: {source} is not in the build context"
                " (missing, or left out by .dockerignore)"
            )
        for path in below:  # only what .dockerignore lets in
            _copy_file(context / path, target / path.removeprefix(relative).lstrip("/"))


def _copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def _interpreter(
    base: str,
    uv: str,
    host_env: Mapping[str, str],
    fallback: str | None,
    found: dict[str, str],
) -> str | None:
    """The host's interpreter for the base image's Python version (`uv python find`)."""
    version = _python_version(base)
    if version is None:
        return None
    if version not in found:
        env = {**host_env, "UV_PYTHON_DOWNLOADS": "never"}
        result = subprocess.run(
            [uv, "python", "find", "--no-project", version],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if result.returncode == 0:
            found[version] = result.stdout.strip()
        elif fallback is not None:
            found[version] = fallback
        else:
            raise DockerfileError(f"{base}: Python {version} is not on this machine")
    return found[version]


def _run_uv(
    command: str,
    stage: Stage,
    args: Mapping[str, str],
    uv: str,
    host_env: Mapping[str, str],
    python: str | None,
    where: str,
) -> None:
    env = {**host_env, **args, **stage.host_env(host_env)}
    env["PATH"] = f"{Path(uv).parent}{os.pathsep}{env.get('PATH', '')}"
    if python:
        env["UV_PYTHON"] = python
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=stage.path("."),
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if result.returncode != 0:
        raise DockerfileError(
            f"{where}: `{command}` exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
