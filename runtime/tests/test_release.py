"""Only the registry champion ships, pinned by digest: release checks against a real registry."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest

from mlops_stack_runtime.audit import (
    ModelRecord,
    read_record,
)
from mlops_stack_runtime.promotion import (
    promote,
)
from mlops_stack_runtime.release import (
    PLACEHOLDER_DIGEST,
    ReleaseError,
    champion_onnx_sha256,
    champion_sha256,
    check_release,
    pin_image,
)
from mlops_stack_runtime.testing.fixtures import write_project
from mlops_stack_runtime.train import (
    train,
)

if TYPE_CHECKING:
    from mlops_stack_runtime.testing.fixtures import MakeProject

IMAGE = "registry.example.com/ml/model"
DIGEST = "sha256:" + "ab" * 32
# A model that barely learns (one depth-1 tree), under a metric gate it passes (better than
# chance), so it is refused for losing to the champion, not for the gate.
LENIENT_MIN_ROC_AUC = 0.5
CRIPPLED = {
    "model.estimator": "gradient_boosting",
    "model.hyperparameters.gradient_boosting": {"n_estimators": 1, "max_depth": 1},
    "gates.min_roc_auc": LENIENT_MIN_ROC_AUC,
}


def inference_service(canary: int | None = None) -> dict[str, Any]:
    predictor: dict[str, Any] = {
        "minReplicas": 1,
        "containers": [
            {"name": "kserve-container", "image": f"{IMAGE}@{PLACEHOLDER_DIGEST}"},
            {"name": "sidecar", "image": "registry.example.com/other:1.0"},
        ],
    }
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "model"},
        "spec": {"predictor": predictor},
    }


def served_onnx(record: ModelRecord) -> str | None:
    """The ONNX sha256 a deployment pins: the record's, when ONNX Runtime serves the model."""
    assert record.inference is not None
    return record.onnx_sha256 if record.inference["runtime"] == "onnx" else None


SERVICE_ACCOUNT = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "model"}}


def test_the_new_champion_is_released(copy_trained_project: MakeProject) -> None:
    config = copy_trained_project({"mlflow.registered_model": "release-new"})
    train(config)
    promote(config)

    decision = check_release(config)

    assert decision.deploy
    assert "champion's artifact (version 1" in decision.reason
    # The deploy step hands the server the champion's sha256s from the registry's record.
    record = read_record(config.paths.models_dir)
    assert champion_sha256(config) == record.model_sha256
    assert champion_onnx_sha256(config) == served_onnx(record)


def test_a_refused_challenger_is_not_released(copy_trained_project: MakeProject) -> None:
    name = "release-refused"
    config = copy_trained_project(
        {"mlflow.registered_model": name, "gates.min_roc_auc": LENIENT_MIN_ROC_AUC}
    )
    train(config)
    promote(config)
    champion = read_record(config.paths.models_dir)
    config = write_project(config.root, {"mlflow.registered_model": name, **CRIPPLED})
    train(config)
    assert promote(config).outcome == "kept_champion"
    # The kept champion's ONNX hash comes from its registry version's tag, not from models/.
    assert champion_onnx_sha256(config) == served_onnx(champion)

    decision = check_release(config)

    assert not decision.deploy
    assert "models/ holds version 2, not the champion (version 1)" in decision.reason
    assert "does not beat the champion" in decision.reason
    assert champion_sha256(config) != read_record(config.paths.models_dir).model_sha256


def test_a_retrain_reproducing_the_champion_is_released(copy_trained_project: MakeProject) -> None:
    """A code-only change retrains the same bytes: a tie keeps the champion, and it still ships."""
    config = copy_trained_project({"mlflow.registered_model": "release-same"})
    train(config)
    promote(config)
    train(config)
    promotion = promote(config)
    assert promotion.outcome == "kept_champion"

    assert check_release(config).deploy


def test_release_needs_a_promotion_report(copy_trained_project: MakeProject) -> None:
    config = copy_trained_project({"mlflow.registered_model": "release-unpromoted"})
    train(config)
    with pytest.raises(ReleaseError, match="run `make promote` before deploying"):
        check_release(config)
    with pytest.raises(ReleaseError, match="records no champion sha256"):
        champion_sha256(config)


def test_pin_image_pins_the_digest_and_sets_the_canary() -> None:
    documents = [SERVICE_ACCOUNT, inference_service()]

    pinned = pin_image(copy.deepcopy(documents), image=IMAGE, digest=DIGEST, canary_percent=10)

    predictor = pinned[1]["spec"]["predictor"]
    assert predictor["containers"][0]["image"] == f"{IMAGE}@{DIGEST}"
    assert predictor["containers"][1]["image"] == "registry.example.com/other:1.0"
    assert predictor["canaryTrafficPercent"] == 10
    assert pinned[0] == SERVICE_ACCOUNT


def test_pin_image_reads_a_registry_port_as_part_of_the_repository() -> None:
    image = "registry.example.com:5000/ml/model"
    service = inference_service()
    service["spec"]["predictor"]["containers"][0]["image"] = f"{image}:1.0"

    pinned = pin_image([service], image=image, digest=DIGEST)

    assert pinned[0]["spec"]["predictor"]["containers"][0]["image"] == f"{image}@{DIGEST}"


def test_full_rollout_removes_the_canary() -> None:
    pinned = pin_image([inference_service(canary=10)], image=IMAGE, digest=DIGEST)
    assert "canaryTrafficPercent" not in pinned[0]["spec"]["predictor"]


@pytest.mark.parametrize(
    ("digest", "canary", "message"),
    [
        ("latest", None, "image digest must look like sha256"),
        (PLACEHOLDER_DIGEST, None, "image digest must look like sha256"),
        ("sha256:" + "AB" * 32, None, "image digest must look like sha256"),
        (DIGEST, 0, "canary percent must be between 1 and 100"),
        (DIGEST, 101, "canary percent must be between 1 and 100"),
    ],
)
def test_pin_image_refuses_bad_input(digest: str, canary: int | None, message: str) -> None:
    with pytest.raises(ReleaseError, match=message):
        pin_image([inference_service()], image=IMAGE, digest=digest, canary_percent=canary)


def test_pin_image_needs_an_inference_service_running_the_image() -> None:
    with pytest.raises(ReleaseError, match="no InferenceService"):
        pin_image([SERVICE_ACCOUNT], image=IMAGE, digest=DIGEST)
    with pytest.raises(ReleaseError, match="no container of the InferenceService runs the image"):
        pin_image([inference_service()], image="registry.example.com/ml/other", digest=DIGEST)


def test_pin_image_sets_the_model_sha256_the_server_requires() -> None:
    service = inference_service()
    container = service["spec"]["predictor"]["containers"][0]
    container["env"] = [
        {"name": "MODEL_SHA256", "value": ""},
        {"name": "LOG_LEVEL", "value": "info"},
    ]
    sha256 = "cd" * 32

    pinned = pin_image(
        [service], image=IMAGE, digest=DIGEST, model_sha256=f"sha256:{sha256.upper()}"
    )

    containers = pinned[0]["spec"]["predictor"]["containers"]
    assert containers[0]["env"] == [
        {"name": "MODEL_SHA256", "value": sha256},
        {"name": "LOG_LEVEL", "value": "info"},
    ]
    assert "env" not in containers[1], "only the server's container gets the model's hash"


def test_pin_image_sets_the_onnx_sha256_beside_the_model_sha256() -> None:
    service = inference_service()
    service["spec"]["predictor"]["containers"][0]["env"] = [
        {"name": "MODEL_SHA256", "value": ""},
        {"name": "ONNX_SHA256", "value": ""},
    ]

    pinned = pin_image(
        [service], image=IMAGE, digest=DIGEST, model_sha256="cd" * 32, onnx_sha256="EF" * 32
    )

    assert pinned[0]["spec"]["predictor"]["containers"][0]["env"] == [
        {"name": "MODEL_SHA256", "value": "cd" * 32},
        {"name": "ONNX_SHA256", "value": "ef" * 32},
    ]
    with pytest.raises(ReleaseError, match="--onnx-sha256 must be a sha256 hex digest"):
        pin_image([inference_service()], image=IMAGE, digest=DIGEST, onnx_sha256="ab")


@pytest.mark.parametrize("sha256", ["", "abc", "zz" * 32, "ab" * 33])
def test_pin_image_refuses_a_model_sha256_that_is_not_one(sha256: str) -> None:
    with pytest.raises(ReleaseError, match="--model-sha256 must be a sha256 hex digest"):
        pin_image([inference_service()], image=IMAGE, digest=DIGEST, model_sha256=sha256)
