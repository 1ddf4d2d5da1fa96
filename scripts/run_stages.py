"""Run `make test`'s stages in order, time each, and fail if the run dirtied the work tree.

    python scripts/run_stages.py [--keep-going] NAME=COMMAND ...

Each stage is a shell command; its output streams through unchanged. At the end one line per
stage gives its time and result, so a slow stage is visible in every CI log. Then the work
tree is compared with a snapshot taken before the first stage: a file that is neither tracked
nor ignored and was not there before, or a tracked file whose content the run changed, fails
the run (a test that writes into the repository is a bug: outputs belong in ignored folders
or temporary directories). Changes that were there before the run are left alone, so a
developer can run `make test` with work in progress.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class StageResult:
    name: str
    seconds: float
    code: int


def tree_snapshot(root: Path = ROOT) -> dict[str, tuple[str, str]] | None:
    """{path: (git status, content hash)} of every changed or untracked (not ignored) file.

    None when this is not a git checkout (a tarball): then there is nothing to compare.
    """
    if shutil.which("git") is None or not (root / ".git").exists():
        return None
    status = subprocess.run(
        ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"],
        cwd=root,
        capture_output=True,
    )
    if status.returncode != 0:  # e.g. git's "dubious ownership" refusal
        reason = status.stderr.decode(errors="replace").strip()
        print(f"work-tree check skipped: git status failed: {reason}", file=sys.stderr)
        return None
    listed = status.stdout
    snapshot = {}
    entries = iter(listed.split(b"\0"))
    for entry in entries:
        if not entry:
            continue
        code, path = entry[:2].decode(), entry[3:].decode(errors="surrogateescape")
        if code.startswith(("R", "C")):
            next(entries, None)  # a rename carries its old path as the next entry
        file = root / path
        snapshot[path] = (code, _digest(file) if file.is_file() else "absent")
    return snapshot


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_changes(
    before: dict[str, tuple[str, str]], after: dict[str, tuple[str, str]]
) -> list[str]:
    """Paths the run added, removed or changed, relative to the snapshot taken before it."""
    changed = []
    for path in sorted(set(before) | set(after)):
        if before.get(path) == after.get(path):
            continue
        if path not in after:
            how = "restored"  # the run undid a change that was there before it
        elif after[path][0] == "??":
            how = "new"
        elif "D" in after[path][0]:
            how = "deleted"
        else:
            how = "modified"
        changed.append(f"{how}: {path}")
    return changed


def run_stage(name: str, command: str) -> StageResult:
    print(f"\n=== stage {name}: {command}", flush=True)
    started = time.monotonic()
    code = subprocess.run(command, shell=True, cwd=ROOT).returncode
    return StageResult(name, time.monotonic() - started, code)


def summary(results: list[StageResult], total: float) -> str:
    parts = [f"{r.name} {r.seconds:.0f} s {'ok' if r.code == 0 else 'FAILED'}" for r in results]
    return f"make test stages: {' | '.join(parts)} | total {total:.0f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stages", nargs="+", metavar="NAME=COMMAND")
    parser.add_argument(
        "--keep-going", action="store_true", help="run later stages after a failure"
    )
    args = parser.parse_args(argv)
    stages = []
    for spec in args.stages:
        name, sep, command = spec.partition("=")
        if not sep or not name or not command:
            parser.error(f"a stage is NAME=COMMAND, got {spec!r}")
        stages.append((name, command))
    before = tree_snapshot()
    started = time.monotonic()
    results: list[StageResult] = []
    for name, command in stages:
        results.append(run_stage(name, command))
        if results[-1].code != 0 and not args.keep_going:
            break
    failed = any(r.code != 0 for r in results) or len(results) < len(stages)
    after = tree_snapshot()
    changes = tree_changes(before, after) if before is not None and after is not None else []
    print()
    print(summary(results, time.monotonic() - started), flush=True)
    if changes:
        print("make test changed the work tree (outputs belong in ignored or temporary folders):")
        for line in changes:
            print(f"  {line}")
    elif before is None:
        print("work tree: not checked (not a git checkout, or git status failed)")
    else:
        print("work tree: clean (nothing added or modified by the run)")
    return 1 if failed or changes else 0


if __name__ == "__main__":
    sys.exit(main())
