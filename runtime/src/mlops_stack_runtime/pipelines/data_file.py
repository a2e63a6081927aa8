"""Where the pipeline's prepare task reads an adopted data file (params `data.source: file`).

`make use-data` puts the team's file under DVC: git holds only its pointer (`<data.path>.dvc`,
the file's md5), the bytes live in the DVC remote. A task's pod has neither the git checkout nor
DVC's cache, so the compiled pipeline carries the file's address in the remote itself: DVC 3
stores a file at `<remote url>/files/md5/<2 hex>/<30 hex>` (DVC 2 at `<remote url>/<2>/<30>`),
and the pod reads it there with the remote's filesystem (s3fs, gcsfs, adlfs: DVC's own) and
checks the md5 before `prepare` sees it. `make kfp-local` runs on this machine, so it passes the
repository's own file instead.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ..errors import PipelineError
from .remote_files import fetch_input

if TYPE_CHECKING:
    from ..config import Config

MD5_LENGTH = 32


@dataclass(frozen=True)
class DataFile:
    """The data file a run's prepare task reads: `uri` (a path or a remote URI) and the md5 it
    must have (empty: not checked, the repository's own file)."""

    uri: str = ""
    md5: str = ""


def data_file(config: Config, *, on_cluster: bool) -> DataFile:
    """The adopted file for the pipeline of `config`; an empty DataFile for the other sources."""
    if config.data.source != "file" or not config.data.path:
        return DataFile()
    path = config.root / config.data.path
    if not on_cluster:
        if not path.is_file():
            raise PipelineError(f"{path} is missing: `dvc pull` (or `make data`) fetches it")
        return DataFile(uri=str(path.resolve()))
    md5, layout = _tracked_md5(config.root, Path(config.data.path))
    remote = _remote_url(config.root)
    prefix = f"{remote.rstrip('/')}/files/md5" if layout == "md5" else remote.rstrip("/")
    return DataFile(uri=f"{prefix}/{md5[:2]}/{md5[2:]}", md5=md5)


def place(data: DataFile, target: Path) -> None:
    """Copy the run's data file to `target` (the repository path prepare reads), md5-checked."""
    download = target.parent / ".download"
    target.parent.mkdir(parents=True, exist_ok=True)
    fetched = fetch_input(data.uri, download)
    if data.md5:
        digest = hashlib.md5(usedforsecurity=False)
        with fetched.open("rb") as stream:
            for block in iter(lambda: stream.read(1024 * 1024), b""):
                digest.update(block)
        if digest.hexdigest() != data.md5:
            raise PipelineError(
                f"{data.uri} has md5 {digest.hexdigest()}, not the {data.md5} that git's "
                "pointer records: the DVC remote holds another file (`make push` from the "
                "commit that adopted it)"
            )
    if fetched.parent == download:
        fetched.replace(target)
        download.rmdir()
    else:
        shutil.copyfile(fetched, target)


def _tracked_md5(root: Path, relative: Path) -> tuple[str, str]:
    """The md5 of `relative` in its DVC pointer, and the remote's layout for it."""
    pointer = root / relative.with_name(relative.name + ".dvc")
    if not pointer.is_file():
        raise PipelineError(
            f"params.yaml data.path {relative} has no DVC pointer ({pointer.name}): the pods "
            "read the file from the DVC remote, so adopt it with `make use-data` and push it"
        )
    document = yaml.safe_load(pointer.read_text(encoding="utf-8")) or {}
    outs = document.get("outs") if isinstance(document, dict) else None
    out = outs[0] if isinstance(outs, list) and outs and isinstance(outs[0], dict) else {}
    md5 = str(out.get("md5", ""))
    if len(md5) != MD5_LENGTH or any(char not in "0123456789abcdef" for char in md5):
        raise PipelineError(f"{pointer} records no md5 for {relative}: `make use-data` again")
    # DVC 3 pointers say `hash: md5`; DVC 2 ones do not, and their files sit at the top level.
    return md5, "md5" if out.get("hash") == "md5" else "legacy"


def _remote_url(root: Path) -> str:
    """The URL of the repository's default DVC remote, as DVC reads its config (config.local on
    top; a local remote as an absolute path, which a pod reaches only where it is mounted)."""
    from dvc.config import Config as DvcConfig
    from dvc.config import ConfigError as DvcConfigError

    try:
        config = DvcConfig(dvc_dir=str(root / ".dvc"))
    except DvcConfigError as error:
        raise PipelineError(f"the DVC config of {root} cannot be read: {error}") from None
    name = config["core"].get("remote")
    remotes = config["remote"]
    if not name or name not in remotes:
        raise PipelineError(
            "the repository has no default DVC remote (`dvc remote default`): the pods read "
            "the adopted data file from it"
        )
    return str(remotes[name]["url"])
