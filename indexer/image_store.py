"""Images stored once, by content: SHA-256 names the file, a perceptual hash finds near-copies."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass

import imagehash
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from simmim.files import atomic_write_bytes
from simmim.image_formats import SAFE_FORMATS
from simmim.images import open_image
from simmim.models import Item
from simmim.paths import DataLayout

NEAR_DUPLICATE_BITS = 4  # Hamming distance of 64-bit pHashes that still counts as the same picture


@dataclass(frozen=True)
class StoredImage:
    sha256: str
    size_bytes: int
    width: int
    height: int
    phash: str  # 16 hex digits


def inspect_image(
    data: bytes, *, max_pixels: int, formats: Collection[str] = SAFE_FORMATS
) -> StoredImage:
    """Decode once to validate (format, bomb limit, corruption) and measure. Raises
    ImageDecodeError."""
    picture = open_image(data, max_pixels=max_pixels, formats=formats)
    return StoredImage(
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        width=picture.width,
        height=picture.height,
        phash=str(imagehash.phash(picture)),
    )


def write_image(layout: DataLayout, data: bytes, sha256: str) -> None:
    """Atomic, idempotent: a second write of the same content is a no-op."""
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
