"""Durable file writes: every file SimMIM owns (indexes, images, checkpoints) is written here.

A reader sees the old file or the new one, never half of either, and once this returns the
new one survives a power cut: the data is fsynced before the rename and the folder after it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TEMP_PREFIX = ".tmp-"


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """``write(tmp_path)`` beside ``path``, fsync, rename over ``path``, fsync the folder.

    ``write`` gets a path, not a handle, because FAISS and safetensors want to open the
    file themselves.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_directory(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def fsync_directory(folder: Path) -> None:
    """Make a rename inside ``folder`` survive a crash."""
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sweep_temp_files(folder: Path, *, older_than_s: float = 0.0) -> int:
    """Remove what interrupted atomic writes left behind. Call it only while holding the
    lock of the step that writes there (then no temp file can still be in use), or give
    ``older_than_s`` longer than any write takes (workers crawl side by side)."""
    removed = 0
    if not folder.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    for path in folder.rglob(f"{TEMP_PREFIX}*"):
        try:
            if path.is_file() and (not older_than_s or path.stat().st_mtime < cutoff):
                path.unlink(missing_ok=True)
                removed += 1
        except FileNotFoundError:  # another process finished or swept it meanwhile
            continue
    return removed
