"""Serving speed: the generated model server next to `mlflow models serve` and KServe's ModelServer.

One trained model (the default project after `make setup pipeline`) is served three ways on
127.0.0.1, one server at a time, alternating in every round:

- floor: a minimal Starlette + orjson app on uvicorn in the project's environment that parses the
  v1 body and returns a constant: what HTTP alone costs here, the ceiling for any model server;
- generated: the project's server (`python -m mlops_stack_runtime.serving`, as the image runs it),
  running models/model.onnx with ONNX Runtime when training accepted it (models/model.json);
- generated-sklearn: the same server with INFERENCE_RUNTIME=sklearn (the pickle's path);
- mlflow: `mlflow models serve --env-manager local` of the same model, as training registered it
  in MLflow (`models:/<name>/<version>`);
- kserve: KServe's `ModelServer` (its own venv) with a minimal predictor: joblib-load the same file,
  DataFrame from the v1 instances, `predict_proba`. REST only, bound to 127.0.0.1 (KServe binds
  0.0.0.0 by default; the launcher changes its uvicorn config);
- generated-multiclass, generated-regression: the project's server (ONNX Runtime) serving a model
  of each other task, pointed at that task's declaration with COLUMNS_FILE: scikit-learn's iris
  (three text classes) and diabetes (a value) data, fitted in the project's environment with the
  template's default family and settings (gradient_boosting: 150 trees of depth 3, behind a
  scaler) and compiled to ONNX as the runtime's export contract says (serving/onnx_model.py).
  Measured in the same rounds as the binary model, and reported next to it.

Each server is started fresh in each round (startup time to its first ready answer), loaded with
wrk (8 connections, 2 threads) on single-row and 100-row requests, then measured for RSS (its whole
process tree). Every request must succeed: a non-2xx answer fails the run. The figures are medians
over the rounds; ratios are to mlflow and to the floor. One `predict` of the served model on 1 and
100 rows is timed in-process for each runtime, next to the pipeline's `predict_proba` on a
DataFrame. The installed size of the serving dependency set (what the
image installs) is reported next to the training set's.

    uv run python benchmarks/serving.py [--rounds 3] [--duration 10] [--project DIR]
        [--baseline-ref REF] [--pin-cpus] [--tasks-only]

--tasks-only measures the generated server only, on the three tasks (no mlflow, KServe, floor,
scikit-learn path or dependency sizes): the per-task figures next to the binary case, quickly.

--baseline-ref renders the template at a git ref of this repository (a commit before a change)
and adds its server, serving the same model file, to every round: the change's cost, same run.

Without --project it renders the template's defaults into a temporary folder and runs
`make setup pipeline` there first (minutes). Needs wrk (Debian: `apt-get install wrk`); without it
a Python load generator is used, which is slower than the servers it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
KSERVE_VERSION = "0.21.0"
LEAKY_ENV = ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT")
START_TIMEOUT = 300.0
CONNECTIONS = 8
THREADS = 2
# --pin-cpus: the servers on every CPU but the last, the load generator (one thread) on the last,
# so that they stop taking turns on the same cores; on a 2-CPU machine this cuts the spread of
# p99 between identical rounds from about 3x to about 2x.
PINNED: tuple[str, str] | None = None  # (server CPUs, load CPU) for taskset
# The other tasks' models (TASK_MODELS), served next to the project's binary one.
TASKS = {
    "multiclass": "iris, 3 text classes, gradient_boosting, ONNX",
    "regression": "diabetes, a value, gradient_boosting, ONNX",
}

FLOOR_APP = """
import sys
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

ANSWER = orjson.dumps({"predictions": [{"default_probability": 0.5, "predicted_class": 0}]})


async def predict(request):
    body = orjson.loads(await request.body())
    rows = len(body["instances"])
    answer = ANSWER if rows == 1 else orjson.dumps({"predictions": [{"p": 0.5}] * rows})
    return Response(answer, media_type="application/json")


async def ready(request):
    return Response(b'{"ready":true}', media_type="application/json")


app = Starlette(routes=[
    Route("/v1/models/{name}:predict", predict, methods=["POST"]),
    Route("/v2/health/ready", ready),
])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""

# One predict of the served model, per runtime, next to the pipeline's predict_proba (in-process).
PREDICT_TIMING = """
import json, sys, timeit
import pandas as pd
from mlops_stack_runtime.audit import load_verified_model
from mlops_stack_runtime.serving.model import ServedModel
rows = pd.read_csv("data/validated/test.csv")
out = {{}}
pipeline, _ = load_verified_model("models")
# A regressor has no probabilities: its predict is what serving calls.
method = "predict_proba" if hasattr(pipeline, "predict_proba") else "predict"
for runtime in ("onnx", "sklearn"):
    try:
        served = ServedModel.load("models", runtime=runtime)
    except Exception as error:
        out[runtime] = str(error)
        continue
    for n in (1, 100):
        frame = rows[list(served.feature_order)].head(n)
        columns = {{c: frame[c].to_numpy() for c in frame.columns}}
        number, total = timeit.Timer(lambda: served.predict(columns)).autorange()
        out[f"{{runtime}} predict {{n}} row(s) ms"] = 1000 * total / number
for n in (1, 100):
    frame = rows[list(pipeline.feature_names_in_)].head(n)
    number, total = timeit.Timer(lambda: getattr(pipeline, method)(frame)).autorange()
    out[f"pipeline {{method}} {{n}} row(s) ms"] = 1000 * total / number
print(json.dumps(out))
"""

# The other tasks' models, in the project's environment: argv[1] is the folder to write them in.
# Each task gets <task>/models (model.joblib, model.onnx, model.json with their sha256),
# <task>/columns.yaml and <task>/data/validated/test.csv (100 rows: the requests, PREDICT_TIMING's).
# Formatted like PREDICT_TIMING (doubled braces).
TASK_MODELS = """
import json, sys
from pathlib import Path
import numpy as np
import sklearn
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from mlops_stack_runtime.audit import ModelRecord, save_model, sha256_file, write_record
from mlops_stack_runtime.data.columns import (
    ColumnSpec, Declaration, LabelSpec, declaration_to_yaml, encode_label,
)
from mlops_stack_runtime.serving.onnx_model import (
    CLASSES_METADATA, FEATURE_NAMES_METADATA, TASK_METADATA, VALUE_OUTPUT,
)

root = Path(sys.argv[1])
iris = load_iris(as_frame=True)
flowers = iris.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
flowers["species"] = [str(iris.target_names[i]) for i in iris.target]
diabetes = load_diabetes(as_frame=True).frame.rename(columns={{"target": "progression"}})
tasks = {{
    "multiclass": (
        flowers.drop(columns=["target"]),
        LabelSpec("species", "iris species", tuple(map(str, iris.target_names)), None,
                  "multiclass"),
        GradientBoostingClassifier(n_estimators=150, max_depth=3, random_state=0),
    ),
    "regression": (
        diabetes,
        LabelSpec("progression", "disease progression", (), None, "regression"),
        GradientBoostingRegressor(n_estimators=150, max_depth=3, random_state=0),
    ),
}}
for task, (frame, label, estimator) in tasks.items():
    names = [c for c in frame.columns if c != label.name]
    declaration = Declaration(
        tuple(ColumnSpec(n, "float", n) for n in names), label
    )
    folder = root / task
    (folder / "models").mkdir(parents=True)
    (folder / "columns.yaml").write_text(declaration_to_yaml(declaration))
    pipeline = Pipeline([("scale", StandardScaler()), ("model", estimator)])
    pipeline.fit(frame[names], encode_label(frame[label.name], label))
    inputs = [(n, FloatTensorType([None, 1])) for n in names]
    if task == "regression":
        graph = to_onnx(pipeline, initial_types=inputs,
                        final_types=[(VALUE_OUTPUT, FloatTensorType([None, 1]))])
    else:
        options = {{id(estimator): {{"zipmap": False}}}}
        graph = to_onnx(pipeline, initial_types=inputs, options=options)
    metadata = {{FEATURE_NAMES_METADATA: json.dumps(names), TASK_METADATA: task}}
    if task != "regression":
        metadata[CLASSES_METADATA] = json.dumps([int(c) for c in estimator.classes_])
    for key, value in metadata.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    models = folder / "models"
    save_model(pipeline, models)
    (models / "model.onnx").write_bytes(graph.SerializeToString())
    write_record(ModelRecord(
        model_file="model.joblib", model_sha256=sha256_file(models / "model.joblib"),
        training_data_sha256="0" * 64, test_data_sha256="0" * 64, git_commit=None,
        params={{"project": {{"slug": f"{{task}}-model"}}, "model": {{"threshold": 0.5}}}},
        metrics={{}}, mlflow_run_id=None, registered_model_name=None,
        registered_model_version=None, sklearn_version=sklearn.__version__,
        python_version=sys.version.split()[0], feature_names=names,
        created_at="2026-01-01T00:00:00+00:00", onnx_file="model.onnx",
        onnx_sha256=sha256_file(models / "model.onnx"),
        inference={{"runtime": "onnx", "reason": "the benchmark's own export"}},
    ), models)
    rows = frame[names].sample(100, replace=len(frame) < 100, random_state=0)
    (folder / "data" / "validated").mkdir(parents=True)
    rows.to_csv(folder / "data" / "validated" / "test.csv", index=False)
"""

KSERVE_LAUNCHER = """
import sys
import joblib
import pandas as pd
import kserve
import kserve.protocol.rest.server as rest

name, model_path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

# KServe's REST server hard-codes host 0.0.0.0: keep this benchmark on the loopback interface.
_init = rest.RESTServer.__init__


def _loopback_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.config.host = "127.0.0.1"


rest.RESTServer.__init__ = _loopback_init


class Predictor(kserve.Model):
    def __init__(self):
        super().__init__(name)
        self.model = joblib.load(model_path)
        self.ready = True

    def predict(self, payload, headers=None):
        frame = pd.DataFrame(payload["instances"])
        matrix = self.model.predict_proba(frame)
        predicted = self.model.classes_[matrix.argmax(axis=1)]
        return {
            "predictions": [
                {"default_probability": float(p), "predicted_class": int(c)}
                for p, c in zip(matrix[:, 1], predicted)
            ]
        }


kserve.ModelServer(http_port=port, enable_grpc=False, workers=1).start([Predictor()])
"""


# --- small helpers -------------------------------------------------------------------------------
def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
    env.update(extra)
    return env


def sh(args: list[str], cwd: Path | None = None, **env: str) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"`{' '.join(args)}` failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.stdout


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http(url: str, body: bytes | None = None, timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def tree_pids(root: int) -> list[int]:
    """The process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_mb(root: int) -> float:
    total = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def listening_addresses(port: int) -> set[str]:
    """Local addresses listening on `port` (from `ss`), to prove a server stays on loopback."""
    if shutil.which("ss") is None:
        return set()
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    return {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


def folder_mb(path: Path) -> float:
    seen: set[int] = set()
    total = 0
    for item in path.rglob("*"):
        try:
            stat = item.lstat()
        except OSError:
            continue
        if item.is_file() and not item.is_symlink() and stat.st_ino not in seen:
            seen.add(stat.st_ino)
            total += stat.st_size
    return total / 1024 / 1024


# --- the project and the three servers -----------------------------------------------------------
def prepare_project(scratch: Path, given: Path | None) -> Path:
    if given is not None:
        project = given.resolve()
    else:
        project = scratch / "credit-risk-model"
        print(f"rendering the template's defaults into {project} and running its pipeline ...")
        copy = [sys.executable, "-m", "copier", "copy", "-q", "--trust", "--defaults"]
        sh([*copy, "--vcs-ref=HEAD", str(TEMPLATE_DIR), str(project)])
        sh(["make", "setup", "pipeline"], cwd=project)
    for needed in ("models/model.joblib", "models/model.json", ".venv/bin/python"):
        if not (project / needed).exists():
            sys.exit(f"{project / needed} is missing: run `make setup pipeline` in {project}")
    return project


@dataclass
class Server:
    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    ready_path: str
    predict_path: str
    body_1: bytes
    body_100: bytes
    port: int = 0
    notes: str = ""
    results: list[dict[str, float]] = field(default_factory=list)


@contextmanager
def started(server: Server, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    server.port = free_port()
    command = [part.replace("{port}", str(server.port)) for part in server.command]
    if PINNED:
        command = ["taskset", "-c", PINNED[0], *command]
    with log.open("wb") as out:
        begin = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=server.cwd,
            env=server.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{server.port}{server.ready_path}"
        while True:
            if process.poll() is not None:
                sys.exit(f"{server.name} exited with {process.returncode}; see {log}")
            try:
                if http(url, timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() - begin > START_TIMEOUT:
                sys.exit(f"{server.name} not ready after {START_TIMEOUT}s; see {log}")
            time.sleep(0.02)
        yield process, time.perf_counter() - begin
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def kserve_python(scratch: Path, sklearn_version: str) -> Path:
    venv = scratch / "kserve-venv"
    if not (venv / "bin" / "python").exists():
        print(f"installing kserve=={KSERVE_VERSION} into {venv} ...")
        sh(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)])
        sh(
            [
                "uv",
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv / "bin" / "python"),
                f"kserve=={KSERVE_VERSION}",
                f"scikit-learn=={sklearn_version}",
                "joblib",
            ]
        )
    return venv / "bin" / "python"


def serving_module(project: Path) -> str:
    """The server's module: the runtime's, or a render's own copy (before the runtime package)."""
    copied = sorted((project / "src").glob("*/serving/__main__.py"))
    return f"{copied[0].parent.parent.name}.serving" if copied else "mlops_stack_runtime.serving"


def prepare_baseline(scratch: Path, ref: str) -> Path:
    """The template rendered at ``ref`` and set up; it serves the main project's model."""
    baseline = scratch / "baseline"
    print(f"rendering the template at {ref} into {baseline} ...")
    copy = [sys.executable, "-m", "copier", "copy", "-q", "--trust", "--defaults"]
    sh([*copy, f"--vcs-ref={ref}", str(TEMPLATE_DIR), str(baseline)])
    sh(["make", "setup"], cwd=baseline)
    return baseline


def task_servers(project: Path, scratch: Path, binary: Server) -> list[Server]:
    """The generated server on a model of each other task (TASK_MODELS), as `binary` runs."""
    folder = scratch / "tasks"
    script = TASK_MODELS.format()
    sh([str(project / ".venv" / "bin" / "python"), "-c", script, str(folder)], cwd=project)
    servers = []
    for task in TASKS:
        with (folder / task / "data" / "validated" / "test.csv").open() as handle:
            instances = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
        command = [*binary.command[:-1], str(folder / task / "models")]
        servers.append(
            replace(
                binary,
                name=f"generated-{task}",
                command=command,
                env={**binary.env, "COLUMNS_FILE": str(folder / task / "columns.yaml")},
                predict_path=f"/v1/models/{task}-model:predict",
                body_1=json.dumps({"instances": instances[:1]}).encode(),
                body_100=json.dumps({"instances": instances}).encode(),
                notes=TASKS[task],
                results=[],
            )
        )
    return servers


def build_servers(
    project: Path,
    scratch: Path,
    extra_workers: int,
    baseline: tuple[str, Path] | None = None,
    tasks_only: bool = False,
) -> list[Server]:
    record = json.loads((project / "models" / "model.json").read_text())
    name = record["params"]["project"]["slug"]
    read_rows = (
        "import pandas as pd; from mlops_stack_runtime.data.columns import FEATURE_NAMES as F; "
        "r = pd.read_csv('data/validated/test.csv')[list(F)].head(100); "
        "print(r.to_json(orient='records', double_precision=15))"
    )
    rows = sh([".venv/bin/python", "-c", read_rows], cwd=project)
    instances = json.loads(rows)
    assert len(instances) == 100
    v1_1 = json.dumps({"instances": instances[:1]}).encode()
    v1_100 = json.dumps({"instances": instances}).encode()
    mlflow_1 = json.dumps({"dataframe_records": instances[:1]}).encode()
    mlflow_100 = json.dumps({"dataframe_records": instances}).encode()
    venv_bin = project / ".venv" / "bin"
    tracking = f"sqlite:///{project / 'mlruns' / 'mlflow.db'}"
    version = record["registered_model_version"]
    base_env = clean_env(PYTHONUNBUFFERED="1", WEB_CONCURRENCY="1")
    generated = Server(
        name="generated",
        command=[
            str(venv_bin / "python"),
            "-m",
            "mlops_stack_runtime.serving",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--model-dir",
            str(project / "models"),
        ],
        cwd=project,
        env=base_env,
        ready_path="/v2/health/ready",
        predict_path=f"/v1/models/{name}:predict",
        body_1=v1_1,
        body_100=v1_100,
        notes="1 worker, the default",
    )
    if tasks_only:
        return [generated, *task_servers(project, scratch, generated)]
    servers = [
        Server(
            name="generated",
            command=[
                str(venv_bin / "python"),
                "-m",
                "mlops_stack_runtime.serving",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--model-dir",
                str(project / "models"),
            ],
            cwd=project,
            env=base_env,
            ready_path="/v2/health/ready",
            predict_path=f"/v1/models/{name}:predict",
            body_1=v1_1,
            body_100=v1_100,
            notes="1 worker, the default",
        ),
        Server(
            name="mlflow",
            command=[
                str(venv_bin / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{name}/{version}",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                "{port}",
            ],
            cwd=project,
            # mlflow starts `uvicorn` from PATH
            env={
                **base_env,
                "PATH": f"{venv_bin}:{os.environ['PATH']}",
                "MLFLOW_TRACKING_URI": tracking,
            },
            ready_path="/health",
            predict_path="/invocations",
            body_1=mlflow_1,
            body_100=mlflow_100,
            notes="1 worker, the default",
        ),
        Server(
            name="kserve",
            command=[
                str(kserve_python(scratch, record["sklearn_version"])),
                "-c",
                KSERVE_LAUNCHER,
                name,
                str(project / "models" / "model.joblib"),
                "{port}",
            ],
            cwd=scratch,
            env=base_env,
            ready_path=f"/v2/models/{name}/ready",
            predict_path=f"/v1/models/{name}:predict",
            body_1=v1_1,
            body_100=v1_100,
            notes=f"{KSERVE_VERSION}, 1 worker, the default",
        ),
    ]
    sklearn_path = replace(
        servers[0],
        name="generated-sklearn",
        env={**base_env, "INFERENCE_RUNTIME": "sklearn"},
        notes="INFERENCE_RUNTIME=sklearn, 1 worker",
        results=[],
    )
    servers.insert(1, sklearn_path)
    servers.append(
        Server(
            name="floor",
            command=[str(venv_bin / "python"), "-c", FLOOR_APP, "{port}"],
            cwd=scratch,
            env=base_env,
            ready_path="/v2/health/ready",
            predict_path=f"/v1/models/{name}:predict",
            body_1=v1_1,
            body_100=v1_100,
            notes="Starlette + orjson, constant answer",
        )
    )
    if baseline is not None:
        ref, folder = baseline
        python = str(folder / ".venv" / "bin" / "python")
        before = replace(
            servers[0],
            name=f"generated@{ref}",
            command=[python, "-m", serving_module(folder), *servers[0].command[3:]],
            cwd=folder,
            notes="the same model, served by the template's code at that ref",
            results=[],
        )
        servers.insert(1, before)
    if extra_workers > 1:
        extra = replace(
            servers[0],
            name=f"generated-{extra_workers}w",
            env={**base_env, "WEB_CONCURRENCY": str(extra_workers)},
            notes=f"WEB_CONCURRENCY={extra_workers}",
            results=[],
        )
        servers.insert(1, extra)
    return [*servers, *task_servers(project, scratch, servers[0])]


# --- load ----------------------------------------------------------------------------------------
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*all")
f:close()
"""


def parse_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, body: bytes, duration: float, scratch: Path) -> dict[str, float]:
    body_file = scratch / "body.json"
    body_file.write_bytes(body)
    script = scratch / "post.lua"
    script.write_text(WRK_SCRIPT.replace("{body}", str(body_file)))
    pin = ["taskset", "-c", PINNED[1]] if PINNED else []
    out = subprocess.run(
        [
            *pin,
            "wrk",
            f"-t{1 if PINNED else THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"requests failed during the load run:\n{out}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, flags=re.MULTILINE))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": parse_ms(latency["50"]),
        "p99": parse_ms(latency["99"]),
    }


async def _python_load(port: int, path: str, body: bytes, duration: float) -> dict[str, float]:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            begin = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 2"):
                sys.exit(f"request failed: {head[:100]!r}")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - begin)
        writer.close()

    begin = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    elapsed = time.perf_counter() - begin
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def load(server: Server, body: bytes, duration: float, scratch: Path) -> dict[str, float]:
    url = f"http://127.0.0.1:{server.port}{server.predict_path}"
    if shutil.which("wrk"):
        return wrk(url, body, duration, scratch)
    return asyncio.run(_python_load(server.port, server.predict_path, body, duration))


def check_answers(server: Server) -> None:
    """One request of each size must succeed (and give 100 answers for 100 rows)."""
    url = f"http://127.0.0.1:{server.port}{server.predict_path}"
    for body, rows in ((server.body_1, 1), (server.body_100, 100)):
        status, answer = http(url, body, timeout=60)
        if status != 200:
            sys.exit(f"{server.name} answered {status}: {answer[:300]!r}")
        predictions = json.loads(answer)["predictions"]
        if len(predictions) != rows:
            sys.exit(f"{server.name} answered {len(predictions)} predictions for {rows} rows")


def measure(server: Server, duration: float, scratch: Path) -> dict[str, float]:
    with started(server, scratch / f"{server.name}.log") as (process, startup):
        addresses = listening_addresses(server.port)
        if addresses - {"127.0.0.1"}:
            sys.exit(f"{server.name} listens on {addresses}, not only on 127.0.0.1")
        check_answers(server)
        load(server, server.body_1, min(2.0, duration), scratch)  # warm-up
        one = load(server, server.body_1, duration, scratch)
        hundred = load(server, server.body_100, duration, scratch)
        memory = rss_mb(process.pid)
    return {
        "rps_1": one["rps"],
        "p50_1": one["p50"],
        "p99_1": one["p99"],
        "rps_100": hundred["rps"],
        "p50_100": hundred["p50"],
        "p99_100": hundred["p99"],
        "startup_s": startup,
        "rss_mb": memory,
    }


# --- dependency sets -----------------------------------------------------------------------------
def dependency_sizes(project: Path, scratch: Path) -> dict[str, float]:
    sizes = {}
    groups = tomllib.loads((project / "pyproject.toml").read_text())["dependency-groups"]
    if "serve-onnx" in groups:  # the image carries one model runtime (Dockerfile INFERENCE_RUNTIME)
        serving = {
            "serving, ONNX image (runtime + serve-onnx, the default)": ["--group", "serve-onnx"],
            "serving, scikit-learn image (runtime + serve-sklearn)": ["--group", "serve-sklearn"],
        }
    else:  # a project rendered before the split
        serving = {"serving (runtime + serve group: the image)": ["--group", "serve"]}
    sets = {
        **serving,
        "training (runtime + train group)": ["--group", "train"],
        "everything (make setup: serve, train, dev)": ["--all-groups"],
    }
    for label, groups in sets.items():
        target = scratch / f"venv-{len(sizes)}"
        sh(
            ["uv", "sync", "--locked", "--no-default-groups", *groups, "--no-editable", "--quiet"],
            cwd=project,
            UV_PROJECT_ENVIRONMENT=str(target),
        )
        sizes[label] = folder_mb(target)
    return sizes


# --- report --------------------------------------------------------------------------------------
COLUMNS = [
    ("rps_1", "req/s 1 row", "{:.0f}"),
    ("p50_1", "p50 ms", "{:.1f}"),
    ("p99_1", "p99 ms", "{:.1f}"),
    ("rps_100", "req/s 100 rows", "{:.0f}"),
    ("p50_100", "p50 ms", "{:.1f}"),
    ("p99_100", "p99 ms", "{:.1f}"),
    ("startup_s", "start s", "{:.1f}"),
    ("rss_mb", "RSS MB", "{:.0f}"),
]


def median(server: Server, key: str) -> float:
    return statistics.median(result[key] for result in server.results)


def predict_timings(project: Path, scratch: Path | None = None) -> dict[str, object]:
    """PREDICT_TIMING for the project's model, and for each task's model (with `scratch`)."""
    script = PREDICT_TIMING.format()  # the template doubles its braces
    python = str(project / ".venv" / "bin" / "python")
    out = json.loads(sh([python, "-c", script], cwd=project).strip().splitlines()[-1])
    for task in TASKS if scratch is not None else ():
        folder = scratch / "tasks" / task
        env = {"COLUMNS_FILE": str(folder / "columns.yaml")}
        found = json.loads(sh([python, "-c", script], cwd=folder, **env).strip().splitlines()[-1])
        out.update({f"{task}: {key}": value for key, value in found.items()})
    return out


def task_section(servers: list[Server]) -> tuple[list[str], list[tuple[str, bool]]]:
    """The generated server per task next to the binary model: a table of medians with their
    ratios to the binary case, and the targets that say each task keeps its speed."""
    binary = servers[0]
    tasks = [s for s in servers if s.name.removeprefix("generated-") in TASKS]
    lines = [
        "",
        f"Per task (the generated server, 1 worker), next to the binary model ({binary.name}):",
        "",
        "| task | req/s 1 row | p99 ms 1 row | req/s 100 rows | p99 ms 100 rows | RSS MB "
        "| vs binary: req/s 1 / 100 rows | vs binary: p99 1 / 100 rows |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    targets = []
    for server in [binary, *tasks]:
        ratios = {key: median(server, key) / median(binary, key) for key, _, _ in COLUMNS}
        task = server.name.removeprefix("generated-") if server in tasks else "binary"
        lines.append(
            f"| {task} ({server.notes}) | {median(server, 'rps_1'):.0f} | "
            f"{median(server, 'p99_1'):.1f} | {median(server, 'rps_100'):.0f} | "
            f"{median(server, 'p99_100'):.1f} | {median(server, 'rss_mb'):.0f} | "
            f"{ratios['rps_1']:.2f} / {ratios['rps_100']:.2f} | "
            f"{ratios['p99_1']:.2f} / {ratios['p99_100']:.2f} |"
        )
        if server in tasks:
            targets += [
                (
                    f"{task}: req/s 1 row within 15% of binary ({ratios['rps_1']:.2f}x)",
                    ratios["rps_1"] >= 0.85,
                ),
                (
                    f"{task}: p99 1 row within 15% of binary ({ratios['p99_1']:.2f}x)",
                    ratios["p99_1"] <= 1.15,
                ),
                (
                    f"{task}: req/s 100 rows within 15% of binary ({ratios['rps_100']:.2f}x)",
                    ratios["rps_100"] >= 0.85,
                ),
            ]
    return lines, targets


def timing_lines(timings: dict[str, object] | None) -> list[str]:
    if not timings:
        return []
    lines = ["", "In-process, one call (ms):", ""]
    return lines + [
        f"- {key}: {value:.3f}" if isinstance(value, float) else f"- {key}: {value}"
        for key, value in timings.items()
    ]


def report(
    servers: list[Server],
    sizes: dict[str, float],
    rounds: int,
    duration: float,
    timings: dict[str, object] | None = None,
) -> str:
    load_tool = "wrk" if shutil.which("wrk") else "python load generator"
    lines = [
        f"Medians of {rounds} alternating round(s); {load_tool}, {CONNECTIONS} connections, "
        f"{1 if PINNED else THREADS} thread(s), {duration:g} s per load; all servers on "
        f"127.0.0.1; {os.cpu_count()} CPUs"
        + (f" (servers on CPU {PINNED[0]}, wrk on CPU {PINNED[1]})." if PINNED else "."),
    ]
    mlflow = next((s for s in servers if s.name == "mlflow"), None)
    if mlflow is None:  # --tasks-only: the generated server on each task
        lines += ["", "| server | " + " | ".join(title for _, title, _ in COLUMNS) + " |"]
        lines.append("|---|" + "---:|" * len(COLUMNS))
        for server in servers:
            cells = [fmt.format(median(server, key)) for key, _, fmt in COLUMNS]
            lines.append(f"| {server.name} ({server.notes}) | " + " | ".join(cells) + " |")
        task_lines, targets = task_section(servers)
        return "\n".join(
            [*lines, *task_lines, "", "Targets (per task):"]
            + [f"- {name}: {'met' if ok else 'NOT met'}" for name, ok in targets]
            + timing_lines(timings)
        )
    lines += [
        "",
        "| server | "
        + " | ".join(title for _, title, _ in COLUMNS)
        + " | vs mlflow: req/s 1 / 100 rows | vs mlflow: p99 1 row |",
        "|---|" + "---:|" * (len(COLUMNS) + 2),
    ]
    for server in servers:
        cells = [fmt.format(median(server, key)) for key, _, fmt in COLUMNS]
        ratio_1 = median(server, "rps_1") / median(mlflow, "rps_1")
        ratio_100 = median(server, "rps_100") / median(mlflow, "rps_100")
        ratio_p99 = median(server, "p99_1") / median(mlflow, "p99_1")
        lines.append(
            f"| {server.name} ({server.notes}) | "
            + " | ".join(cells)
            + f" | {ratio_1:.2f} / {ratio_100:.2f} | {ratio_p99:.2f} |"
        )
    generated = servers[0]
    kserve = next(s for s in servers if s.name == "kserve")
    floor = next(s for s in servers if s.name == "floor")
    sklearn_path = next(s for s in servers if s.name == "generated-sklearn")
    lines += ["", "Against the HTTP floor (req/s 1 row, p99 1 row, req/s 100 rows):", ""]
    for server in servers:
        lines.append(
            f"- {server.name}: {median(server, 'rps_1') / median(floor, 'rps_1'):.2f}x, "
            f"{median(server, 'p99_1') / median(floor, 'p99_1'):.2f}x, "
            f"{median(server, 'rps_100') / median(floor, 'rps_100'):.2f}x"
        )
    targets = [
        ("req/s 1 row >= 5x mlflow", median(generated, "rps_1") >= 5 * median(mlflow, "rps_1")),
        ("p99 1 row <= 0.5x mlflow", median(generated, "p99_1") <= 0.5 * median(mlflow, "p99_1")),
        ("req/s 1 row >= kserve", median(generated, "rps_1") >= median(kserve, "rps_1")),
        ("req/s 100 rows >= kserve", median(generated, "rps_100") >= median(kserve, "rps_100")),
        ("p99 1 row <= kserve", median(generated, "p99_1") <= median(kserve, "p99_1")),
    ]
    targets += [
        (
            "req/s 1 row >= 0.5x the floor",
            median(generated, "rps_1") >= 0.5 * median(floor, "rps_1"),
        ),
        ("p99 1 row <= 5x the floor", median(generated, "p99_1") <= 5 * median(floor, "p99_1")),
        (
            "req/s 100 rows >= 10x the scikit-learn path",
            median(generated, "rps_100") >= 10 * median(sklearn_path, "rps_100"),
        ),
        (
            "start no slower than the scikit-learn path",
            median(generated, "startup_s") <= median(sklearn_path, "startup_s"),
        ),
    ]
    before = next((s for s in servers if s.name.startswith("generated@")), None)
    if before is not None:
        for key, title in (("rps_1", "req/s 1 row"), ("rps_100", "req/s 100 rows")):
            ratio = median(generated, key) / median(before, key)
            targets.append((f"{title} within 15% of {before.name} ({ratio:.2f}x)", ratio >= 0.85))
        ratio = median(generated, "p99_1") / median(before, "p99_1")
        targets.append((f"p99 1 row within 15% of {before.name} ({ratio:.2f}x)", ratio <= 1.15))
    task_lines, task_targets = task_section(servers)
    lines += task_lines
    lines += ["", "Targets (generated, 1 worker):"]
    lines += [f"- {name}: {'met' if ok else 'NOT met'}" for name, ok in targets + task_targets]
    lines += timing_lines(timings)
    lines += ["", "Installed size of the dependency sets (uv sync --locked into a fresh venv):", ""]
    lines += [f"- {label}: {size:.0f} MB" for label, size in sizes.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument("--project", type=Path, help="a rendered project after its pipeline")
    parser.add_argument(
        "--extra-workers", type=int, default=0, help="also measure the generated server with N"
    )
    parser.add_argument("--output", type=Path, help="write the raw results as JSON here")
    parser.add_argument(
        "--pin-cpus",
        action="store_true",
        help="servers on all CPUs but the last, wrk (1 thread) on the last (needs taskset)",
    )
    parser.add_argument(
        "--baseline-ref", help="also serve the same model with the template's code at this git ref"
    )
    parser.add_argument(
        "--tasks-only",
        action="store_true",
        help="only the generated server, on the binary model and a model of each other task",
    )
    args = parser.parse_args()
    if shutil.which("uv") is None:
        sys.exit("uv is needed (it installs the KServe venv and the dependency sets)")
    if args.pin_cpus:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or shutil.which("taskset") is None:
            sys.exit("--pin-cpus needs at least 2 CPUs and taskset (util-linux)")
        global PINNED
        PINNED = (",".join(map(str, cpus[:-1])), str(cpus[-1]))

    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        scratch = Path(tmp)
        project = prepare_project(scratch, args.project)
        baseline = None
        if args.baseline_ref:
            baseline = (args.baseline_ref, prepare_baseline(scratch, args.baseline_ref))
        servers = build_servers(project, scratch, args.extra_workers, baseline, args.tasks_only)
        for round_index in range(args.rounds):
            order = servers[round_index % len(servers) :] + servers[: round_index % len(servers)]
            for server in order:
                result = measure(server, args.duration, scratch)
                server.results.append(result)
                print(
                    f"round {round_index + 1}/{args.rounds} {server.name}: "
                    + ", ".join(f"{k} {v:.1f}" for k, v in result.items()),
                    flush=True,
                )
        timings = predict_timings(project, scratch)
        sizes = {} if args.tasks_only else dependency_sizes(project, scratch)
        print()
        print(report(servers, sizes, args.rounds, args.duration, timings))
        if args.output:
            raw = {s.name: {"notes": s.notes, "rounds": s.results} for s in servers}
            args.output.write_text(
                json.dumps({"servers": raw, "sizes_mb": sizes, "predict_ms": timings}, indent=2)
            )


if __name__ == "__main__":
    main()
