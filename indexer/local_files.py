"""Local files named by sources: confined to the source's root, regular files only, capped.

A JSONL dump names pictures by path and a folder may hold symlinks; both are data from
whoever wrote the dump, so every path is resolved (symlinks included) and must land inside
the source's own root or one of ``crawler.local_roots``. Devices, FIFOs, sockets and
folders are refused, and reads are capped by the bytes actually read: ``st_size`` says 0
for ``/dev/zero``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from indexer.net.errors import FetchError


class RefusedPath(FetchError):
    def __init__(self, detail: str, *, url: str = "") -> None:
        super().__init__("refused path", detail, url=url)


def confine(name: str | Path, root: Path, extra_roots: Sequence[Path] = ()) -> Path:
    """The real path ``name`` (relative to ``root``) points to, if it stays inside a root.

    Absolute names are accepted only when they resolve inside a root; ``~`` is not expanded
    (a dump cannot name the crawler's home); ``..`` and symlinks are followed first and the
    result judged, so neither can escape.
    """
    text = str(name)
    if "\x00" in text:
        raise RefusedPath(f"{text!r} contains a NUL byte")
    if text.startswith("~"):
        raise RefusedPath(f"{text!r}: home-relative paths are not allowed in a source")
    if text.lower().startswith("file:"):
        raise RefusedPath(f"{text!r}: give a path relative to the source, not a file: URL")
    base = root.resolve()
    candidate = Path(text) if Path(text).is_absolute() else base / text
    try:
        real = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise FetchError("missing file", f"{text} does not exist", url=text) from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a permission problem
        raise RefusedPath(f"{text}: {exc}", url=text) from None
    if not inside_roots(real, [base, *extra_roots]):
        raise RefusedPath(
            f"{text} resolves to {real}, outside the source's folder {base}"
            + (" and the configured local roots" if extra_roots else ""),
            url=text,
        )
    return real


def require_regular(path: Path) -> os.stat_result:
    try:
        info = os.stat(path)
    except OSError as exc:
        raise FetchError("unreadable file", f"{path}: {exc.strerror}", url=str(path)) from None
    if not stat.S_ISREG(info.st_mode):
        raise RefusedPath(f"{path} is not a regular file ({_kind(info.st_mode)})", url=str(path))
    return info


def open_regular(path: Path) -> BinaryIO:
    """The file opened for reading, if it is (still, once open) a regular file."""
    require_regular(path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: a FIFO swapped in meanwhile cannot hang us
    except OSError as exc:
        raise FetchError("unreadable file", f"{path}: {exc.strerror}", url=str(path)) from None
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        handle.close()
        raise RefusedPath(f"{path} is not a regular file", url=str(path))
    return handle


def read_capped(path: Path, max_bytes: int) -> bytes:
    """The whole file, if it is a regular file of at most ``max_bytes`` bytes."""
    with open_regular(path) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FetchError(
            "too large",
            f"{path} is over {max_bytes} bytes (SIMMIM_CRAWLER__MAX_BYTES)",
            url=str(path),
        )
    return data


def inside_roots(path: Path, roots: Sequence[Path]) -> bool:
    """Whether ``path``, resolved, is one of ``roots`` or lies below one."""
    real = path.expanduser().resolve()
    return any(real.is_relative_to(Path(root).expanduser().resolve()) for root in roots)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


def local_source_path(location: str, roots: Sequence[Path]) -> Path:
    """A local source's own file or folder, resolved; inside ``roots`` when any are set."""
    path = Path(location).expanduser().resolve()
    if not path.exists():
        raise FetchError("missing file", f"{path} does not exist", url=str(path))
    if roots and not inside_roots(path, roots):
        raise RefusedPath(
            f"{path} is outside the configured local roots ({', '.join(str(r) for r in roots)})",
            url=str(path),
        )
    return path
