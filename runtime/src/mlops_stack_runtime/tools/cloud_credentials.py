"""Short-lived object-store credentials for CI jobs, from the job's OIDC identity.

When the cloud trusts the CI provider's OIDC issuer (README.md, "Credentials"), a job reaches the
DVC remote with no long-lived key: this script takes the job's ID token and writes it to a file
only this user can read (for Google Cloud, also the external-account configuration that points at
it). The cloud SDKs under DVC exchange the token for credentials themselves; the Makefile exports
the variables they read (AWS_WEB_IDENTITY_TOKEN_FILE, GOOGLE_APPLICATION_CREDENTIALS,
AZURE_FEDERATED_TOKEN_FILE) and runs this script before every command that reaches the remote,
because GitHub's ID tokens expire after five minutes.

The ID token comes from GitHub Actions (requested from the runner with the cloud's audience; the
job needs `id-token: write`) or GitLab CI (the `id_tokens` variable OIDC_ID_TOKEN). With no ID
token, or none of the cloud's variables set, there is nothing to do: exit 0, nothing written, and
the long-lived keys apply. A partial configuration, an unreachable token service or a token for
another audience exits 2 with the reason, before anything is written.

Standard library only, so it runs before the project's environment exists.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

TOKEN_FILE = "oidc-token"
GCP_CONFIG_FILE = "gcp-external-account.json"
GITLAB_TOKEN_VARIABLE = "OIDC_ID_TOKEN"
TIMEOUT_SECONDS = 20
# What the IAM services accept, so that a typo fails here with its name, not in the SDK.
FORMATS = {
    "AWS_ROLE_ARN": re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}"),
    "GCP_WORKLOAD_IDENTITY_PROVIDER": re.compile(
        r"projects/\d+/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}"
    ),
    "GCP_SERVICE_ACCOUNT": re.compile(r"[a-z0-9][a-z0-9-]{0,62}@[a-z0-9.-]+\.gserviceaccount\.com"),
    "AZURE_CLIENT_ID": re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"),
    "AZURE_TENANT_ID": re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"),
    "AZURE_STORAGE_ACCOUNT": re.compile(r"[a-z0-9]{3,24}"),
}


class CredentialsError(Exception):
    """A reason to stop, for the job's log."""


@dataclass(frozen=True)
class Cloud:
    """The variables that switch OIDC on for one object store (all or none), and its audience."""

    variables: tuple[str, ...]
    audience: Callable[[Mapping[str, str]], str]


CLOUDS = {
    "s3": Cloud(("AWS_ROLE_ARN",), lambda env: "sts.amazonaws.com"),
    "gcs": Cloud(
        ("GCP_WORKLOAD_IDENTITY_PROVIDER", "GCP_SERVICE_ACCOUNT"),
        lambda env: "https://iam.googleapis.com/" + env["GCP_WORKLOAD_IDENTITY_PROVIDER"],
    ),
    "azure": Cloud(
        ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_STORAGE_ACCOUNT"),
        lambda env: "api://AzureADTokenExchange",
    ),
}


def configured(cloud: Cloud, env: Mapping[str, str]) -> bool:
    """True when every variable of the cloud is set and valid, False when none is."""
    present = [name for name in cloud.variables if env.get(name, "").strip()]
    if not present:
        return False
    missing = [name for name in cloud.variables if name not in present]
    if missing:
        raise CredentialsError(
            f"OIDC for the object store needs {', '.join(cloud.variables)}; "
            f"{', '.join(present)} set but {', '.join(missing)} missing"
        )
    for name in cloud.variables:
        value = env[name].strip()
        if not FORMATS[name].fullmatch(value):
            raise CredentialsError(f"{name} is not valid (got {value[:120]!r})")
    return True


def github_token(env: Mapping[str, str], audience: str) -> str:
    """Ask the Actions runner for an ID token with this audience."""
    url = env["ACTIONS_ID_TOKEN_REQUEST_URL"]
    bearer = env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
    if not bearer:
        raise CredentialsError(
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN is missing: give the job `permissions: id-token: write`"
        )
    separator = "&" if urllib.parse.urlparse(url).query else "?"
    request = urllib.request.Request(
        f"{url}{separator}audience={urllib.parse.quote(audience, safe='')}",
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        raise CredentialsError(
            f"the Actions token service refused the ID token request: HTTP {error.code}"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CredentialsError(f"the Actions token service is unreachable: {reason}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CredentialsError(
            "the Actions token service answered something that is not JSON"
        ) from None
    token = body.get("value") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise CredentialsError("the Actions token service's answer has no token (field `value`)")
    return token


def job_token(env: Mapping[str, str], audience: str) -> str | None:
    """The job's ID token, or None when the job has none (not on CI, or no OIDC granted)."""
    if env.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
        return github_token(env, audience)
    token = env.get(GITLAB_TOKEN_VARIABLE, "").strip()
    return token or None


def claims(token: str) -> dict[str, object]:
    """The JWT's payload, unverified: the cloud checks the signature, this reads `aud` and `exp`."""
    parts = token.split(".")
    if len(parts) != 3:
        raise CredentialsError("the ID token is not a JWT (three dot-separated parts)")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        decoded = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        raise CredentialsError("the ID token's payload is not base64url-encoded JSON") from None
    if not isinstance(decoded, dict):
        raise CredentialsError("the ID token's payload is not a JSON object")
    return decoded


def check_token(token: str, audience: str, now: float) -> None:
    payload = claims(token)
    audiences = payload.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else audiences
    if not isinstance(audiences, list) or audience not in audiences:
        raise CredentialsError(
            f"the ID token is for audience {payload.get('aud')!r}, "
            f"the object store expects {audience!r} "
            f"(GitLab: id_tokens: {GITLAB_TOKEN_VARIABLE}: aud: {audience})"
        )
    expiry = payload.get("exp")
    if isinstance(expiry, int | float) and expiry <= now:
        raise CredentialsError(
            "the ID token has expired: it must be issued in the job that uses it"
        )


def gcp_external_account(env: Mapping[str, str], token_file: Path) -> dict[str, object]:
    """Google's workload identity federation: exchange the file's token, act as the account."""
    return {
        "type": "external_account",
        "audience": "//iam.googleapis.com/" + env["GCP_WORKLOAD_IDENTITY_PROVIDER"].strip(),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": "https://sts.googleapis.com/v1/token",
        "service_account_impersonation_url": (
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/"
            f"{env['GCP_SERVICE_ACCOUNT'].strip()}:generateAccessToken"
        ),
        "credential_source": {"file": str(token_file)},
    }


def write_private(path: Path, text: str) -> None:
    """Write atomically, readable by this user only (the token is a credential)."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(temporary).chmod(0o600)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_credentials(
    remote: str, directory: Path, env: Mapping[str, str], now: float
) -> list[Path]:
    """The files the SDKs read, or [] when OIDC does not apply to this job."""
    cloud = CLOUDS[remote]
    if not configured(cloud, env):
        return []
    audience = cloud.audience({name: env[name].strip() for name in cloud.variables})
    token = job_token(env, audience)
    if token is None:
        return []
    check_token(token, audience, now)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    token_file = directory / TOKEN_FILE
    write_private(token_file, token)
    written = [token_file]
    if remote == "gcs":
        config_file = directory / GCP_CONFIG_FILE
        write_private(
            config_file, json.dumps(gcp_external_account(env, token_file), indent=2) + "\n"
        )
        written.append(config_file)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("remote", choices=sorted(CLOUDS), help="the DVC remote's object store")
    parser.add_argument(
        "--dir", type=Path, required=True, help="where to write the token (and configuration)"
    )
    args = parser.parse_args(argv)
    try:
        written = write_credentials(args.remote, args.dir.resolve(), os.environ, time.time())
    except CredentialsError as error:
        print(f"cloud credentials: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(
            f"cloud credentials: cannot write {args.dir}: {error.strerror or error}",
            file=sys.stderr,
        )
        return 2
    if written:
        print(
            f"cloud credentials: OIDC ID token for {args.remote} in {written[0]}", file=sys.stderr
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
