"""`make test`'s stage runner: a timing line per stage, and a work tree the run left clean."""

import subprocess
import sys

from learn import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import run_stages  # noqa: E402


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / ".gitignore").write_text("out/\n")
    (repo / "tracked.txt").write_text("v1\n")
    (repo / "wip.txt").write_text("mine\n")
    _git(repo, "add", ".gitignore", "tracked.txt")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return repo


def test_changes_made_by_the_run_are_reported_and_earlier_ones_are_not(tmp_path):
    repo = _repo(tmp_path)
    (repo / "wip.txt").write_text("mine, edited before the run\n")
    before = run_stages.tree_snapshot(repo)
    (repo / "out").mkdir()
    (repo / "out" / "ignored.json").write_text("{}")  # ignored: fine
    assert run_stages.tree_changes(before, run_stages.tree_snapshot(repo)) == []
    (repo / "tracked.txt").write_text("v2\n")
    (repo / "mlflow.db").write_bytes(b"x")
    changes = run_stages.tree_changes(before, run_stages.tree_snapshot(repo))
    assert changes == ["new: mlflow.db", "modified: tracked.txt"]


def test_not_a_checkout_skips_the_check(tmp_path):
    assert run_stages.tree_snapshot(tmp_path) is None


def test_stages_run_in_order_and_the_summary_times_each(capsys):
    code = run_stages.main(["first=true", "second=exit 3", "third=true"])
    out = capsys.readouterr().out
    assert code == 1
    assert "first" in out and "second" in out and "FAILED" in out
    assert "third 0 s" not in out, "without --keep-going a failure stops the run"
    code = run_stages.main(["--keep-going", "a=true", "b=exit 1", "c=true"])
    line = capsys.readouterr().out.splitlines()
    summary = next(x for x in line if x.startswith("make test stages:"))
    assert "a 0 s ok" in summary and "b 0 s FAILED" in summary and "c 0 s ok" in summary
    assert code == 1
