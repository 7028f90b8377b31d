"""Images stored once, by content: SHA-256 names the file, a perceptual hash finds near-copies."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import imagehash
import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from simmim.db import session_factory, session_scope
from simmim.files import atomic_write_bytes
from simmim.image_formats import SAFE_FORMATS
from simmim.images import ImageDecodeError, open_image
from simmim.models import Item
from simmim.paths import DataLayout
from simmim.settings import Settings
from simmim.thumbnails import make_copy, write_thumbnail

NEAR_DUPLICATE_BITS = 4  # Hamming distance of 64-bit pHashes that still counts as the same picture


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    size_bytes: int
    width: int
    height: int
    phash: str  # 16 hex digits
    thumbnail: bytes | None = None  # the small copy (JPEG), when one was asked for and pays


def inspect_image(
    data: bytes,
    *,
    max_pixels: int,
    formats: Collection[str] = SAFE_FORMATS,
    thumbnail_size: int = 0,
) -> StoredImage:
    """Decode once to validate (format, bomb limit, corruption), measure, and make the
    thumbnail from the same decode. Raises ImageDecodeError."""
    picture = open_image(data, max_pixels=max_pixels, formats=formats)
    copy = make_copy(picture, thumbnail_size)
    return StoredImage(
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        width=picture.width,
        height=picture.height,
        phash=str(imagehash.phash(picture)),
        thumbnail=copy[1] if copy is not None else None,
    )


def write_image(
    layout: DataLayout,
    data: bytes,
    sha256: str,
    *,
    thumbnail: bytes | None = None,
    thumbnail_size: int = 0,
) -> None:
    """Atomic, idempotent: a second write of the same content is a no-op. The thumbnail
    goes first, so an original on disk always has its copy when one was made."""
    if thumbnail is not None and thumbnail_size > 0:
        write_thumbnail(layout.thumbnail_path(sha256, thumbnail_size), thumbnail)
    path = layout.image_path(sha256)
    if path.exists():
        return
    atomic_write_bytes(path, data)


class PhashIndex:
    """Every stored image's pHash in memory, for Hamming-distance lookups during a crawl."""

    def __init__(self) -> None:
        self._hashes = np.zeros(1024, dtype=np.uint64)  # grows by doubling
        self._count = 0
        self._owners: list[tuple[int, str]] = []  # (item id, image sha256)

    @classmethod
    def load(cls, session: Session) -> PhashIndex:
        index = cls()
        rows = session.execute(
            select(Item.id, Item.image_sha256, Item.image_phash)
            .where(Item.image_phash.is_not(None), Item.image_duplicate_of.is_(None))
            .order_by(Item.id)
        ).all()
        for item_id, sha, phash in rows:
            if sha is not None and phash is not None:
                index.add(item_id, sha, phash)
        return index

    def add(self, item_id: int, sha256: str, phash: str) -> None:
        if self._count == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
        self._hashes[self._count] = np.uint64(int(phash, 16))
        self._count += 1
        self._owners.append((item_id, sha256))

    def nearest(self, phash: str) -> tuple[int, str] | None:
        """(item id, sha256) of the closest stored image within the threshold, if any."""
        if not self._count:
            return None
        xor = self._hashes[: self._count] ^ np.uint64(int(phash, 16))
        distances = np.unpackbits(xor.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
        best = int(distances.argmin())
        return self._owners[best] if distances[best] <= NEAR_DUPLICATE_BITS else None


@dataclass
class ThumbnailSummary:
    made: int = 0
    present: int = 0  # already had a copy
    small: int = 0  # no copy needed: the original is as small
    unreadable: dict[str, str] = field(default_factory=dict)  # sha256 -> why


def make_thumbnails(settings: Settings, engine: Engine, *, workers: int = 2) -> ThumbnailSummary:
    """The small copies an older data dir lacks (``simmim images thumbnails``); encoding
    makes missing ones too, as it meets them. Safe to stop and run again."""
    size = settings.thumbnail_size
    summary = ThumbnailSummary()
    if size <= 0:
        return summary
    layout = DataLayout(settings.data_dir)
    with session_scope(session_factory(engine)) as session:
        shas = list(
            session.scalars(
                select(Item.image_sha256)
                .where(Item.image_sha256.is_not(None), Item.image_duplicate_of.is_(None))
                .distinct()
            )
        )

    def one(sha: str) -> str:
        if layout.thumbnail_path(sha, size).is_file():
            return "present"
        try:
            picture = open_image(  # in full, as at ingest: the copies are the same
                layout.image_path(sha),
                max_pixels=settings.max_image_pixels,
                formats=settings.image_formats,
            )
        except ImageDecodeError as exc:
            summary.unreadable[sha] = str(exc)
            return "unreadable"
        copy = make_copy(picture, size)
        if copy is None:
            return "small"
        write_thumbnail(layout.thumbnail_path(sha, size), copy[1])
        return "made"

    with ThreadPoolExecutor(max(1, workers)) as pool:  # Pillow decodes without the GIL
        outcomes = Counter(pool.map(one, [s for s in shas if s]))
    summary.made, summary.present, summary.small = (
        outcomes["made"],
        outcomes["present"],
        outcomes["small"],
    )
    return summary
