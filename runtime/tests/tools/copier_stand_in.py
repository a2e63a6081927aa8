"""A stand-in for Copier's command line, run as `python -m copier` by the template_update tests.

It takes exactly the options template_update passes (Copier 9's `check-update`, `update` and
`copy`) and refuses anything else with exit 2, as Copier's parser does. What it renders comes from
a scenario file (JSON, named by FAKE_COPIER_SCENARIO): the template's path, its releases (path ->
text, `{project_slug}` filled from the answers), the latest release, the files an update leaves
as they are (Copier's _skip_if_exists), whether the update conflicts in train.py, its exit
status, what its tasks print, whether it stages its changes, how `check-update` fails, and the
releases `copy` cannot render (with Copier's message). Each call is appended to the scenario's
`log` file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ANSWERS = ".copier-answers.yml"
CONFLICT = "<<<<<<< before updating\nROWS = 40\n=======\nROWS = 60\n>>>>>>> after updating\n"


def refuse(message: str, code: int = 2) -> None:
    print(f"copier: {message}", file=sys.stderr)
    sys.exit(code)


def options(
    args: list[str], flags: set[str], valued: set[str]
) -> tuple[dict[str, list[str]], list[str]]:
    """The flags and valued options given, and the positional arguments; exit 2 on another."""
    found: dict[str, list[str]] = {}
    positional: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in flags:
            found.setdefault(arg, []).append("")
        elif arg in valued and index + 1 < len(args):
            index += 1
            found.setdefault(arg, []).append(args[index])
        elif arg.startswith("-"):
            refuse(f"unknown option {arg}")
        else:
            positional.append(arg)
        index += 1
    return found, positional


def render(scenario: dict[str, Any], release: str, answers: dict[str, Any]) -> dict[str, str]:
    if release not in scenario["releases"]:
        refuse(f"rendering failed\nno release {release} in {scenario['template']}", 1)
    files: dict[str, str] = scenario["releases"][release]
    return {
        path: text.replace("{project_slug}", str(answers["project_slug"]))
        for path, text in files.items()
    }


def check_update(scenario: dict[str, Any], args: list[str]) -> None:
    if args != ["--output-format", "json", "."]:
        refuse(f"check-update: unexpected arguments {args}")
    failure = scenario.get("check_update_fails")
    if isinstance(failure, str):  # Copier's own words, as they are (possibly none)
        sys.stderr.write(failure)
        sys.exit(1)
    if failure:
        refuse("check-update failed\nthe template's tags cannot be read", 1)
    current = str(yaml.safe_load(Path(ANSWERS).read_text())["_commit"])
    latest = scenario["latest"]
    available = current in scenario["releases"] and current != latest
    print(
        json.dumps(
            {"current_version": current, "latest_version": latest, "update_available": available}
        )
    )


def update(scenario: dict[str, Any], args: list[str]) -> None:
    found, positional = options(
        args, {"--trust", "--defaults"}, {"--conflict", "--data", "--vcs-ref"}
    )
    if positional or set(found) - {"--data", "--vcs-ref"} != {
        "--trust",
        "--defaults",
        "--conflict",
    }:
        refuse(f"update: unexpected arguments {args}")
    if found["--conflict"] != ["inline"]:
        refuse("update: --conflict must be inline here")
    if scenario.get("update_exit"):
        refuse("update failed half-way", scenario["update_exit"])
    answers = yaml.safe_load(Path(ANSWERS).read_text())
    before = render(scenario, str(answers["_commit"]), answers)
    target = found.get("--vcs-ref", [scenario["latest"]])[-1]
    for item in found.get("--data", []):
        key, _, value = item.partition("=")
        answers[key] = value
    after = render(scenario, target, answers)
    for path in set(before) - set(after):
        if path not in scenario.get("kept", []):  # left as they are, even when removed upstream
            Path(path).unlink(missing_ok=True)
    for path, text in after.items():
        # Files the template did not change keep your version (and stay deleted if you did).
        if path in scenario.get("kept", []) or before.get(path) == text:
            continue
        if path == "train.py" and scenario.get("conflict"):
            text = CONFLICT
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    answers["_commit"] = target
    Path(ANSWERS).write_text(yaml.safe_dump(answers, sort_keys=False))
    if scenario.get("task_output"):  # the template's tasks run in the project, on its stdout
        print(scenario["task_output"], flush=True)
    if scenario.get("stage"):
        subprocess.run(["git", "add", "--all"], check=True)


def copy(scenario: dict[str, Any], args: list[str]) -> None:
    flags = {"--trust", "--skip-tasks", "--defaults", "--quiet", "--overwrite"}
    found, positional = options(args, flags, {"--vcs-ref", "--data-file"})
    if set(found) != flags | {"--vcs-ref", "--data-file"} or len(positional) != 2:
        refuse(f"copy: unexpected arguments {args}")
    source, destination = positional
    if source != scenario["template"]:
        refuse(f"copy: {source} is not the template")
    answers = yaml.safe_load(Path(found["--data-file"][0]).read_text())
    if not isinstance(answers, dict) or any(key.startswith("_") for key in answers):
        refuse(f"copy: the data file holds Copier's own keys: {answers}")
    unrenderable: dict[str, str] = scenario.get("unrenderable", {})
    if found["--vcs-ref"][0] in unrenderable:  # Copier's message, as it is (possibly none)
        sys.stderr.write(unrenderable[found["--vcs-ref"][0]])
        sys.exit(1)
    files = render(scenario, found["--vcs-ref"][0], answers)
    # What a copy writes besides the template's files: the answers, and a lock from its tasks.
    files |= {ANSWERS: f"_commit: {found['--vcs-ref'][0]}\n", "uv.lock": "version = 1\n"}
    for path, text in files.items():
        target = Path(destination) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def main() -> None:
    scenario = json.loads(Path(os.environ["FAKE_COPIER_SCENARIO"]).read_text())
    with Path(scenario["log"]).open("a") as log:
        log.write(json.dumps(sys.argv[1:]) + "\n")
    command, *args = sys.argv[1:]
    commands = {"check-update": check_update, "update": update, "copy": copy}
    if command not in commands:
        refuse(f"no command {command}")
    commands[command](scenario, args)


if __name__ == "__main__":
    main()
