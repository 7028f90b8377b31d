"""Seconds per stage of the input pipeline and the model, kept without importing torch
(the indexer's summary carries them)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

STAGES = ("read", "decode", "resize", "collate", "transfer", "model", "write")


@dataclass
class StageTimes:
    """Seconds per stage of encoding, summed over worker threads (so read + decode +
    resize can exceed the wall clock), and what went through. ``simmim -v index`` and
    ``bench/encode.py`` print it."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    images: int = 0
    texts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def timing(self, stage: str) -> AbstractContextManager[None]:
        return timed([self], stage)

    def count(self, *, images: int = 0, texts: int = 0) -> None:
        with self._lock:
            self.images += images
            self.texts += texts

    def as_dict(self) -> dict[str, float | int]:
        with self._lock:
            out: dict[str, float | int] = {f"{k}_s": round(v, 3) for k, v in self.seconds.items()}
            out.update(images=self.images, texts=self.texts)
            return out

    def line(self) -> str:
        with self._lock:
            parts = [f"{k} {v:.2f} s" for k, v in self.seconds.items() if v > 0]
            return f"{self.images} images, {self.texts} texts: " + (", ".join(parts) or "nothing")


@contextmanager
def timed(stages: Sequence[StageTimes], stage: str) -> Iterator[None]:
    """One stage's seconds into every one of ``stages`` (the encoder's own, a caller's)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        for timing in stages:
            timing.add(stage, elapsed)
