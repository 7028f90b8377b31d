"""Intervals in seconds (the monitor.*_every_s settings) as the cron lines periodic tasks take.

Cron counts from the top of the minute / hour / day, so an interval becomes the nearest
one that divides its unit evenly (7 s → every 6 s, 90 s → every 2 min, 5 h → every 4 h);
`simmim worker` prints the schedules it uses.
"""

from __future__ import annotations

import math

DIVISORS_60 = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)
DIVISORS_24 = (1, 2, 3, 4, 6, 8, 12)


def _periods() -> list[tuple[int, str]]:
    """(seconds, 6-field cron line; the 6th field is seconds) for every even schedule."""
    lines = [(step, f"* * * * * */{step}") for step in DIVISORS_60]
    lines += [(step * 60, f"*/{step} * * * * 0") for step in DIVISORS_60]
    lines += [(step * 3600, f"0 */{step} * * * 0") for step in DIVISORS_24]
    lines += [(days * 86_400, f"0 0 */{days} * * 0") for days in (1, 2, 3, 5, 7, 10, 15)]
    return lines


PERIODS = _periods()


def nearest_period(seconds: int) -> tuple[int, str]:
    """(period in seconds, cron line) of the even schedule nearest ``seconds`` by ratio."""
    wanted = math.log(max(seconds, 1))
    return min(PERIODS, key=lambda period: abs(math.log(period[0]) - wanted))


def cron_every(seconds: int) -> str:
    return nearest_period(seconds)[1]
