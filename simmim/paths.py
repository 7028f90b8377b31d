"""Where things live under the data directory: one place names the layout."""

from __future__ import annotations

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

    def create(self) -> list[Path]:
        """Create every folder; returns those that did not exist before."""
        made = []
        for path in (self.root, self.images, self.indexes, self.models, self.outbox):
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                made.append(path)
        return made
