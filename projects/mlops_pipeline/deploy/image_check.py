"""Build the serving image and prove it serves: a real pipeline home, a real MLflow server.

Slow (the build alone takes minutes cold), so it is not part of `make test`; `make image-check`
runs it. Steps, each timed:

1. build the Dockerfile (docker, else podman; `--base` or, in the workbook, its bootstrapped
   Debian base, since no image registry is reachable there);
2. build a pipeline home with tests/serving_fixtures.py (features materialised online for
   2013-03-12..15, `flight-delay@champion` registered), unless `--home` names one;
3. `--registry server` (default, what a cluster does): start an MLflow tracking server from the
   same image with k8s/backends/mlflow.yaml's arguments, publish the champion to it
   (deploy/publish_model.py), then start the service with MLOPS_TRACKING_URI pointing at it and
   MLOPS_FEATURE_REPO at the home's Feast repository; `--registry home`: the service loads the
   model from the home's own registry (MLOPS_HOME), no server. That mode needs the service to
   load a model into a temporary directory (`mlflow.pyfunc.load_model(..., dst_path=...)`):
   without it MLflow writes a `registered_model_meta` file beside the home's own model files,
   which a read-only home refuses;
4. check from outside, on 127.0.0.1: /healthz, /readyz 200, one /v1/predict 200 that names the
   champion and uses fresh features (fixed clock at 2013-03-15T00:00Z), the process's uid is
   the Dockerfile's 10001, the image's HEALTHCHECK passes, no compiler in the image;
5. remove the containers always, and the image unless `--keep-image`.

Both containers run as the pods do: read-only root filesystem, a tmpfs on /tmp, the home mounted
read-only, published on loopback only. The serving container shares the MLflow container's
network namespace (`--network container:`, docker and podman alike), so it reaches the server
on localhost as a pod reaches a sidecar; both ports are published by the MLflow container.

    python deploy/image_check.py                      # build, check, remove the image
    python deploy/image_check.py --keep-image --home .mlops
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import yaml

DEPLOY = Path(__file__).resolve().parent
PROJECT = DEPLOY.parent
TESTS = PROJECT / "tests"
WORKBOOK = PROJECT.parent.parent
DEFAULT_TAG = "localhost/mlops-pipeline-serving:image-check"
AS_OF = "2013-03-15T00:00:00Z"
SERVING_PORT = 8080
MLFLOW_PORT = 5000
UID = "10001"


class CheckFailed(RuntimeError):
    """A step failed; the message says which and carries the container's log where useful."""


@dataclass
class Report:
    """What was measured, printed at the end (and as JSON with --json)."""

    timings: dict[str, float] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)

    def time(self, what: str, seconds: float) -> None:
        self.timings[what] = round(seconds, 2)
        print(f"[image-check] {what}: {seconds:.1f} s", flush=True)


# --- the container engine -------------------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    """docker or podman, with this machine's settings where the workbook provides them."""

    command: str
    env: Mapping[str, str]
    build_flags: tuple[str, ...] = ()

    @property
    def is_podman(self) -> bool:
        return Path(self.command).name == "podman"

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.command, *args], env=dict(self.env), capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise CheckFailed(
                f"`{self.command} {' '.join(args[:3])} ...` failed ({done.returncode}): "
                f"{done.stderr.strip()[-2000:]}"
            )
        return done


def find_engine(explicit: str | None) -> Engine:
    """$ENGINE or --engine, else docker if its daemon answers, else podman. In the workbook
    (root, podman), its podman settings (runc, cgroupfs) and this machine's pip settings for
    the build."""
    command = explicit or _docker_with_daemon() or shutil.which("podman")
    if not command:
        raise CheckFailed(
            "needs podman, or docker with a running daemon, on PATH (or --engine / ENGINE=...)"
        )
    env: Mapping[str, str] = os.environ
    flags: tuple[str, ...] = ()
    workbook = _workbook_containers()
    if workbook is not None and Path(command).name == "podman":
        env = workbook.podman_env()
        flags = tuple(f"--volume={m.flag()}" for m in workbook.host_pip_mounts())
    return Engine(command, env, flags)


def _docker_with_daemon() -> str | None:
    """docker's path when its daemon answers: a docker CLI alone (no engine) cannot build."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        done = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    return docker if done.returncode == 0 and done.stdout.strip() else None


def _workbook_containers() -> SimpleNamespace | None:
    """The workbook's podman helpers (learn/containers), when this project sits inside it:
    podman_env, host_pip_mounts and ensure_base_image; None elsewhere."""
    if str(WORKBOOK) not in sys.path and (WORKBOOK / "learn" / "containers").is_dir():
        sys.path.append(str(WORKBOOK))
    try:
        from learn.containers import ensure_base_image, host_pip_mounts
        from learn.containers.podman import podman_env
    except ImportError:
        return None
    return SimpleNamespace(
        podman_env=podman_env, host_pip_mounts=host_pip_mounts, ensure_base_image=ensure_base_image
    )


def default_base(engine: Engine) -> str | None:
    """The workbook's bootstrapped Debian base with podman (no registry here), else None: the
    Dockerfile's own default (python:3.11-slim)."""
    workbook = _workbook_containers()
    if workbook is not None and engine.is_podman:
        return workbook.ensure_base_image()
    return None


def build(engine: Engine, tag: str, base: str | None, timeout: float) -> float:
    args = ["build", "--tag", tag, *engine.build_flags]
    if engine.is_podman:
        args += ["--format", "docker"]  # HEALTHCHECK survives only in the docker format
    if base:
        args += ["--build-arg", f"BASE={base}"]
    start = time.perf_counter()
    done = subprocess.run(
        [engine.command, *args, str(PROJECT)], env=dict(engine.env), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
    )  # fmt: skip
    if done.returncode != 0:
        raise CheckFailed(f"image build failed:\n{done.stdout[-4000:]}")
    return time.perf_counter() - start


@dataclass
class Container:
    engine: Engine
    name: str

    def logs(self) -> str:
        done = self.engine.run("logs", self.name, check=False)
        return (done.stdout + done.stderr)[-3000:]

    def running(self) -> bool:
        done = self.engine.run("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return done.stdout.strip() == "true"

    def host_port(self, port: int) -> int:
        line = self.engine.run("port", self.name, f"{port}/tcp").stdout.strip().splitlines()[0]
        host, _, number = line.rpartition(":")
        if host != "127.0.0.1":
            raise CheckFailed(f"{self.name} published {port} on {line}, not on loopback")
        return int(number)

    def exec(self, *command: str) -> str:
        return self.engine.run("exec", self.name, *command, check=False).stdout

    def wait_http(self, url: str, timeout: float, owner: Container | None = None) -> float:
        """Seconds until `url` answers 200; fails early when the container stops."""
        start = time.perf_counter()
        last: object = None
        while time.perf_counter() - start < timeout:
            try:
                with urllib.request.urlopen(url, timeout=3) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except urllib.error.HTTPError as error:
                last = f"{error.code} {error.read()[:300]!r}"
            except OSError as error:
                last = error
            for container in (self, owner):
                if container is not None and not container.running():
                    raise CheckFailed(f"{container.name} stopped:\n{container.logs()}")
            time.sleep(0.25)
        raise CheckFailed(f"{url} not 200 after {timeout:.0f} s (last: {last}):\n{self.logs()}")


@contextmanager
def container(
    engine: Engine, image: str, args: Sequence[str], command: Sequence[str]
) -> Iterator[Container]:
    """`run --detach` like a pod: read-only root, tmpfs /tmp; always removed afterwards."""
    name = f"image-check-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        engine.run(
            "run", "--detach", "--name", name, "--read-only", "--tmpfs", "/tmp:mode=1777",
            *args, image, *command,
        )  # fmt: skip
        yield Container(engine, name)
    finally:
        engine.run("rm", "--force", name, check=False, timeout=60)


# --- the checks -----------------------------------------------------------------------------


def mlflow_server_args() -> list[str]:
    """The MLflow server's command line, exactly as k8s/backends/mlflow.yaml runs it."""
    docs = yaml.safe_load_all((DEPLOY / "k8s" / "backends" / "mlflow.yaml").read_text())
    deployment = next(d for d in docs if d and d["kind"] == "Deployment")
    [spec] = deployment["spec"]["template"]["spec"]["containers"]
    return [*spec["command"], *spec["args"]]


def build_home(root: Path) -> Path:
    """A pipeline home the service can serve from (tests/serving_fixtures.py)."""
    sys.path.insert(0, str(TESTS))
    from mlops_pipeline import offline

    offline.apply()
    from serving_fixtures import build_serving_home

    return build_serving_home(root).home


def sample_flight() -> dict[str, object]:
    sys.path.insert(0, str(TESTS))
    from serving_fixtures import sample_requests

    return sample_requests(20)[10]


def post(url: str, payload: object) -> tuple[int, dict[str, object], float]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), time.perf_counter() - start
    except urllib.error.HTTPError as error:
        return error.code, {"body": error.read()[:500].decode(errors="replace")}, 0.0


def check(
    engine: Engine, image: str, home: Path, registry: str, report: Report
) -> dict[str, object]:
    """Start the service (and MLflow), then check it from outside; returns the prediction."""
    mount = f"{home}:{home}:ro"
    # As in a pod: MLOPS_HOME is scratch (the image's default, a tmpfs here, an emptyDir
    # there) unless the home itself is the registry.
    scratch = ["--tmpfs", "/var/lib/mlops:mode=1777"]
    serving_env = {"MLOPS_HOME": str(home)} if registry == "home" else {}
    with ExitStack() as stack:
        if registry == "server":
            start = time.perf_counter()
            server = stack.enter_context(
                container(
                    engine, image,
                    ["--tmpfs", "/var/lib/mlflow:mode=1777",
                     "--publish", f"127.0.0.1::{MLFLOW_PORT}",
                     "--publish", f"127.0.0.1::{SERVING_PORT}",
                     "--entrypoint", mlflow_server_args()[0]],
                    mlflow_server_args()[1:],
                )
            )  # fmt: skip
            mlflow_url = f"http://127.0.0.1:{server.host_port(MLFLOW_PORT)}"
            server.wait_http(f"{mlflow_url}/health", timeout=300)
            report.time("mlflow server (same image) start to /health", time.perf_counter() - start)
            start = time.perf_counter()
            sys.path.insert(0, str(DEPLOY))
            from publish_model import publish

            [published] = publish(home, mlflow_url, "flight-delay", ["champion"])
            report.time("publish champion to the server", time.perf_counter() - start)
            report.facts["published"] = str(published)
            network = ["--network", f"container:{server.name}"]
            serving_env |= {
                "MLOPS_TRACKING_URI": f"http://127.0.0.1:{MLFLOW_PORT}",
                "MLOPS_FEATURE_REPO": str(home / "feature_repo"),
            }
            ports_from = server
            expected_version = published.target_version
        else:
            network = ["--publish", f"127.0.0.1::{SERVING_PORT}"]
            ports_from = None
            expected_version = None
        env = [f"--env={key}={value}" for key, value in serving_env.items()]
        start = time.perf_counter()
        service = stack.enter_context(
            container(
                engine, image, [*network, *scratch, "--volume", mount, *env],
                ["--clock", "fixed", "--as-of", AS_OF, "--log-level", "info"],
            )
        )  # fmt: skip
        base = f"http://127.0.0.1:{(ports_from or service).host_port(SERVING_PORT)}"
        service.wait_http(f"{base}/healthz", timeout=120, owner=ports_from)
        report.time("service container start to /healthz 200", time.perf_counter() - start)
        service.wait_http(f"{base}/readyz", timeout=300, owner=ports_from)
        report.time("service container start to /readyz 200", time.perf_counter() - start)
        status, body, seconds = post(f"{base}/v1/predict", sample_flight())
        if status != 200:
            raise CheckFailed(f"/v1/predict answered {status}: {body}\n{service.logs()}")
        report.time("first /v1/predict", seconds)
        model = body["model"]
        if model["alias"] != "champion" or (
            expected_version and model["version"] != expected_version
        ):
            raise CheckFailed(f"served {model}, expected champion v{expected_version}")
        features = body["features"]
        if features["stale"] or not 0.0 <= float(body["delay_probability"]) <= 1.0:
            raise CheckFailed(f"a flight of the last materialised day must be fresh: {body}")
        uid = service.exec("id", "-u").strip()
        if uid != UID:
            raise CheckFailed(f"the service runs as uid {uid!r}, not {UID}")
        tools = service.exec("sh", "-c", "command -v gcc cc make pip3 || true").split()
        if any(not t.startswith("/opt/venv/") for t in tools):
            raise CheckFailed(f"build tools left in the image: {tools}")
        if engine.is_podman:
            health = engine.run("healthcheck", "run", service.name, check=False, timeout=30)
            if health.returncode != 0:
                raise CheckFailed(f"the image's HEALTHCHECK failed: {health.stderr}")
            report.facts["healthcheck"] = "passed"
        report.facts["uid"] = uid
        return body


def image_size(engine: Engine, image: str) -> str:
    done = engine.run("image", "inspect", "--format", "{{.Size}}", image, check=False)
    try:
        return f"{int(done.stdout.strip()) / 1e9:.2f} GB"
    except ValueError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default=os.environ.get("ENGINE"), help="docker or podman")
    parser.add_argument("--base", default=os.environ.get("BASE"), help="the BASE build arg")
    parser.add_argument("--tag", default=DEFAULT_TAG)
    parser.add_argument("--home", type=Path, help="serve this home (default: build one)")
    parser.add_argument("--registry", choices=("server", "home"), default="server")
    parser.add_argument("--keep-image", action="store_true")
    parser.add_argument(
        "--no-build", action="store_true", help="check the existing --tag (kept from a run)"
    )
    parser.add_argument("--build-timeout", type=float, default=1800)
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args(argv)
    report = Report()
    engine: Engine | None = None
    built = False
    try:
        engine = find_engine(args.engine)
        if not args.no_build:
            start = time.perf_counter()
            base = args.base or default_base(engine)
            report.time(f"base image ({base or 'Dockerfile default'})", time.perf_counter() - start)
            report.time("image build", build(engine, args.tag, base, args.build_timeout))
        built = True
        report.facts["image size"] = image_size(engine, args.tag)
        with tempfile.TemporaryDirectory(prefix="image-check-") as tmp:
            home = args.home.resolve() if args.home else None
            if home is None:
                start = time.perf_counter()
                home = build_home(Path(tmp) / "home")
                report.time("pipeline home (features online, champion registered)",
                            time.perf_counter() - start)  # fmt: skip
            body = check(engine, args.tag, home, args.registry, report)
        report.facts["prediction"] = {k: body[k] for k in ("delay_probability", "model")}
    except (CheckFailed, subprocess.TimeoutExpired) as error:
        print(f"[image-check] FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        if engine is not None and built and not args.keep_image:
            engine.run("rmi", "--force", args.tag, check=False, timeout=120)
        for key, value in report.facts.items():
            print(f"[image-check] {key}: {value}")
        if args.json:
            args.json.write_text(json.dumps({"timings_s": report.timings, **report.facts}))
    print("[image-check] OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
