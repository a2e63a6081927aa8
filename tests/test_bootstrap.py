"""`make setup` on a machine without uv: pip installs the pinned uv where even a PEP 668 Python
(externally managed: Debian 12, Ubuntu 24.04) lets it, for the template and for a generated repo.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .conftest import TEMPLATE_DIR, project_env

UV_VERSION = re.search(r"^UV_VERSION \?= (\S+)$", (TEMPLATE_DIR / "Makefile").read_text(), re.M)


def python_with_pip() -> str:
    """A Python that has pip, as the Makefiles' `python3 -m pip` finds one: this environment's
    base interpreter, else a python3 on PATH outside it (a uv venv has no pip of its own)."""
    venv = Path(sys.prefix)
    candidates = [Path(sys.base_prefix) / "bin" / "python3"]
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder and not Path(folder).is_relative_to(venv):
            candidates.append(Path(folder) / "python3")
    for python in candidates:
        if python.is_file():
            check = subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True)
            if check.returncode == 0:
                return str(python)
    pytest.fail("no python3 with pip: the Makefiles' uv install needs one")


def python_without_uv(kind: str, tmp_path: Path) -> str:
    """A PATH whose python3 is of the given kind and where no uv can be found."""
    if kind == "externally-managed":
        system = Path("/usr/bin/python3")
        if not system.exists():
            pytest.skip("no /usr/bin/python3 on this machine")
        stdlib = subprocess.run(
            [str(system), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not (Path(stdlib) / "EXTERNALLY-MANAGED").exists():
            pytest.skip("this machine's /usr/bin/python3 is not externally managed (PEP 668)")
        python = system
    else:
        python = Path(sysconfig.get_config_var("BINDIR")) / "python3"
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, target in (
        ("python3", python),
        ("make", shutil.which("make")),
        ("git", shutil.which("git")),
    ):
        assert target, name
        (tools / name).symlink_to(target)
    return f"{tools}:/bin"


@pytest.fixture(scope="module")
def generated_makefile(copie_session) -> Path:
    result = copie_session.copy(extra_answers={"stack_tier": "startup"})
    assert result.exit_code == 0, result.exception
    return result.project_dir


@pytest.mark.parametrize("kind", ["python-on-path", "externally-managed"])
@pytest.mark.parametrize("makefile", ["template", "generated"])
def test_missing_uv_is_installed_pinned_and_then_used(
    makefile: str, kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    assert UV_VERSION, "the template's Makefile pins no UV_VERSION"
    folder = (
        TEMPLATE_DIR if makefile == "template" else request.getfixturevalue("generated_makefile")
    )
    uv_home = tmp_path / "uv-home"
    env = project_env(PATH=python_without_uv(kind, tmp_path), HOME=str(tmp_path / "home"))
    env.pop("UV", None)

    def make(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "--no-print-directory", "-C", str(folder), *args, f"UV_HOME={uv_home}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    installed = make(f"{uv_home}/bin/uv")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "--user" not in installed.stdout  # no user site: PEP 668 refuses it
    version = subprocess.run(
        [str(uv_home / "bin" / "uv"), "--version"], capture_output=True, text=True
    )
    assert version.stdout.split()[:2] == ["uv", UV_VERSION.group(1)]
    # The next make finds that uv and puts it on the PATH of what its recipes start.
    planned = make("-n", "setup")
    assert planned.returncode == 0, planned.stderr
    assert f"{uv_home}/bin/uv sync" in planned.stdout
    assert "pip install" not in planned.stdout
    seen = make("--eval", "show-path: ; @echo $$PATH", "show-path")
    assert Path(seen.stdout.split(":")[0]) == uv_home / "bin", seen.stdout


def test_the_template_and_generated_repositories_pin_the_same_uv_wheels(tmp_path: Path) -> None:
    """One uv, by version and wheel hashes, in both requirement files; a file whose hash does not
    match is refused by the install the Makefiles run (pip --require-hashes)."""
    ours = (TEMPLATE_DIR / "tools" / "requirements-uv.txt").read_text()
    theirs = (TEMPLATE_DIR / "template" / "requirements-uv.txt").read_text()
    pins = [re.findall(r"^uv==\S+|sha256:[0-9a-f]{64}", text, re.M) for text in (ours, theirs)]
    assert pins[0] == pins[1] and pins[0][0] == f"uv=={UV_VERSION.group(1)}"
    # A wheel the pins do not name: pip refuses it before installing anything.
    wheel = tmp_path / f"uv-{UV_VERSION.group(1)}-py3-none-any.whl"
    wheel.write_bytes(b"not the wheel")
    requirement = tmp_path / "requirements.txt"
    requirement.write_text(f"{wheel} --hash={pins[0][1]}\n")
    refused = subprocess.run(
        [
            python_with_pip(),
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-deps",
            "--require-hashes",
            "--target",
            str(tmp_path / "target"),
            "--requirement",
            str(requirement),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode != 0 and "HASHES" in refused.stderr.upper(), refused.stderr
