"""Image folders: each picture is an item; a sidecar .txt/.json of the same name captions it."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from indexer.local_files import confine, local_source_path, read_capped, require_regular
from indexer.net.errors import FetchError
from indexer.net.fetcher import Fetcher
from indexer.sources.base import Candidate, ReadResult, Rejected, isolated
from simmim.models import Source

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
EXIF_DATETIME_ORIGINAL, EXIF_DATETIME = 36867, 306


def _exif_time(path: Path) -> datetime | None:
    try:
        with Image.open(path) as image:  # reads the header only: no pixels are decoded
            exif = image.getexif()
            value = exif.get_ifd(0x8769).get(EXIF_DATETIME_ORIGINAL) or exif.get(EXIF_DATETIME)
    except Exception:  # a time is optional: a bomb, a truncated or odd file just has none
        return None
    if not value:
        return None
    try:
        return datetime.strptime(str(value).strip(), "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


SIDECAR_MAX_BYTES = 1 << 20


def _sidecar(path: Path, root: Path, roots: Sequence[Path]) -> tuple[dict[str, str], str | None]:
    """Caption fields from photo.txt (all text) or photo.json (title/text/caption/url/author).

    Sidecars are confined like the pictures: a ``photo.txt`` that links to ``/etc/shadow``
    is refused, not read into a caption.
    """
    txt, js = path.with_suffix(".txt"), path.with_suffix(".json")
    for sidecar in (js, txt):
        if not sidecar.exists() and not sidecar.is_symlink():
            continue
        try:
            data = read_capped(confine(sidecar, root, roots), SIDECAR_MAX_BYTES)
        except FetchError as exc:
            return {}, f"{sidecar.name}: {exc.reason}: {exc.detail}"
        if sidecar is txt:
            return {"text": data.decode("utf-8", errors="replace").strip()}, None
        try:
            fields = json.loads(data.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return {}, f"{js.name}: not valid JSON ({exc})"
        if not isinstance(fields, dict):
            return {}, f"{js.name}: expected an object"
        return {k: str(v) for k, v in fields.items() if isinstance(v, str | int | float)}, None
    return {}, None


def _pictures(root: Path) -> list[Path]:
    """Every picture below ``root`` in :func:`_order`, without descending into linked folders."""
    found = []
    for folder, subfolders, files in os.walk(root, followlinks=False):
        subfolders.sort()
        found += [Path(folder) / f for f in files if Path(f).suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found, key=lambda p: _order(str(p.relative_to(root))))


def _order(relative: str) -> tuple[str, ...]:
    """The one order pictures are read and resumed in: by path component, so ``x/0500.png``
    and ``x-cover.png`` compare the same way when sorted and when resumed (as plain
    strings ``-`` sorts before ``/``, as paths ``x`` before ``x-cover.png``)."""
    return Path(relative).parts


async def read_folder(source: Source, fetcher: Fetcher, limit: int) -> ReadResult:
    """Up to ``limit`` pictures in name order, after the last one the previous crawl read
    (``source.read_cursor``); at the end of the folder the next crawl starts over, so
    pictures added anywhere are found (the known ones are skipped as duplicates)."""
    roots = fetcher.settings.local_roots
    root = local_source_path(source.location, roots)
    if not root.is_dir():
        raise FetchError("missing folder", f"{root} is not a folder", url=str(root))
    pictures = await asyncio.to_thread(_pictures, root)
    after = str((source.read_cursor or {}).get("after", ""))
    if after:
        resume = _order(after)
        todo = [p for p in pictures if _order(str(p.relative_to(root))) > resume]
    else:
        todo = pictures
    records: list[Candidate | Rejected] = []
    taken = 0
    for path in todo:
        if len(records) >= limit:
            break
        taken += 1
        records.extend(await asyncio.to_thread(_read_picture, path, root, roots))
    left = len(todo) - taken
    cursor = {"after": str(todo[taken - 1].relative_to(root))} if left and taken else None
    return ReadResult(records, cursor=cursor, remaining=left)


def _read_picture(path: Path, root: Path, roots: Sequence[Path]) -> list[Candidate | Rejected]:
    try:
        real = confine(path, root, roots)
        info = require_regular(real)
    except FetchError as exc:
        return [Rejected(str(path), exc.reason, exc.detail)]
    out: list[Candidate | Rejected] = []
    fields, problem = _sidecar(path, root, roots)
    if problem:
        out.append(Rejected(str(path), "bad sidecar", problem))
    caption = fields.get("text") or fields.get("caption")
    out.append(
        isolated(
            str(path),
            lambda: Candidate(
                where=str(path),
                key=path.resolve().as_uri(),
                url=fields.get("url"),
                external_id=str(path.relative_to(root)),
                title=fields.get("title"),
                text=caption,
                author=fields.get("author"),
                published_at=_exif_time(real) or datetime.fromtimestamp(info.st_mtime, UTC),
                image_path=real,
            ),
        )
    )
    return out
