"""The `learn` kernel: a lab notebook imports the code of the tree it sits in."""

import json
import shutil

import pytest

from learn import REPO_ROOT
from learn.kernel import KERNEL_NAME, install_kernel, kernel_installed
from learn.state import State, save_state

PROBE = "import {module}, pathlib\nprint(pathlib.Path({module}.__file__).resolve())"


def _run_notebook(folder, module="sysdesign"):
    """Run a notebook on the learn kernel from `folder`; return where `module` came from."""
    import nbformat
    from nbclient import NotebookClient

    cell = nbformat.v4.new_code_cell(PROBE.format(module=module))
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "x", "language": "py"}
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": str(folder)}}).execute()
    return "".join(o.get("text", "") for o in notebook.cells[0].outputs).strip()


@pytest.fixture(scope="module", autouse=True)
def kernel():
    install_kernel()
    assert kernel_installed()


def test_every_lab_notebook_names_the_learn_kernel():
    notebooks = sorted((REPO_ROOT / "phases").glob("*/notebooks/*.ipynb"))
    assert notebooks
    for path in notebooks:
        spec = json.loads(path.read_text())["metadata"]["kernelspec"]
        assert spec["name"] == KERNEL_NAME, path


def test_in_the_workbook_the_reference_is_imported():
    printed = _run_notebook(REPO_ROOT / "phases" / "phase0" / "notebooks")
    assert printed == str(REPO_ROOT / "phases" / "phase0" / "sysdesign" / "__init__.py")


def test_in_a_workspace_its_own_code_is_imported(tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(REPO_ROOT / "phases" / "phase0", ws / "phases" / "phase0")
    save_state(ws, State())
    printed = _run_notebook(ws / "phases" / "phase0" / "notebooks")
    assert printed == str((ws / "phases" / "phase0" / "sysdesign" / "__init__.py").resolve())


def test_in_a_workspace_its_packages_beat_the_installed_reference(tmp_path):
    """scratch_ml is installed (editable) from the workbook; a workspace's own copy wins."""
    ws = tmp_path / "ws"
    src = ws / "projects" / "scratch_ml" / "src"
    shutil.copytree(
        REPO_ROOT / "projects" / "scratch_ml" / "src" / "scratch_ml", src / "scratch_ml"
    )
    (ws / "notebooks").mkdir()
    save_state(ws, State())
    printed = _run_notebook(ws / "notebooks", module="scratch_ml")
    assert printed == str((src / "scratch_ml" / "__init__.py").resolve())
    reference = _run_notebook(REPO_ROOT / "phases" / "phase1" / "notebooks", module="scratch_ml")
    assert reference == str(
        REPO_ROOT / "projects" / "scratch_ml" / "src" / "scratch_ml" / "__init__.py"
    )
