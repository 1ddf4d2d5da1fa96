"""`learn start`: a scaffold for the real Phase 0 that never loses a learner's edits."""

import json

import pytest

from learn import REPO_ROOT
from learn.manifest import load_manifest
from learn.regions import find_notebook_regions, find_regions
from learn.scaffold import WorkspaceConflict, build_scaffold, iter_source_files, start_phase
from learn.state import load_state, state_path

PHASE0 = load_manifest().phase("phase0")


def test_scaffold_strips_every_region_and_keeps_the_rest():
    scaffold = build_scaffold(PHASE0)
    assert set(scaffold) == {p.as_posix() for p in iter_source_files(PHASE0)}
    stripped = 0
    for rel, content in scaffold.items():
        reference = (REPO_ROOT / rel).read_bytes()
        text = content.decode("utf-8", errors="replace")
        assert "BEGIN SOLUTION" not in text, rel
        if rel.endswith(".ipynb"):
            regions = find_notebook_regions(reference.decode(), rel)
        else:
            regions = find_regions(reference.decode("utf-8", errors="replace"), rel)
        if regions:
            stripped += 1
            assert content != reference
            for region in regions:  # the placeholder (raise or prompt) names the checkpoint
                assert region.checkpoint in text, (rel, region)
        else:
            assert content == reference, f"{rel} has no region but changed"
    assert stripped >= 2, "phase 0 should have regions in several files"


def test_scaffold_python_files_import_cleanly(tmp_path):
    """A fresh scaffold's modules import (they only raise when called)."""
    import subprocess
    import sys

    start_phase(PHASE0, tmp_path)
    root = tmp_path / PHASE0.pythonpath[0]
    packages = sorted(p.name for p in root.iterdir() if (p / "__init__.py").exists())
    code = "; ".join(
        f"import importlib, pkgutil, {pkg}; "
        f"[importlib.import_module(m.name) for m in pkgutil.walk_packages({pkg}.__path__, "
        f"'{pkg}.')]"
        for pkg in packages
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


def test_start_writes_state_and_is_idempotent(tmp_path):
    first = start_phase(PHASE0, tmp_path)
    assert first.written and not first.kept
    record = load_state(tmp_path).phases["phase0"]
    assert set(record.files) == set(first.written)
    again = start_phase(PHASE0, tmp_path)
    assert again.written == [] and again.kept == []


def _a_stripped_file(tmp_path):
    scaffold = build_scaffold(PHASE0)
    rel = next(r for r, c in scaffold.items() if c != (REPO_ROOT / r).read_bytes())
    return rel, tmp_path / rel


def test_learner_edits_are_kept_when_the_scaffold_did_not_change(tmp_path):
    start_phase(PHASE0, tmp_path)
    rel, path = _a_stripped_file(tmp_path)
    path.write_text(path.read_text() + "\n# my work\n")
    result = start_phase(PHASE0, tmp_path)
    assert result.kept == [rel]
    assert path.read_text().endswith("# my work\n")


def test_newer_scaffold_over_learner_edits_is_refused_then_backed_up(tmp_path):
    start_phase(PHASE0, tmp_path)
    rel, path = _a_stripped_file(tmp_path)
    path.write_text("# my precious work\n")
    # Pretend the scaffold we generated earlier was different from today's.
    state_file = state_path(tmp_path)
    data = json.loads(state_file.read_text())
    data["phases"]["phase0"]["files"][rel] = "0" * 64
    state_file.write_text(json.dumps(data))

    with pytest.raises(WorkspaceConflict, match=rel):
        start_phase(PHASE0, tmp_path)
    assert path.read_text() == "# my precious work\n", "refusal must write nothing"

    result = start_phase(PHASE0, tmp_path, force=True)
    assert result.backed_up == [rel]
    assert (result.backup_dir / rel).read_text() == "# my precious work\n"
    assert path.read_text() != "# my precious work\n"


def test_deleted_file_is_restored(tmp_path):
    start_phase(PHASE0, tmp_path)
    rel, path = _a_stripped_file(tmp_path)
    path.unlink()
    assert rel in start_phase(PHASE0, tmp_path).written
