"""The one clock: every "now" in SimMIM is a ``Clock`` call, so tests can pass a fixed one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Returns an aware UTC datetime; parameters default to :func:`utcnow`."""


def utcnow() -> datetime:
    return datetime.now(UTC)
