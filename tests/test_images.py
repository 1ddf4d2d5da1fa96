"""Real container images, built and run with podman on this machine.

There is no Docker engine and no image registry here, so `learn.containers` bootstraps a Debian
12 base (localhost/bookworm-min) once per machine and builds each project's Dockerfile FROM it;
the Dockerfiles take their base as a build argument (users keep python:3.11-slim).

The slow tests build tabular_service's image from a temporary copy of its build context with a
small model exported into build/model the way `make image` does, run it published on loopback,
and check it from the outside: the user its process runs as, /readyz, a prediction identical to
the in-process predictor's, the image's own HEALTHCHECK. They need root (CI is root) and skip
only when not root or when `scripts/system-deps.sh` cannot install podman. Run them with -s to
see the progress of the long steps and the timings. The fast tests check the helper's parsing,
its error messages and its lock without podman.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from learn import REPO_ROOT, containers
from learn.containers import debian_base, pip_settings

PROJECT = REPO_ROOT / "projects" / "tabular_service"
IMAGE = "localhost/tabular-service:test"
TIMINGS: dict[str, float] = {}


def report(what: str, seconds: float) -> None:
    TIMINGS[what] = seconds
    print(f"\n[timing] {what}: {seconds:.1f} s", flush=True)


@pytest.fixture(scope="module", autouse=True)
def timings_summary(request: pytest.FixtureRequest) -> Iterator[None]:
    """The long steps' timings on the terminal after the module, also without -s."""
    yield
    plugins = request.config.pluginmanager
    terminal, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if not TIMINGS or terminal is None or capture is None:
        return
    with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
        terminal.write_line("")
        for what, seconds in TIMINGS.items():
            terminal.write_line(f"test_images timing: {what}: {seconds:.1f} s")


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def podman_ready() -> None:
    """Skip only when not root, or when podman cannot be installed (system-deps tried it)."""
    try:
        containers.require_podman()
        return
    except containers.ContainersUnavailable as exc:
        if os.geteuid() != 0:
            pytest.skip(f"needs root: {exc}")
    install = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "system-deps.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    try:
        containers.require_podman()
    except containers.ContainersUnavailable as exc:
        pytest.skip(
            f"podman cannot be installed here ({exc}); system-deps: {install.stderr[-500:]}"
        )


@pytest.fixture(scope="module")
def base_image(podman_ready: None) -> str:
    start = time.perf_counter()
    name = containers.ensure_base_image()
    report("base image (bootstrapped, or found cached)", time.perf_counter() - start)
    return name


@pytest.fixture(scope="module")
def tabular_src() -> Iterator[None]:
    """tabular_service importable in this process, installed or not (CI's venv may not be)."""
    if importlib.util.find_spec("tabular_service") is not None:
        yield
        return
    sys.path.insert(0, str(PROJECT / "src"))
    try:
        yield
    finally:
        sys.path.remove(str(PROJECT / "src"))


@pytest.fixture(scope="module")
def predictor(tabular_src: None):
    """A logistic regression behind the FeatureEncoder, as tabular_service's small_predictor."""
    from sklearn.linear_model import LogisticRegression

    from tabular_service.data import load_loans, split
    from tabular_service.evaluation import cost_optimal_threshold
    from tabular_service.features import FeatureEncoder
    from tabular_service.predictor import CreditPredictor
    from tabular_service.scorers import SklearnScorer

    loans = split(*load_loans())
    encoder = FeatureEncoder().fit(loans.X_train)
    design = encoder.design(encoder.transform(loans.X_train), one_hot=True)
    model = LogisticRegression(C=0.1, max_iter=2000).fit(design, loans.y_train)
    scorer = SklearnScorer(model, encoder, one_hot=True)
    p_valid = scorer.score(encoder.transform(loans.X_valid))
    return CreditPredictor(
        encoder=encoder,
        scorer=scorer,
        threshold=cost_optimal_threshold(loans.y_valid, p_valid),
        model_kind="logistic",
        metadata={"source": "tests/test_images.py"},
    )


def copy_build_context(destination: Path) -> None:
    """The Dockerfile, .dockerignore and what its allow-list (`!path`) lets in, minus build/."""
    destination.mkdir(parents=True)
    for name in ("Dockerfile", ".dockerignore"):
        shutil.copy2(PROJECT / name, destination / name)
    allowed = [
        line[1:] for line in (PROJECT / ".dockerignore").read_text().split() if line[0] == "!"
    ]
    debris = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for entry in allowed:
        source = PROJECT / entry
        if entry.startswith("build/"):
            continue  # the model is exported below
        if source.is_dir():
            shutil.copytree(source, destination / entry, ignore=debris)
        else:
            shutil.copy2(source, destination / entry)


@pytest.fixture(scope="module")
def build_context(predictor, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary build context with the predictor exported into build/model (`make image`'s
    export step: `tabular-serve --export-model build/model`), so the project folder stays as is."""
    from tabular_service.service.loading import export_model
    from tabular_service.settings import load_settings

    root = tmp_path_factory.mktemp("image")
    context = root / "context"
    copy_build_context(context)
    saved = predictor.save(root / "predictor")
    export_model(load_settings(home=root, model_path=saved), context / "build" / "model")
    return context


@pytest.fixture(scope="module")
def image(base_image: str, build_context: Path) -> str:
    seconds = containers.build_image(
        build_context,
        IMAGE,
        build_args={"PYTHON_IMAGE": base_image},
        mounts=containers.host_pip_mounts(),  # this machine's wheels, indexes and CA bundle
    )
    report(f"build {IMAGE}", seconds)
    return IMAGE


@pytest.fixture(scope="module")
def service(image: str) -> Iterator[containers.Container]:
    start = time.perf_counter()
    with containers.running_container(image, publish=[8000]) as container:
        container.wait_for_http(container.url(8000, "/readyz"), timeout=120)
        report("container start to /readyz 200", time.perf_counter() - start)
        yield container


def dockerfile_user() -> str:
    """The uid the runtime stage's last USER instruction names."""
    users = [
        line.split()[1]
        for line in (PROJECT / "Dockerfile").read_text().splitlines()
        if line.startswith("USER ")
    ]
    return users[-1].split(":")[0]


def post_json(url: str, payload: object) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


# ---------------------------------------------------------------------------------- the image
@pytest.mark.slow
def test_service_process_runs_as_the_dockerfiles_non_root_user(
    service: containers.Container,
) -> None:
    uid = dockerfile_user()
    assert uid not in ("0", "root")
    processes = service.processes()
    assert processes and all(p["huser"] == uid for p in processes), processes
    for process in processes:  # seen by this machine's kernel, outside the container
        status = Path(f"/proc/{process['hpid']}/status").read_text()
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        assert set(uids) == {uid}, (process, uids)
    assert service.exec("id", "-u").stdout.strip() == uid


@pytest.mark.slow
def test_readyz_answers_on_loopback_only(service: containers.Container) -> None:
    with urllib.request.urlopen(service.url(8000, "/readyz"), timeout=5) as response:
        assert response.status == 200
        model = json.loads(response.read())["model"]
    assert (model["kind"], model["source"]) == ("logistic", "path")
    bindings = containers.podman("port", service.name).stdout.split()
    assert bindings and all(b.startswith("127.0.0.1:") for b in bindings if ":" in b), bindings


@pytest.mark.slow
def test_prediction_equals_the_in_process_predictor(
    service: containers.Container, predictor
) -> None:
    from tabular_service.schema import EXAMPLE_APPLICATION

    served = post_json(service.url(8000, "/v1/predict"), EXAMPLE_APPLICATION)
    expected = predictor.predict_proba_records([EXAMPLE_APPLICATION])
    assert served["probability_of_default"] == pytest.approx(float(expected[0]), abs=1e-9)
    decision = "reject" if predictor.decide(expected)[0] else "approve"
    assert served["decision"] == decision
    assert served["threshold"] == pytest.approx(predictor.threshold, abs=1e-12)


@pytest.mark.slow
def test_the_images_healthcheck_passes(service: containers.Container) -> None:
    result = containers.podman("healthcheck", "run", service.name, check=False, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_runtime_holds_the_venv_and_the_model_only(service: containers.Container) -> None:
    assert service.exec("ls", "-A", "/app").stdout.split() == ["model"]
    assert service.exec("test", "-x", "/opt/venv/bin/tabular-serve", check=False).returncode == 0
    # The builder's source tree and any compiler stayed in the builder stage.
    assert service.exec("test", "-e", "/build", check=False).returncode == 1
    assert service.exec("sh", "-c", "command -v gcc cc", check=False).stdout == ""


@pytest.mark.slow
def test_container_is_removed_when_the_body_raises(base_image: str) -> None:
    names = []
    with (
        pytest.raises(RuntimeError, match="the body failed"),
        containers.running_container(base_image, command=["sleep", "300"]) as container,
    ):
        names.append(container.name)
        assert container.running()
        raise RuntimeError("the body failed")
    name = names[0]
    left = containers.podman("ps", "--all", "--filter", f"name=^{name}$", "--format", "{{.Names}}")
    assert left.stdout.strip() == ""


# ---------------------------------------------------------------------------------- the helper
def test_missing_tools_are_named_with_the_apt_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda cmd: None if cmd != "podman" else "/usr/bin/podman")
    with pytest.raises(containers.ContainersUnavailable) as error:
        containers.require_podman()
    message = str(error.value)
    assert "runc, debootstrap" in message and containers.APT_INSTALL in message
    with pytest.raises(containers.ContainersUnavailable, match=r"package\(s\): runc;"):
        containers.require_podman(bootstrap=False)


def test_not_root_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(containers.ContainersUnavailable, match="needs root"):
        containers.require_podman()


def test_debian_sources_come_from_apts_own_files(tmp_path: Path) -> None:
    listd = tmp_path / "sources.list.d"
    listd.mkdir()
    (listd / "debian.sources").write_text(
        "# a comment\nTypes: deb\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main\n"
    )
    (listd / "security.list").write_text(
        "deb [signed-by=/k.gpg] http://security.example/debian-security bookworm-security main\n"
    )
    (listd / "other.list.disabled").write_text("deb http://elsewhere.example bookworm main\n")
    (tmp_path / "sources.list").write_text("deb http://old.example/debian bullseye main\n")
    sources = containers.debian_sources("bookworm", tmp_path)
    assert [s.uris[0] for s in sources] == [
        "http://mirror.example/debian",
        "http://security.example/debian-security",
    ]
    assert sources[1].signed_by == "/k.gpg" and sources[1].suites == ("bookworm-security",)
    assert "Suites: bookworm bookworm-updates\n" in sources[0].deb822()
    version = containers.base_recipe_version(sources)
    assert version != containers.base_recipe_version(sources[:1])
    with pytest.raises(containers.ContainerError, match="no apt source for Debian trixie"):
        containers.debian_sources("trixie", tmp_path)


def test_host_pip_settings_are_merged_and_their_folders_mounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels, index, cert = tmp_path / "wheels", tmp_path / "pypi" / "simple", tmp_path / "ca.crt"
    wheels.mkdir()
    index.mkdir(parents=True)
    cert.write_text("certificate")
    (tmp_path / "xdg" / "pip").mkdir(parents=True)
    (tmp_path / "xdg" / "pip" / "pip.conf").write_text(
        f"[global]\nfind-links = {tmp_path / 'gone'}\ntimeout = 5\n[install]\nno-compile = 1\n"
    )
    (tmp_path / "user" / "pip").mkdir(parents=True)
    (tmp_path / "user" / "pip" / "pip.conf").write_text(
        f"[global]\nfind-links = {wheels}\nextra-index-url = file://{index} https://x.example/\n"
    )
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIP_CERT", str(cert))
    monkeypatch.setattr(pip_settings, "pip_config_files", _only_under(tmp_path))

    mounts = containers.host_pip_mounts()
    conf = mounts[0]
    assert conf.target == "/etc/pip.conf" and conf.flag().endswith(":/etc/pip.conf:ro")
    text = conf.source.read_text()
    assert f"find-links = {wheels}\n" in text  # the user file wins over the global one
    assert "timeout = 5\n" in text and "[install]\nno-compile = 1\n" in text
    assert f"cert = {cert}\n" in text  # PIP_* variables win over files
    assert {m.source for m in mounts[1:]} == {wheels, index.parent, cert}  # simple/ -> parent
    assert all(str(m.source) == m.target and m.read_only for m in mounts[1:])


def _only_under(root: Path):
    real = pip_settings.pip_config_files

    def files() -> list[Path]:
        return [path for path in real() if path.is_relative_to(root)]

    return files


def test_concurrent_callers_bootstrap_the_base_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    made: list[str] = []
    labels: dict[str, str] = {}

    def bootstrap(name: str, version: str, sources: object) -> None:
        made.append(name)
        time.sleep(0.3)  # long enough for the other caller to reach the lock
        labels[debian_base.RECIPE_LABEL] = version

    monkeypatch.setattr(debian_base, "require_podman", lambda **_: None)
    monkeypatch.setattr(debian_base, "debian_sources", lambda: [])
    monkeypatch.setattr(debian_base, "image_labels", lambda image: dict(labels) or None)
    monkeypatch.setattr(debian_base, "_bootstrap", bootstrap)
    callers = [threading.Thread(target=containers.ensure_base_image) for _ in range(3)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=10)
    assert made == [containers.BASE_IMAGE]
    assert containers.ensure_base_image() == containers.BASE_IMAGE and len(made) == 1


def test_cli_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "learn.containers", "nonsense"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "usage: python -m learn.containers base" in result.stderr
