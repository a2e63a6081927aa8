"""Refresh the digests that pin the base images: `make pin-images` and `make pin-images-check`.

    python tools/pin_images.py [--check] [--mirror URL] [PATH ...]

Every image in the Dockerfile, the CI configuration and the Kubernetes manifests is written as
`name:tag@sha256:<digest>`: the tag says what it is, the digest what is pulled, so a re-pushed tag
changes nothing until someone refreshes the pin on purpose. This script asks each image's registry
(the OCI distribution API, anonymous token as Docker Hub and most registries require) for the
digest its tag points to now and rewrites the pins that moved. It writes nothing unless every
image resolved. `--check` only reports: exit 1 when a pin is stale, 0 when all are current.
`--mirror` resolves Docker Hub images through a pull-through mirror (or a test registry).
Exit 2: a registry could not be reached or does not know a tag (the message names the image).
Dependabot (GitHub) or Renovate (GitLab, Jenkins) propose the same refresh as pull requests.
Standard library only, so it runs before `make setup`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

STALE_EXIT = 1
FAILED_EXIT = 2
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "https://registry-1.docker.io"
# The parts of an image reference: name[:port]/path, tag, digest.
NAME = r"[a-z0-9][a-z0-9._-]*(?::[0-9]+)?(?:/[a-z0-9][a-z0-9._-]*)*"
TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
DIGEST = r"sha256:[0-9a-f]{64}"
# A pinned reference: name[:port]/path:tag@sha256:hex. The tag is required (it is what moves).
PINNED = re.compile(rf"(?P<name>{NAME}):(?P<tag>{TAG})@(?P<digest>{DIGEST})")
# Any image reference (the whole string must match): name[:tag][@digest].
IMAGE_REFERENCE = re.compile(rf"{NAME}(?::{TAG})?(?:@{DIGEST})?")
DEFAULT_GLOBS = (
    "Dockerfile",
    ".gitlab-ci.yml",
    "Jenkinsfile",
    ".github/workflows/*.yml",
    "deploy/**/*.yaml",
)
# An index (multi-platform) first: the digest of a single platform's manifest would pin the
# image to the architecture of whoever refreshed it.
ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
TIMEOUT_SECONDS = 30


class ResolveError(Exception):
    """A tag whose digest could not be read; the message names the image and the registry."""


@dataclass(frozen=True)
class Image:
    name: str
    tag: str

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    def registry_and_repository(self) -> tuple[str, str]:
        first, _, rest = self.name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return first, rest
        return DOCKER_HUB, self.name if rest else f"library/{self.name}"


def pins_in(paths: Iterable[Path]) -> dict[Image, dict[str, list[Path]]]:
    """Each pinned image, with its current digests and the files that hold them."""
    found: dict[Image, dict[str, list[Path]]] = {}
    for path in paths:
        for match in PINNED.finditer(path.read_text(encoding="utf-8")):
            image = Image(match["name"], match["tag"])
            found.setdefault(image, {}).setdefault(match["digest"], []).append(path)
    return found


def _bearer_token(challenge: str, timeout: float) -> str:
    """The anonymous token a `WWW-Authenticate: Bearer realm=...` challenge asks for."""
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = params.pop("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise ResolveError(f"the registry asked for an unsupported login: {challenge!r}")
    url = f"{realm}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = json.load(response)
    token = body.get("token") or body.get("access_token")
    if not isinstance(token, str):
        raise ResolveError(f"the token service at {realm} returned no token")
    return token


def _manifest_digest(url: str, token: str | None, timeout: float) -> str:
    headers = {"Accept": ACCEPT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, method="HEAD", headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        digest = response.headers.get("Docker-Content-Digest", "")
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ResolveError(f"{url} answered without a sha256 Docker-Content-Digest")
    return digest


def resolve(image: Image, *, mirror: str | None, timeout: float = TIMEOUT_SECONDS) -> str:
    """The digest the registry's tag points to now."""
    registry, repository = image.registry_and_repository()
    if registry == DOCKER_HUB:
        base = (mirror or DOCKER_HUB_API).rstrip("/")
    else:
        base = f"https://{registry}"
    url = f"{base}/v2/{repository}/manifests/{urllib.parse.quote(image.tag)}"
    try:
        try:
            return _manifest_digest(url, None, timeout)
        except urllib.error.HTTPError as error:
            challenge = error.headers.get("WWW-Authenticate", "")
            if error.code != 401 or not challenge.lower().startswith("bearer "):
                raise
            return _manifest_digest(url, _bearer_token(challenge[7:], timeout), timeout)
    except urllib.error.HTTPError as error:
        reason = "no such tag" if error.code == 404 else f"HTTP {error.code}"
        raise ResolveError(f"{image.ref}: {reason} at {base}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        cause = getattr(error, "reason", error)
        raise ResolveError(f"{image.ref}: cannot reach {base} ({cause})") from None


def default_paths(root: Path) -> list[Path]:
    return sorted({path for pattern in DEFAULT_GLOBS for path in root.glob(pattern)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="files to scan (default: the usual)")
    parser.add_argument("--check", action="store_true", help="report stale pins, write nothing")
    parser.add_argument("--mirror", help="resolve Docker Hub images at this registry URL")
    args = parser.parse_args(argv)

    paths = args.paths or default_paths(Path.cwd())
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        print(f"pin-images: no such file: {', '.join(missing)}", file=sys.stderr)
        return FAILED_EXIT
    pins = pins_in(paths)
    if not pins:
        print("pin-images: no pinned image (name:tag@sha256:...) in " + ", ".join(map(str, paths)))
        return 0

    current: dict[Image, str] = {}
    errors: list[str] = []
    for image in sorted(pins, key=lambda image: image.ref):
        try:
            current[image] = resolve(image, mirror=args.mirror)
        except ResolveError as error:
            errors.append(str(error))
    if errors:
        # All or nothing: a half-refreshed set of pins would mix two points in time.
        for message in errors:
            print(f"pin-images: {message}", file=sys.stderr)
        print("pin-images: nothing was changed", file=sys.stderr)
        return FAILED_EXIT

    stale: dict[Path, list[tuple[str, str]]] = {}
    for image, digests in pins.items():
        for digest, files in digests.items():
            if digest == current[image]:
                continue
            print(
                f"{image.ref}: {digest[:19]}... -> {current[image][:19]}... in "
                + ", ".join(sorted({str(path) for path in files}))
            )
            for path in files:
                old = f"{image.ref}@{digest}"
                stale.setdefault(path, []).append((old, f"{image.ref}@{current[image]}"))
    if not stale:
        print(f"pin-images: all {len(pins)} images are pinned to their tag's current digest")
        return 0
    if args.check:
        print("pin-images: stale pins; `make pin-images` refreshes them", file=sys.stderr)
        return STALE_EXIT
    for path, replacements in stale.items():
        text = path.read_text(encoding="utf-8")
        for old, new in set(replacements):
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    print(f"pin-images: refreshed {len(stale)} file(s); review and commit them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
