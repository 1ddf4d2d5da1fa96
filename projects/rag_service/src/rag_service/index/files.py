"""Crash-safe file writes for saved indexes: new files are fsynced, small ones replaced atomically.

A saved index is several files (the engine's bytes, the id map, a manifest). They cannot all be
renamed at once, so the manifest is the commit point: data files get fresh names that nothing
refers to yet, and only when they are complete on disk does the manifest switch to them by
`os.replace` (atomic on POSIX). A crash at any moment therefore leaves either the old manifest
with the old files, or the new manifest with complete new files - never a mix.

Writes go through `os.write`/`os.fsync`/`os.replace` at call time (not bound at import), which
also lets a test kill a child process at exactly one of those steps.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK_BYTES = 1 << 20
"""Write in 1 MiB pieces: bounded extra memory, and a crash can leave a file half-written (the
case the manifest's sizes and hashes exist to catch)."""


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


def replace_file(path: Path, data: bytes) -> None:
    """Atomically make `path` hold `data`: readers see the old content or the new, never part."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    write_new_file(temporary, data)
    os.replace(temporary, path)
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Persist a folder's entries (new names, renames): without it a crash can forget a rename."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    """Hex SHA-256, the manifest's check that a file is the one that was written."""
    return hashlib.sha256(data).hexdigest()
