"""Refuse a release whose three version numbers differ.

The template (pyproject.toml), the runtime it releases (runtime/pyproject.toml) and the pin that
generated repositories get (includes/runtime.jinja, `runtime_version`) carry one version: a
repository rendered at tag X depends on `mlops-stack-runtime==X`. `make runtime-dist` runs this
before it builds anything.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def versions(root: Path = ROOT) -> dict[str, str]:
    """Each place's version, by the file it is written in."""
    found = {
        "pyproject.toml": tomllib.loads((root / "pyproject.toml").read_text())["project"][
            "version"
        ],
        "runtime/pyproject.toml": tomllib.loads((root / "runtime" / "pyproject.toml").read_text())[
            "project"
        ]["version"],
    }
    pin = re.search(
        r'runtime_version = "([^"]+)"', (root / "includes" / "runtime.jinja").read_text()
    )
    found["includes/runtime.jinja"] = pin.group(1) if pin else "(no runtime_version)"
    return found


def main(root: Path = ROOT) -> int:
    found = versions(root)
    if len(set(found.values())) == 1:
        print(f"release-check: version {next(iter(found.values()))} everywhere")
        return 0
    listed = ", ".join(f"{path}: {version}" for path, version in found.items())
    print(
        f"release-check: the versions differ ({listed}); set all three to the release",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
