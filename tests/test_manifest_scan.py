"""checkov on the Kubernetes manifests `kubectl apply -k` would apply, for every cluster render.

Scanned is the kustomize output (namespace and overlays applied) of deploy/k8s and of each KServe
environment, for both cluster tiers and every data remote. No check may fail; a deliberate skip must
carry its reason in the manifest (`checkov.io/skipN: CHECK=reason`). checkov does not read custom
resources such as the InferenceService: their schema test is in test_serving.py.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest

from .conftest import project_env
from .test_serving import kustomize_text, uv_executable

CHECKOV_PACKAGE = "checkov==3.3.30"
KUSTOMIZATIONS = ("k8s", "kserve/staging", "kserve/production")
TIERS = ("scale-up", "enterprise")
REMOTES = ("s3", "gcs", "azure", "local")
CASES = [
    {"stack_tier": tier, "data_remote": remote}
    for tier, remote in itertools.product(TIERS, REMOTES)
]


@pytest.fixture(scope="module")
def built_manifests(render_once, tmp_path_factory) -> Path:
    """One file per render and kustomization, in one folder for a single checkov run."""
    folder = tmp_path_factory.mktemp("built-manifests")
    for answers in CASES:
        project = render_once(answers)
        # Only the CronJob depends on the data remote: the KServe environments once per tier.
        kustomizations = KUSTOMIZATIONS if answers["data_remote"] == REMOTES[0] else ("k8s",)
        for kustomization in kustomizations:
            text = kustomize_text(project / "deploy" / kustomization)
            name = "-".join([*answers.values(), *kustomization.split("/")])
            (folder / f"{name}.yaml").write_text(text)
    return folder


def checkov(folder: Path) -> dict:
    command = [uv_executable(), "tool", "run", "--quiet", "--from", CHECKOV_PACKAGE, "checkov"]
    result = subprocess.run(
        [*command, "-d", str(folder), "--framework", "kubernetes", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=project_env(),
    )
    # checkov exits 1 when a check fails; the JSON report says which.
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_finds_nothing_and_every_skip_gives_its_reason(built_manifests):
    report = checkov(built_manifests)
    results = report["results"]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for check in results["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)
    assert len(results["passed_checks"]) > 100, "the workloads were scanned"
    scanned = {Path(check["file_path"]).name for check in results["passed_checks"]}
    assert len(scanned) == len(CASES) + len(TIERS) * (len(KUSTOMIZATIONS) - 1)
    for check in results["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason.split()) >= 5, f"{check['check_id']} skipped without a reason: {check}"
