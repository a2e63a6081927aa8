"""The Dockerfile emulation that stands in for `docker build` where no Docker engine runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .dockerfile import (
    DockerfileError,
    build_context,
    emulate_build,
    ignore_rules,
    instructions,
    is_ignored,
)


def test_instructions_join_continuations_and_skip_comments() -> None:
    text = (
        "# syntax=docker/dockerfile:1\nFROM a AS b\n\n"
        "ENV X=1 \\\n    # note\n    Y=2\nrun echo hi\n"
    )
    found = [(i.line, i.keyword, i.arguments) for i in instructions(text)]
    assert found == [(2, "FROM", "a AS b"), (4, "ENV", "X=1 Y=2"), (7, "RUN", "echo hi")]


def test_a_dangling_continuation_is_refused() -> None:
    with pytest.raises(DockerfileError, match="continuation"):
        instructions("FROM a\nRUN echo \\\n")


@pytest.mark.parametrize(
    ("rules", "path", "ignored"),
    [
        ("*\n!src/\n", "src/pkg/a.py", False),
        ("*\n!src/\n", "tests/test_a.py", True),
        ("*\n!models/model.joblib\n", "models/model.joblib", False),
        ("*\n!models/model.joblib\n", "models/other.joblib", True),
        ("*\n!src/\n**/__pycache__\n", "src/pkg/__pycache__/a.pyc", True),
        ("/build\n", "build/x", True),
        ("*.log\n", "a/b.log", False),  # `*` does not cross `/`
        ("**/*.log\n", "a/b.log", True),
        ("docs\n!docs/keep.md\n", "docs/keep.md", False),
        ("!docs/keep.md\ndocs\n", "docs/keep.md", True),  # the last matching rule decides
    ],
)
def test_dockerignore_rules_decide_as_docker_does(rules: str, path: str, ignored: bool) -> None:
    assert is_ignored(path, ignore_rules(rules)) is ignored


def test_the_build_context_is_what_dockerignore_lets_in(tmp_path: Path) -> None:
    for name in ("a.txt", "src/p/m.py", ".venv/lib/x.py", "models/model.joblib", "models/x.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / ".dockerignore").write_text("*\n!src/\n!models/model.joblib\n")
    assert sorted(build_context(tmp_path)) == ["models/model.joblib", "src/p/m.py"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    for name in ("pyproject.toml", "src/pkg/__init__.py", "models/model.joblib", "notes.txt"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(name)
    (folder / ".dockerignore").write_text("*\n!pyproject.toml\n!src/\n!models/\n")
    return folder


def build(project: Path, tmp_path: Path, text: str, **kwargs):
    (project / "Dockerfile").write_text(text)
    uv = shutil.which("uv") or "uv"
    return emulate_build(
        project / "Dockerfile",
        context=project,
        workdir=tmp_path / "build",
        uv=uv,
        host_env=dict(os.environ),
        **kwargs,
    )


def test_stages_copy_from_the_context_and_each_other(project: Path, tmp_path: Path) -> None:
    image = build(
        project,
        tmp_path,
        "FROM python:3.11-slim AS build\nWORKDIR /src\nCOPY pyproject.toml ./\nCOPY src/ src/\n"
        "FROM python:3.11-slim AS runtime\nCOPY --from=build /src /opt/app\n"
        "ENV PATH=/opt/app/bin:$PATH MODEL_DIR=/app/models\nWORKDIR /app\nUSER 10001\n"
        'CMD ["python", "-m", "pkg"]\n'
        "FROM runtime AS server\nCOPY models/model.joblib /app/models/\n",
    )
    assert image.stage.name == "server"
    assert (image.root / "opt/app/pyproject.toml").read_text() == "pyproject.toml"
    assert (image.root / "opt/app/src/pkg/__init__.py").is_file()
    assert (image.root / "app/models/model.joblib").is_file()
    assert not (tmp_path / "build" / "build").exists(), "earlier stages are not in the image"
    assert image.env["MODEL_DIR"] == str(image.root / "app/models")
    assert image.env["PATH"] == f"{image.root / 'opt/app/bin'}:{os.environ['PATH']}"
    assert image.workdir == image.root / "app"
    assert image.stage.cmd == ["python", "-m", "pkg"]
    assert image.stage.user == "10001"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("COPY notes.txt ./", "notes.txt is not in the build context"),
        ("COPY README.md ./", "README.md is not in the build context"),
        ("COPY --from=nowhere /x /y", "no earlier stage named 'nowhere'"),
        ("RUN apt-get install -y curl", "a step the emulation does not know"),
        ("RUN uv definitely-not-a-command", "exited 2"),
        ("ONBUILD RUN true", "an instruction the emulation does not know"),
        ("CMD python -m pkg", "not in exec"),
    ],
)
def test_a_step_a_real_build_would_fail_on_fails(
    project: Path, tmp_path: Path, step: str, message: str
) -> None:
    with pytest.raises(DockerfileError, match=message):
        build(project, tmp_path, f"FROM python:3.11-slim AS build\nWORKDIR /src\n{step}\n")


def test_known_steps_are_skipped_and_listed(project: Path, tmp_path: Path) -> None:
    image = build(
        project,
        tmp_path,
        "FROM python:3.11-slim\nARG V=1\nRUN groupadd app\nRUN uv --version\n",
        known_skips=("groupadd ",),
    )
    assert image.skipped == ["groupadd app"]


SEE_SECRETS = (
    "uv run --no-project python -c \"import os, pathlib; netrc = os.environ.get('NETRC'); "
    "print(os.environ.get('TOKEN'), netrc and pathlib.Path(netrc).read_text(), netrc, "
    "file=open('seen', 'a'))\""
)


def test_a_secret_reaches_only_the_command_that_mounts_it(project: Path, tmp_path: Path) -> None:
    """`docker build --secret`: the mounting RUN sees the secret as its variable or its .netrc
    file; the next RUN does not, and no file of the image holds it."""
    image = build(
        project,
        tmp_path,
        "FROM python:3.11-slim\nWORKDIR /src\n"
        "RUN --mount=type=secret,id=token,env=TOKEN \\\n"
        "    --mount=type=secret,id=netrc,target=/root/.netrc \\\n"
        f"    {SEE_SECRETS}\n"
        f"RUN {SEE_SECRETS}\n",
        secrets={"token": "t0ken-value", "netrc": "machine h login u password n3trc-value"},
    )
    first, second = (image.workdir / "seen").read_text().splitlines()
    token, _, rest = first.partition(" ")
    assert token == "t0ken-value"
    assert rest.startswith("machine h login u password n3trc-value ")
    netrc_file = Path(rest.rsplit(" ", 1)[1])
    assert not netrc_file.exists(), "the secret's file is gone after its command"
    assert not netrc_file.is_relative_to(image.root)
    assert second == "None None None"
    for path in image.root.rglob("*"):
        if path.is_file() and path.name != "seen":
            assert b"t0ken-value" not in path.read_bytes(), path


def test_a_secret_not_given_is_left_out_unless_required(project: Path, tmp_path: Path) -> None:
    image = build(
        project,
        tmp_path,
        "FROM python:3.11-slim\nWORKDIR /src\n"
        f"RUN --mount=type=secret,id=token,env=TOKEN {SEE_SECRETS}\n",
    )
    assert (image.workdir / "seen").read_text() == "None None None\n"
    with pytest.raises(DockerfileError, match="the required secret 'token' is missing"):
        build(
            project,
            tmp_path / "again",
            "FROM python:3.11-slim\nRUN --mount=type=secret,id=token,env=TOKEN,required=true "
            "uv --version\n",
        )


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--network=none", "a RUN flag the emulation does not know: --network=none"),
        ("--mount=type=cache,target=/root/.cache", "a mount the emulation does not know"),
        ("--mount=type=secret,id=key,target=/etc/key", "a secret file the emulation does not"),
    ],
)
def test_run_flags_the_emulation_cannot_follow_fail(
    project: Path, tmp_path: Path, flag: str, message: str
) -> None:
    with pytest.raises(DockerfileError, match=message):
        build(
            project,
            tmp_path,
            f"FROM python:3.11-slim\nRUN {flag} uv --version\n",
            secrets={"key": "k"},
        )
