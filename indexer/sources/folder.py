"""Image folders: each picture is an item; a sidecar .txt/.json of the same name captions it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from indexer.net.errors import FetchError
from indexer.net.fetcher import Fetcher
from indexer.sources.base import Candidate, ReadResult, Rejected
from simmim.models import Source

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
EXIF_DATETIME_ORIGINAL, EXIF_DATETIME = 36867, 306


def _exif_time(path: Path) -> datetime | None:
    try:
        with Image.open(path) as image:
            exif = image.getexif()
            value = exif.get_ifd(0x8769).get(EXIF_DATETIME_ORIGINAL) or exif.get(EXIF_DATETIME)
    except (OSError, ValueError, SyntaxError):
        return None
    if not value:
        return None
    try:
        return datetime.strptime(str(value).strip(), "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _sidecar(path: Path) -> tuple[dict[str, str], str | None]:
    """Caption fields from photo.txt (all text) or photo.json (title/text/caption/url/author)."""
    txt, js = path.with_suffix(".txt"), path.with_suffix(".json")
    if js.is_file():
        try:
            data = json.loads(js.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return {}, f"{js.name}: not valid JSON ({exc})"
        if not isinstance(data, dict):
            return {}, f"{js.name}: expected an object"
        return {k: str(v) for k, v in data.items() if isinstance(v, str | int | float)}, None
    if txt.is_file():
        return {"text": txt.read_text(encoding="utf-8", errors="replace").strip()}, None
    return {}, None


async def read_folder(source: Source, fetcher: Fetcher, limit: int) -> ReadResult:
    root = Path(source.location).expanduser()
    if not root.is_dir():
        raise FetchError("missing folder", f"{root} is not a folder", url=str(root))
    records: list[Candidate | Rejected] = []
    for path in sorted(
        p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    ):
        if len(records) >= limit:
            break
        fields, problem = _sidecar(path)
        if problem:
            records.append(Rejected(str(path), "bad sidecar", problem))
        caption = fields.get("text") or fields.get("caption")
        records.append(
            Candidate(
                where=str(path),
                key=path.resolve().as_uri(),
                url=fields.get("url"),
                external_id=str(path.relative_to(root)),
                title=fields.get("title"),
                text=caption,
                author=fields.get("author"),
                published_at=_exif_time(path) or datetime.fromtimestamp(path.stat().st_mtime, UTC),
                image_path=path,
            )
        )
    return ReadResult(records)
