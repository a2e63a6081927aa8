"""What `make deploy` ships: the registry champion's artifact, in the image pinned by digest.

`promote` may keep the current champion; the image CI just built then holds a model that lost,
and deploying it would undo the promotion rule. `check_release` compares models/model.json with
the champion recorded in reports/promotion.json: the same artifact (a new champion, or a retrain
that reproduced the champion byte for byte, e.g. after a code-only change) ships; another one
does not. `pin_image` turns the rendered KServe manifests into the exact ones to apply: the
image pinned by digest and the server's MODEL_SHA256 (and ONNX_SHA256, when ONNX Runtime serves
the champion) set to the champion's sha256s from the registry's record, so the server checks the
model against values from outside its folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .audit import MODEL_SHA256_ENV, ONNX_SHA256_ENV, check_sha256, verify_artifact
from .errors import ArtifactIntegrityError, PipelineError
from .promotion import read_promotion_report

if TYPE_CHECKING:
    from .config import Config

DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64


class ReleaseError(PipelineError):
    """The deployment inputs are missing or inconsistent."""


@dataclass(frozen=True)
class ReleaseDecision:
    deploy: bool
    reason: str


def check_release(config: Config) -> ReleaseDecision:
    """Deploy only when models/ holds the artifact of the registry champion."""
    record = verify_artifact(config.paths.models_dir)
    report = read_promotion_report(config.paths.promotion_report)
    if report is None:
        raise ReleaseError(
            f"{config.paths.promotion_report} is missing: run `make promote` before deploying, "
            "so that only the registry champion ships"
        )
    champion_sha256 = report["champion_model_sha256"]
    version = record.registered_model_version
    if champion_sha256 == record.model_sha256:
        return ReleaseDecision(
            True,
            f"models/ holds the champion's artifact (version {version}, "
            f"sha256 {record.model_sha256[:12]}): {report['reason']}",
        )
    return ReleaseDecision(
        False,
        f"models/ holds version {version}, not the champion (version "
        f"{report['champion_version']}): {report['reason']}. Nothing to deploy; the running "
        "champion stays.",
    )


def champion_sha256(config: Config) -> str:
    """The registry champion's model sha256, as `promote` recorded it in reports/promotion.json."""
    report = read_promotion_report(config.paths.promotion_report)
    value = report.get("champion_model_sha256") if report else None
    if not isinstance(value, str) or not value:
        raise ReleaseError(
            f"{config.paths.promotion_report} records no champion sha256: run `make promote` "
            "first, or pass --model-sha256"
        )
    return value


def champion_onnx_sha256(config: Config) -> str | None:
    """The champion's model.onnx sha256 when ONNX Runtime serves it (reports/promotion.json),
    None when scikit-learn does or the report predates the ONNX export."""
    report = read_promotion_report(config.paths.promotion_report)
    value = report.get("champion_onnx_sha256") if report else None
    return value if isinstance(value, str) and value else None


def _checked_option(value: str | None, option: str) -> str | None:
    """`value` as a lowercase sha256 hex digest (None stays None), or a ReleaseError."""
    if value is None:
        return None
    try:
        return check_sha256(value, option)
    except ArtifactIntegrityError as error:
        raise ReleaseError(str(error)) from None


def _set_env(container: dict[str, Any], name: str, value: str) -> None:
    env = container.setdefault("env", [])
    for item in env:
        if item.get("name") == name:
            item.pop("valueFrom", None)
            item["value"] = value
            return
    env.append({"name": name, "value": value})


def repository_of(reference: str) -> str:
    """`host:5000/team/app:1.0@sha256:…` -> `host:5000/team/app` (a port is not a tag)."""
    name = reference.split("@", 1)[0]
    head, slash, last = name.rpartition("/")
    return f"{head}{slash}{last.split(':', 1)[0]}"


def parse_manifests(content: bytes) -> list[dict[str, Any]]:
    """The YAML documents of `kubectl kustomize` output; ReleaseError naming what is wrong."""
    import yaml

    try:
        documents = list(yaml.safe_load_all(content.decode("utf-8")))
    except UnicodeDecodeError as error:
        raise ReleaseError(f"the manifests are not UTF-8 text (byte {error.start})") from error
    except yaml.YAMLError as error:
        raise ReleaseError(f"the manifests are not valid YAML: {error}") from error
    for number, document in enumerate(documents, start=1):
        if document is not None and not isinstance(document, dict):
            raise ReleaseError(
                f"manifest document {number} is a {type(document).__name__}, not a Kubernetes "
                "object (a mapping with kind, metadata, spec)"
            )
    return [document for document in documents if document is not None]


def pin_image(
    documents: list[dict[str, Any]],
    image: str,
    digest: str,
    canary_percent: int | None = None,
    model_sha256: str | None = None,
    onnx_sha256: str | None = None,
) -> list[dict[str, Any]]:
    """Pin every container of `image` in the InferenceServices to `digest`; set the canary.

    Without `canary_percent` any canaryTrafficPercent is removed: the new revision takes all the
    traffic (the full rollout after a canary step). `model_sha256` becomes each pinned
    container's MODEL_SHA256, the hash the server requires of its model file; `onnx_sha256` its
    ONNX_SHA256, without which the server keeps scikit-learn (an ONNX file pinned by nothing
    outside the folder is not served).
    """
    if not DIGEST_PATTERN.match(digest) or digest == PLACEHOLDER_DIGEST:
        raise ReleaseError(f"image digest must look like sha256:<64 hex digits>, got '{digest}'")
    expected = _checked_option(model_sha256, "--model-sha256")
    expected_onnx = _checked_option(onnx_sha256, "--onnx-sha256")
    if canary_percent is not None and not 0 < canary_percent <= 100:
        raise ReleaseError(f"canary percent must be between 1 and 100, got {canary_percent}")
    services = [doc for doc in documents if doc.get("kind") == "InferenceService"]
    if not services:
        raise ReleaseError("no InferenceService in the manifests")
    pinned = 0
    for service in services:
        spec = service.get("spec")
        predictor = spec.get("predictor") if isinstance(spec, dict) else None
        if not isinstance(predictor, dict):
            name = (service.get("metadata") or {}).get("name", "(unnamed)")
            raise ReleaseError(f"InferenceService {name} has no spec.predictor mapping")
        for container in predictor.get("containers") or []:
            if (
                isinstance(container, dict)
                and repository_of(str(container.get("image", ""))) == image
            ):
                container["image"] = f"{image}@{digest}"
                if expected is not None:
                    _set_env(container, MODEL_SHA256_ENV, expected)
                if expected_onnx is not None:
                    _set_env(container, ONNX_SHA256_ENV, expected_onnx)
                pinned += 1
        if canary_percent is None:
            predictor.pop("canaryTrafficPercent", None)
        else:
            predictor["canaryTrafficPercent"] = canary_percent
    if pinned == 0:
        raise ReleaseError(f"no container of the InferenceService runs the image {image}")
    return documents
