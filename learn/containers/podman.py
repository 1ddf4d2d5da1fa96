"""Podman on these machines: one settings file, clear errors, builds and loopback containers.

Podman's settings for machines without systemd and with hybrid cgroups (runc, cgroupfs,
ulimits, file events, k8s-file logs) are `CONTAINERS_CONF`, the one place they live: every
podman command here runs with the CONTAINERS_CONF variable pointing at it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

#: Debian packages this module needs, by the command each provides (buildah's CLI is not used,
#: podman has it built in, but `make system-deps` installs it for debugging builds).
TOOL_PACKAGES = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
APT_INSTALL = "apt-get install -y podman buildah debootstrap runc"

#: Podman 4.3 picks crun, which fails on these kernels' hybrid cgroups: runc with cgroupfs works.
#: Without systemd, events go to a file and logs to k8s-file (so `podman logs` works). The
#: ulimits stay within root's hard limits (podman's defaults exceed them).
CONTAINERS_CONF = """\
# Written by learn/containers/; podman reads it through CONTAINERS_CONF. Edit it there.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


class ContainerError(RuntimeError):
    """A podman step failed; the message names the command and ends with its last output."""


class ContainersUnavailable(ContainerError):
    """This machine cannot build or run images here: a tool is missing, or we are not root."""


# ---------------------------------------------------------------------------------- the machine
def require_podman(*, bootstrap: bool = True) -> None:
    """Raise ContainersUnavailable naming what is missing and the command that installs it.

    `bootstrap=False` skips debootstrap, which only making the base image needs.
    """
    if os.geteuid() != 0:
        raise ContainersUnavailable(
            "building and running images here needs root: these settings use root's podman "
            "store (/var/lib/containers) and cgroupfs; run as root, as CI does"
        )
    needed = [cmd for cmd in TOOL_PACKAGES if bootstrap or cmd != "debootstrap"]
    missing = [TOOL_PACKAGES[cmd] for cmd in needed if shutil.which(cmd) is None]
    if missing:
        raise ContainersUnavailable(
            f"missing Debian package(s): {', '.join(missing)}; install them with "
            f"`{APT_INSTALL}` (or `make system-deps` in the workbook)"
        )


def cache_dir() -> Path:
    """Per-user folder for podman's settings file, the base lock and the merged pip.conf."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = root / "ai-architect-workbook" / "containers"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_if_changed(path: Path, text: str) -> Path:
    """Write `text` atomically unless the file already holds it (safe with concurrent writers)."""
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.chmod(0o644)
        tmp.replace(path)
    return path


def podman_env() -> dict[str, str]:
    """os.environ plus CONTAINERS_CONF pointing at this module's podman settings."""
    conf = write_if_changed(cache_dir() / "containers.conf", CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def progress(message: str) -> None:
    """One line of progress on stderr (pytest shows it with -s, and on failure)."""
    print(f"[containers] {message}", file=sys.stderr, flush=True)


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run one short podman command with this module's settings; ContainerError on failure."""
    cmd = ["podman", *args]
    try:
        result = subprocess.run(
            cmd, env=podman_env(), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise ContainerError(f"`{_quote(cmd)}` did not finish within {timeout:.0f} s") from None
    if check and result.returncode != 0:
        raise ContainerError(
            f"`{_quote(cmd)}` failed (exit {result.returncode}):\n{result.stderr.strip()}"
        )
    return result


def _quote(cmd: Sequence[str]) -> str:
    return shlex.join(str(part) for part in cmd)


def stream(
    cmd: Sequence[str],
    *,
    label: str,
    timeout: float,
    stdin: IO[bytes] | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run a long command, echoing its output with a prefix; on failure keep its last lines."""
    tail: deque[str] = deque(maxlen=40)
    proc = subprocess.Popen(
        list(cmd),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=dict(env) if env is not None else podman_env(),
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            print(f"[{label}] {line.rstrip()}", file=sys.stderr, flush=True)
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code != 0:
        why = f"was killed after {timeout:.0f} s" if code == -9 else f"failed (exit {code})"
        last = "\n".join(tail)
        raise ContainerError(f"`{_quote(cmd)}` {why}; its last output:\n{last}")


@dataclass(frozen=True)
class Mount:
    """A host path bind-mounted into a build or container (read-only unless said otherwise)."""

    source: Path
    target: str
    read_only: bool = True

    def flag(self) -> str:
        return f"{self.source}:{self.target}{':ro' if self.read_only else ''}"


def build_image(
    context: Path,
    tag: str,
    *,
    dockerfile: Path | None = None,
    build_args: Mapping[str, str] | None = None,
    mounts: Sequence[Mount] = (),
    target: str | None = None,
    timeout: float = 1800,
) -> float:
    """`podman build` `context` into `tag`, echoing progress; return the seconds it took.

    Docker image format, so HEALTHCHECK survives (OCI has no field for it). Layers are cached
    in podman's store: a rebuild with unchanged inputs takes seconds.
    """
    require_podman(bootstrap=False)
    cmd = ["podman", "build", "--format", "docker", "--layers", "--force-rm", "--tag", tag]
    if dockerfile is not None:
        cmd += ["--file", str(dockerfile)]
    for key, value in (build_args or {}).items():
        cmd += ["--build-arg", f"{key}={value}"]
    for mount in mounts:
        cmd += ["--volume", mount.flag()]
    if target is not None:
        cmd += ["--target", target]
    cmd.append(str(context))
    previous = image_id(tag)
    start = time.perf_counter()
    progress(f"building {tag} from {context}")
    stream(cmd, label=f"build {tag}", timeout=timeout)
    seconds = time.perf_counter() - start
    progress(f"built {tag} in {seconds:.0f} s")
    if previous is not None and previous != image_id(tag):
        # The image the tag named before is now an untagged leftover: remove it (podman keeps
        # whatever the new image or the layer cache still uses; a container using it keeps it).
        podman("rmi", previous, check=False)
    return seconds


def image_id(image: str) -> str | None:
    """The image's id, or None when podman has no such image."""
    result = podman("image", "inspect", "--format", "{{.Id}}", image, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def image_labels(image: str) -> dict[str, str] | None:
    """The image's labels, or None when podman has no such image."""
    result = podman("image", "inspect", "--format", "{{json .Labels}}", image, check=False)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout or "null") or {}


@dataclass
class Container:
    """A running container started by `running_container`; `ports` maps container to host."""

    name: str
    ports: dict[int, int] = field(default_factory=dict)

    def url(self, port: int, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.ports[port]}{path}"

    def exec(
        self, *cmd: str, user: str | None = None, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`podman exec` in the container; ContainerError (with its output) if `check` fails."""
        args = ["exec", *(["--user", user] if user else []), self.name, *cmd]
        return podman(*args, timeout=timeout, check=check)

    def exec_streamed(self, *cmd: str, user: str | None = None, timeout: float = 1800) -> float:
        """A long `podman exec`, its output echoed as it comes; the seconds it took."""
        start = time.perf_counter()
        args = ["podman", "exec", *(["--user", user] if user else []), self.name, *cmd]
        stream(args, label=f"{self.name} {cmd[0]}", timeout=timeout)
        return time.perf_counter() - start

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def running(self) -> bool:
        result = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return result.stdout.strip() == "true"

    def processes(self) -> list[dict[str, str]]:
        """`podman top`: each process's pid in the container and on the host (hpid), its user
        in the container and on the host (huser), and its command line."""
        keys = ["pid", "hpid", "user", "huser", "args"]
        result = podman("top", self.name, *keys)
        rows = result.stdout.strip().splitlines()[1:]
        return [dict(zip(keys, row.split(None, len(keys) - 1), strict=True)) for row in rows]

    def wait_for_http(self, url: str, *, timeout: float = 60, status: int = 200) -> float:
        """Poll `url` until it answers `status`; the seconds waited. Fails fast if the container
        exits, and puts the container's log in the error either way."""
        import urllib.error  # here, not at the top: http.client and ssl cost ~30 ms to import
        import urllib.request

        start = time.perf_counter()
        last: object = None
        while time.perf_counter() - start < timeout:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == status:
                        return time.perf_counter() - start
                    last = f"status {response.status}"
            except urllib.error.HTTPError as exc:
                if exc.code == status:
                    return time.perf_counter() - start
                last = f"status {exc.code}"
            except OSError as exc:
                last = exc
            if not self.running():
                raise ContainerError(f"{self.name} exited before {url} answered:\n{self.logs()}")
            time.sleep(0.1)
        raise ContainerError(
            f"{url} did not answer {status} within {timeout:.0f} s (last: {last}); "
            f"{self.name}'s log:\n{self.logs()}"
        )


@contextlib.contextmanager
def running_container(
    image: str,
    *,
    publish: Sequence[int] = (),
    env: Mapping[str, str] | None = None,
    mounts: Sequence[Mount] = (),
    command: Sequence[str] = (),
    user: str | None = None,
    workdir: str | None = None,
    name: str | None = None,
) -> Iterator[Container]:
    """Run `image` detached, each `publish` port on a free 127.0.0.1 port; remove it on exit.

    `podman rm -f` runs however the body ends (an assertion, Ctrl-C), and also when start-up
    itself fails half-way. Without systemd, podman cannot schedule an image's HEALTHCHECK (it
    logs an error and carries on); `podman healthcheck run NAME` runs it once.
    """
    require_podman(bootstrap=False)
    name = name or f"workbook-{os.getpid()}-{secrets.token_hex(4)}"
    args = ["run", "--detach", "--name", name]
    for port in publish:
        args += ["--publish", f"127.0.0.1::{port}"]
    for key, value in (env or {}).items():
        args += ["--env", f"{key}={value}"]
    for mount in mounts:
        args += ["--volume", mount.flag()]
    if user is not None:
        args += ["--user", user]
    if workdir is not None:
        args += ["--workdir", workdir]
    try:
        podman(*args, image, *command, timeout=120)
        ports = {}
        for port in publish:
            address = podman("port", name, f"{port}/tcp").stdout.strip().splitlines()[0]
            host, _, host_port = address.rpartition(":")
            if host != "127.0.0.1":
                raise ContainerError(f"{name} published {port} on {address}, not on loopback")
            ports[port] = int(host_port)
        yield Container(name, ports)
    finally:
        podman("rm", "--force", "--time", "5", name, check=False, timeout=60)
