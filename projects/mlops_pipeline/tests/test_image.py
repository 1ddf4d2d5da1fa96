"""The serving image's recipe, checked without building it (the build takes minutes).

`deploy/image_check.py` (`make image-check`) builds the Dockerfile and runs it for real; these
tests hold the recipe to the rest of the project on every run: the ENTRYPOINT listens where the
manifests' probes look, the user is the manifests' uid, the offline switches are the package's,
the build context admits exactly what the Dockerfile copies, and the lock pins every package
the image installs.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import shlex
import stat
import sys
from types import ModuleType

import pytest
from deploy_support import DEPLOY, PROJECT, check

DOCKERFILE = PROJECT / "Dockerfile"


def _load(name: str) -> ModuleType:
    """A script of deploy/ as a module (they are not part of the package)."""
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", DEPLOY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments out."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        pending += " " + stripped.removesuffix("\\").strip() if pending else stripped
        if not stripped.endswith("\\"):
            keyword, _, rest = pending.partition(" ")
            out.append((keyword.upper(), rest.strip()))
            pending = ""
    return out


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (a FROM starts one)."""
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, rest))
    return found


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            values |= dict(item.split("=", 1) for item in shlex.split(rest))
    return values


@pytest.fixture(scope="module")
def deployment() -> dict:
    [doc] = [d for d in check.render(check.KUSTOMIZATIONS["base"]) if d["kind"] == "Deployment"]
    return doc


def test_the_base_is_a_build_argument_defaulting_to_python_slim():
    """Users get python:3.11-slim; the workbook passes its bootstrapped Debian base."""
    first = instructions()[0]
    assert first == ("ARG", "BASE=python:3.11-slim")
    froms = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert froms == ["${BASE} AS builder", "${BASE} AS runtime"]


def test_the_entrypoint_listens_where_the_probes_look(deployment):
    """ENTRYPOINT + the pod's args parse with the service's own command line: all interfaces,
    the container port the probes and the Service use."""
    from mlops_pipeline.serving.main import parser

    [entrypoint] = [json.loads(rest) for keyword, rest in instructions() if keyword == "ENTRYPOINT"]
    assert entrypoint[:3] == ["python", "-m", "mlops_pipeline.serving"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    args = parser().parse_args([*entrypoint[3:], *container["args"]])
    [port] = container["ports"]
    assert (args.host, args.port) == ("0.0.0.0", port["containerPort"])
    [healthcheck] = [rest for keyword, rest in instructions() if keyword == "HEALTHCHECK"]
    assert f"127.0.0.1:{port['containerPort']}/healthz" in healthcheck
    assert [rest for keyword, rest in instructions() if keyword == "EXPOSE"] == [
        str(port["containerPort"])
    ]


def test_the_runtime_user_is_the_manifests_non_root_uid(deployment):
    runtime = stages()[-1]
    [user] = [rest for keyword, rest in runtime if keyword == "USER"]
    security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert user == f"{security['runAsUser']}:{security['runAsGroup']}"
    assert security["runAsUser"] != 0


def test_the_runtime_sets_the_offline_switches_and_a_writable_home(deployment):
    """The package's offline switches (mlops_pipeline.offline), HOME on /tmp, and MLOPS_HOME
    where the pods mount their scratch volume."""
    from mlops_pipeline.offline import OFFLINE_ENV

    env = env_of(stages()[-1])
    for name in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "FEAST_USAGE"):
        assert env[name] == OFFLINE_ENV[name], name
    prefect = "PREFECT_SERVER_ANALYTICS_ENABLED"
    assert env[prefect] == OFFLINE_ENV[prefect]
    assert env["HOME"] == "/tmp"
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert env["MLOPS_HOME"] in {m["mountPath"] for m in container["volumeMounts"]}


def test_the_runtime_stage_installs_nothing():
    """Build tools stay in the builder: the runtime copies the finished venv and only adds a
    user and a directory."""
    builder, runtime = stages()
    runs = [rest for keyword, rest in runtime if keyword == "RUN"]
    assert all(not any(t in r for t in ("pip", "apt-get", "apt ", "dpkg")) for r in runs), runs
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    assert any("pip install" in rest for keyword, rest in builder if keyword == "RUN")


def dockerignore_allows() -> list[str]:
    lines = [ln.strip() for ln in (PROJECT / ".dockerignore").read_text().splitlines()]
    entries = [ln for ln in lines if ln and not ln.startswith("#")]
    assert entries[0] == "*", "an allow-list: everything out, then what the build needs"
    return [e[1:].rstrip("/") for e in entries if e.startswith("!")]


def test_the_build_context_is_exactly_what_the_dockerfile_copies():
    """Every COPY source is admitted by .dockerignore, every admitted path is copied, and
    the pipeline's state and secrets (.mlops, .venv, .tools) stay out."""
    allowed = dockerignore_allows()
    sources = []
    for keyword, rest in instructions():
        if keyword == "COPY" and not rest.startswith("--from"):
            sources += shlex.split(rest)[:-1]
    sources = [s.rstrip("/") for s in sources]
    assert sorted(sources) == sorted(allowed)
    for path in allowed:
        assert (PROJECT / path).exists(), path
    for private in (".mlops", ".venv", ".tools", "tests", "deploy/k8s"):
        assert not any(fnmatch.fnmatch(private, a) for a in allowed), private


def test_the_lock_pins_the_images_direct_requirements_exactly():
    """deploy/requirements.lock pins every line with == and covers the image's direct
    requirements. (Whether it covers the whole installed closure depends on the environment
    the check runs in, so that is `python deploy/lock_requirements.py`'s job, not a test's.)"""
    import re

    lock = _load("lock_requirements")
    lines = [
        line for line in lock.LOCK.read_text().splitlines() if line and not line.startswith("#")
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[^=\s]+", line) for line in lines), lines
    pinned = {re.split(r"[\[=]", line)[0].lower().replace("_", "-") for line in lines}
    assert {"mlflow", "feast", "boto3", "psycopg"} <= pinned


def test_a_docker_cli_without_a_daemon_is_not_chosen(tmp_path, monkeypatch):
    """Debian's docker CLI alone cannot build (no engine here): image_check falls back."""
    image_check = _load("image_check")
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert image_check._docker_with_daemon() is None
    fake.write_text("#!/bin/sh\necho 27.3.1\n")
    assert image_check._docker_with_daemon() == str(fake)
