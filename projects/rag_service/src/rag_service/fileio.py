"""Crash-safe file writes, the one way this package puts anything on disk that it reads back.

Saved indexes, exported models, evaluation results and BEIR folders are read back later as
truth, so a crash (or SIGKILL) part-way through a write must never leave a file that looks
complete. The recipe: write to a name nothing refers to yet, fsync it, `os.replace` it over the
target (atomic on POSIX), then fsync the folder so the rename itself survives a power cut.

A saved index is several files that cannot all be renamed at once; there a manifest is the
commit point: data files get fresh names, and only when they are complete on disk does the
manifest switch to them with `replace_file`. A crash at any moment therefore leaves either the
old manifest with the old files or the new manifest with complete new files - never a mix.

Writes go through `os.write`/`os.fsync`/`os.replace` at call time (not bound at import), which
also lets a test kill a child process at exactly one of those steps.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

CHUNK_BYTES = 1 << 20
"""Write and hash in 1 MiB pieces: bounded extra memory, and a crash can leave a file
half-written (the case the manifests' sizes and hashes exist to catch)."""


def write_new_file(path: Path, data: bytes | bytearray | memoryview) -> None:
    """Create `path` (it must not exist), write all of `data` and fsync it."""
    view = memoryview(data).cast("B")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        for start in range(0, len(view), CHUNK_BYTES):
            piece = view[start : start + CHUNK_BYTES]
            while piece:
                written = os.write(fd, piece)
                piece = piece[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, data: bytes | bytearray | memoryview) -> None:
    """Atomically make `path` hold `data`: readers see the old content or the new, never part.

    The temporary name is unique, so two writers (threads or processes) never share one; a
    failed write removes its temporary file.
    """
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        write_new_file(temporary, data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def replace_text(path: Path | str, text: str) -> None:
    """`replace_file` for UTF-8 text, creating the parent folders first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, text.encode("utf-8"))


def commit_file(finished: Path, target: Path) -> None:
    """Move a file that another library wrote (an ONNX export) over `target` crash-safely:
    fsync its bytes, rename, fsync the folder."""
    fsync_path(finished)
    os.replace(finished, target)
    fsync_folder(target.parent)


def fsync_path(path: Path) -> None:
    """fsync one file or folder by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Persist a folder's entries (new names, renames): without it a crash can forget a rename."""
    fsync_path(folder)


def fsync_tree(folder: Path) -> None:
    """Flush every file and folder under `folder` (and `folder` itself) before a rename makes
    the tree visible."""
    for path in [*folder.rglob("*"), folder]:
        fsync_path(path)


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    """Hex SHA-256 of bytes in memory, the manifests' check that a file is the one written."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in pieces (model files are ~90 MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()
