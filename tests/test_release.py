"""The release procedure's runtime steps (README.md, "Releasing the template"): one version in
three places, and the runtime's distributions built and uploaded to a team's index."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import http.server
import importlib.util
import shutil
import threading
from pathlib import Path

from .conftest import TEMPLATE_DIR, run

_spec = importlib.util.spec_from_file_location(
    "release_check", TEMPLATE_DIR / "tools/release_check.py"
)
assert _spec and _spec.loader
release_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(release_check)


def test_the_release_check_names_each_version_when_they_differ(tmp_path: Path, capsys) -> None:
    for name in ("pyproject.toml", "runtime/pyproject.toml", "includes/runtime.jinja"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(TEMPLATE_DIR / name, tmp_path / name)
    assert release_check.main(tmp_path) == 0
    version = release_check.versions(tmp_path)["pyproject.toml"]

    runtime = tmp_path / "runtime" / "pyproject.toml"
    runtime.write_text(runtime.read_text().replace(f'version = "{version}"', 'version = "9.9.9"'))
    assert release_check.main(tmp_path) == 1
    message = capsys.readouterr().err
    assert f"pyproject.toml: {version}" in message
    assert "runtime/pyproject.toml: 9.9.9" in message
    assert f"includes/runtime.jinja: {version}" in message


class _Upload(http.server.BaseHTTPRequestHandler):
    """An index's upload endpoint (the legacy API that `uv publish` speaks), behind basic auth."""

    credentials = ""
    uploads: list[dict[str, str]]

    def do_POST(self) -> None:
        if self.headers.get("Authorization") != f"Basic {self.credentials}":
            self.send_response(403)
            self.end_headers()
            return
        body = self.rfile.read(int(self.headers["Content-Length"]))
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body
        )
        fields = {
            part.get_param("name", header="content-disposition"): (
                part.get_filename() or part.get_content()
            )
            for part in message.iter_parts()
        }
        self.uploads.append(fields)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_runtime_publish_uploads_the_runtime_of_the_release(tmp_path: Path) -> None:
    """`make runtime-publish`: the wheel and sdist of the template's version, uploaded with the
    credentials of the environment (never the command line)."""
    user, password = "release-bot", "upl0ad-password"
    uploads: list[dict[str, str]] = []
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    handler = type("Upload", (_Upload,), {"credentials": token, "uploads": uploads})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/legacy/"
        dist = tmp_path / "dist"
        result = run(
            ["make", "runtime-publish", f"PUBLISH_URL={url}", f"RUNTIME_DIST={dist}"],
            TEMPLATE_DIR,
            UV_PUBLISH_USERNAME=user,
            UV_PUBLISH_PASSWORD=password,
        )
    finally:
        server.shutdown()
        server.server_close()
    version = release_check.versions()["runtime/pyproject.toml"]
    assert sorted(p.name for p in dist.glob("mlops_stack_runtime-*")) == [
        f"mlops_stack_runtime-{version}-py3-none-any.whl",
        f"mlops_stack_runtime-{version}.tar.gz",
    ]
    assert sorted((u["name"], u["version"], u["content"]) for u in uploads) == [
        ("mlops-stack-runtime", version, f"mlops_stack_runtime-{version}-py3-none-any.whl"),
        ("mlops-stack-runtime", version, f"mlops_stack_runtime-{version}.tar.gz"),
    ]
    assert password not in result.stdout + result.stderr


def test_runtime_publish_without_a_url_is_refused_before_building(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    result = run(
        ["make", "--no-print-directory", "runtime-publish", f"RUNTIME_DIST={dist}"],
        TEMPLATE_DIR,
        check=False,
    )
    assert result.returncode == 2
    assert not dist.exists(), "refused before anything was built"
    assert "make runtime-publish needs PUBLISH_URL=<the index's upload URL>" in result.stderr
    assert "Traceback" not in result.stderr
