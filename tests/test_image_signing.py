"""Enterprise image signing: syft, cosign as dry runs (no registry, no Sigstore here).

`make sbom` has syft read the pushed image from the registry into a CycloneDX SBOM; syft and
cosign are installed only with the sha256 the Makefile pins. `make sign-image
verify-image DRY_RUN=1` prints the cosign commands each provider's CI would run; the identity
regexp that `verify-image` accepts is checked against the certificate identity that provider's
OIDC token carries, and against identities it must refuse. `make -n deploy` shows the
verification before anything is applied.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import make

DIGEST = "sha256:" + "ab" * 32
IMAGE = "registry.example.com/ml/credit-risk-model"
PROVIDER_ENV = {
    "github": {"GITHUB_REPOSITORY": "acme/credit-risk-model"},
    "gitlab": {
        "CI_SERVER_URL": "https://gitlab.com",
        "CI_PROJECT_URL": "https://gitlab.com/acme/credit-risk-model",
        "CI_DEFAULT_BRANCH": "main",
    },
    "jenkins": {"COSIGN_KEY": "/keys/cosign.key", "COSIGN_PUBLIC_KEY": "/keys/cosign.pub"},
}
# The certificate identity of a signature made by this repository's CD, and ones to refuse.
SIGNER = {
    "github": (
        "https://token.actions.githubusercontent.com",
        "https://github.com/acme/credit-risk-model/.github/workflows/cd.yml@refs/heads/main",
        [
            "https://github.com/evil/credit-risk-model/.github/workflows/cd.yml@refs/heads/main",
            "https://github.com/acme/credit-risk-model/.github/workflows/cd.yml@refs/heads/dev",
            "https://github.com/acme/credit-risk-model/.github/workflows/ci.yml@refs/heads/main",
        ],
    ),
    "gitlab": (
        "https://gitlab.com",
        "https://gitlab.com/acme/credit-risk-model//.gitlab-ci.yml@refs/heads/main",
        [
            "https://gitlab.com/evil/credit-risk-model//.gitlab-ci.yml@refs/heads/main",
            "https://gitlab.com/acme/credit-risk-model//.gitlab-ci.yml@refs/heads/feature",
        ],
    ),
}


_RENDERS: dict[str, Path] = {}


def enterprise_project(copie_session, provider: str) -> Path:
    """An enterprise render for the provider, once per module, with a pushed digest recorded."""
    if provider not in _RENDERS:
        answers = {"stack_tier": "enterprise", "ci_provider": provider, "container_image": IMAGE}
        result = copie_session.copy(extra_answers=answers)
        assert result.exit_code == 0, result.exception
        project = Path(result.project_dir)
        (project / "build").mkdir(exist_ok=True)
        (project / "build" / "image-digest").write_text(DIGEST + "\n")
        _RENDERS[provider] = project
    return _RENDERS[provider]


@pytest.fixture(scope="module", params=["github", "gitlab", "jenkins"])
def signed_project(request, copie_session) -> tuple[str, Path]:
    return request.param, enterprise_project(copie_session, request.param)


def cosign_commands(output: str) -> list[list[str]]:
    # echo printed the arguments as cosign gets them (none holds a space): no shell unquoting.
    # cosign is `cosign` from PATH or the pinned build/bin/cosign.
    return [line.split() for line in output.splitlines() if re.match(r"\S*cosign ", line)]


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_sign_and_verify_commands_name_the_pushed_digest(signed_project):
    provider, project = signed_project
    result = make(project, "sign-image", "verify-image", "DRY_RUN=1", **PROVIDER_ENV[provider])
    commands = cosign_commands(result.stdout)
    assert [c[1] for c in commands] == ["sign", "attest", "verify", "verify-attestation"]
    for command in commands:
        assert command[-1] == f"{IMAGE}@{DIGEST}", "the pushed digest, never a tag"
    sign, attest, verify, verify_attestation = commands
    assert option(attest, "--type") == "cyclonedx"
    assert option(attest, "--predicate") == "build/sbom.cdx.json"
    assert option(verify_attestation, "--type") == "cyclonedx"
    if provider == "jenkins":
        assert option(sign, "--key") == option(attest, "--key") == "/keys/cosign.key"
        assert option(verify, "--key") == "/keys/cosign.pub"
        return
    assert "--key" not in sign, "keyless: the CI job's OIDC identity signs"
    issuer, identity, refused = SIGNER[provider]
    for command in (verify, verify_attestation):
        assert option(command, "--certificate-oidc-issuer") == issuer
        pattern = re.compile(option(command, "--certificate-identity-regexp"))
        assert pattern.search(identity), f"{pattern.pattern} refuses this repository's CD"
        for other in refused:
            assert not pattern.search(other), f"{pattern.pattern} accepts {other}"


def test_jenkins_verify_refuses_to_run_without_the_public_key(copie_session):
    project = enterprise_project(copie_session, "jenkins")
    result = make(project, "verify-image", "DRY_RUN=1", check=False)
    assert result.returncode != 0
    assert "nothing to verify against: set COSIGN_PUBLIC_KEY" in result.stderr


def test_signing_needs_the_pushed_digest(signed_project):
    provider, project = signed_project
    digest_file = project / "build" / "image-digest"
    digest_file.unlink()
    try:
        result = make(project, "sign-image", "DRY_RUN=1", check=False, **PROVIDER_ENV[provider])
    finally:
        digest_file.write_text(DIGEST + "\n")
    assert result.returncode != 0
    assert "build/image-digest is missing: make docker-push first" in result.stderr
    assert not cosign_commands(result.stdout)


def test_deploy_verifies_the_image_before_applying_anything(signed_project):
    provider, project = signed_project
    plan = make(project, "-n", "deploy", "ENV=staging", **PROVIDER_ENV[provider]).stdout
    verify = plan.index("verify-attestation")
    assert verify < plan.index("kubectl apply"), "verification first"


def test_sbom_describes_the_pushed_image_from_the_registry(copie_session):
    """The SBOM is syft's reading of the pushed image itself (OS packages, the environment, the
    project), by digest, as CycloneDX: what `sign-image` attests and `verify-image` checks."""
    project = enterprise_project(copie_session, "github")
    plan = make(project, "sbom", "DRY_RUN=1").stdout
    (scan,) = [line.split() for line in plan.splitlines() if " scan " in line]
    assert scan[0].endswith("syft") and f"registry:{IMAGE}@{DIGEST}" in scan
    assert "--output" in scan and option(scan, "--output") == "cyclonedx-json=build/sbom.cdx.json"


@pytest.mark.parametrize("tool", ["syft", "cosign"])
def test_a_downloaded_tool_runs_only_if_its_sha256_is_the_pinned_one(copie_session, tmp_path, tool):
    """cosign and syft come from their releases only when the bytes have the sha256 the Makefile
    pins (not a checksum file from the same server): other bytes are refused and not installed."""
    project = enterprise_project(copie_session, "github")
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "syft").write_text("#!/bin/sh\necho fake\n")
    tarball = tmp_path / "syft.tar.gz"
    subprocess.run(["tar", "-czf", str(tarball), "-C", str(payload), "syft"], check=True)
    download = tarball if tool == "syft" else payload / "syft"
    curl = tmp_path / "bin" / "curl"  # the release server, answering with these bytes
    curl.parent.mkdir()
    curl.write_text(f'#!/bin/sh\nwhile [ "$1" != -fsSLo ]; do shift; done\ncp {download} "$2"\n')
    curl.chmod(0o755)
    path = f"{curl.parent}:{os.environ['PATH']}"
    target = project / "build" / "bin" / tool
    target.unlink(missing_ok=True)
    arch = "arm64" if os.uname().machine in ("aarch64", "arm64") else "amd64"
    refused = make(project, f"build/bin/{tool}", check=False, PATH=path)
    assert refused.returncode != 0 and "FAILED" in refused.stdout + refused.stderr
    assert not target.exists(), "bytes that are not the release's were installed"
    digest = hashlib.sha256(download.read_bytes()).hexdigest()
    pin = f"{tool.upper()}_SHA256_{arch}={digest}"
    make(project, f"build/bin/{tool}", pin, PATH=path)
    assert target.read_bytes() == (payload / "syft").read_bytes()
    assert os.access(target, os.X_OK)
    target.unlink()
