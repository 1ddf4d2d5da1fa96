"""The curriculum manifest: valid, and in one-to-one agreement with the checkpoint tests."""

import ast
import copy
from pathlib import Path

import pytest
import yaml

from learn import REPO_ROOT
from learn.manifest import MANIFEST_PATH, ManifestError, load_manifest, parse_manifest

RAW = yaml.safe_load(MANIFEST_PATH.read_text())


def checkpoint_markers() -> dict[str, list[str]]:
    """Checkpoint id -> test functions marked with it, found statically under checkpoints/."""
    found: dict[str, list[str]] = {}
    for path in sorted((REPO_ROOT / "checkpoints").rglob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.ClassDef):
                continue
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Attribute)
                    and deco.func.attr == "checkpoint"
                ):
                    cid = ast.literal_eval(deco.args[0])
                    found.setdefault(cid, []).append(f"{path.relative_to(REPO_ROOT)}::{node.name}")
    return found


def test_manifest_loads_with_six_phases_in_order():
    manifest = load_manifest()
    assert [p.number for p in manifest.phases] == [0, 1, 2, 3, 4, 5]
    assert manifest.phase("0") is manifest.phase("phase0")


def test_every_manifest_checkpoint_has_a_test_and_every_test_a_checkpoint():
    markers = checkpoint_markers()
    manifest_ids = {c.id for c in load_manifest().all_checkpoints()}
    assert manifest_ids, "no checkpoints in the manifest"
    assert sorted(manifest_ids - markers.keys()) == [], "checkpoints without tests"
    assert sorted(markers.keys() - manifest_ids) == [], "tests for unknown checkpoints"


def test_checkpoint_tests_live_in_their_phase_folder():
    manifest = load_manifest()
    for cid, tests in checkpoint_markers().items():
        phase = manifest.checkpoint(cid).phase
        for test in tests:
            assert test.startswith(f"checkpoints/{phase}/"), test


def test_every_test_under_checkpoints_is_graded():
    """A test without a checkpoint marker would run but count for nothing."""
    for path in (REPO_ROOT / "checkpoints").rglob("test_*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                names = [ast.unparse(d) for d in node.decorator_list]
                assert any("checkpoint" in n for n in names), f"{path}::{node.name} unmarked"


def test_book_sections_exist_for_phases_and_checkpoints():
    manifest = load_manifest()
    docs = [p.book for p in manifest.phases] + [c.book_doc for c in manifest.all_checkpoints()]
    for doc in docs:
        candidates = [REPO_ROOT / "book" / f"{doc}{ext}" for ext in (".md", ".ipynb")]
        assert any(c.exists() for c in candidates), f"book/{doc} is missing"


def test_phase_sources_and_projects_resolve():
    manifest = load_manifest()
    for phase in manifest.phases:
        for source in phase.sources:
            assert (REPO_ROOT / source).is_dir(), source
        for project in phase.projects:
            assert manifest.project(project).phase == phase.id


def test_renamed_checkpoint_resolves_to_its_new_id():
    data = copy.deepcopy(RAW)
    data["phases"][0]["checkpoints"][0]["renamed_from"] = ["0.99"]
    manifest = parse_manifest(data)
    first = manifest.phases[0].checkpoints[0]
    assert manifest.canonical_id("0.99") == first.id
    assert manifest.canonical_id("7.77") is None


def _broken(mutate) -> dict:
    data = copy.deepcopy(RAW)
    mutate(data)
    return data


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(schema_version=99), "schema_version 99"),
        (lambda d: d["phases"][0]["checkpoints"][0].pop("points"), "missing field 'points'"),
        (lambda d: d["phases"][0]["checkpoints"][1].update(id="0.1"), "duplicate"),
        (lambda d: d["phases"][0]["checkpoints"][0].update(id="one"), "should look like"),
        (lambda d: d["phases"][1].update(prerequisites=["phase9"]), "unknown prerequisite"),
        (lambda d: d["phases"][1].update(projects=["nope"]), "unknown project"),
        (lambda d: d["phases"][0].update(title=3), "should be"),
    ],
)
def test_malformed_manifest_errors_name_the_problem(mutate, message):
    with pytest.raises(ManifestError, match=message):
        parse_manifest(_broken(mutate))


def test_missing_manifest_file_is_a_clear_error(tmp_path: Path):
    from learn.manifest import read_manifest

    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "curriculum.yaml")
    (tmp_path / "curriculum.yaml").write_text("phases: [unclosed\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        read_manifest(tmp_path / "curriculum.yaml")
