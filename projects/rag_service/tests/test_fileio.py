"""The package's one crash-safe write path (the SIGKILL-at-each-step tests live with FAISS)."""

from __future__ import annotations

import os

import pytest

from rag_service.fileio import commit_file, fsync_tree, replace_file, replace_text, sha256_file


def test_replace_text_creates_folders_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "a" / "b" / "results.json"
    replace_text(target, "first")
    replace_text(target, "second ü")
    assert target.read_text("utf-8") == "second ü"
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]


def test_a_failed_write_keeps_the_old_content_and_removes_its_temporary(tmp_path, monkeypatch):
    target = tmp_path / "manifest.json"
    replace_file(target, b"old")

    def refuse(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", refuse)
    with pytest.raises(OSError, match="No space"):
        replace_file(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_commit_file_moves_a_finished_file_and_hashes_agree(tmp_path):
    finished = tmp_path / ".model.tmp.onnx"
    finished.write_bytes(b"x" * (3 << 20))
    target = tmp_path / "model.onnx"
    expected = sha256_file(finished)
    commit_file(finished, target)
    assert not finished.exists() and sha256_file(target) == expected
    fsync_tree(tmp_path)  # every file and folder can be flushed by path
