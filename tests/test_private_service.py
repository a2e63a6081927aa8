"""The model service is private by default, and the cluster runs only images CD on main signed.

- deploy/kserve: KServe's cluster-local visibility unless the answer model_endpoint is `public`; a
  NetworkPolicy selecting the predictor's pods that admits only the mesh/ingress namespaces and
  the namespace's Prometheus (metrics ports only); /metrics on its own port, announced to
  KServe's scraping; the bearer-token component (on in enterprise overlays) mounting the secret
  the server reads through AUTH_TOKEN_FILE. Each overlay's kustomize output is validated
  (kubernetes-validate --strict, and the strict KServe schema when ../shared is present).
- deploy/policy (enterprise): sigstore policy-controller ClusterImagePolicies for the server and
  trainer images, validated against the CRD's schema (tests/fixtures/schemas, made strict);
  `make cluster-policy` fills in CD's identity, and refuses when it does not know it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .conftest import make
from .test_serving import inference_services, kustomize
from .validators import check_k8s_manifests, shared_schema_path

SLUG = "credit-risk-model"
IMAGE = f"registry.example.com/ml/{SLUG}"
POLICY_SCHEMA = (
    Path(__file__).parent / "fixtures" / "schemas" / "clusterimagepolicy-v1beta1.strict.json"
)
METRICS_PORT = 8082  # the server's METRICS_PORT default (runtime serving/settings.py)


@pytest.fixture(scope="module")
def kserve_schema() -> Path | None:
    """The strict InferenceService schema of ../shared/schemas; None without it (the other
    checks still run)."""
    return shared_schema_path()


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] == kind]
    return found


@pytest.fixture(
    scope="module",
    params=[
        {"stack_tier": "enterprise", "ci_provider": "github"},
        {"stack_tier": "scale-up", "ci_provider": "gitlab", "model_endpoint": "public"},
    ],
    ids=["enterprise-cluster-local", "scale-up-public"],
)
def cluster(request, render_once) -> tuple[dict[str, str], Path]:
    answers = {"k8s_namespace": "credit", **request.param}
    return answers, render_once(answers)


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_each_overlay_is_private_and_strictly_valid(
    cluster,
    environment,
    kserve_schema,
    tmp_path,
) -> None:
    answers, project = cluster
    docs = kustomize(project / "deploy" / "kserve" / environment)
    built = tmp_path / "built.yaml"
    built.write_text(yaml.safe_dump_all(docs))
    assert inference_services(built, kserve_schema) == [SLUG]
    core = tmp_path / "core.yaml"
    core.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] != "InferenceService"]))
    check_k8s_manifests(core)

    isvc = _one(docs, "InferenceService")
    visibility = isvc["metadata"]["labels"].get("networking.kserve.io/visibility")
    public = answers.get("model_endpoint") == "public"
    assert visibility == (None if public else "cluster-local")

    # The policy selects the pods KServe makes for this InferenceService, in its namespace.
    policy = _one(docs, "NetworkPolicy")
    assert policy["metadata"]["namespace"] == isvc["metadata"]["namespace"]
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        "serving.kserve.io/inferenceservice": isvc["metadata"]["name"]
    }
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    requests, metrics = policy["spec"]["ingress"]
    (source,) = requests["from"]
    (rule,) = source["namespaceSelector"]["matchExpressions"]
    assert rule["key"] == "kubernetes.io/metadata.name" and rule["operator"] == "In"
    assert {"knative-serving", "istio-system"} <= set(rule["values"])
    assert "podSelector" not in source and "ports" not in requests  # no pod in the namespace
    (scraper,) = metrics["from"]
    assert set(scraper) == {"podSelector"}  # the namespace's own Prometheus, nobody else's
    assert METRICS_PORT in {port["port"] for port in metrics["ports"]}

    (container,) = isvc["spec"]["predictor"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/enable-prometheus-scraping"] == "true"
    assert int(annotations["prometheus.kserve.io/port"]) == int(env["METRICS_PORT"]) == METRICS_PORT
    assert annotations["prometheus.kserve.io/path"] == "/metrics"

    token = answers["stack_tier"] == "enterprise"
    assert ("AUTH_TOKEN_FILE" in env) is token
    if token:
        volumes = {v["name"]: v for v in isvc["spec"]["predictor"]["volumes"]}
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        secret = volumes["server-token"]["secret"]
        assert secret["secretName"] == f"{SLUG}-server-token"
        mount = mounts["server-token"]
        assert mount["readOnly"] is True
        assert env["AUTH_TOKEN_FILE"] == f"{mount['mountPath']}/{secret['items'][0]['path']}"
        # Readable by the server's group, which the pod's fsGroup gives the mounted files.
        assert isvc["spec"]["predictor"]["securityContext"]["fsGroup"] == 10001
        assert secret["defaultMode"] & 0o007 == 0


@pytest.fixture(scope="module", params=["github", "gitlab", "jenkins"])
def enterprise(request, render_once) -> tuple[str, Path]:
    provider = request.param
    return provider, render_once({"stack_tier": "enterprise", "ci_provider": provider})


def _policies(text: str) -> list[dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(text) if doc]
    schema = json.loads(POLICY_SCHEMA.read_text())
    for doc in docs:
        jsonschema.validate(doc, schema)
    assert [doc["metadata"]["name"] for doc in docs] == [
        f"{SLUG}-server-signed-on-main",
        f"{SLUG}-trainer-signed-on-main",
    ]
    return docs


def test_the_cluster_admits_only_images_cd_on_main_signed(enterprise) -> None:
    provider, project = enterprise
    committed = _policies((project / "deploy" / "policy" / "cluster-image-policy.yaml").read_text())
    server, trainer = committed
    # Each policy names its own image, by tag and by digest; neither matches the other's name.
    assert [g["glob"] for g in server["spec"]["images"]] == [f"{IMAGE}:*", f"{IMAGE}@*"]
    assert [g["glob"] for g in trainer["spec"]["images"]] == [
        f"{IMAGE}-trainer:*",
        f"{IMAGE}-trainer@*",
    ]
    (server_authority,) = server["spec"]["authorities"]
    (trainer_authority,) = trainer["spec"]["authorities"]
    assert server_authority["attestations"] == [{"name": "sbom", "predicateType": "cyclonedx"}]
    assert "attestations" not in trainer_authority
    if provider == "jenkins":
        assert server_authority["key"] == {"secretRef": {"name": f"{SLUG}-cosign-public-key"}}
        result = make(project, "-s", "cluster-policy")
        assert _policies(result.stdout) == committed
        return
    # Committed with placeholders that match no signer: applied as is, it admits nothing.
    (identity,) = server_authority["keyless"]["identities"]
    assert identity == {"issuer": "SIGNER_ISSUER", "subjectRegExp": "SIGNER_IDENTITY"}

    refused = make(project, "-s", "cluster-policy", "RUN=", check=False)
    assert refused.returncode == 2 and "the signer is unknown here" in refused.stderr

    if provider == "github":
        where = ["GITHUB_REPOSITORY=acme/credit-risk"]
        issuer = "https://token.actions.githubusercontent.com"
        signer = "https://github.com/acme/credit-risk/.github/workflows/cd.yml@refs/heads/main"
    else:
        url = "https://gitlab.example.com"
        where = [
            f"CI_SERVER_URL={url}",
            f"CI_PROJECT_URL={url}/ml/credit",
            "CI_DEFAULT_BRANCH=main",
        ]
        issuer = url
        signer = f"{url}/ml/credit//.gitlab-ci.yml@refs/heads/main"
    filled = _policies(make(project, "-s", "cluster-policy", "RUN=", *where).stdout)
    for policy in filled:
        (authority,) = policy["spec"]["authorities"]
        (identity,) = authority["keyless"]["identities"]
        assert identity["issuer"] == issuer
        pattern = identity["subjectRegExp"]
        assert re.fullmatch(pattern, signer), (pattern, signer)
        # Another branch, workflow or repository is not CD on main of this repository.
        for other in (
            signer.replace("refs/heads/main", "refs/heads/feature"),
            signer.replace("credit", "credit-fork"),
            signer.replace("refs/heads/main", "refs/tags/v1"),
        ):
            assert not re.fullmatch(pattern, other), other
