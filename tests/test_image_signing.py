"""Enterprise image signing: the SBOM for real, cosign as a dry run (no registry, no Sigstore here).

`make sbom` writes the CycloneDX SBOM of the image's Python packages. `make sign-image
verify-image DRY_RUN=1` prints the cosign commands each provider's CI would run; the identity
regexp that `verify-image` accepts is checked against the certificate identity that provider's
OIDC token carries, and against identities it must refuse. `make -n deploy` shows the
verification before anything is applied.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from .conftest import expand_runtime, make

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


def test_sbom_lists_the_images_packages_and_no_training_tools(copie_session):
    project = enterprise_project(copie_session, "github")  # the SBOM is the same on every provider
    make(project, "sbom")
    sbom = json.loads((project / "build" / "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    components = {c["name"].lower() for c in sbom["components"]}
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    direct = [*pyproject["project"]["dependencies"], *pyproject["dependency-groups"]["serve"]]
    for requirement in expand_runtime(direct):
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")
        if name == "mlops-stack-runtime":
            continue  # a render from a folder: the runtime is a file:// requirement, no PyPI one
        assert name in components, f"{name} (a serving dependency) is missing from the SBOM"
    for name in ("mlflow", "dvc", "pytest", "ruff", "fairlearn"):
        assert name not in components, f"{name} is not in the serving image"
    # No model says otherwise: the ONNX image, without the pickle's stack.
    for name in ("scikit-learn", "scipy", "pandas", "joblib"):
        assert name not in components, f"{name} is not in the ONNX serving image"
    for component in sbom["components"]:
        if component["name"] in ("unknown", "mlops-stack-runtime"):
            # The runtime from the template's folder or git repository: no PyPI release to name.
            assert "runtime" in json.dumps(component), component
            continue
        assert component["version"] and component["purl"].startswith("pkg:pypi/")

    # The image for a model that scikit-learn serves (what models/model.json would choose).
    make(project, "sbom", "INFERENCE_RUNTIME=sklearn")
    sbom = json.loads((project / "build" / "sbom.cdx.json").read_text())
    components = {c["name"].lower() for c in sbom["components"]}
    assert {"scikit-learn", "pandas", "joblib", "onnxruntime"} <= components
    assert "mlflow" not in components
