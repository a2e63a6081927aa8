"""tools/cloud_credentials.py: OIDC for the DVC remote, keys as the fallback.

GitHub's token service is a server on 127.0.0.1 that checks the bearer and answers a JWT for the
audience asked; GitLab's token is the OIDC_ID_TOKEN variable. Each cloud's SDK then reads what the
script wrote: AWS's STS is faked on 127.0.0.1 too, so the exchange is the real botocore code path.
How a repository's `make data` wires the script in is the template's test (test_make_data_oidc).
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from mlops_stack_runtime.tools import cloud_credentials

SCRIPT = Path(cloud_credentials.__file__)
BEARER = "runner-request-token"
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
# Everything that could change the outcome comes from the test, not from the machine running it.
SCRUBBED = (
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "OIDC_ID_TOKEN",
    *(name for names in VARIABLES.values() for name in names),
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_SECRET",
    "MAKEFLAGS",
)


def jwt(
    audience: str | list[str],
    expires_in: float = 300,
    subject: str = "repo:team/models:environment:data",
) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {
        "iss": "https://ci.example",
        "sub": subject,
        "aud": audience,
        "iat": now,
        "exp": now + expires_in,
    }
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class TokenService(ThreadingHTTPServer):
    """GitHub's ID token endpoint: bearer in, {"value": <JWT for the audience asked>} out."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), TokenHandler)
        self.status = 200
        self.requests: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        # The runner's URL already carries a query string; the script appends `&audience=`.
        return (
            f"http://127.0.0.1:{self.server_address[1]}/_apis/distributedtask/token?api-version=2.0"
        )


class TokenHandler(BaseHTTPRequestHandler):
    server: TokenService

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        audience = query.get("audience", [""])[0]
        self.server.requests.append(
            {"audience": audience, "authorization": self.headers.get("Authorization", "")}
        )
        authorized = self.headers.get("Authorization") == f"Bearer {BEARER}"
        status = self.server.status if authorized else 401
        body = json.dumps({"value": jwt(audience)} if status == 200 else {"message": "no"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def token_service() -> Iterator[TokenService]:
    server = TokenService()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in SCRUBBED}
    env.update(extra)
    return env


def github_env(service: TokenService, remote: str) -> dict[str, str]:
    return clean_env(
        ACTIONS_ID_TOKEN_REQUEST_URL=service.url,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN=BEARER,
        **VARIABLES[remote],
    )


def credentials(
    remote: str, directory: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), remote, "--dir", str(directory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("remote", sorted(VARIABLES))
def test_github_token_is_requested_for_the_clouds_audience_and_written_privately(
    remote: str, token_service: TokenService, tmp_path: Path
) -> None:
    result = credentials(remote, tmp_path / "cloud", github_env(token_service, remote))

    assert result.returncode == 0, result.stderr
    assert token_service.requests == [
        {"audience": AUDIENCES[remote], "authorization": f"Bearer {BEARER}"}
    ]
    token_file = tmp_path / "cloud" / "oidc-token"
    token = token_file.read_text()
    assert (
        json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["aud"] == AUDIENCES[remote]
    )
    assert private(token_file)
    assert stat.S_IMODE((tmp_path / "cloud").stat().st_mode) == 0o700
    written = sorted(path.name for path in (tmp_path / "cloud").iterdir())
    assert written == (
        ["gcp-external-account.json", "oidc-token"] if remote == "gcs" else ["oidc-token"]
    )


def test_gcp_configuration_exchanges_the_token_file_for_the_service_account(
    token_service: TokenService, tmp_path: Path
) -> None:
    result = credentials("gcs", tmp_path, github_env(token_service, "gcs"))

    assert result.returncode == 0, result.stderr
    config_file = tmp_path / "gcp-external-account.json"
    config = json.loads(config_file.read_text())
    provider = VARIABLES["gcs"]["GCP_WORKLOAD_IDENTITY_PROVIDER"]
    assert config["type"] == "external_account"
    assert config["audience"] == f"//iam.googleapis.com/{provider}"
    assert config["credential_source"] == {"file": str(tmp_path / "oidc-token")}
    assert config["service_account_impersonation_url"].endswith(
        f"/serviceAccounts/{VARIABLES['gcs']['GCP_SERVICE_ACCOUNT']}:generateAccessToken"
    )
    assert private(config_file)


@pytest.mark.parametrize("remote", sorted(VARIABLES))
def test_gitlab_id_token_is_taken_from_the_job_variable(remote: str, tmp_path: Path) -> None:
    token = jwt(["other-service", AUDIENCES[remote]])

    result = credentials(remote, tmp_path, clean_env(OIDC_ID_TOKEN=token, **VARIABLES[remote]))

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "oidc-token").read_text() == token


@pytest.mark.parametrize("remote", sorted(VARIABLES))
def test_nothing_happens_without_an_id_token_or_without_the_variables(
    remote: str, token_service: TokenService, tmp_path: Path
) -> None:
    without_token = credentials(remote, tmp_path / "a", clean_env(**VARIABLES[remote]))
    without_variables = credentials(
        remote,
        tmp_path / "b",
        clean_env(
            ACTIONS_ID_TOKEN_REQUEST_URL=token_service.url, ACTIONS_ID_TOKEN_REQUEST_TOKEN=BEARER
        ),
    )

    for result in (without_token, without_variables):
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert token_service.requests == []


@pytest.mark.parametrize(
    ("remote", "env", "message"),
    [
        (
            "gcs",
            {"GCP_WORKLOAD_IDENTITY_PROVIDER": VARIABLES["gcs"]["GCP_WORKLOAD_IDENTITY_PROVIDER"]},
            "GCP_SERVICE_ACCOUNT missing",
        ),
        (
            "azure",
            {"AZURE_CLIENT_ID": VARIABLES["azure"]["AZURE_CLIENT_ID"]},
            "AZURE_TENANT_ID, AZURE_STORAGE_ACCOUNT missing",
        ),
        ("s3", {"AWS_ROLE_ARN": "dvc-ci"}, "AWS_ROLE_ARN is not valid (got 'dvc-ci')"),
        (
            "gcs",
            {**VARIABLES["gcs"], "GCP_SERVICE_ACCOUNT": "dvc-ci"},
            "GCP_SERVICE_ACCOUNT is not valid",
        ),
        (
            "azure",
            {**VARIABLES["azure"], "AZURE_TENANT_ID": "contoso"},
            "AZURE_TENANT_ID is not valid",
        ),
    ],
    ids=["gcs-partial", "azure-partial", "s3-malformed", "gcs-malformed", "azure-malformed"],
)
def test_a_partial_or_malformed_configuration_fails_naming_the_variable(
    remote: str, env: dict[str, str], message: str, tmp_path: Path
) -> None:
    result = credentials(
        remote, tmp_path / "cloud", clean_env(OIDC_ID_TOKEN=jwt(AUDIENCES[remote]), **env)
    )

    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "cloud").exists()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (
            jwt("https://gitlab.com"),
            "the ID token is for audience 'https://gitlab.com', "
            "the object store expects 'sts.amazonaws.com'",
        ),
        (jwt("sts.amazonaws.com", expires_in=-60), "the ID token has expired"),
        ("not-a-jwt", "not a JWT"),
        ("a.!!!.c", "not base64url-encoded JSON"),
    ],
    ids=["wrong-audience", "expired", "not-a-jwt", "bad-payload"],
)
def test_an_unusable_token_fails_with_its_reason_and_writes_nothing(
    token: str, message: str, tmp_path: Path
) -> None:
    result = credentials(
        "s3", tmp_path / "cloud", clean_env(OIDC_ID_TOKEN=token, **VARIABLES["s3"])
    )

    assert result.returncode == 2
    assert message in result.stderr
    assert token not in result.stderr  # a credential never reaches the log
    assert not (tmp_path / "cloud").exists()


def test_a_refusing_or_unreachable_token_service_fails_clearly(
    token_service: TokenService, tmp_path: Path
) -> None:
    token_service.status = 403
    refused = credentials("s3", tmp_path / "cloud", github_env(token_service, "s3"))
    no_bearer = credentials(
        "s3",
        tmp_path / "cloud",
        clean_env(ACTIONS_ID_TOKEN_REQUEST_URL=token_service.url, **VARIABLES["s3"]),
    )
    token_service.shutdown()
    token_service.server_close()
    unreachable = credentials("s3", tmp_path / "cloud", github_env(token_service, "s3"))

    assert (refused.returncode, no_bearer.returncode, unreachable.returncode) == (2, 2, 2)
    assert "refused the ID token request: HTTP 403" in refused.stderr
    assert "id-token: write" in no_bearer.stderr
    assert "token service is unreachable" in unreachable.stderr
    assert not (tmp_path / "cloud").exists()


# --- each cloud's SDK reads what the script wrote --------------------------------


class FakeSTS(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), STSHandler)
        self.calls: list[dict[str, list[str]]] = []


class STSHandler(BaseHTTPRequestHandler):
    server: FakeSTS

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, query: dict[str, list[str]]) -> None:
        self.server.calls.append(query)
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        body = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAFROMOIDC</AccessKeyId>
      <SecretAccessKey>short-lived-secret</SecretAccessKey>
      <SessionToken>session-token</SessionToken>
      <Expiration>{expiry}</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self._answer(parse_qs(self.rfile.read(length).decode()))

    def do_GET(self) -> None:
        self._answer(parse_qs(urlparse(self.path).query))


@pytest.mark.parametrize("remote", sorted(VARIABLES))
def test_the_clouds_sdk_uses_the_written_credentials(
    remote: str, token_service: TokenService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = credentials(remote, tmp_path, github_env(token_service, remote))
    assert result.returncode == 0, result.stderr
    token = (tmp_path / "oidc-token").read_text()
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)

    if remote == "s3":
        botocore_session = importlib.import_module("botocore.session")  # comes with dvc[s3]
        sts = FakeSTS()
        threading.Thread(target=sts.serve_forever, daemon=True).start()
        try:
            monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
            monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
            monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
            monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{sts.server_address[1]}")
            monkeypatch.setenv("AWS_ROLE_ARN", VARIABLES["s3"]["AWS_ROLE_ARN"])
            monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(tmp_path / "oidc-token"))
            frozen = botocore_session.Session().get_credentials().get_frozen_credentials()
        finally:
            sts.shutdown()
            sts.server_close()
        assert (frozen.access_key, frozen.token) == ("ASIAFROMOIDC", "session-token")
        (call,) = sts.calls
        assert call["Action"] == ["AssumeRoleWithWebIdentity"]
        assert call["RoleArn"] == [VARIABLES["s3"]["AWS_ROLE_ARN"]]
        assert call["WebIdentityToken"] == [token]
    elif remote == "gcs":
        # What google.auth.default() loads from GOOGLE_APPLICATION_CREDENTIALS (gcsfs calls it).
        identity_pool = importlib.import_module("google.auth.identity_pool")  # with dvc[gs]
        loaded = identity_pool.Credentials.from_file(str(tmp_path / "gcp-external-account.json"))
        assert loaded.service_account_email == VARIABLES["gcs"]["GCP_SERVICE_ACCOUNT"]
        assert loaded.retrieve_subject_token(None) == token
    else:
        identity = importlib.import_module("azure.identity")  # comes with dvc[azure]
        monkeypatch.setenv("AZURE_CLIENT_ID", VARIABLES["azure"]["AZURE_CLIENT_ID"])
        monkeypatch.setenv("AZURE_TENANT_ID", VARIABLES["azure"]["AZURE_TENANT_ID"])
        monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(tmp_path / "oidc-token"))
        chain = identity.DefaultAzureCredential(exclude_interactive_browser_credential=True)
        assert "WorkloadIdentityCredential" in [
            type(credential).__name__ for credential in chain.credentials
        ]
        assert identity.WorkloadIdentityCredential()._get_service_account_token() == token
