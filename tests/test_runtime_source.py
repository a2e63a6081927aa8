"""hooks/runtime_source.py: where a rendered repository takes the runtime from (no rendering)."""

from __future__ import annotations

import base64
import contextlib
import csv
import functools
import hashlib
import http.server
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import TEMPLATE_DIR, make, project_env, rendered_files, run
from .test_serving import answers_over_v1_and_v2, free_port, http_json, running
from .test_update import load_hook

runtime_source = load_hook("runtime_source")

PYPROJECT = """[project]
dependencies = ["mlops-stack-runtime==0.1.0"]

[tool.uv.sources]
mlops-stack-runtime = { path = "runtime" }
"""


@pytest.mark.parametrize(
    ("src_path", "commit", "expected"),
    [
        (
            "https://git.example.com/ml/mlops-stack-template.git",
            "0.3.0",
            {
                "git": "https://git.example.com/ml/mlops-stack-template.git",
                "subdirectory": "runtime",
                "tag": "0.3.0",
            },
        ),
        (
            "gh:acme/mlops-stack-template",
            "v1.2.0",
            {
                "git": "https://github.com/acme/mlops-stack-template.git",
                "subdirectory": "runtime",
                "tag": "v1.2.0",
            },
        ),
        (
            "git@git.example.com:ml/template.git",
            "0.3.0-4-gabc1234",
            {"git": "ssh://git@git.example.com/ml/template.git", "subdirectory": "runtime"},
        ),
        (
            "file:///srv/templates/mlops-stack-template",
            "abc1234",
            {"git": "file:///srv/templates/mlops-stack-template", "subdirectory": "runtime"},
        ),
        (
            "/srv/templates/mlops-stack-template",
            "0.3.0",
            {"path": "/srv/templates/mlops-stack-template/runtime"},
        ),
    ],
)
def test_the_source_follows_how_the_template_was_given(
    src_path: str, commit: str, expected: dict[str, str]
) -> None:
    commit_hash = "f" * 40
    entry = runtime_source.source_entry(src_path, commit, commit_hash)
    parsed = tomllib.loads(f"x = {entry}")["x"]
    if "git" in expected and "tag" not in expected:
        expected = {**expected, "rev": commit_hash}  # not a release: the exact commit
    assert parsed == expected


def test_the_line_is_rewritten_in_place_and_idempotently(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(PYPROJECT)
    entry = runtime_source.source_entry("https://example.com/t.git", "0.2.0", "")
    assert runtime_source.rewrite(pyproject, entry) is True
    assert runtime_source.rewrite(pyproject, entry) is False
    sources = tomllib.loads(pyproject.read_text())["tool"]["uv"]["sources"]
    assert sources["mlops-stack-runtime"]["tag"] == "0.2.0"
    assert pyproject.read_text().count("mlops-stack-runtime = {") == 1


def test_a_pyproject_without_the_line_and_an_unpinnable_source_are_refused(
    tmp_path: Path,
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[project]\n")
    with pytest.raises(
        runtime_source.SourceError, match=r"no `mlops-stack-runtime = \{...\}` line"
    ):
        runtime_source.rewrite(pyproject, '{ path = "x" }')
    with pytest.raises(runtime_source.SourceError, match="no release tag or commit"):
        runtime_source.source_entry("https://example.com/t.git", "0.2.0-1-gabc", "")
    with pytest.raises(runtime_source.SourceError, match="not an absolute path"):
        runtime_source.source_entry("../template", "0.2.0", "")


def test_the_template_depends_on_the_runtime_release_of_its_own_version() -> None:
    runtime = tomllib.loads((TEMPLATE_DIR / "runtime" / "pyproject.toml").read_text())["project"]
    template = tomllib.loads((TEMPLATE_DIR / "pyproject.toml").read_text())["project"]
    pinned = re.search(
        r'runtime_version = "([^"]+)"', (TEMPLATE_DIR / "includes" / "runtime.jinja").read_text()
    )
    assert pinned is not None
    assert runtime["version"] == template["version"] == pinned.group(1)


runtime_imports = load_hook("runtime_imports")

TEAM_SOURCE = '''"""A team's source as the copied layout rendered it, and a module of its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import DataSourceError
from .helpers import warehouse_query
from .synthetic import generate
from . import helpers

if TYPE_CHECKING:
    from ..config import Config
'''


def test_the_migration_points_imports_of_removed_modules_at_the_runtime(tmp_path: Path) -> None:
    package = tmp_path / "src" / "churn_model"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("")
    (package / "data" / "helpers.py").write_text("def warehouse_query(): ...\n")
    source = package / "data" / "source.py"
    source.write_text(TEAM_SOURCE)

    assert runtime_imports.migrate(tmp_path, "churn_model") == [
        Path("src/churn_model/data/source.py")
    ]
    text = source.read_text()
    assert "from mlops_stack_runtime.errors import DataSourceError\n" in text
    assert "from mlops_stack_runtime.data.synthetic import generate\n" in text
    assert "    from mlops_stack_runtime.config import Config\n" in text
    # The team's own modules stay relative imports.
    assert "from .helpers import warehouse_query\n" in text
    assert "from . import helpers\n" in text
    # Idempotent: nothing left to change.
    assert runtime_imports.migrate(tmp_path, "churn_model") == []


def test_a_render_from_a_folder_fails_early_where_that_folder_is_not(copie_session) -> None:
    """CI and image builds cannot reach the template's folder: `make setup` and `make
    docker-build` say so, before uv or Docker fail in their own words."""
    result = copie_session.copy(extra_answers={"project_name": "Folder Source"})
    assert result.exit_code == 0, result.exception
    project = result.project_dir
    pyproject = project / "pyproject.toml"
    source = tomllib.loads(pyproject.read_text())["tool"]["uv"]["sources"]["mlops-stack-runtime"]
    assert source == {"path": str(TEMPLATE_DIR / "runtime")}
    gone = "/nonexistent/mlops-stack-template/runtime"
    pyproject.write_text(pyproject.read_text().replace(source["path"], gone))

    setup = subprocess.run(
        ["make", "setup"], cwd=project, env=project_env(), capture_output=True, text=True
    )
    assert setup.returncode != 0
    assert f"the runtime comes from the folder '{gone}'" in setup.stderr
    assert "git URL" in setup.stderr and "Traceback" not in setup.stderr
    assert not (project / ".venv").exists(), "refused before anything was installed"

    (project / "models").mkdir()
    for name in ("model.joblib", "model.onnx", "model.json"):
        (project / "models" / name).write_text("{}")
    build = subprocess.run(
        ["make", "docker-build"], cwd=project, env=project_env(), capture_output=True, text=True
    )
    assert build.returncode != 0
    assert "an image build cannot reach it" in build.stderr


def served_row(project: Path) -> tuple[dict[str, Any], str]:
    """The first complete held-out row, typed by the declaration (the features only), and the
    name of the probability the server answers with (`<label>_probability`)."""
    declared = yaml.safe_load(next(project.glob("src/*/data/columns.yaml")).read_text())
    kinds = {feature["name"]: feature["kind"] for feature in declared["features"]}
    cast = {"int": int, "float": float, "category": str}
    output = f"{declared['label']['name']}_probability"
    with (project / "data" / "validated" / "test.csv").open(newline="") as rows:
        for row in csv.DictReader(rows):
            if all(row[name] != "" for name in kinds):
                return {name: cast[kind](row[name]) for name, kind in kinds.items()}, output
    raise AssertionError("no complete row in data/validated/test.csv")


@pytest.mark.slow
def test_a_render_from_a_git_url_runs_on_the_runtime_of_its_release_tag(tmp_path: Path) -> None:
    """The way teams render: the template's git URL at a release tag. uv fetches the runtime
    from the same repository at the same tag, with every extra a tier can ask for (enterprise
    asks for them all: the other tiers' sets are subsets of the same locked source); the
    repository's CI (its pipeline and the Kubeflow compile), promotion, batch scoring, drift
    check and server (v1 and v2) run on it, and the server image builds from it (emulated). The
    local Kubeflow run is tests/test_kfp.py's: its tasks run the same installed runtime. The next
    release reaches it as a version bump: `make template-update` moves the pin and re-locks."""
    from .test_serving import emulated_image
    from .test_update import commit_all, git, snapshot_working_tree

    release = "0.1.0"
    repo = tmp_path / "template.git"
    snapshot_working_tree(repo)
    git(repo.parent, "init", "--quiet", "--initial-branch=main", str(repo))
    commit_all(repo, f"Release {release}")
    git(repo, "tag", "-a", release, "-m", release)
    url = f"file://{repo}"
    project = tmp_path / "project"
    slug = "git-source"
    answers = ["--data", "stack_tier=enterprise", "--data", "project_name=Git Source"]
    copier = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--quiet"]
    run([*copier, "--vcs-ref", release, *answers, url, str(project)], tmp_path)

    sources = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["uv"]["sources"]
    assert sources["mlops-stack-runtime"] == {"git": url, "subdirectory": "runtime", "tag": release}
    lock = (project / "uv.lock").read_text()
    assert f'source = {{ git = "{url}?subdirectory=runtime&tag={release}#' in lock

    make(project, "setup", "ci", "promote")
    make(project, "score", "INPUT=data/validated/test.csv", "OUTPUT=build/scored.csv")
    test_rows = (project / "data/validated/test.csv").read_text().count("\n")
    assert (project / "build/scored.csv").read_text().count("\n") == test_rows  # header + rows
    make(project, "batch", "drift")  # the source's current data: no drift, exit 0

    row, output = served_row(project)
    port = free_port()
    serve = ["make", "serve", "HOST=127.0.0.1", f"PORT={port}"]
    with running(serve, project, port, tmp_path / "serve.log") as base:
        answered = answers_over_v1_and_v2(base, slug, row, output)

    image = emulated_image(project, tmp_path / "image")
    port = free_port()
    env = {**image.env, "HOST": "127.0.0.1", "PORT": str(port)}
    with running(
        image.command(image.stage.cmd), image.workdir, port, tmp_path / "log", **env
    ) as base:
        from_image = answers_over_v1_and_v2(base, slug, row, output)
        assert from_image == pytest.approx(answered, rel=1e-6)

    # The next release: a runtime fix, tagged.
    fixed = repo / "runtime" / "src" / "mlops_stack_runtime" / "__init__.py"
    fixed.write_text(fixed.read_text() + "# A fix of the next release.\n")
    commit_all(repo, "A runtime fix")
    git(repo, "tag", "-a", "0.1.1", "-m", "0.1.1")
    commit_all(project, "The first pipeline run")
    make(project, "template-update")
    sources = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["uv"]["sources"]
    assert sources["mlops-stack-runtime"]["tag"] == "0.1.1"
    lock = (project / "uv.lock").read_text()
    assert f'source = {{ git = "{url}?subdirectory=runtime&tag=0.1.1#' in lock
    assert "tag=0.1.0" not in lock


class _Index(http.server.SimpleHTTPRequestHandler):
    """A private package index (PEP 503 simple pages and files) behind HTTP basic auth."""

    credentials = ""
    requests: list[tuple[str, bool]]

    def do_GET(self) -> None:
        authorized = self.headers.get("Authorization") == f"Basic {self.credentials}"
        self.requests.append((self.path, authorized))
        if not authorized:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="runtime"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # every install asks the index again
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def private_index(root: Path, user: str, password: str) -> Iterator[tuple[str, list]]:
    """Serve `root` on 127.0.0.1 as a package index that wants `user`:`password`."""
    requests: list[tuple[str, bool]] = []
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    handler = type("Index", (_Index,), {"credentials": token, "requests": requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/", requests
    finally:
        server.shutdown()
        server.server_close()


def publish_runtime(root: Path) -> Path:
    """The template's release step for an index (`make runtime-dist`), served as a PEP 503 index."""
    files = root / "files"
    run(["make", "--no-print-directory", "runtime-dist", f"RUNTIME_DIST={files}"], TEMPLATE_DIR)
    (wheel,) = files.glob("mlops_stack_runtime-*.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    page = root / "simple" / "mlops-stack-runtime" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text(
        f'<html><body><a href="../../files/{wheel.name}#sha256={digest}">{wheel.name}</a>'
        "</body></html>\n"
    )
    return wheel


@pytest.mark.slow
def test_a_render_on_a_private_index_takes_the_runtime_from_it_with_secrets_only(
    tmp_path: Path,
) -> None:
    """The answer runtime_index_url: the runtime comes from the team's own index (explicit, so
    nothing else does), uv's credentials come from the environment and never reach a file, and
    the server image builds with them as BuildKit secrets only: without them the build fails,
    with them the image serves and holds the password nowhere."""
    from .dockerfile import DockerfileError
    from .test_serving import emulated_image

    user, password = "deploy", "s3cret-index-password"
    wheel = publish_runtime(tmp_path / "index")
    credentials = {"UV_INDEX_RUNTIME_USERNAME": user, "UV_INDEX_RUNTIME_PASSWORD": password}
    project = tmp_path / "project"
    with private_index(tmp_path / "index", user, password) as (url, requests):
        copier = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--quiet"]
        answers = ["--data", "project_name=Index Source", "--data", f"runtime_index_url={url}"]
        run(
            [*copier, "--vcs-ref", "HEAD", *answers, str(TEMPLATE_DIR), str(project)],
            tmp_path,
            **credentials,
        )

        pyproject = tomllib.loads((project / "pyproject.toml").read_text())
        assert pyproject["tool"]["uv"]["sources"]["mlops-stack-runtime"] == {"index": "runtime"}
        assert pyproject["tool"]["uv"]["index"] == [
            {"name": "runtime", "url": url, "explicit": True}
        ]
        lock = tomllib.loads((project / "uv.lock").read_text())
        (runtime,) = [p for p in lock["package"] if p["name"] == "mlops-stack-runtime"]
        assert runtime["source"] == {"registry": url}
        assert runtime["wheels"][0]["url"].endswith(wheel.name)
        others = {p["source"].get("registry") for p in lock["package"] if p is not runtime}
        assert url not in others, "explicit: only the runtime comes from the index"

        make(project, "setup", "pipeline", **credentials)
        for path in rendered_files(project):
            assert password.encode() not in path.read_bytes(), f"the password is in {path}"

        requests.clear()
        with pytest.raises(DockerfileError, match="401"):
            emulated_image(project, tmp_path / "refused")
        assert requests and not any(authorized for _, authorized in requests)

        requests.clear()
        image = emulated_image(project, tmp_path / "image", secrets=credentials)
        assert any(path.endswith(wheel.name) and ok for path, ok in requests), requests
    installed = list((image.root / "opt" / "venv").rglob("mlops_stack_runtime-*.dist-info"))
    assert len(installed) == 1, installed
    for path in image.root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert password.encode() not in path.read_bytes(), f"the password is in {path}"

    port = free_port()
    env = {**image.env, "HOST": "127.0.0.1", "PORT": str(port)}
    with running(
        image.command(image.stage.cmd), image.workdir, port, tmp_path / "log", **env
    ) as base:
        status, body = http_json(f"{base}/v2/models/index-source/ready")
    assert status == 200, body


def test_an_index_answer_configures_the_source_and_dependency_updates(tmp_path: Path) -> None:
    """runtime_index_url: pyproject.toml declares the index (explicit, no credentials) and takes
    the runtime from it; Dependabot reads it as a registry with the credentials of its secrets,
    so the runtime's releases between template releases are proposed; in the workflows only the
    steps that install or re-lock get the index's read credentials, and the linters pass."""
    import copier

    from .validators import check_dockerfile, check_github_workflows, run_builtin_schema

    url = "https://pypi.example.com/ml/simple"
    project = tmp_path / "project"
    copier.run_copy(
        str(TEMPLATE_DIR),
        str(project),
        data={"runtime_index_url": url, "ci_provider": "github", "stack_tier": "enterprise"},
        defaults=True,
        unsafe=True,
        vcs_ref="HEAD",
        quiet=True,
        skip_tasks=True,
    )
    pyproject = project / "pyproject.toml"
    runtime_source.main(
        ["--answers-file", str(project / ".copier-answers.yml"), "--pyproject", str(pyproject)]
    )
    uv = tomllib.loads(pyproject.read_text())["tool"]["uv"]
    assert uv["sources"]["mlops-stack-runtime"] == {"index": "runtime"}
    assert uv["index"] == [{"name": "runtime", "url": url, "explicit": True}]

    dependabot = project / ".github" / "dependabot.yml"
    run_builtin_schema("vendor.dependabot", dependabot)
    config = yaml.safe_load(dependabot.read_text())
    assert config["registries"] == {
        "runtime-index": {
            "type": "python-index",
            "url": url,
            "username": "${{ secrets.RUNTIME_INDEX_USERNAME }}",
            "password": "${{ secrets.RUNTIME_INDEX_PASSWORD }}",
        }
    }
    (uv_updates,) = [u for u in config["updates"] if u["package-ecosystem"] == "uv"]
    assert uv_updates["registries"] == ["runtime-index"]

    workflows = sorted((project / ".github" / "workflows").glob("*.yml"))
    check_github_workflows(workflows, shellcheck=True)
    check_dockerfile(project / "Dockerfile")
    credentials = {
        "UV_INDEX_RUNTIME_USERNAME": "${{ secrets.RUNTIME_INDEX_USERNAME }}",
        "UV_INDEX_RUNTIME_PASSWORD": "${{ secrets.RUNTIME_INDEX_PASSWORD }}",
    }
    installing = re.compile(r"^make (setup|template-update|docker-build\S*)\b")
    given = 0
    for workflow in workflows:
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            assert not set(credentials) & set(job.get("env", {})), "never job-wide"
            for step in job["steps"]:
                env = step.get("env", {})
                if installing.match(step.get("run", "")):
                    assert {k: env.get(k) for k in credentials} == credentials, step
                    given += 1
                else:
                    assert not set(credentials) & set(env), step
    assert given == 10  # ci, retrain, template-update; cd: 5 setups and 2 image builds


def test_without_an_index_answer_nothing_names_an_index(tmp_path: Path) -> None:
    import copier

    project = tmp_path / "project"
    copier.run_copy(
        str(TEMPLATE_DIR),
        str(project),
        data={"ci_provider": "github"},
        defaults=True,
        unsafe=True,
        vcs_ref="HEAD",
        quiet=True,
        skip_tasks=True,
    )
    assert "index" not in tomllib.loads((project / "pyproject.toml").read_text())["tool"]["uv"]
    assert "registries" not in yaml.safe_load((project / ".github" / "dependabot.yml").read_text())
