"""The DevContainers and GitHub Actions workflows: the workbook's own and the repo template's.

Each devcontainer.json is validated against a faithful subset of the official schema
(https://containers.dev/implementors/json_schema/), each workflow against a subset of GitHub's
workflow syntax, and every `make <target>` they run (directly, or through a script a workflow
step runs with bash) must be a target of the Makefile next to them.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from learn import REPO_ROOT

TEMPLATE = REPO_ROOT / "phases" / "phase0" / "repo_template"

# --- schemas ------------------------------------------------------------------------------------

_COMMAND = {
    "oneOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
        {
            "type": "object",
            "additionalProperties": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}, "minItems": 1},
                ]
            },
        },
    ]
}
_PORT = {
    "oneOf": [
        {"type": "integer", "minimum": 0, "maximum": 65535},
        {"type": "string", "pattern": r"^([a-z0-9-]+):(\d{1,5})$"},
    ]
}
_PORT_ATTRIBUTES = {
    "type": "object",
    "properties": {
        "label": {"type": "string"},
        "onAutoForward": {
            "enum": ["notify", "openBrowser", "openBrowserOnce", "openPreview", "silent", "ignore"]
        },
        "protocol": {"enum": ["http", "https"]},
        "elevateIfNeeded": {"type": "boolean"},
        "requireLocalPort": {"type": "boolean"},
    },
    "additionalProperties": False,
}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

#: A subset of devContainer.base.schema.json: image- or Dockerfile-based containers (no Compose).
DEVCONTAINER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "image": {"type": "string", "minLength": 1},
        "build": {
            "type": "object",
            "properties": {
                "dockerfile": {"type": "string", "minLength": 1},
                "context": {"type": "string"},
                "target": {"type": "string"},
                "args": _STRING_MAP,
                "cacheFrom": {
                    "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
                },
                "options": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["dockerfile"],
            "additionalProperties": False,
        },
        "features": {"type": "object", "additionalProperties": {"type": ["object", "string"]}},
        "overrideFeatureInstallOrder": {"type": "array", "items": {"type": "string"}},
        "forwardPorts": {"type": "array", "items": _PORT, "uniqueItems": True},
        "portsAttributes": {
            "type": "object",
            "patternProperties": {r"(^\d+(-\d+)?$)|(.+)": _PORT_ATTRIBUTES},
        },
        "otherPortsAttributes": _PORT_ATTRIBUTES,
        "appPort": {"oneOf": [{"type": ["integer", "string"]}, {"type": "array", "items": _PORT}]},
        "initializeCommand": _COMMAND,
        "onCreateCommand": _COMMAND,
        "updateContentCommand": _COMMAND,
        "postCreateCommand": _COMMAND,
        "postStartCommand": _COMMAND,
        "postAttachCommand": _COMMAND,
        "waitFor": {
            "enum": [
                "initializeCommand",
                "onCreateCommand",
                "updateContentCommand",
                "postCreateCommand",
                "postStartCommand",
            ]
        },
        "containerEnv": _STRING_MAP,
        "remoteEnv": {
            "type": "object",
            "additionalProperties": {"type": ["string", "null"]},
        },
        "containerUser": {"type": "string"},
        "remoteUser": {"type": "string"},
        "updateRemoteUserUID": {"type": "boolean"},
        "userEnvProbe": {
            "enum": ["none", "loginShell", "loginInteractiveShell", "interactiveShell"]
        },
        "workspaceFolder": {"type": "string"},
        "workspaceMount": {"type": "string"},
        "mounts": {"type": "array", "items": {"type": ["string", "object"]}},
        "runArgs": {"type": "array", "items": {"type": "string"}},
        "shutdownAction": {"enum": ["none", "stopContainer"]},
        "overrideCommand": {"type": "boolean"},
        "init": {"type": "boolean"},
        "privileged": {"type": "boolean"},
        "capAdd": {"type": "array", "items": {"type": "string"}},
        "securityOpt": {"type": "array", "items": {"type": "string"}},
        "hostRequirements": {
            "type": "object",
            "properties": {
                "cpus": {"type": "integer", "minimum": 1},
                "memory": {"type": "string", "pattern": r"^\d+([tgmk]b)?$"},
                "storage": {"type": "string", "pattern": r"^\d+([tgmk]b)?$"},
                "gpu": {"type": ["boolean", "string", "object"]},
            },
            "additionalProperties": False,
        },
        "customizations": {
            "type": "object",
            "properties": {
                "vscode": {
                    "type": "object",
                    "properties": {
                        "extensions": {
                            "type": "array",
                            "items": {"type": "string", "pattern": r"^[\w-]+\.[\w-]+(@.+)?$"},
                        },
                        "settings": {"type": "object"},
                    },
                    "additionalProperties": False,
                }
            },
        },
    },
    "oneOf": [{"required": ["image"]}, {"required": ["build"]}],
    "additionalProperties": False,
}

_STEP = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "if": {"type": ["string", "boolean"]},
        "uses": {"type": "string", "pattern": r"^[\w.-]+/[\w./-]+@[\w.-]+$|^\./|^docker://"},
        "run": {"type": "string", "minLength": 1},
        "shell": {"type": "string"},
        "with": {"type": "object"},
        "env": {"type": "object"},
        "working-directory": {"type": "string"},
        "continue-on-error": {"type": ["boolean", "string"]},
        "timeout-minutes": {"type": ["number", "string"]},
    },
    "oneOf": [{"required": ["uses"]}, {"required": ["run"]}],
    "additionalProperties": False,
}

#: A subset of GitHub's workflow syntax, enough to catch typos in the keys these files use.
WORKFLOW_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "run-name": {"type": "string"},
        "on": {"type": ["string", "array", "object"]},
        "permissions": {"type": ["string", "object"]},
        "env": {"type": "object"},
        "defaults": {"type": "object"},
        "concurrency": {"type": ["string", "object"]},
        "jobs": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "runs-on": {"type": ["string", "array", "object"]},
                    "needs": {"type": ["string", "array"]},
                    "if": {"type": ["string", "boolean"]},
                    "permissions": {"type": ["string", "object"]},
                    "environment": {"type": ["string", "object"]},
                    "concurrency": {"type": ["string", "object"]},
                    "outputs": {"type": "object"},
                    "env": {"type": "object"},
                    "defaults": {"type": "object"},
                    "strategy": {"type": "object"},
                    "container": {"type": ["string", "object"]},
                    "services": {"type": "object"},
                    "timeout-minutes": {"type": ["number", "string"]},
                    "continue-on-error": {"type": ["boolean", "string"]},
                    "steps": {"type": "array", "items": _STEP, "minItems": 1},
                },
                "required": ["runs-on", "steps"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["on", "jobs"],
    "additionalProperties": False,
}

# --- helpers ------------------------------------------------------------------------------------


def validate(instance: Any, schema: dict[str, Any], what: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    problems = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]
    assert not problems, f"{what} does not match the schema:\n" + "\n".join(problems)


def load_json(path: Path) -> dict[str, Any]:
    assert path.is_file(), f"missing {path}"
    return json.loads(path.read_text(encoding="utf-8"))  # strict JSON: no comments


def load_workflow(path: Path) -> dict[str, Any]:
    import yaml

    assert path.is_file(), f"missing {path}"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def makefile_targets(makefile: Path) -> set[str]:
    """Explicit targets of a Makefile: the names before ':' on rule lines (not ':=' etc.)."""
    targets: set[str] = set()
    for line in makefile.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_][A-Za-z0-9_.\-/ \t]*?)[ \t]*::?(?![=:])", line)
        if match:
            targets.update(match.group(1).split())
    return targets


def make_targets(script: str) -> set[str]:
    """The targets of every `make ...` command in a shell snippet."""
    found: set[str] = set()
    for line in script.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                words = part.split()
            if not words or Path(words[0]).name not in {"make", "gmake"}:
                continue
            args = iter(words[1:])
            for word in args:
                if word in {"-C", "-f", "-I", "-o", "-W", "--directory", "--file"}:
                    next(args, None)  # an option with a separate argument
                elif not word.startswith("-") and "=" not in word:
                    found.add(word)
    return found


def lifecycle_commands(devcontainer: dict[str, Any]) -> list[str]:
    commands = []
    for key in (
        "initializeCommand",
        "onCreateCommand",
        "updateContentCommand",
        "postCreateCommand",
        "postStartCommand",
        "postAttachCommand",
    ):
        value = devcontainer.get(key)
        values = value.values() if isinstance(value, dict) else [value]
        for item in values:
            if isinstance(item, str):
                commands.append(item)
            elif isinstance(item, list):
                commands.append(shlex.join(item))
    return commands


def workflow_scripts(workflow: dict[str, Any], root: Path) -> list[str]:
    """Every step's `run`, plus the text of repository scripts a step runs (`bash .ci/run`)."""
    scripts = []
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            run = step.get("run")
            if not isinstance(run, str):
                continue
            scripts.append(run)
            for words in (shlex.split(line, comments=True) for line in run.splitlines()):
                if len(words) >= 2 and words[0] in {"bash", "sh"}:
                    script = root / words[1]
                    if script.is_file():
                        scripts.append(script.read_text(encoding="utf-8"))
    return scripts


def setup_python_step(workflow: dict[str, Any]) -> dict[str, Any]:
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/setup-python@"):
                return step
    raise AssertionError("no actions/setup-python step")


# --- the parsers themselves ---------------------------------------------------------------------


def test_makefile_targets_parser(tmp_path: Path) -> None:
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        "SHELL := /bin/bash\nX ?= 1\nY::=2\n.PHONY: a b\n"
        "a: b ## doc\n\t@echo a\nb c:\n\ttrue\n$(STAMP): x\nd:: \n\t# e: not a rule\n"
    )
    assert makefile_targets(makefile) == {"a", "b", "c", "d"}


def test_make_targets_parser() -> None:
    script = "make install\nmake -C sub lint PY=python3 test && echo make x\n# make nope\nmake\n"
    assert make_targets(script) == {"install", "lint", "test"}


def test_schema_rejects_mistakes() -> None:
    import jsonschema

    good = {"image": "python:3.11", "forwardPorts": [8000, "db:5432"]}
    jsonschema.validate(good, DEVCONTAINER_SCHEMA)
    for bad in (
        {},  # neither image nor build
        {"image": "x", "build": {"dockerfile": "Dockerfile"}},
        {"image": "x", "forwardPort": [8000]},
        {"image": "x", "forwardPorts": [70000]},
        {"image": "x", "forwardPorts": ["8000"]},
        {"image": "x", "postCreateCommand": 1},
        {"build": {"dockerFile": "Dockerfile"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, DEVCONTAINER_SCHEMA)
    step = {"runs-on": "ubuntu-latest", "steps": [{"runs": "make test"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"on": "push", "jobs": {"ci": step}}, WORKFLOW_SCHEMA)


# --- the workbook -------------------------------------------------------------------------------


def test_workbook_devcontainer_matches_the_schema() -> None:
    devcontainer = load_json(REPO_ROOT / ".devcontainer" / "devcontainer.json")
    validate(devcontainer, DEVCONTAINER_SCHEMA, ".devcontainer/devcontainer.json")
    assert 8000 in devcontainer["forwardPorts"]
    assert devcontainer["postCreateCommand"] == "make setup"


def dockerfile_base(text: str) -> tuple[str, str | None]:
    """The first FROM's image with build arguments resolved to their defaults, and the name
    of the argument it came from (None when the base is written out)."""
    defaults = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.M | re.I))
    froms = re.findall(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)", text, re.M | re.I)
    assert froms, "the Dockerfile has no FROM line"
    argument = re.fullmatch(r"\$\{?(\w+)\}?", froms[0])
    if argument is None:
        return froms[0], None
    name = argument.group(1)
    assert name in defaults, f"FROM {froms[0]}: ARG {name} has no default"
    return defaults[name], name


def test_dockerfile_base_parser() -> None:
    text = "# c\nARG BASE=python:3.11-bookworm\nFROM ${BASE}\nRUN x\nFROM other\n"
    assert dockerfile_base(text) == ("python:3.11-bookworm", "BASE")
    assert dockerfile_base("FROM --platform=linux/amd64 debian:12 AS b\n") == ("debian:12", None)
    with pytest.raises(AssertionError, match="ARG NOPE has no default"):
        dockerfile_base("ARG NOPE\nFROM $NOPE\n")


def test_workbook_devcontainer_image_is_python_311_bookworm_with_chromium() -> None:
    devcontainer = load_json(REPO_ROOT / ".devcontainer" / "devcontainer.json")
    if "image" in devcontainer:
        image = devcontainer["image"]
        install = ""
    else:
        build = devcontainer["build"]
        dockerfile = REPO_ROOT / ".devcontainer" / build["dockerfile"]
        assert dockerfile.is_file(), f"missing {dockerfile}"
        install = dockerfile.read_text(encoding="utf-8")
        image, _ = dockerfile_base(install)
    assert re.search(r"python:.*3\.11.*-bookworm$", image), image
    assert re.search(r"apt-get install[^\n]*(\\\n[^\n]*)*\bchromium\b", install), (
        "the DevContainer must install Debian's chromium for the book's browser test"
    )


def test_workbook_devcontainer_builds_from_a_base_argument_with_its_user() -> None:
    """`make devcontainer-check` builds the Dockerfile FROM a bootstrapped Debian base: the base
    is a build argument, and the remoteUser the devcontainers image has is made when missing."""
    devcontainer = load_json(REPO_ROOT / ".devcontainer" / "devcontainer.json")
    text = (REPO_ROOT / ".devcontainer" / devcontainer["build"]["dockerfile"]).read_text()
    _, argument = dockerfile_base(text)
    assert argument is not None, "the DevContainer's base must be a build argument (ARG)"
    user = devcontainer["remoteUser"]
    assert re.search(rf"id -u {user}\b[^\n]*\|\|\s*useradd\b[^\n]*\b{user}$", text, re.M), (
        f"the Dockerfile must create the remoteUser {user} on a base that lacks it"
    )
    assert "devcontainer-check" in makefile_targets(REPO_ROOT / "Makefile")


def test_workbook_workflow() -> None:
    workflow = load_workflow(REPO_ROOT / ".github" / "workflows" / "ci.yml")
    validate(workflow, WORKFLOW_SCHEMA, ".github/workflows/ci.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    assert all(job["runs-on"] == "ubuntu-latest" for job in workflow["jobs"].values())
    # Python 3.11 on Debian 12, as CI's own machines: the job runs in that container,
    # privileged, since the image tests bootstrap a base (mounts) and run podman inside it.
    for job in workflow["jobs"].values():
        assert re.fullmatch(r"python:3\.11(\.\d+)?-bookworm", job["container"]["image"])
        assert "--privileged" in job["container"].get("options", "")
    runs = [s.get("run") for j in workflow["jobs"].values() for s in j["steps"]]
    assert "bash .ci/run" in runs


def test_workbook_make_targets_exist() -> None:
    makefile = REPO_ROOT / "Makefile"
    assert makefile.is_file(), "the workbook has no Makefile yet"
    targets = makefile_targets(makefile)
    devcontainer = load_json(REPO_ROOT / ".devcontainer" / "devcontainer.json")
    workflow = load_workflow(REPO_ROOT / ".github" / "workflows" / "ci.yml")
    called: set[str] = set()
    for script in lifecycle_commands(devcontainer) + workflow_scripts(workflow, REPO_ROOT):
        called |= make_targets(script)
    assert "setup" in called
    missing = called - targets
    assert not missing, f"make targets called but not defined in the Makefile: {sorted(missing)}"


# --- the repo template --------------------------------------------------------------------------


def test_template_devcontainer_matches_the_schema() -> None:
    devcontainer = load_json(TEMPLATE / ".devcontainer" / "devcontainer.json")
    validate(devcontainer, DEVCONTAINER_SCHEMA, "repo_template/.devcontainer/devcontainer.json")
    assert re.search(r"python:.*3\.11.*-bookworm$", devcontainer["image"])
    assert devcontainer["postCreateCommand"] == "make install"


def test_template_workflow() -> None:
    workflow = load_workflow(TEMPLATE / ".github" / "workflows" / "ci.yml")
    validate(workflow, WORKFLOW_SCHEMA, "repo_template/.github/workflows/ci.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    assert all(job["runs-on"] == "ubuntu-latest" for job in workflow["jobs"].values())
    setup = setup_python_step(workflow)["with"]
    assert str(setup["python-version"]) == "3.11"
    assert setup["cache"] == "pip"
    runs = [s["run"] for j in workflow["jobs"].values() for s in j["steps"] if "run" in s]
    assert runs == ["make install", "make lint", "make test"]


def test_template_make_targets_exist() -> None:
    targets = makefile_targets(TEMPLATE / "Makefile")
    assert {"help", "install", "lint", "fmt", "test", "check"} <= targets
    devcontainer = load_json(TEMPLATE / ".devcontainer" / "devcontainer.json")
    workflow = load_workflow(TEMPLATE / ".github" / "workflows" / "ci.yml")
    called: set[str] = set()
    for script in lifecycle_commands(devcontainer) + workflow_scripts(workflow, TEMPLATE):
        called |= make_targets(script)
    assert called == {"install", "lint", "test"}
    assert called <= targets


def test_template_pre_commit_hooks_are_local() -> None:
    import yaml

    config = yaml.safe_load((TEMPLATE / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    repos = config["repos"]
    assert repos and all(repo["repo"] == "local" for repo in repos)
    hooks = [hook for repo in repos for hook in repo["hooks"]]
    assert all(hook["language"] == "system" for hook in hooks)
    assert all(hook["entry"].split()[0] == "ruff" for hook in hooks)
