"""Where things live under the data directory: one place names the layout."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataLayout:
    root: Path

    @property
    def images(self) -> Path:
        """Crawled images, content-addressed: images/ab/abcdef…"""
        return self.root / "images"

    def image_path(self, sha256: str) -> Path:
        """Where the image with this content hash lives (format sniffed on read, not named)."""
        return self.images / sha256[:2] / sha256

    def thumbnail_path(self, sha256: str, size: int) -> Path:
        """The small copy of that image (short side ``size`` px), beside the original; the
        size is in the name, so changing the setting makes new copies, never mixed ones."""
        return self.images / sha256[:2] / f"{sha256}.t{size}.jpg"

    def image_to_read(self, sha256: str, size: int) -> Path:
        """The copy where one was made, else the original: what encoding and the result
        grid read (downloads always get the original)."""
        thumbnail = self.thumbnail_path(sha256, size) if size > 0 else None
        return (
            thumbnail if thumbnail is not None and thumbnail.is_file() else self.image_path(sha256)
        )

    @property
    def indexes(self) -> Path:
        """FAISS index files and their JSON manifests, one pair per space."""
        return self.root / "indexes"

    @property
    def models(self) -> Path:
        """Checkpoints written by training (fusion, fine-tuned backbones)."""
        return self.root / "models"

    @property
    def companies(self) -> Path:
        """The user's own companies (`simmim companies add|import`), beside the listed ones."""
        return self.root / "companies.csv"

    @property
    def outbox(self) -> Path:
        """Copies of sent alert emails (.eml)."""
        return self.root / "outbox"

    @property
    def corpus_id_file(self) -> Path:
        """A random id of this data dir's corpus: a model fitted on it records the id, so
        search elsewhere can tell it was fitted on other data (a copied data dir keeps it)."""
        return self.root / "corpus-id"

    def corpus_id(self, *, create: bool = True) -> str | None:
        path = self.corpus_id_file
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            if not create:
                return None
        self.root.mkdir(parents=True, exist_ok=True)
        made = uuid.uuid4().hex
        try:
            with path.open("x", encoding="utf-8") as handle:
                handle.write(made + "\n")
        except FileExistsError:  # another process made it first: theirs it is
            return path.read_text(encoding="utf-8").strip() or None
        return made

    def create(self) -> list[Path]:
        """Create every folder; returns those that did not exist before."""
        made = []
        for path in (self.root, self.images, self.indexes, self.models, self.outbox):
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                made.append(path)
        return made
