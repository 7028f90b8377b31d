"""Milvus Lite's one-process-per-file lock, said in words, and its log noise kept out.

Milvus Lite runs inside the process that opens its ``.db`` folder and takes an exclusive
``flock`` on ``LOCK`` in it; a second process (``simmim monitor once`` while the dashboard
is open) gets pymilvus's empty ``ConnectionConfigException`` and a traceback in the log.
Here: which process holds the lock (from ``/proc/locks`` on Linux), and log filters that
drop the traceback of a lock we report ourselves and the gRPC "Method not implemented"
errors pymilvus's client causes against Lite's partial server (harmless; four of them
printed by every demo).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

LOCK_FILENAME = "LOCK"  # milvus_lite.db.LOCK_FILENAME


def lock_holder(uri: str) -> str | None:
    """ "pid 1234 (simmim dashboard)" when another process holds the file's lock, "another
    process" where the holder cannot be named, None when the lock is free."""
    lock = Path(uri) / LOCK_FILENAME
    if not lock.is_file() or not _held_elsewhere(lock):
        return None
    pid = _pid_of_flock(lock)
    if pid is None:
        return "another process"
    return f"pid {pid} ({_command(pid)})"


def _held_elsewhere(lock: Path) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: msvcrt locks; say nothing we cannot check
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _pid_of_flock(lock: Path) -> int | None:
    """The pid /proc/locks gives for a FLOCK on this file's device and inode."""
    stat = lock.stat()
    wanted = (os.major(stat.st_dev), os.minor(stat.st_dev), stat.st_ino)
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 12345 08:01:123456 0 EOF" ("->" marks a waiter)
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            major, minor, inode = fields[5].split(":")
            found = (int(major, 16), int(minor, 16), int(inode))
            pid = int(fields[4])
        except ValueError:
            continue
        if found == wanted and pid != os.getpid():
            return pid
    return None


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "unknown command"
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    # "python .venv/bin/simmim dashboard" reads as "simmim dashboard"
    for i, word in enumerate(words):
        if Path(word).name in ("simmim", "streamlit"):
            return " ".join([Path(word).name, *words[i + 1 : i + 3]])
    return " ".join(words[:3])[:80] or "unknown command"


class _DropLiteNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if record.name == "grpc._server" and isinstance(error, NotImplementedError):
            return False  # pymilvus asks Lite's server for calls it does not serve
        return not (error is not None and type(error).__name__ == "DataDirLockedError")


_FILTER = _DropLiteNoise()


def quiet_lite_logs() -> None:
    """Installed once per process, when a Lite URI is opened."""
    for name in ("grpc._server", "milvus_lite.server_manager"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
