"""`make devcontainer-check`: the DevContainer built for real, set up, and running a notebook.

What a learner's editor does with .devcontainer/, done with podman on a machine without Docker:
build .devcontainer/Dockerfile FROM the bootstrapped Debian base (learn/containers/), copy the
repository into a container of it (tracked and untracked-but-not-ignored files: no .venv, no
build output), run devcontainer.json's postCreateCommand (`make setup`) as its remoteUser, then
execute one lab notebook there as `make test` does (pytest --nbval-lax). This machine's pip
settings (local wheels such as the CPU torch, the CA bundle of its egress proxy) are mounted in,
so `make setup` resolves packages as it does here. Prints a timing per step; exit 0 when all
pass. Needs root and podman (`make system-deps`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from learn import REPO_ROOT, containers

IMAGE = "localhost/workbook-devcontainer:check"
NOTEBOOK = "phases/phase0/notebooks/systems_design_lab.ipynb"
#: Where VS Code mounts a repository in a DevContainer.
WORKSPACE = "/workspaces/ai-architect-workbook"


def copy_repository(destination: Path) -> int:
    """Copy what a fresh clone plus the current edits holds (git's view); the file count."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    files = [name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file()]
    for name in files:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    return len(files)


def devcontainer_settings() -> tuple[str, str]:
    """devcontainer.json's postCreateCommand and remoteUser: what this check runs, as whom."""
    config = json.loads((REPO_ROOT / ".devcontainer" / "devcontainer.json").read_text())
    return config["postCreateCommand"], config["remoteUser"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", default=NOTEBOOK, help="repository-relative notebook")
    args = parser.parse_args(argv)
    timings: dict[str, float] = {}
    try:
        start = time.perf_counter()
        base = containers.ensure_base_image()
        timings["base image"] = time.perf_counter() - start
        timings["build the DevContainer image"] = containers.build_image(
            REPO_ROOT / ".devcontainer", IMAGE, build_args={"BASE_IMAGE": base}
        )
        post_create, user = devcontainer_settings()
        with tempfile.TemporaryDirectory(prefix="devcontainer-", dir="/var/tmp") as tmp:
            repository = Path(tmp) / "workbook"
            start = time.perf_counter()
            count = copy_repository(repository)
            timings[f"copy the repository ({count} files)"] = time.perf_counter() - start
            mounts = [containers.Mount(repository, WORKSPACE, read_only=False)]
            with containers.running_container(
                IMAGE,
                command=["bash", "-c", "trap 'exit 0' TERM; sleep infinity & wait"],
                mounts=mounts + containers.host_pip_mounts(),
                workdir=WORKSPACE,
                env={"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"},
            ) as box:
                box.exec("chown", "-R", f"{user}:{user}", WORKSPACE, user="root")
                timings[f"{post_create} (as {user})"] = box.exec_streamed(
                    "bash", "-c", post_create, user=user
                )
                timings[f"execute {args.notebook}"] = box.exec_streamed(
                    ".venv/bin/python",
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--nbval-lax",
                    args.notebook,
                    user=user,
                )
    except containers.ContainerError as exc:
        print(f"devcontainer-check: FAILED: {exc}", file=sys.stderr)
        return 1
    print("\ndevcontainer-check: passed")
    for step, seconds in timings.items():
        print(f"  {step:<60} {seconds:7.1f} s")
    print(f"  {'total':<60} {sum(timings.values()):7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
