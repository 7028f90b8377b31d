"""FAISS indexes, one per space (image, text, fused), kept in step with the database."""

from __future__ import annotations

SPACES = ("image", "text", "fused")
