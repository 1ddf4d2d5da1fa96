"""The container image without a Docker engine: its instructions, and its entry command run here.

The checks read the Dockerfile (multi-stage, slim base, non-root, health check, only the venv
and the exported model copied into the runtime stage) and then run what the image would run:
`tabular-serve` with TABULAR_MODEL_PATH pointing at a model exported from the registry, from an
empty working directory, on a free loopback port. (Inside the workbook, tests/test_images.py
also builds the real image with podman, FROM a bootstrapped Debian 12, and runs it.)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import free_port, wait_for_http

PROJECT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped; stage = FROM count."""
    instructions, stage, pending = [], -1, ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
    return instructions


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(PROJECT / "Dockerfile")


def runtime(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def test_multi_stage_on_a_slim_base(instructions: list[Instruction]) -> None:
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2 and froms[0].endswith("AS builder") and froms[-1].endswith("AS runtime")
    args = dict(i.args.split("=", 1) for i in instructions if i.keyword == "ARG" and i.stage == -1)
    base = froms[-1].split()[0]
    base = args.get(base.strip("${}"), base)
    assert base == "python:3.11-slim"


def test_both_stages_take_their_base_from_one_build_argument(
    instructions: list[Instruction],
) -> None:
    """Users build on python:3.11-slim; the workbook's tests pass a bootstrapped Debian 12."""
    froms = [i.args.split()[0] for i in instructions if i.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE}"] * len(froms)
    declared = [i.args for i in instructions if i.keyword == "ARG" and i.stage == -1]
    assert declared == ["PYTHON_IMAGE=python:3.11-slim"]


def test_python_is_called_python3_until_the_venv_is_on_path(
    instructions: list[Instruction],
) -> None:
    """A plain Debian base has `python3` but no `python`: only the venv's python may be bare."""
    bare_python = re.compile(r"(^|[\s;&|(])python\s")
    for stage in {i.stage for i in instructions if i.stage >= 0}:
        venv_on_path = False
        for i in (i for i in instructions if i.stage == stage):
            if i.keyword == "ENV" and "PATH=/opt/venv/bin:" in i.args:
                venv_on_path = True
            if i.keyword == "RUN" and bare_python.search(i.args):
                assert venv_on_path, f"stage {stage} runs `python` before the venv: {i.args}"
    first_run = next(i.args for i in instructions if i.stage == 0 and i.keyword == "RUN")
    assert first_run.startswith("python3 -m venv /opt/venv")


def test_builder_installs_the_torch_free_dependencies(instructions: list[Instruction]) -> None:
    builder = " ".join(i.args for i in instructions if i.stage == 0 and i.keyword == "RUN")
    assert "pyproject.toml" in builder and "pip install" in builder
    assert "torch" not in builder and "[train]" not in builder
    deps = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any(d.startswith(("torch", "lightning")) for d in deps)


def test_builder_installs_the_locked_versions(instructions: list[Instruction]) -> None:
    builder = [i for i in instructions if i.stage == 0]
    copied = {name for i in builder if i.keyword == "COPY" for name in shlex.split(i.args)[:-1]}
    assert "requirements.lock" in copied
    install = next(i.args for i in builder if i.keyword == "RUN" and "requirements.txt" in i.args)
    assert "-c requirements.lock" in install


def test_lock_pins_every_runtime_dependency_and_its_closure() -> None:
    """The committed lock covers the image's dependencies, each pinned to one version."""
    lock = _lock_module()
    lines = (PROJECT / "requirements.lock").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert all(version and "," not in version for version in pins.values())
    direct = {lock.canonicalize_name(lock.Requirement(r).name) for r in lock.runtime_requirements()}
    assert direct <= set(pins)
    # Transitive dependencies and requested extras are pinned too, torch never is.
    assert {"starlette", "uvloop", "pydantic-core"} <= set(pins)
    assert "torch" not in pins and "lightning" not in pins


def test_lock_script_pins_the_installed_closure(tmp_path: Path) -> None:
    lock = _lock_module()
    assert lock.main(["--out", str(tmp_path / "requirements.lock")]) == 0
    text = (tmp_path / "requirements.lock").read_text()
    assert text.startswith("# ")
    from importlib import metadata

    assert f"fastapi=={metadata.version('fastapi')}\n" in text
    with pytest.raises(SystemExit, match="not-a-real-package is not installed"):
        lock.installed_closure(["not-a-real-package>=1"])


def _lock_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "lock_requirements", PROJECT / "scripts" / "lock_requirements.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runtime_copies_only_the_venv_and_the_model(instructions: list[Instruction]) -> None:
    copies = [shlex.split(i.args) for i in runtime(instructions) if i.keyword in ("COPY", "ADD")]
    assert sorted(c[-2:] for c in copies) == [
        ["/opt/venv", "/opt/venv"],
        ["build/model", "/app/model"],
    ]
    venv = next(c for c in copies if c[-1] == "/opt/venv")
    assert "--from=builder" in venv


def test_runtime_user_port_env_healthcheck_and_cmd(instructions: list[Instruction]) -> None:
    final = runtime(instructions)
    users = [i.args for i in final if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert [i.args for i in final if i.keyword == "EXPOSE"] == ["8000"]
    env = " ".join(i.args for i in final if i.keyword == "ENV")
    assert "TABULAR_MODEL_PATH=/app/model" in env and "TABULAR_HOST=0.0.0.0" in env
    healthcheck = next(i.args for i in final if i.keyword == "HEALTHCHECK")
    assert "/healthz" in healthcheck and "urllib" in healthcheck and "curl" not in healthcheck
    cmd = next(i.args for i in final if i.keyword == "CMD")
    assert json.loads(cmd) == ["tabular-serve"]


def test_dockerignore_is_an_allow_list() -> None:
    lines = (PROJECT / ".dockerignore").read_text().split()
    assert lines[lines.index("*") :][:1] == ["*"]
    assert {"!pyproject.toml", "!src/", "!build/model/", "!requirements.lock"} <= set(lines)
    assert not any(line.startswith("!") and ("mlruns" in line or "tests" in line) for line in lines)


def entry_command(cmd: list[str]) -> list[str]:
    """The image's CMD as it runs here: the console script, or its pyproject target."""
    script = shutil.which(cmd[0], path=str(Path(sys.executable).parent))
    if script:
        return [script, *cmd[1:]]
    target = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["scripts"][cmd[0]]
    module, function = target.split(":")
    code = f"import sys; from {module} import {function}; sys.exit({function}())"
    return [sys.executable, "-c", code, *cmd[1:]]


@pytest.mark.slow
def test_image_entry_command_serves_an_exported_model(
    instructions: list[Instruction], registry_home: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "src")}
    export = tmp_path / "build" / "model"
    exporter = entry_command(["tabular-serve", "--export-model", str(export)])
    subprocess.run(
        exporter,
        env={**env, "TABULAR_HOME": str(registry_home), "TABULAR_CACHE_DIR": str(tmp_path / "c")},
        check=True,
        timeout=120,
        capture_output=True,
    )
    assert (export / "model-info.json").is_file()

    cmd = json.loads(next(i.args for i in runtime(instructions) if i.keyword == "CMD"))
    workdir = tmp_path / "app"  # like the image: no source tree, no mlruns, only the model
    workdir.mkdir()
    port = free_port()
    image_env = {
        **env,
        "TABULAR_HOME": str(workdir),
        "TABULAR_MODEL_PATH": str(export),
        "TABULAR_HOST": "127.0.0.1",
        "TABULAR_PORT": str(port),
        "TABULAR_TRACKING_URI": "sqlite:///nonexistent/unused.db",
    }
    with (tmp_path / "server.log").open("w") as log:
        proc = subprocess.Popen(
            entry_command(cmd), cwd=workdir, env=image_env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            seconds = wait_for_http(f"http://127.0.0.1:{port}/readyz", timeout=90, proc=proc)
            print(f"\nimage entry command: ready in {seconds:.2f} s")
            healthcheck = next(i.args for i in runtime(instructions) if i.keyword == "HEALTHCHECK")
            probe = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
            assert probe[0] == "python"
            result = subprocess.run([sys.executable, *probe[1:]], env=image_env, timeout=30)
            assert result.returncode == 0
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                model = json.loads(r.read())["model"]
            assert (model["name"], model["version"], model["source"]) == (
                "credit-default",
                "1",
                "path",
            )
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    assert not (workdir / ".model-cache").exists()  # a path-served model never touches a cache
