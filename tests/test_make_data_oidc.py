"""`make data` of a rendered repository with an object-store remote: in a CI job with an OIDC ID
token and the cloud's variables, the runtime's cloud_credentials tool writes the token first and
the long-lived keys never reach the command; without the cloud's variables the keys apply.

GitLab's way (the job variable OIDC_ID_TOKEN) needs no token service; the tool itself, GitHub's
token service and each cloud's SDK are the runtime's tests (runtime/tests/tools).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import TEMPLATE_DIR, project_env

TOOL = TEMPLATE_DIR / "runtime/src/mlops_stack_runtime/tools/cloud_credentials.py"
VARIABLES = {
    "s3": {"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/dvc-ci"},
    "gcs": {
        "GCP_WORKLOAD_IDENTITY_PROVIDER": (
            "projects/123456/locations/global/workloadIdentityPools/ci-pool/providers/ci-oidc"
        ),
        "GCP_SERVICE_ACCOUNT": "dvc-ci@my-project.iam.gserviceaccount.com",
    },
    "azure": {
        "AZURE_CLIENT_ID": "00000000-0000-4000-8000-000000000001",
        "AZURE_TENANT_ID": "00000000-0000-4000-8000-000000000002",
        "AZURE_STORAGE_ACCOUNT": "mldata",
    },
}
AUDIENCES = {
    "s3": "sts.amazonaws.com",
    "gcs": "https://iam.googleapis.com/" + VARIABLES["gcs"]["GCP_WORKLOAD_IDENTITY_PROVIDER"],
    "azure": "api://AzureADTokenExchange",
}
KEYS = {
    "s3": {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"},
    "gcs": {"GOOGLE_APPLICATION_CREDENTIALS": "/secrets/gcp-key.json"},
    "azure": {
        "AZURE_STORAGE_CONNECTION_STRING": (
            "DefaultEndpointsProtocol=https;AccountName=mldata;AccountKey=a2V5"
        )
    },
}
POINTERS = {
    "s3": ("AWS_WEB_IDENTITY_TOKEN_FILE", "oidc-token"),
    "gcs": ("GOOGLE_APPLICATION_CREDENTIALS", "gcp-external-account.json"),
    "azure": ("AZURE_FEDERATED_TOKEN_FILE", "oidc-token"),
}
SCRUBBED = (
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "OIDC_ID_TOKEN",
    *(name for names in (*VARIABLES.values(), *KEYS.values()) for name in names),
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    *(variable for variable, _ in POINTERS.values()),
)


def jwt(audience: str) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {"iss": "https://ci.example", "sub": "project_path:team/models", "aud": audience}
    claims |= {"iat": now, "exp": now + 300}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.fixture(scope="module", params=sorted(VARIABLES))
def remote_project(request, copie_session) -> tuple[str, Path]:
    result = copie_session.copy(
        extra_answers={"ci_provider": "gitlab", "data_remote": request.param}
    )
    assert result.exit_code == 0, result.exception
    return request.param, result.project_dir


def env_of_make_data(project: Path, **variables: str) -> dict[str, str]:
    """The environment `make data` gives its command (RUN replaced by `env`), prerequisites run;
    the tool runs as a file of this checkout with this Python (no project environment needed)."""
    env = {k: v for k, v in project_env().items() if k not in SCRUBBED} | variables
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "data",
            "RUN=sh -c env --",
            f"CLOUD_CREDENTIALS_TOOL={sys.executable} {TOOL}",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_make_data_mints_the_token_first_and_withholds_the_keys(remote_project) -> None:
    remote, project = remote_project
    variable, file_name = POINTERS[remote]
    token = jwt(AUDIENCES[remote])

    seen = env_of_make_data(project, OIDC_ID_TOKEN=token, **VARIABLES[remote], **KEYS[remote])

    written = project / "build" / "cloud" / file_name
    assert seen[variable] == str(written)
    assert written.is_file()
    assert (project / "build" / "cloud" / "oidc-token").read_text() == token
    withheld = set(KEYS[remote]) - {variable}
    assert not withheld & set(seen), f"long-lived keys reached the command: {withheld & set(seen)}"


def test_make_data_keeps_the_keys_when_oidc_is_not_configured(remote_project) -> None:
    remote, project = remote_project
    # A job with an ID token but none of the cloud's variables: the keys apply, nothing written.
    for path in (project / "build" / "cloud").glob("*"):
        path.unlink()

    seen = env_of_make_data(project, OIDC_ID_TOKEN=jwt(AUDIENCES[remote]), **KEYS[remote])

    assert {name: seen.get(name) for name in KEYS[remote]} == KEYS[remote]
    if remote != "gcs":  # Google's key file and the external-account file share one variable
        assert POINTERS[remote][0] not in seen
    assert not any((project / "build" / "cloud").glob("*"))
