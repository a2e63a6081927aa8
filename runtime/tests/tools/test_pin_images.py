"""tools/pin_images.py against a registry on 127.0.0.1 that speaks the OCI distribution API.

The registry answers like Docker Hub: 401 with a Bearer challenge, an anonymous token, then the
digest of the tag in `Docker-Content-Digest`. The script runs as `make pin-images` runs it, on a
repository whose files pin the template's base images.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.example_project import TEMPLATE_CHECKOUT

PINNED = re.compile(r"([a-z0-9][a-z0-9._/-]*):([A-Za-z0-9_][A-Za-z0-9_.-]*)@(sha256:[0-9a-f]{64})")
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
# The base images the template pins (its includes/images.jinja): what repositories start with.
TEMPLATE_IMAGES = TEMPLATE_CHECKOUT / "includes" / "images.jinja"


def new_digest(ref: str) -> str:
    return "sha256:" + hashlib.sha256(f"moved {ref}".encode()).hexdigest()


class FakeRegistry(ThreadingHTTPServer):
    """Tags -> digests, plus a log of what clients asked."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RegistryHandler)
        self.digests: dict[str, str] = {}  # "library/python:3.12-slim" -> digest
        self.accepts: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class RegistryHandler(BaseHTTPRequestHandler):
    server: FakeRegistry

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path != "/token":
            self.send_error(404)
            return
        scope = parse_qs(url.query).get("scope", [""])[0]
        body = json.dumps({"token": f"token-for {scope}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        match = re.fullmatch(r"/v2/(.+)/manifests/([^/]+)", self.path)
        if not match:
            self.send_error(404)
            return
        repository, tag = match.groups()
        if not self.headers.get("Authorization", "").startswith("Bearer token-for repository:"):
            self.send_response(401)
            self.send_header(
                "WWW-Authenticate",
                f'Bearer realm="{self.server.url}/token",service="registry.test",'
                f'scope="repository:{repository}:pull"',
            )
            self.end_headers()
            return
        self.server.accepts.append(self.headers.get("Accept", ""))
        digest = self.server.digests.get(f"{repository}:{tag}")
        if digest is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", INDEX_MEDIA_TYPE)
        self.send_header("Docker-Content-Digest", digest)
        self.end_headers()


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    server = FakeRegistry()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose Dockerfile, CI file and manifest pin the template's base images."""
    refs = [
        "".join(found)
        for found in re.findall(r'"([^"@]+)(@sha256:[0-9a-f]{64})"', TEMPLATE_IMAGES.read_text())
    ]
    if not refs:
        pytest.fail(f"{TEMPLATE_IMAGES} pins no image by digest")
    python = [ref for ref in refs if ref.startswith("python:")]
    docker = [ref for ref in refs if ref.startswith("docker:")]
    (tmp_path / "Dockerfile").write_text(
        "".join(f"FROM {ref} AS stage{i}\n" for i, ref in enumerate(python))
    )
    (tmp_path / ".gitlab-ci.yml").write_text(
        "".join(f"job{i}:\n  image: {ref}\n" for i, ref in enumerate(docker))
    )
    manifest = tmp_path / "deploy" / "k8s" / "cronjob.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(f"containers:\n  - image: {python[0]}\n")
    return tmp_path


def pins(repo: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in repo.rglob("*"):
        if path.is_file():
            for name, tag, digest in PINNED.findall(path.read_text()):
                found.setdefault(f"{name}:{tag}", set()).add(digest)
    return found


def hub_repository(ref: str) -> str:
    name, tag = ref.rsplit(":", 1)
    return f"{name if '/' in name else 'library/' + name}:{tag}"


def snapshot(repo: Path) -> dict[str, bytes]:
    return {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*") if p.is_file()}


def pin_images(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_stack_runtime.tools.pin_images", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_pin_moves_to_the_digest_its_tag_has_now(repo: Path, registry: FakeRegistry):
    before = pins(repo)
    assert before, "the copied files pin images"
    registry.digests = {hub_repository(ref): new_digest(ref) for ref in before}

    check = pin_images(repo, "--check", "--mirror", registry.url)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "stale pins" in check.stderr
    assert pins(repo) == before, "--check writes nothing"

    refreshed = pin_images(repo, "--mirror", registry.url)
    assert refreshed.returncode == 0, refreshed.stderr
    assert pins(repo) == {ref: {new_digest(ref)} for ref in before}
    for ref in before:
        assert ref in refreshed.stdout, "each moved image is reported"
    # The multi-platform index is asked for first: a single platform's digest would pin one arch.
    assert registry.accepts and all(a.startswith(INDEX_MEDIA_TYPE) for a in registry.accepts)

    again = pin_images(repo, "--check", "--mirror", registry.url)
    assert again.returncode == 0, again.stderr
    assert f"all {len(before)} images are pinned" in again.stdout


def test_a_tag_the_registry_does_not_know_changes_nothing(repo: Path, registry: FakeRegistry):
    before = snapshot(repo)
    refs = sorted(pins(repo))
    unknown = refs[0]
    registry.digests = {hub_repository(ref): new_digest(ref) for ref in refs[1:]}

    result = pin_images(repo, "--mirror", registry.url)
    assert result.returncode == 2
    assert f"{unknown}: no such tag" in result.stderr
    assert "nothing was changed" in result.stderr
    assert snapshot(repo) == before, "all or nothing: the images that resolved are not rewritten"


def test_an_unreachable_registry_is_named_and_changes_nothing(repo: Path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    before = snapshot(repo)
    result = pin_images(repo, "--mirror", closed)
    assert result.returncode == 2
    assert f"cannot reach {closed}" in result.stderr
    assert snapshot(repo) == before


def test_a_missing_file_is_refused(repo: Path):
    result = pin_images(repo, "no-such-Dockerfile")
    assert result.returncode == 2
    assert "no such file: no-such-Dockerfile" in result.stderr
