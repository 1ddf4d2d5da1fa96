"""What `learn fork` copies stands alone: no relative path in it leads out of the project."""

import re
from pathlib import Path

import pytest

from learn import REPO_ROOT
from learn.files import iter_files
from learn.fork import CONSTRAINTS
from learn.manifest import load_manifest

LANDED = [p for p in load_manifest().projects if p.exists()]
#: A relative path that climbs: ../x, ../../x/y.
CLIMBING = re.compile(r"(?:\.\./)+[\w.\-/]*")


def escapes(file: Path, root: Path) -> list[str]:
    """Relative paths in `file` that, resolved from its folder, land outside `root`."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []  # binary
    found = []
    for match in CLIMBING.finditer(text):
        target = (file.parent / match.group(0)).resolve()
        if not target.is_relative_to(root.resolve()):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{file.relative_to(root)}:{line}: {match.group(0)}")
    return found


@pytest.mark.parametrize("project", LANDED, ids=lambda p: p.id)
def test_no_path_leads_out_of_the_project(project):
    root = REPO_ROOT / project.path
    found = [hit for rel in iter_files(root) for hit in escapes(root / rel, root)]
    assert not found, "paths out of the project (a fork would break):\n" + "\n".join(found)


def test_the_constraints_a_fork_takes_along_name_nothing_outside():
    assert not escapes(CONSTRAINTS, CONSTRAINTS.parent)
    assert "shared/" not in CONSTRAINTS.read_text()


def test_the_check_finds_a_path_that_climbs_out(tmp_path):
    (tmp_path / "pkg" / "docs").mkdir(parents=True)
    inside = tmp_path / "pkg" / "docs" / "a.md"
    inside.write_text("see ../README.md and ../../elsewhere/x.py\n")
    assert escapes(inside, tmp_path / "pkg") == ["docs/a.md:1: ../../elsewhere/x.py"]
