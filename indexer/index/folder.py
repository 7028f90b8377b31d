"""The indexes folder's lifecycle: rebuilt beside the live one and swapped in, never cleared.

``simmim index --rebuild`` writes a whole new set into ``indexes.rebuild/``, marks it
complete, then swaps: ``indexes`` → ``indexes.old``, ``indexes.rebuild`` → ``indexes``.
Until the swap, search reads the old set; a crash at any point leaves either the old set
or a complete new one, and :func:`recover` (run before every index step) finishes or
undoes a swap that was cut short. Readers that find the live folder mid-swap read
whichever complete set is there (:func:`readable_folder`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from indexer.index.manifest import IndexFileError
from simmim.files import fsync_directory

COMPLETE = "COMPLETE"


def staging_of(live: Path) -> Path:
    return live.with_name(live.name + ".rebuild")


def previous_of(live: Path) -> Path:
    return live.with_name(live.name + ".old")


def start_staging(live: Path) -> Path:
    staging = staging_of(live)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def swap_in(live: Path) -> None:
    """Make the complete staging set the live one (two renames, recoverable between)."""
    staging, old = staging_of(live), previous_of(live)
    marker = staging / COMPLETE
    marker.write_bytes(b"")
    fsync_directory(staging)
    shutil.rmtree(old, ignore_errors=True)
    if live.exists():
        os.rename(live, old)
    os.rename(staging, live)
    fsync_directory(live.parent)
    (live / COMPLETE).unlink(missing_ok=True)
    shutil.rmtree(old, ignore_errors=True)


def require_folder(live: Path) -> None:
    """The indexes path is a folder (or not there yet): a file in its place is an error
    that says so, not a NotADirectoryError from deep inside a step."""
    for path in (live, staging_of(live), previous_of(live)):
        if path.exists() and not path.is_dir():
            raise IndexFileError(
                f"{path} is a file, not a folder: the indexes live in that folder",
                hint=f"move the file away (e.g. `mv {path} {path}.bak`), then run "
                "`simmim index` (it re-queues what the indexes lack)",
            )


def recover(live: Path) -> str | None:
    """Finish or undo an interrupted rebuild; returns what was done, for the log."""
    require_folder(live)
    staging, old = staging_of(live), previous_of(live)
    done = None
    if (staging / COMPLETE).exists():
        swap_in(live)  # the new set was whole: finish what the crash cut short
        done = "finished an interrupted index swap"
    elif not live.exists() and old.exists():
        os.rename(old, live)
        fsync_directory(live.parent)
        done = "restored the indexes from before an interrupted swap"
    if staging.exists():
        shutil.rmtree(staging, ignore_errors=True)
        done = done or "removed the files of an interrupted rebuild"
    if old.exists() and live.exists():
        shutil.rmtree(old, ignore_errors=True)
    (live / COMPLETE).unlink(missing_ok=True)
    return done


def readable_folder(live: Path) -> Path:
    """Where a reader finds a complete set right now, even in the instant of a swap."""
    if live.is_dir():
        return live
    staging, old = staging_of(live), previous_of(live)
    if (staging / COMPLETE).exists():
        return staging
    return old if old.is_dir() else live
