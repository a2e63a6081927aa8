"""pipelines/data_file.py: where a compiled pipeline's prepare task reads an adopted data file
(`data.source: file`), and how the task places it, md5-checked."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import fsspec
import pytest

from mlops_stack_runtime.errors import PipelineError
from mlops_stack_runtime.pipelines.data_file import DataFile, data_file, place

if TYPE_CHECKING:
    from mlops_stack_runtime.config import Config
    from mlops_stack_runtime.testing.fixtures import MakeProject

CONTENT = b"a,b\n1,2\n"
MD5 = hashlib.md5(CONTENT, usedforsecurity=False).hexdigest()
ADOPTED = {"data.source": "file", "data.path": "data/mine.csv"}


def adopted(make_project: MakeProject, remote: str | None, pointer: str | None) -> Config:
    """A project whose params point at data/mine.csv, with a DVC pointer and default remote."""
    config = make_project(ADOPTED)
    (config.root / "data").mkdir()
    (config.root / "data" / "mine.csv").write_bytes(CONTENT)
    if pointer is not None:
        (config.root / "data" / "mine.csv.dvc").write_text(pointer, encoding="utf-8")
    (config.root / ".dvc").mkdir()
    lines = ["[core]", "    analytics = false"]
    if remote is not None:
        lines = ["[core]", "    remote = storage", "['remote \"storage\"']", f"    url = {remote}"]
    (config.root / ".dvc" / "config").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


DVC3_POINTER = f"outs:\n- md5: {MD5}\n  size: {len(CONTENT)}\n  hash: md5\n  path: mine.csv\n"
DVC2_POINTER = f"outs:\n- md5: {MD5}\n  size: {len(CONTENT)}\n  path: mine.csv\n"


def test_other_sources_pass_no_file(make_project: MakeProject) -> None:
    assert data_file(make_project(), on_cluster=True) == DataFile()


def test_a_local_run_reads_the_repositorys_own_file(make_project: MakeProject) -> None:
    config = adopted(make_project, "s3://bucket/store", DVC3_POINTER)
    local = data_file(config, on_cluster=False)
    assert local == DataFile(uri=str((config.root / "data" / "mine.csv").resolve()))
    (config.root / "data" / "mine.csv").unlink()
    with pytest.raises(PipelineError, match="missing: `dvc pull`"):
        data_file(config, on_cluster=False)


@pytest.mark.parametrize(
    ("pointer", "path"),
    [(DVC3_POINTER, f"files/md5/{MD5[:2]}/{MD5[2:]}"), (DVC2_POINTER, f"{MD5[:2]}/{MD5[2:]}")],
    ids=["dvc3", "dvc2"],
)
def test_the_cluster_reads_the_file_where_dvc_stored_it_in_the_remote(
    make_project: MakeProject, pointer: str, path: str
) -> None:
    config = adopted(make_project, "s3://bucket/store/", pointer)
    assert data_file(config, on_cluster=True) == DataFile(uri=f"s3://bucket/store/{path}", md5=MD5)


def test_a_local_remote_is_named_by_its_absolute_path(make_project: MakeProject) -> None:
    config = adopted(make_project, "../dvc-store", DVC3_POINTER)
    found = data_file(config, on_cluster=True)
    store = (config.root / "dvc-store").resolve()
    assert found.uri == f"{store}/files/md5/{MD5[:2]}/{MD5[2:]}"


@pytest.mark.parametrize(
    ("remote", "pointer", "message"),
    [
        ("s3://bucket/store", None, r"no DVC pointer \(mine\.csv\.dvc\).*make use-data"),
        ("s3://bucket/store", "outs:\n- path: mine.csv\n", "records no md5"),
        ("s3://bucket/store", "[not, a, pointer]\n", "records no md5"),
        (None, DVC3_POINTER, "no default DVC remote"),
    ],
    ids=["no-pointer", "no-md5", "not-a-mapping", "no-remote"],
)
def test_what_the_cluster_cannot_find_is_named(
    make_project: MakeProject, remote: str | None, pointer: str | None, message: str
) -> None:
    config = adopted(make_project, remote, pointer)
    with pytest.raises(PipelineError, match=message):
        data_file(config, on_cluster=True)


def test_the_task_places_the_remote_file_once_its_md5_matches(tmp_path: Path) -> None:
    """fsspec's in-memory filesystem stands in for the DVC remote's s3:// or gs://."""
    uri = f"memory://store/files/md5/{MD5[:2]}/{MD5[2:]}"
    with fsspec.open(uri, "wb") as remote:
        remote.write(CONTENT)
    target = tmp_path / "data" / "mine.csv"

    place(DataFile(uri=uri, md5=MD5), target)

    assert target.read_bytes() == CONTENT
    assert sorted(path.name for path in target.parent.iterdir()) == ["mine.csv"]


def test_a_file_whose_md5_differs_is_refused_and_not_placed(tmp_path: Path) -> None:
    uri = "memory://store/files/md5/00/other"
    with fsspec.open(uri, "wb") as remote:
        remote.write(b"something else\n")
    target = tmp_path / "data" / "mine.csv"

    with pytest.raises(PipelineError, match=f"not the {MD5} that git's pointer records"):
        place(DataFile(uri=uri, md5=MD5), target)
    assert not target.exists()


def test_a_local_run_copies_the_repositorys_file(tmp_path: Path) -> None:
    source = tmp_path / "repo" / "mine.csv"
    source.parent.mkdir()
    source.write_bytes(CONTENT)
    target = tmp_path / "workspace" / "data" / "mine.csv"

    place(DataFile(uri=str(source)), target)

    assert target.read_bytes() == CONTENT
    assert source.read_bytes() == CONTENT
