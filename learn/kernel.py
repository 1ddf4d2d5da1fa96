"""The workbook's Jupyter kernel: the lab notebooks import the code of the tree they sit in.

The workbook's environment installs every project package in editable mode, so a notebook in
the workbook imports ``scratch_ml`` like any installed package. A learner's workspace holds its
own, half-written copy of the same packages; a plain kernel would import the *reference* there
and run cells the learner has not written yet. This kernel looks for the workspace the notebook
sits in (``.learn/state.json`` at or above the kernel's working directory, which Jupyter,
VS Code and nbclient set to the notebook's folder) and puts that tree's ``pythonpath`` folders
from curriculum.yaml first on ``sys.path`` (and on ``PYTHONPATH`` for subprocesses); in the
workbook itself it does the same for the workbook. Every lab notebook names this kernel
(``learn``) in its metadata; `make setup` and `learn start` install it into the environment.

    python -m learn.kernel install     # (re)write <prefix>/share/jupyter/kernels/learn
    python -m learn.kernel -f FILE     # what Jupyter runs: the kernel itself
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

KERNEL_NAME = "learn"
DISPLAY_NAME = "Python 3 (AI Architect Workbook)"


def kernel_dir(prefix: str | Path | None = None) -> Path:
    """Where Jupyter looks for this environment's kernels: <prefix>/share/jupyter/kernels."""
    return Path(prefix or sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME


def kernel_spec(python: str | None = None) -> dict:
    """The kernel.json that starts this module with the environment's own Python."""
    return {
        "argv": [python or sys.executable, "-m", "learn.kernel", "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "metadata": {"debugger": True},
    }


def install_kernel(prefix: str | Path | None = None) -> Path:
    """Write the kernel spec (idempotent; rewritten only when it changed); return its folder."""
    folder = kernel_dir(prefix)
    spec = json.dumps(kernel_spec(), indent=1) + "\n"
    target = folder / "kernel.json"
    if not target.is_file() or target.read_text(encoding="utf-8") != spec:
        from learn.state import atomic_write

        atomic_write(target, spec)  # a kernel starting meanwhile never reads half a file
    return folder


def kernel_installed(prefix: str | Path | None = None) -> bool:
    """Whether this environment's kernel spec exists and starts this environment's Python."""
    target = kernel_dir(prefix) / "kernel.json"
    try:
        return json.loads(target.read_text(encoding="utf-8")) == kernel_spec()
    except (OSError, ValueError):
        return False


def code_root(cwd: Path) -> Path:
    """The tree whose code a notebook in `cwd` should import: its workspace, or the workbook."""
    from learn import REPO_ROOT
    from learn.workspace import enclosing_workspace

    return enclosing_workspace(cwd) or REPO_ROOT


def import_paths(root: Path) -> list[Path]:
    """Every phase's `pythonpath` folder that exists under `root`, in manifest order."""
    from learn.workspace import lab_paths

    return [folder for folder in lab_paths(root) if folder.is_dir()]


def _prepare_paths(cwd: Path) -> None:
    from learn.workspace import without_reference

    root = code_root(cwd)
    paths = [str(p) for p in import_paths(root)]
    sys.path[:] = paths + without_reference(sys.path, root)
    inherited = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*paths, *([inherited] if inherited else [])])


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["install"]:
        print(f"Installed the {KERNEL_NAME!r} Jupyter kernel in {install_kernel()}")
        return
    # As ipykernel_launcher does: drop the working directory that `-m` put first; IPython
    # adds it back (after our paths) for the notebook's own imports.
    if sys.path and (sys.path[0] in ("", os.getcwd())):
        del sys.path[0]
    _prepare_paths(Path.cwd())
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


if __name__ == "__main__":
    main()
