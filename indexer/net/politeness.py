"""Per-host politeness: a cap on parallel requests and a minimum gap between them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class HostLimiter:
    """At most ``concurrency`` requests in flight per host, starts at least ``interval`` apart.

    The clock and sleep are injectable so tests can check the schedule without waiting.
    A host's interval can be raised (robots.txt Crawl-delay), never lowered below the
    configured one.
    """

    def __init__(
        self,
        concurrency: int,
        interval: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.concurrency = concurrency
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}
        self._intervals: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def set_delay(self, host: str, seconds: float) -> None:
        self._intervals[host] = max(self.interval, seconds)

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        semaphore = self._slots.setdefault(host, asyncio.Semaphore(self.concurrency))
        async with semaphore:
            async with self._locks.setdefault(host, asyncio.Lock()):
                # Reserve the next start time under the lock, then wait outside the
                # bookkeeping: each request gets its own time slot.
                now = self.clock()
                start = max(now, self._next_start.get(host, now))
                self._next_start[host] = start + self._intervals.get(host, self.interval)
                wait = start - now
                if wait > 0:
                    await self.sleep(wait)
            yield
